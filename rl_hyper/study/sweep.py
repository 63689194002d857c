"""Study -> Ray Tune sweep: method x lr x seed trials at equal compute, resumable.

    rl-hyper sweep tune_configs/quickstart.yaml [--dry-run] [--resume] [--storage URI] [--max-concurrent N]

Every trial gets the same `frames` budget (Tune stop criterion on
`env_runners/num_env_steps_sampled_lifetime`) and the same PPO settings; only method, lr and
seed vary. Results: <storage>/<study name>/<trial>/progress.csv ... (Tune's layout) and, beside
the trials, `study.yaml` (the study as run), `versions.json` (shown by `rl-hyper report`),
`manifest.json` (versions, command, start and end times, trial states). `--resume` restores the
Tune experiment: finished trials are kept as they are, unfinished ones continue from their last
checkpoint, errored ones are retried. The console is study/progress.py's; TensorBoard event files
(with the `rl_hyper/*` tags) and the optional MLflow / W&B runs come from training/loggers.py.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import sys
import time
from datetime import datetime, timezone

import yaml

from rl_hyper.study.progress import StudyProgress
from rl_hyper.study.spec import Study, StudyError
from rl_hyper.training.experiment_state import give_trials_their_folders, repair_state
from rl_hyper.training.stopping import StoppedBySignal
from rl_hyper.training.storage import storage_guard
from rl_hyper.training.ray_setup import versions
from rl_hyper.training.run import (
    CHECKPOINTS_KEPT,
    experiment_dir,
    make_tuner,
    run_callbacks,
    run_tuner,
    saved_frames,
    sized_trainable,
    storage_path,
)


def build_arguments(study: Study) -> dict:
    """The `build_config` arguments every trial of the study shares."""
    ppo = study.ppo.overrides()
    return {
        "env": study.env, "env_config": dict(study.env_config), "max_seq_len": ppo.pop("max_seq_len", None),
        "ppo": ppo, "aux": study.aux.overrides(), "num_env_runners": study.resources.num_env_runners,
        "envs_per_runner": study.resources.envs_per_runner, "eval_interval": study.evaluation.interval,
        "eval_tasks": study.evaluation.num_tasks, "eval_task_set": study.evaluation.task_set,
        "eval_deterministic": study.evaluation.deterministic,
        "num_gpus_per_learner": study.resources.num_gpus_per_learner,
        "main_process_cpus": max(1, round(study.resources.cpus_per_trial) - study.resources.num_env_runners),
    }


def study_grid(study: Study) -> dict:
    return {"method": list(study.methods), "lr": list(study.lr_grid), "seed": list(study.seeds)}


def trial_table(study: Study) -> str:
    """The expansion as a printable table (what --dry-run shows)."""
    rows = [f"{'#':>3}  {'method':<15} {'lr':>8} {'seed':>5} {'frames':>12}"]
    for index, trial in enumerate(study.trials(), start=1):
        rows.append(f"{index:>3}  {trial.method:<15} {trial.lr:>8.0e} {trial.seed:>5} {study.frames:>12,}")
    total = len(study.trials()) * study.frames
    rows.append(f"{len(study.trials())} trials on {study.env}, {total:,} frames in all, "
                f"{study.resources.cpus_per_trial:g} CPU(s) per trial")
    return "\n".join(rows)


def check_cluster_fits(study: Study) -> None:
    """Fail fast (StudyError) where no node of the running Ray cluster could ever host one trial:
    Tune would otherwise wait forever for resources that do not exist."""
    import ray

    resources = study.resources
    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    gpus = max((node.get("GPU", 0) for node in nodes), default=0)
    if resources.num_gpus_per_learner > gpus:
        raise StudyError(f"resources.num_gpus_per_learner: {resources.num_gpus_per_learner:g} GPU(s) per learner "
                         f"requested, but no node of this Ray cluster has that many (largest: {gpus:g}); "
                         "set it to 0 or run on a cluster with GPU workers")
    total_cpus = sum(node.get("CPU", 0) for node in nodes)
    if resources.cpus_per_trial > total_cpus:
        raise StudyError(f"resources.cpus_per_trial: {resources.cpus_per_trial:g} CPUs per trial requested, but "
                         f"this Ray cluster has {total_cpus:g} in all; lower resources.num_env_runners")


def check_resumable(experiment: str) -> None:
    """StudyError unless `experiment` (a local path or URI) holds a Tune experiment state to resume
    and, on a local path, the newest one is whole JSON (a full disk can leave it cut) or can be
    repaired from its whole copy (training/experiment_state.py)."""
    from ray import tune

    from rl_hyper.training.experiment_state import cut_files, read_whole_copy

    if not tune.Tuner.can_restore(experiment):
        raise StudyError(f"nothing to resume at {experiment}: no study state there "
                         "(start the study without --resume)")
    if "://" in experiment:
        return
    cut = cut_files(experiment)
    if cut and read_whole_copy(experiment) is None:
        raise StudyError(f"{', '.join(map(str, cut))}: cut or unreadable (written while the storage was full?) and "
                         f"there is no whole copy of Tune's state: Tune cannot resume this study; the results it "
                         f"holds are intact (rl-hyper report {experiment})")


def error_reason(error: BaseException) -> str:
    """The root cause of a trial's error in one line: the last line of Ray's wrapped traceback
    (e.g. "FloatingPointError: non-finite vf_loss (nan) at 120 frames")."""
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(error)).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _write(storage: str, name: str, filename: str, text: str) -> None:
    """Write a small text file into the experiment directory (local path or cloud URI)."""
    import pyarrow.fs

    filesystem, root = pyarrow.fs.FileSystem.from_uri(storage)
    directory = f"{root.rstrip('/')}/{name}"
    filesystem.create_dir(directory, recursive=True)
    with filesystem.open_output_stream(f"{directory}/{filename}") as stream:
        stream.write(text.encode())


def run_sweep(study: Study, *, storage: str | None = None, resume: bool = False,
              max_concurrent: int | None = None, verbosity: int = 1) -> int:
    """Run (or resume) the study; returns the number of trials that did not finish. Raises
    StoppedBySignal after SIGINT / SIGTERM, once the manifest and the summary are written (the
    trials stopped at a checkpoint; the summary gives the resume command), and StorageError when
    the results folder cannot be written (training/storage.py).

    verbosity: what the console shows (see study/progress.py): 0 errors, 1 the study progress
    line, 2 also a line per training iteration.
    """
    from ray import tune

    storage = storage_path(storage or study.storage)
    experiment = experiment_dir(storage, study.name)
    if resume:
        check_resumable(experiment)
        if "://" not in experiment:
            for repaired in (repair_state(experiment), give_trials_their_folders(experiment)):
                if repaired:
                    print(repaired, file=sys.stderr, flush=True)
    started = datetime.now(timezone.utc).isoformat()
    _write(storage, study.name, "study.yaml", yaml.safe_dump(study.model_dump(), sort_keys=False))
    _write(storage, study.name, "versions.json", json.dumps(versions(), indent=2) + "\n")
    console = StudyProgress(study.name, len(study.trials()), study.frames, verbosity)
    if resume:
        print(f"resuming {experiment}", flush=True)
        trainable = sized_trainable(build_arguments(study), study_grid(study), study.frames)
        tuner = tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True, resume_errored=True)
        # the restored run config is the one pickled by the first run: give it this run's console
        # (and the current checkpoint retention, for studies begun before it changed)
        run_config = tuner._local_tuner.get_run_config()
        run_config.callbacks = run_callbacks(console, experiment, study.logging.tracking(), experiment=study.name)
        run_config.checkpoint_config = tune.CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT)
    else:
        print(trial_table(study), flush=True)
        tuner = make_tuner(build_arguments(study), study_grid(study), frames=study.frames, storage=storage,
                           name=study.name, max_concurrent=max_concurrent or study.resources.max_concurrent,
                           max_failures=study.max_failures, checkpoint_period_s=study.checkpoint_period_s,
                           console=console, tracking=study.logging.tracking())
    if verbosity >= 1 and "://" not in experiment:
        print(f"watch: tensorboard --logdir {experiment}", flush=True)
    begin = time.time()
    with storage_guard(experiment):
        results, signum = run_tuner(tuner)
        states = {trial_key(trial.method, trial.lr, trial.seed): "not started" for trial in study.trials()}
        for result in results:
            config = result.config
            states[trial_key(config["method"], config["lr"], config["seed"])] = trial_state(result, study.frames)
        manifest = {"study": study.name, "env": study.env, "command": " ".join(sys.argv), "started": started,
                    "ended": datetime.now(timezone.utc).isoformat(), "wall_s": round(time.time() - begin, 1),
                    "versions": versions(), "trials": states, "restore_notes": console.restore_notes}
        if signum is not None:
            manifest["stopped_by"] = signal.Signals(signum).name
        _write(storage, study.name, "manifest.json", json.dumps(manifest, indent=2) + "\n")
    done = [key for key, state in states.items() if state == "done"]
    print(f"{len(done)}/{len(states)} trials done in {manifest['wall_s']:.0f} s; results in {experiment}")
    for key, state in states.items():
        if state != "done":
            print(f"  {'failed: ' if state.startswith('ERROR') else ''}{key}: {state}", file=sys.stderr)
    if signum is not None:
        print(f"stopped by {signal.Signals(signum).name}; continue with: {resume_command(experiment, storage)}")
        raise StoppedBySignal(signum)
    print(f"report: rl-hyper report {experiment}")
    return len(states) - len(done)


def trial_key(method: str, lr: float, seed: int) -> str:
    """A trial's name in the manifest, e.g. "rnn/lr=0.001/seed=73"."""
    return f"{method}/lr={lr:g}/seed={seed}"


def trial_state(result, budget: int) -> str:
    """A trial's line in the manifest: "done" (its checkpoint holds the budget), "stopped at N
    frames" (N: its last checkpoint's, where a resume continues) or "ERROR: <reason>"."""
    if result.error:
        return f"ERROR: {error_reason(result.error)}"
    frames = saved_frames(result)
    return "done" if frames >= budget else f"stopped at {frames} frames"


def resume_command(experiment: str, storage: str) -> str:
    """The command line that continues the study in `experiment` (from the study.yaml written there)."""
    return f"rl-hyper sweep {shlex.quote(experiment + '/study.yaml')} --resume --storage {shlex.quote(storage)}"
