"""Storage trouble (a full disk, a read-only or vanished folder) as one clear line, not a traceback.

When the results folder cannot be written, Tune's trials fail at their next checkpoint, Tune
leaves 0-byte error files that its own result reader then fails on (EOFError), and writing the
manifest fails: a run ends in a traceback that names none of it. Here:

- `StorageWatch`, a Tune callback, probes the storage whenever a trial fails and, when the probe
  fails, ends Tune's loop (as a second Ctrl-C does) instead of retrying trials that cannot save;
- `storage_guard`, around a run, turns whatever error the run ends with into one StorageError
  line naming the folder and the errno when the probe fails, e.g.

      storage trouble at /data/results/quickstart: No space left on device (errno 28, ENOSPC)

What a run wrote before stays as it was: finished trials, their checkpoints and progress.csv.
The probe writes PROBE_BYTES to a file in the folder, syncs and deletes it; cloud storage (a URI)
is not probed.
"""

from __future__ import annotations

import errno
import os
import pickle
from contextlib import contextmanager
from pathlib import Path

from ray import tune

PROBE_FILE = ".rl_hyper_storage_probe"
PROBE_BYTES = 1 << 20  # room for at least a progress row and a small file


class StorageError(RuntimeError):
    """The results folder cannot be written; the message is one line (folder, reason, errno)."""


def storage_problem(directory: str) -> StorageError | None:
    """A StorageError when PROBE_BYTES cannot be written and synced into `directory`, else None."""
    if "://" in directory:
        return None
    path = Path(directory) / PROBE_FILE
    try:
        with path.open("wb") as stream:
            stream.write(bytes(PROBE_BYTES))
            stream.flush()
            os.fsync(stream.fileno())
    except OSError as error:
        name = errno.errorcode.get(error.errno, "?")
        return StorageError(f"storage trouble at {directory}: {error.strerror} (errno {error.errno}, {name})")
    finally:
        try:
            path.unlink(missing_ok=True)
        except OSError:  # read-only: nothing was written either
            pass
    return None


class StorageWatch(tune.Callback):
    """Ends Tune's loop when a trial fails and the storage under `directory` cannot be written."""

    def __init__(self, directory: str):
        self.directory = directory

    def on_trial_error(self, iteration, trials, trial, **info):
        from rl_hyper.training.stopping import end_tune_loop

        if storage_problem(self.directory) is not None:
            end_tune_loop()


@contextmanager
def storage_guard(directory: str):
    """Around a run writing into `directory`: an error it ends with (or none) becomes the
    one-line StorageError when the storage cannot be written."""
    try:
        yield
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as error:
        problem = storage_problem(directory)
        if problem is not None:
            raise problem from error
        raise
    problem = storage_problem(directory)
    if problem is not None:
        raise problem
