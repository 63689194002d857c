"""The console of `rl-hyper sweep`: one study-level progress line, a line per finished trial, errors.

    study quickstart: 2/6 trials done, 2 running, 2 pending | 422,400/1,152,000 frames (36.7%) | elapsed 3m12s | ETA 5m32s

On a terminal the line is rewritten in place (about once a second); elsewhere (CI, `ray job logs`,
a file) it is printed as a plain line whenever a trial starts, ends or fails, and once a minute
in between. Frames done = sum over trials of min(frames sampled, budget); the ETA divides the
frames left (of trials that have not failed) by the rate of this run so far (a resumed study's
restored frames do not count as speed).

verbosity: 0 = errors only (and the final summary printed by the sweep); 1 = the progress line and
one line per finished trial; 2 = also one line per training iteration of every trial.
"""

from __future__ import annotations

import math
import sys
import time

from ray import tune
from ray.tune.experiment import Trial

from rl_hyper.training.run import RESTORE_NOTES_KEY, progress_line

REFRESH_S = 1.0  # terminal: at most one redraw per second
PLAIN_INTERVAL_S = 60.0  # not a terminal: a line per minute when nothing else happens


def _duration(seconds: float) -> str:
    """3725 -> '1h02m05s', 65 -> '1m05s', 4 -> '4s'."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _frames(trial: Trial, budget: int) -> int:
    """Frames of `trial` so far, at most the budget (the last iteration may overshoot it)."""
    section = (trial.last_result or {}).get("rl_hyper") or {}
    return min(int(section.get("frames", 0)), budget)


def _trial_label(trial: Trial) -> str:
    config = trial.config
    return f"{config['method']} lr={config['lr']:g} seed={config['seed']}"


class StudyProgress(tune.Callback):
    """Tune callback printing the study's progress (module docstring). Holds no stream: it writes to
    the current `sys.stdout` / `sys.stderr`, so it survives Tune's pickling of the run config."""

    def __init__(self, study: str, num_trials: int, frames: int, verbosity: int = 1, interactive: bool | None = None):
        self.study = study
        self.num_trials = num_trials  # Tune creates trials as it schedules them: count the study's
        self.frames = frames
        self.verbosity = verbosity
        self.interactive = interactive  # None: whether stdout is a terminal, decided when the run starts
        self._start = None  # (time, frames done) when this run started
        self._last_draw = 0.0
        self._last_counts = None
        self._drawn = False  # a line is on the terminal without its newline
        self.restore_notes: dict[str, str] = {}  # trial label -> checkpoints skipped at its restore

    # ------------------------------------------------------------ the line

    def status(self, trials: list[Trial], now: float | None = None) -> str:
        """The progress line for `trials` (Tune's Trial objects) at time `now`."""
        now = time.time() if now is None else now
        counts = self._counts(trials)
        done_frames = sum(_frames(trial, self.frames) for trial in trials)
        total = self.frames * self.num_trials
        if self._start is None:
            self._start = (now, done_frames)
        started, frames_at_start = self._start
        elapsed = now - started
        left = total - done_frames - sum(self.frames - _frames(trial, self.frames)
                                         for trial in trials if trial.status == Trial.ERROR)
        rate = (done_frames - frames_at_start) / elapsed if elapsed > 0 else 0.0
        eta = "--" if rate <= 0 else _duration(left / rate)
        if left == 0:
            eta = "0s"
        parts = [f"{counts['done']}/{self.num_trials} trials done", f"{counts['running']} running",
                 f"{counts['pending']} pending"]
        if counts["failed"]:
            parts.append(f"{counts['failed']} failed")
        share = 100.0 * done_frames / total if total else math.nan
        return (f"study {self.study}: {', '.join(parts)} | {done_frames:,}/{total:,} frames ({share:.1f}%) | "
                f"elapsed {_duration(elapsed)} | ETA {eta}")

    def _counts(self, trials: list[Trial]) -> dict[str, int]:
        counts = {"done": 0, "running": 0, "pending": self.num_trials - len(trials), "failed": 0}
        for trial in trials:
            if trial.status == Trial.TERMINATED:
                counts["done"] += 1
            elif trial.status == Trial.RUNNING:
                counts["running"] += 1
            elif trial.status == Trial.ERROR:
                counts["failed"] += 1
            else:  # PENDING, PAUSED (waiting to be retried or for resources)
                counts["pending"] += 1
        return counts

    # ------------------------------------------------------------ output

    def _draw(self, trials: list[Trial], force: bool = False) -> None:
        if self.verbosity < 1:
            return
        now = time.time()
        counts = tuple(self._counts(trials).values())
        if self.interactive:
            due = now - self._last_draw >= REFRESH_S
        else:
            due = counts != self._last_counts or now - self._last_draw >= PLAIN_INTERVAL_S
        if not (due or force):
            return
        line = self.status(trials, now)
        if self.interactive:
            sys.stdout.write(f"\r{line}\x1b[K")
            self._drawn = True
        else:
            sys.stdout.write(f"{line}\n")
        sys.stdout.flush()
        self._last_draw, self._last_counts = now, counts

    def _say(self, text: str, stream=None) -> None:
        """Print a line of its own; on a terminal, clear the progress line first (it is redrawn later)."""
        if self._drawn:
            sys.stdout.write("\r\x1b[K")
            sys.stdout.flush()
            self._drawn = False
        print(text, file=stream or sys.stdout, flush=True)

    # ------------------------------------------------------------ Tune's hooks

    def setup(self, **info):
        if self.interactive is None:
            self.interactive = sys.stdout.isatty()

    def on_step_end(self, iteration, trials, **info):
        self._draw(trials)

    def on_trial_start(self, iteration, trials, trial, **info):
        self._draw(trials)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if RESTORE_NOTES_KEY in result:
            self.restore_notes[_trial_label(trial)] = result[RESTORE_NOTES_KEY]
            self._say(f"trial {_trial_label(trial)}: {result[RESTORE_NOTES_KEY]}", sys.stderr)
        if self.verbosity >= 2 and "rl_hyper" in result:
            self._say(progress_line(result))

    def on_trial_complete(self, iteration, trials, trial, **info):
        if self.verbosity >= 1:
            section = (trial.last_result or {}).get("rl_hyper") or {}
            evaluation = section.get("eval_trial_return", math.nan)
            shown = "" if evaluation is None or math.isnan(evaluation) else f", last eval {evaluation:.2f}"
            self._say(f"trial done: {_trial_label(trial)}, {section.get('frames', 0):,} frames{shown}")
        # (the trial's status changes after this call: the next step's line shows it)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._say(f"trial failed: {_trial_label(trial)}: {trial.error_file}", sys.stderr)

    def on_experiment_end(self, trials, **info):
        if self.verbosity >= 1:
            self._draw(trials, force=self.interactive)
            if self._drawn:
                sys.stdout.write("\n")
                sys.stdout.flush()
                self._drawn = False
