"""Running trials on Ray Tune: the trainable, the tuner, the console, checkpoints, the one-trial `train`.

Every run (one `train` or a whole study) is a Tune experiment, so results always have Tune's
layout: <storage>/<experiment>/<trial>/{progress.csv, result.json, params.json, checkpoint_*}
plus <storage>/<experiment>/versions.json (python, ray, torch, gymnasium, numpy, mujoco; written by
training/ray_setup.py, which also starts Ray: `init_ray`).

Checkpoints and Tune's experiment snapshots: a trial checkpoints every CHECKPOINT_PERIOD_S of
wall time and at its end, and Tune keeps its last CHECKPOINTS_KEPT. Tune forces a snapshot of the
experiment state (and warns "Experiment state snapshotting has been triggered multiple times")
whenever one trial has written `num_to_keep` checkpoints since the last snapshot; it snapshots
anyway every 10 s or so, so with two kept and minutes between checkpoints no snapshot is ever
forced. (Checkpointing every 10 iterations with one kept forced a snapshot per checkpoint: every
few seconds in a GridNavi sweep.)

The console: `run_tuner` runs Tune with its own output off (the legacy engine at verbose 0: no
configuration box, no TensorBoard hint pointing into Ray's session folder) and our callbacks do the
printing; `quiet_ray_logs` (training/ray_setup.py) drops Ray's log lines that need no action unless verbose.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

from rl_hyper.training.ray_setup import write_versions

STOP_KEY = "env_runners/num_env_steps_sampled_lifetime"
RESTORE_NOTES_KEY = "rl_hyper_restore_notes"  # in the first result after a restore that skipped a checkpoint
CHECKPOINT_PERIOD_S = 300.0  # wall time between a trial's checkpoints (and one at its end)
CHECKPOINTS_KEPT = 2  # per trial; see the module docstring for why not 1
TRAIN_MAX_FAILURES = 1  # `train` retries a failed trial from its last checkpoint once, as a study does by default


def run_tuner(tuner):
    """`tuner.fit()` with Tune's own console output off (our callbacks print instead) and SIGINT /
    SIGTERM stopping the trials at a checkpoint (training/stopping.py).

    Returns (Tune's ResultGrid, the number of the signal that stopped the run or None).
    Tune's new output engine prints a configuration box and a TensorBoard hint even at verbose=0;
    its legacy engine (RAY_AIR_NEW_OUTPUT=0, as RLlib's own examples set it) prints nothing there.
    """
    from rl_hyper.training.stopping import stop_on_signals

    previous = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    try:
        with stop_on_signals() as request:
            results = tuner.fit()
        return results, request["signum"]
    finally:
        if previous is None:
            del os.environ["RAY_AIR_NEW_OUTPUT"]
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = previous


def _fmt(value) -> str:
    return "   n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:6.2f}"


def progress_line(result: dict) -> str:
    """One line per training iteration from a result's `rl_hyper` section."""
    section = result["rl_hyper"]

    def inner(prefix):
        values = [section[key] for key in sorted(section) if key.startswith(f"{prefix}_inner_return_")]
        return "/".join(_fmt(v).strip() for v in values)

    line = (f"{section['method']:>14} lr={section['lr']:.0e} seed={section['seed']:<3} "
            f"it {result.get('training_iteration', 0):4d}  frames {section['frames']:>10,}  "
            f"train {_fmt(section.get('train_trial_return'))} [{inner('train')}]  "
            f"{section['env_steps_per_s']:6.0f} steps/s")
    if not math.isnan(section.get("eval_trial_return", math.nan)):
        line += f"  eval {_fmt(section['eval_trial_return'])} [{inner('eval')}]"
    return line


def progress_callback(verbosity: int = 1):
    """A Tune callback printing `progress_line` for every trial result (verbosity >= 1) and errors."""
    from ray import tune

    class ProgressPrinter(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            if RESTORE_NOTES_KEY in result:
                print(result[RESTORE_NOTES_KEY], file=sys.stderr, flush=True)
            if verbosity >= 1 and "rl_hyper" in result:
                print(progress_line(result), flush=True)

        def on_trial_error(self, iteration, trials, trial, **info):
            print(f"trial {trial.trial_id} failed: {trial.error_file}", file=sys.stderr, flush=True)

    return ProgressPrinter()


def _public_result(result: dict) -> dict:
    """The algorithm's result without the (large, unserialisable) config object."""
    return {key: value for key, value in result.items() if key != "config"}


def trial_trainable(params: dict) -> None:
    """Tune function trainable: one PPO trial, `build_config(**params)` trained to `frames`.

    params: method, lr, seed (what a study varies) and every other `build_config` argument.
    Checkpoints every `checkpoint_period_s` seconds, at the end, and when the driver asks the
    trials to stop (training/stopping.py); after a failure or a `--resume`, Tune hands the last
    checkpoint back and training continues from it, or from the one before when it is damaged
    (training/checkpoints.py; the first result then carries RESTORE_NOTES_KEY), and a trial whose
    checkpoint already holds the full budget ends at once, reporting that checkpoint's result
    again only if the driver died before it logged it (`_report_unlogged`).
    """
    import tempfile

    import torch
    from ray import tune

    from rl_hyper.envs.registry import register_all
    from rl_hyper.training import checkpoints
    from rl_hyper.training.config import build_config
    from rl_hyper.training.ray_metrics import export_result
    from rl_hyper.training.stopping import find_stop_flag, record_stop, stop_requested, wait_to_be_ended

    torch.set_num_threads(params.get("main_process_cpus", 1))
    context = tune.get_context()
    tags = {"study": context.get_experiment_name(), "trial": context.get_trial_id(), "method": params["method"],
            "env": params["env"]}
    register_all()
    params = dict(params)
    checkpoint_period_s = params.pop("checkpoint_period_s", CHECKPOINT_PERIOD_S)
    params.pop("checkpoint_every", None)  # set by studies begun with iteration-based checkpoints; unused
    frames = params["frames"]
    stop_flag = find_stop_flag()
    if stop_requested(stop_flag):
        wait_to_be_ended()  # started just as the driver was stopping: nothing to save
    folder = _trial_folder(tune.get_checkpoint())
    notes = []
    if folder is not None and checkpoints.trial_checkpoints(folder):
        newest = checkpoints.newest_whole(folder)
        if newest is not None and checkpoints.checkpoint_frames(newest) >= frames:
            _report_unlogged(checkpoints.checkpoint_result(newest), folder)
            return  # finished before the driver went down: nothing to train
        algo, notes = checkpoints.restore(build_config(**params).build_algo, folder)
        for note in notes:
            print(note, file=sys.stderr, flush=True)
    else:
        algo = build_config(**params).build_algo()
    done, last_checkpoint = False, time.monotonic()
    while not done:
        result = _public_result(algo.train())
        if notes:
            result[RESTORE_NOTES_KEY], notes = " | ".join(notes), []
        export_result(result, tags)  # to the node's Prometheus endpoint / the dashboard's metrics view
        done = result["rl_hyper"]["frames"] >= frames
        stopping = not done and stop_requested(stop_flag)
        if stopping:
            record_stop(stop_flag, context.get_trial_id(), result["training_iteration"])
        if done or stopping or time.monotonic() - last_checkpoint >= checkpoint_period_s:
            last_checkpoint = time.monotonic()
            with tempfile.TemporaryDirectory() as directory:
                checkpoints.write_checkpoint(algo, directory, result)
                tune.report(result, checkpoint=tune.Checkpoint.from_directory(directory))
        else:
            tune.report(result)
        if stopping:
            wait_to_be_ended()
    algo.stop()


def _report_unlogged(result: dict | None, folder: Path) -> None:
    """Report a finished trial's last `result` (stored in its final checkpoint) again unless the
    trial's progress.csv in `folder` has its iteration: the driver can die after the checkpoint
    reached the storage but before it logged the result. A result logged twice keeps one row
    (training/progress_csv.py)."""
    from ray import tune
    from ray.air.constants import EXPR_PROGRESS_FILE

    from rl_hyper.training.progress_csv import logged_iterations

    if result is not None and result["training_iteration"] not in logged_iterations(folder / EXPR_PROGRESS_FILE):
        tune.report(result)


def _trial_folder(checkpoint) -> Path | None:
    """In a trial: the folder holding its checkpoints. On local storage the trial's own folder
    (which can hold a checkpoint newer than the one Tune hands over, `checkpoint`, when Tune's
    experiment state came from an older copy); on cloud storage the handed checkpoint's parent,
    or None without one."""
    import pyarrow.fs
    from ray import tune

    storage = tune.get_context().get_storage()
    if isinstance(storage.storage_filesystem, pyarrow.fs.LocalFileSystem):
        return Path(storage.trial_fs_path)
    return Path(checkpoint.path).parent if checkpoint else None


def saved_frames(result) -> int:
    """Frames in the newest whole checkpoint of a trial's Tune Result (0 without one): where it
    resumes. Looks in the trial's folder on local storage (see `_trial_folder`)."""
    from rl_hyper.training.checkpoints import checkpoint_frames, newest_whole

    newest = newest_whole(result.path) if result.path and Path(result.path).is_dir() else None
    if newest is not None:
        return checkpoint_frames(newest)
    return checkpoint_frames(result.checkpoint.path) if result.checkpoint else 0


def sized_trainable(common: dict, grid: dict, frames: int):
    """`trial_trainable` with the resources of one trial: the learner process plus its env
    runners (and GPU), as RLlib requests them for the grid's first trial (all trials alike)."""
    from ray import tune
    from ray.rllib.algorithms.ppo import PPO

    from rl_hyper.training.config import build_config

    first = {key: values[0] for key, values in grid.items()}
    return tune.with_resources(trial_trainable, PPO.default_resource_request(build_config(**common, frames=frames, **first)))


def trial_dirname(trial) -> str:
    """Tune's trial_dirname_creator: `<method>_lr<lr>_seed<seed>_<trial id>`, also set as the new
    `trial`'s folder. Tune would add four random hex digits to a name whose folder is already in
    the driver's staging folder; with the trial id in the name, that folder is this trial's own,
    made by a driver that ended before Tune's next snapshot (training/experiment_state.py), so the
    trial continues in it."""
    config = trial.config
    name = f"{config['method']}_lr{config['lr']:g}_seed{config['seed']}_{trial.trial_id}"
    trial.relative_logdir = trial.storage.trial_dir_name = name  # as Tune's init_local_path would, without the digits
    return name


def run_callbacks(console, directory: str, tracking: dict | None = None, experiment: str = "") -> list:
    """The Tune callbacks of a run: `console` (the callback that prints), the stop at a checkpoint
    on SIGINT / SIGTERM (training/stopping.py), the end of the run when the experiment folder
    `directory` cannot be written (training/storage.py), a whole copy of Tune's experiment state
    (training/experiment_state.py), progress.csv with a fixed header (training/progress_csv.py),
    the TensorBoard logger with our tags, and the MLflow / W&B loggers `tracking`
    ({"mlflow": {...}, "wandb": {...}}) asks for."""
    from rl_hyper.training.experiment_state import KeepWholeState
    from rl_hyper.training.loggers import MetricsToTensorBoard, tracking_callbacks
    from rl_hyper.training.progress_csv import ProgressCSVLogger
    from rl_hyper.training.stopping import StopAtCheckpoint
    from rl_hyper.training.storage import StorageWatch

    return [console, StopAtCheckpoint(), StorageWatch(directory), KeepWholeState(directory), ProgressCSVLogger(),
            MetricsToTensorBoard(), *tracking_callbacks(**(tracking or {}), experiment=experiment)]


def make_tuner(common: dict, grid: dict, *, frames: int, storage: str, name: str, max_concurrent: int | None = None,
               max_failures: int = 0, checkpoint_period_s: float = CHECKPOINT_PERIOD_S, console=None,
               tracking: dict | None = None):
    """A Tuner over the grid (method x lr x seed lists) with `common` build_config arguments.

    Every trial stops at the same `frames` (STOP_KEY), whatever its method. console: the Tune
    callback that prints progress (default: `progress_callback()`, a line per iteration).
    tracking: MLflow / W&B settings, see `run_callbacks`.
    """
    from ray import tune

    param_space = {**common, "frames": frames, "checkpoint_period_s": checkpoint_period_s,
                   **{key: tune.grid_search(list(values)) for key, values in grid.items()}}
    return tune.Tuner(
        sized_trainable(common, grid, frames), param_space=param_space,
        tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, trial_dirname_creator=trial_dirname),
        run_config=tune.RunConfig(
            name=name, storage_path=storage, stop={STOP_KEY: frames}, verbose=0,
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT),
            callbacks=run_callbacks(console or progress_callback(), experiment_dir(storage, name), tracking,
                                    experiment=name),
        ),
    )


def storage_path(output: str) -> str:
    """Tune storage: a cloud URI as given, a local directory made absolute."""
    return output if "://" in output else str(Path(output).resolve())


def experiment_dir(storage: str, name: str) -> str:
    """The folder (or URI) of experiment `name` in `storage` (as `storage_path` gives it)."""
    return f"{storage.rstrip('/')}/{name}"


def train(common: dict, *, method: str, lr: float, seed: int, frames: int, output: str, name: str,
          verbosity: int = 1) -> Path:
    """Train one trial (a study of one) under Tune; returns the trial directory.

    verbosity: 0 = print nothing but errors, >= 1 = one line per training iteration.
    Raises StoppedBySignal after SIGINT / SIGTERM (the trial stopped at a checkpoint), StorageError
    when the results folder cannot be written (training/storage.py).
    """
    from rl_hyper.training.stopping import StoppedBySignal
    from rl_hyper.training.storage import storage_guard

    storage = storage_path(output)
    write_versions(Path(storage) / name)
    tuner = make_tuner(common, {"method": [method], "lr": [lr], "seed": [seed]}, frames=frames,
                       storage=storage, name=name, max_failures=TRAIN_MAX_FAILURES,
                       console=progress_callback(verbosity))
    with storage_guard(experiment_dir(storage, name)):
        results, signum = run_tuner(tuner)
        result = results[0]
    if signum is not None:
        print(f"stopped at {saved_frames(result):,} of {frames:,} frames; last checkpoint: "
              f"{result.checkpoint.path if result.checkpoint else 'none'}", file=sys.stderr)
        raise StoppedBySignal(signum)
    if result.error:
        raise RuntimeError(f"training failed: {result.error}")
    return Path(result.path)
