"""A trial's checkpoints: written with a list of their files, checked before a restore, and the
previous one used when the latest is damaged.

Every checkpoint folder holds, beside RLlib's files, CONTENTS_FILE:

    {"frames": 12480, "files": {"algorithm_state.pkl": 8983, "learner_group/learner/state.pkl": 2499950, ...}}

written last, after RLlib's `save_to_path`, so it lists every file with its size. Tune then copies
the folder into the trial's storage (`checkpoint_000004`), file by file: a copy cut by a crash,
a full disk or a deleted file shows up as a missing file or a size that differs from the list.
`damage` finds it before anything is restored; `restore` walks the trial folder's checkpoints
from the newest (the one Tune hands over, or a newer one where Tune's experiment state was
restored from an older copy, training/experiment_state.py) to the older ones Tune keeps
(CHECKPOINTS_KEPT in training/run.py), restores the newest one that is whole and restores
without an error, and says which it skipped and why.
When none is usable it raises: a trial never starts again from fresh weights while its frame
count says otherwise.

Each checkpoint also holds RESULT_FILE, the training result it was written with: a trial whose
checkpoint holds its whole budget reports it again when resumed, because the driver can die after
the checkpoint reached the storage but before it logged that result (training/run.py).

Checkpoints written before this file existed have only FRAMES_FILE; for them `damage` checks
that file alone.
"""

from __future__ import annotations

import json
from pathlib import Path

CONTENTS_FILE = "rl_hyper_checkpoint.json"
FRAMES_FILE = "rl_hyper_frames.txt"  # the frame count alone, as earlier versions wrote and read it
RESULT_FILE = "rl_hyper_result.json"  # the training result the checkpoint was written with


class NoUsableCheckpointError(RuntimeError):
    """Every checkpoint of a trial is damaged: the message names each one and what is wrong."""


def write_checkpoint(algo, directory: str | Path, result: dict) -> None:
    """Save `algo` into `directory` with FRAMES_FILE, RESULT_FILE (`result`, the training result of
    the iteration just run, without its config) and, last, CONTENTS_FILE listing every file."""
    from ray.tune.utils.util import SafeFallbackEncoder

    directory = Path(directory)
    frames = result["rl_hyper"]["frames"]
    algo.save_to_path(str(directory))
    (directory / FRAMES_FILE).write_text(str(frames))
    (directory / RESULT_FILE).write_text(json.dumps(result, cls=SafeFallbackEncoder))
    files = {str(path.relative_to(directory)): path.stat().st_size
             for path in sorted(directory.rglob("*")) if path.is_file()}
    (directory / CONTENTS_FILE).write_text(json.dumps({"frames": frames, "files": files}, indent=1) + "\n")


def checkpoint_frames(path: str | Path) -> int:
    """Frames the trial had sampled when it wrote the checkpoint at `path`."""
    contents = Path(path) / CONTENTS_FILE
    if contents.exists():
        return int(json.loads(contents.read_text())["frames"])
    return int((Path(path) / FRAMES_FILE).read_text())


def checkpoint_result(path: str | Path) -> dict | None:
    """The training result the checkpoint at `path` was written with (None for checkpoints written
    before RESULT_FILE existed)."""
    file = Path(path) / RESULT_FILE
    return json.loads(file.read_text()) if file.exists() else None


def damage(path: str | Path) -> str | None:
    """What is wrong with the checkpoint at `path`, in one line naming the file; None if whole."""
    path = Path(path)
    contents = path / CONTENTS_FILE
    if not contents.exists():
        try:
            int((path / FRAMES_FILE).read_text())
        except (OSError, ValueError):
            return f"{contents} and {path / FRAMES_FILE} are missing or unreadable"
        return None
    try:
        listed = json.loads(contents.read_text())["files"]
    except (OSError, ValueError, KeyError):
        return f"{contents} is unreadable (cut while it was written?)"
    for name, size in listed.items():
        file = path / name
        if not file.is_file():
            return f"{file} is missing"
        if file.stat().st_size != size:
            return f"{file} has {file.stat().st_size} bytes, {size} were written"
    return None


def trial_checkpoints(trial_folder: str | Path) -> list[Path]:
    """The checkpoint folders (`checkpoint_NNNNNN`) in a trial's folder, newest first."""
    return sorted((p for p in Path(trial_folder).glob("checkpoint_*") if p.is_dir()), reverse=True)


def newest_whole(trial_folder: str | Path) -> Path | None:
    """The newest checkpoint in the trial's folder that `damage` finds whole; None if there is none."""
    return next((path for path in trial_checkpoints(trial_folder) if damage(path) is None), None)


def restore(build_algo, trial_folder: str | Path):
    """An algorithm restored from the newest checkpoint in `trial_folder` that is whole and
    restores without an error. build_algo: () -> a fresh algorithm.

    Returns (algorithm, notes): notes has one line per skipped checkpoint, naming its file and
    the problem. Raises NoUsableCheckpointError when none is usable.
    """
    notes = []
    for candidate in trial_checkpoints(trial_folder):
        problem = damage(candidate)
        if problem is None:
            algo = build_algo()
            try:
                algo.restore_from_path(str(candidate))
                return algo, notes
            except Exception as error:  # noqa: BLE001 (any failure to unpickle marks the checkpoint bad)
                algo.stop()
                problem = f"{candidate}: restore failed: {type(error).__name__}: {error}"
        notes.append(f"checkpoint {candidate.name} skipped: {problem}")
    raise NoUsableCheckpointError(f"no usable checkpoint for this trial (fresh weights would not match its frame "
                                  f"count): {'; '.join(notes)}")
