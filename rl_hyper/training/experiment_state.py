"""A whole copy of Tune's experiment state, so that a study whose state file was cut still resumes.

Tune keeps a study's state (its trials, their configs and checkpoints) in one JSON file in the
experiment folder, `experiment_state-<time>.json`, rewritten in place every few seconds. A full
disk (or a crash during the copy into the storage) can cut it, and Tune then cannot resume the
study at all. Here:

- `KeepWholeState`, a Tune callback in the driver, copies the newest state file to
  WHOLE_COPY whenever it has changed and parses as JSON (a temporary file and a rename, so the
  copy itself is never cut); the name does not match Tune's pattern, so Tune never reads it;
- `repair_state`, before a `--resume`, finds the newest state file cut and puts the whole copy in
  its place (the cut file is kept beside it as `<name>.cut`).

The copy can be a little older than the cut file: a trial that checkpointed or finished after it
is then handed an older checkpoint by Tune, but the trainable restores from the newest whole
checkpoint in the trial's folder (training/checkpoints.py), so nothing is run twice or lost.
Cloud storage (a URI) is not copied.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ray import tune

STATE_PATTERN = "experiment_state-*.json"  # Tune's state files
WHOLE_COPY = "experiment_state_whole.json"  # the last copy that parsed; not matched by STATE_PATTERN


def newest_state(experiment: str | Path) -> Path | None:
    """The newest of Tune's state files in the experiment folder (Tune's own choice: the largest
    name), or None."""
    return max(Path(experiment).glob(STATE_PATTERN), default=None)


def is_whole(path: Path) -> bool:
    """Whether the file at `path` can be read and parses as JSON."""
    try:
        json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return True


class KeepWholeState(tune.Callback):
    """Copies the experiment folder's newest state file to WHOLE_COPY whenever it changed and is
    whole; looks at the file's modification time after every step of Tune's loop."""

    def __init__(self, experiment: str):
        self.experiment = experiment
        self._copied: tuple | None = None  # (name, mtime_ns, size) of the file last copied

    def on_step_end(self, iteration, trials, **info):
        self.keep()

    def on_experiment_end(self, trials, **info):
        self.keep()

    def keep(self) -> None:
        if "://" in self.experiment:
            return
        newest = newest_state(self.experiment)
        try:
            stat = newest.stat() if newest else None
        except OSError:
            return
        if stat is None or (newest.name, stat.st_mtime_ns, stat.st_size) == self._copied:
            return
        try:
            data = newest.read_bytes()
            json.loads(data)
            temporary = Path(self.experiment) / f".{WHOLE_COPY}.tmp"
            temporary.write_bytes(data)
            os.replace(temporary, Path(self.experiment) / WHOLE_COPY)
        except (OSError, ValueError):  # cut, being rewritten, or the storage is full: try again next step
            return
        self._copied = (newest.name, stat.st_mtime_ns, stat.st_size)


def repair_state(experiment: str | Path) -> str | None:
    """Before a resume: when the newest state file in `experiment` is cut and WHOLE_COPY is
    whole, move the cut file to `<name>.cut` and put the copy in its place. Returns a line saying
    so, or None when there was nothing to repair (or no copy to repair it with)."""
    experiment = Path(experiment)
    newest = newest_state(experiment)
    copy = experiment / WHOLE_COPY
    if newest is None or is_whole(newest) or not is_whole(copy):
        return None
    os.replace(newest, newest.with_name(newest.name + ".cut"))
    newest.write_bytes(copy.read_bytes())
    return (f"{newest} was cut (written while the storage was full?): resuming from its last whole copy "
            f"({copy}); the cut file is kept as {newest.name}.cut")
