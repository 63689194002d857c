"""The sweep's console: the study progress line (Tune's real Trial objects, no Ray run), and a real
sweep whose output holds that line and no Tune warning."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from ray.tune.experiment import Trial

from rl_hyper.study.progress import StudyProgress, _duration

BUDGET = 9600


def make_trial(seed: int, status: str = Trial.PENDING, frames: int | None = None) -> Trial:
    trial = Trial("trial_trainable", config={"method": "rnn", "lr": 1e-3, "seed": seed}, stub=True)
    trial.set_status(status)
    if frames is not None:
        trial.update_last_result({"rl_hyper": {"frames": frames, "eval_trial_return": 1.5}})
    return trial


def test_duration():
    assert [_duration(s) for s in (4, 65, 3725)] == ["4s", "1m05s", "1h02m05s"]


def test_status_counts_trials_frames_elapsed_and_eta():
    progress = StudyProgress("demo", num_trials=4, frames=BUDGET)
    finished = make_trial(1, Trial.TERMINATED, BUDGET + 960)  # the last iteration overshoots: capped
    running = make_trial(2, Trial.RUNNING, 2400)
    waiting = make_trial(3)
    assert progress.status([finished, running, waiting], now=100.0) == (
        "study demo: 1/4 trials done, 1 running, 2 pending | 12,000/38,400 frames (31.2%) | elapsed 0s | ETA --")
    running.update_last_result({"rl_hyper": {"frames": 4800}})  # 2,400 frames in 10 s: 240 frames/s
    assert progress.status([finished, running, waiting], now=110.0) == (
        "study demo: 1/4 trials done, 1 running, 2 pending | 14,400/38,400 frames (37.5%) | elapsed 10s | ETA 1m40s")
    running.set_status(Trial.ERROR)  # a failed trial's frames left are not waited for
    assert progress.status([finished, running, waiting], now=110.0).endswith(
        "1/4 trials done, 0 running, 2 pending, 1 failed | 14,400/38,400 frames (37.5%) | elapsed 10s | ETA 1m20s")


def test_plain_lines_when_not_a_terminal_and_in_place_on_one(capsys):
    trials = [make_trial(1, Trial.RUNNING, 960), make_trial(2)]
    plain = StudyProgress("demo", 2, BUDGET, interactive=False)
    plain.on_step_end(iteration=1, trials=trials)
    plain.on_step_end(iteration=2, trials=trials)  # nothing changed: no second line
    trials[1].set_status(Trial.RUNNING)
    plain.on_step_end(iteration=3, trials=trials)
    out = capsys.readouterr().out
    assert out.count("\n") == 2 and "\r" not in out and "\x1b" not in out
    assert out.splitlines()[1].startswith("study demo: 0/2 trials done, 2 running, 0 pending")

    live = StudyProgress("demo", 2, BUDGET, interactive=True)
    live.on_step_end(iteration=1, trials=trials)
    live.on_trial_complete(iteration=2, trials=trials, trial=trials[0])
    live.on_experiment_end(trials=trials)
    out = capsys.readouterr().out
    assert out.startswith("\rstudy demo: 0/2 trials done, 2 running") and "\x1b[K" in out
    assert "\r\x1b[Ktrial done: rnn lr=0.001 seed=1, 960 frames, last eval 1.50\n" in out  # the line is cleared first
    assert out.endswith("\x1b[K\n")


@pytest.mark.parametrize("verbosity, lines", [(0, 0), (1, 1), (2, 2)])
def test_verbosity_decides_what_is_printed(verbosity, lines, capsys):
    trial = make_trial(1, Trial.RUNNING, 960)
    progress = StudyProgress("demo", 1, BUDGET, verbosity=verbosity, interactive=False)
    progress.on_step_end(iteration=1, trials=[trial])  # the progress line
    result = {"training_iteration": 1, "rl_hyper": {
        "method": "rnn", "lr": 1e-3, "seed": 1, "frames": 960, "train_trial_return": -4.0,
        "train_inner_return_1": -1.0, "env_steps_per_s": 500.0, "eval_trial_return": float("nan")}}
    progress.on_trial_result(iteration=1, trials=[trial], trial=trial, result=result)  # an iteration line
    assert len(capsys.readouterr().out.splitlines()) == lines


def test_sweep_prints_the_progress_line_and_no_tune_warning(tmp_path, ray_session):
    """A fresh sweep's whole console. The huge threshold makes Tune warn at *every* forced experiment
    snapshot, so a clean console means no snapshot was forced at all (the cause), not lucky timing."""
    study = {"name": "quiet", "env": "GridNavi", "methods": ["rnn"], "lr_grid": [1e-3], "seeds": [1, 2],
             "frames": 1920, "evaluation": {"interval": 1, "num_tasks": 4}, "resources": {"max_concurrent": 2},
             "storage": str(tmp_path / "results"), "max_failures": 0}
    path = tmp_path / "quiet.yaml"
    path.write_text(yaml.safe_dump(study))
    env = {**os.environ, "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "1e9"}

    def sweep(*extra: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "rl_hyper", "sweep", str(path), *extra, "--address",
                               ray_session.get_runtime_context().gcs_address],
                              capture_output=True, text=True, timeout=600, env=env)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        assert "WARNING" not in out and "snapshotting" not in out, out
        assert "Configuration for experiment" not in out and "/tmp/ray/session" not in out, out
        return out

    out = sweep()
    assert f"watch: tensorboard --logdir {tmp_path / 'results' / 'quiet'}" in out
    assert "study quiet: 0/2 trials done, 0 running, 2 pending | 0/3,840 frames (0.0%)" in out
    assert "study quiet: 2/2 trials done, 0 running, 0 pending | 3,840/3,840 frames (100.0%)" in out
    assert out.count("trial done: rnn lr=0.001") == 2
    # a resumed study (here: nothing left to do) prints through this run's console, not the pickled one
    out = sweep("--resume", "--quiet")
    assert "resuming" in out and "study quiet:" not in out and "trial done" not in out, out
