"""progress.csv that survives restarts: one header for a trial's whole life, no repeated iterations.

Tune's own CSV logger takes its columns from the first result it sees in a driver process and,
when it finds the file already there (a `--resume`, a retry after a failure), appends rows with
that result's columns under the old header: a resumed trial's file then has rows of two widths.
And a trial continues from its last checkpoint, so the iterations it ran after that checkpoint
are run (and written) again.

`ProgressCSVLogger` replaces it (Tune adds its default CSV logger only when no subclass of it is
among the callbacks):

- the stored file is fetched whenever the staging folder has no copy, not only when Tune's
  experiment state records a checkpoint for the trial;
- the header is fixed when a trial's file is created, from the keys of its first result; a
  later result writes exactly those columns (a key that first appears later is not written, one
  that is missing is left empty);
- at the first result after a trial (re)starts, the rows of iterations from that result's
  `training_iteration` on are dropped (they belong to the run that was interrupted), and so is
  a last line cut by a crash; the file is rewritten through a temporary file and a rename, so a
  crash during the rewrite leaves the old file.

Rows end with "\\n"; a line without it is an incomplete write (see study/analysis.py, which
reads these files and checks every row).
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from ray.air.constants import EXPR_PROGRESS_FILE, TRAINING_ITERATION
from ray.tune.logger import CSVLoggerCallback
from ray.tune.utils import flatten_dict


def flat_result(result: dict) -> dict:
    """A result as one row: nested keys joined with "/" (Tune's column names), without `config`."""
    return flatten_dict({key: value for key, value in result.items() if key != "config"}, delimiter="/")


def kept_rows(text: str, before_iteration: float) -> tuple[list[str], list[list[str]]]:
    """The header and the complete rows of a progress.csv's `text` whose training_iteration is
    below `before_iteration` (an incomplete last line, without its newline, is left out)."""
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    records = list(csv.reader(io.StringIO(text)))
    if not records:
        return [], []
    header, rows = records[0], records[1:]
    column = header.index(TRAINING_ITERATION) if TRAINING_ITERATION in header else None
    kept = [row for row in rows if len(row) == len(header)
            and (column is None or int(float(row[column])) < before_iteration)]
    return header, kept


def logged_iterations(path: Path) -> set[int]:
    """The training_iteration of every complete row of the progress.csv at `path` (none if it is
    missing or unreadable, as on cloud storage)."""
    try:
        header, rows = kept_rows(path.read_text(), before_iteration=math.inf)
    except OSError:
        return set()
    if TRAINING_ITERATION not in header:
        return set()
    column = header.index(TRAINING_ITERATION)
    return {int(float(row[column])) for row in rows}


class ProgressCSVLogger(CSVLoggerCallback):
    """Tune's CSV logger with a fixed header and no repeated iterations (module docstring)."""

    def _restore_from_remote(self, file_name: str, trial) -> None:
        """Fetch the stored `file_name` into the trial's staging folder unless a copy is there.

        Tune fetches it only when its experiment state records a checkpoint for the trial. On
        local storage a trial continues from the checkpoints in its folder even when the state,
        written before they were, records none (training/run.py `_trial_folder`); without the
        stored rows the new file would then replace them in the storage."""
        import pyarrow.fs

        local_file = Path(trial.local_path, file_name)
        if local_file.exists():
            return
        try:
            pyarrow.fs.copy_files(Path(trial.storage.trial_fs_path, file_name).as_posix(), local_file.as_posix(),
                                  source_filesystem=trial.storage.storage_filesystem)
        except FileNotFoundError:
            pass  # a trial's first start: nothing stored yet

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        if trial not in self._trial_files:
            self._setup_trial(trial)  # Tune's: fetches the file from remote storage, opens it to append
        row = flat_result(result)
        if self._trial_csv[trial] is None:  # the first result since the trial (re)started
            self._trial_files[trial].close()
            path = Path(trial.local_path, EXPR_PROGRESS_FILE)
            header = self._start_file(path, row) if self._trial_continue[trial] else []
            self._trial_files[trial] = path.open("a", newline="")
            writer = csv.DictWriter(self._trial_files[trial], header or list(row), restval="",
                                    extrasaction="ignore", lineterminator="\n")
            if not header:
                writer.writeheader()
            self._trial_csv[trial] = writer
        self._trial_csv[trial].writerow(row)
        self._trial_files[trial].flush()

    @staticmethod
    def _start_file(path: Path, row: dict) -> list[str]:
        """Rewrite `path` without the rows `row` supersedes; returns its header ([] if it had none)."""
        header, rows = kept_rows(path.read_text(), int(row.get(TRAINING_ITERATION, 0)))
        if not header:
            path.unlink()
            return []
        temporary = path.with_name(f".{path.name}.tmp")
        with temporary.open("w", newline="") as stream:
            writer = csv.writer(stream, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
        os.replace(temporary, path)
        return header
