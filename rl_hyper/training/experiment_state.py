"""A whole copy of Tune's study state, so that a study whose state files were cut still resumes.

Tune keeps a study's state in three files in the experiment folder, rewritten together every few
seconds, each name ending in the run's session time:

- `experiment_state-<time>.json`: the trials, their configs and checkpoints (JSON);
- `basic-variant-state-<time>.json`: the search algorithm's counters (a pickle, despite the name);
- `callback-states-<time>.pkl`: the callbacks' state (a pickle).

A full disk (or a crash during the copy into the storage) can cut any of them, and Tune then
cannot resume the study at all. Here:

- `KeepWholeState`, a Tune callback in the driver, copies the newest file of each kind, as one
  set, into WHOLE_COPY whenever one of them changed and all of them are whole (a temporary file and
  a rename, so the copy itself is never cut); Tune never reads that file;
- `repair_state`, before a `--resume`, sets the newest files aside when one of them is cut
  (`<name>.cut`, or `<name>.newer` for a whole file newer than the copy) and writes the copied set
  in their place, so that Tune reads one consistent set.

The copy can be a little older than the cut files: a trial that checkpointed or finished after it
is then handed an older checkpoint by Tune, but the trainable restores from the newest whole
checkpoint in the trial's folder (training/checkpoints.py), so nothing is run twice or lost.
Cloud storage (a URI) is not copied.

Tune's state, cut or not, can also be older than the trial folders: a driver killed in the
seconds between a trial's start and Tune's next snapshot leaves the trial listed as pending
without a folder, or not listed at all (the search then makes it again on resume, with the same
id). Tune gives a trial whose folder name is already in the driver's staging folder (a resume on
the same Ray session) a second folder, the name with four random hex digits added, and the study
would have the trial twice, once cut short. A trial the state lists gets its folder written into
the state before the resume (`give_trials_their_folders`); a trial the search makes gets it from
`trial_dirname` (training/run.py).
"""

from __future__ import annotations

import json
import os
import pickle
import pickletools
from pathlib import Path

from ray import tune

STATE_FILES = {  # Tune's state files: name pattern -> how the file is encoded
    "experiment_state-*.json": "json",
    "basic-variant-state-*.json": "pickle",
    "callback-states-*.pkl": "pickle",
}
WHOLE_COPY = "tune_state_whole.pickle"  # {file name: bytes} of the last whole set; no Tune pattern matches it


def newest_state_files(experiment: str | Path) -> list[Path]:
    """The newest file of each kind in STATE_FILES present in the experiment folder (Tune's own
    choice: the largest name)."""
    newest = (max(Path(experiment).glob(pattern), default=None) for pattern in STATE_FILES)
    return [path for path in newest if path is not None]


def is_whole(name: str, data: bytes) -> bool:
    """Whether `data`, the content of Tune's state file `name`, is whole: it parses as JSON, or its
    pickle opcodes run to the final STOP (checked without building any object)."""
    encoding = next(encoding for pattern, encoding in STATE_FILES.items() if Path(name).match(pattern))
    try:
        if encoding == "json":
            json.loads(data)
        else:
            for _ in pickletools.genops(data):
                pass
    except ValueError:  # also json.JSONDecodeError and UnicodeDecodeError
        return False
    return True


def cut_files(experiment: str | Path) -> list[Path]:
    """The newest state files of the experiment folder that are cut or cannot be read."""
    cut = []
    for path in newest_state_files(experiment):
        try:
            whole = is_whole(path.name, path.read_bytes())
        except OSError:
            whole = False
        if not whole:
            cut.append(path)
    return cut


def read_whole_copy(experiment: str | Path) -> dict[str, bytes] | None:
    """The set of state files in the folder's WHOLE_COPY ({file name: content}), or None when
    there is no copy or it cannot be read."""
    try:
        copy = pickle.loads((Path(experiment) / WHOLE_COPY).read_bytes())
    except (OSError, EOFError, pickle.UnpicklingError, ValueError):
        return None
    return copy if isinstance(copy, dict) and copy else None


class KeepWholeState(tune.Callback):
    """Copies the experiment folder's newest state files, as one set, to WHOLE_COPY whenever one of
    them changed and all are whole; looks at the files after every step of Tune's loop."""

    def __init__(self, experiment: str):
        self.experiment = experiment
        self._copied: tuple | None = None  # (name, mtime_ns, size) of each file last copied

    def on_step_end(self, iteration, trials, **info):
        self.keep()

    def on_experiment_end(self, trials, **info):
        self.keep()

    def keep(self) -> None:
        if "://" in self.experiment:
            return
        files = newest_state_files(self.experiment)
        try:
            stamps = tuple((path.name, stat.st_mtime_ns, stat.st_size) for path, stat in
                           ((path, path.stat()) for path in files))
            if not files or stamps == self._copied:
                return
            contents = {path.name: path.read_bytes() for path in files}
            if not all(is_whole(name, data) for name, data in contents.items()):
                return  # cut or being rewritten: try again next step
            temporary = Path(self.experiment) / f".{WHOLE_COPY}.tmp"
            temporary.write_bytes(pickle.dumps(contents))
            os.replace(temporary, Path(self.experiment) / WHOLE_COPY)
        except OSError:  # a file went away, or the storage is full: try again next step
            return
        self._copied = stamps


def give_trials_their_folders(experiment: str | Path) -> str | None:
    """Before a resume (after `repair_state`): every trial that Tune's newest experiment state lists
    without a folder is given, in the state, the folder its `trial_dirname_creator` names (its
    `relative_logdir` and its storage context's `trial_dir_name`, as Tune sets them when it starts
    a trial). Tune would pick that name too, unless the driver's staging folder holds a folder of
    that name, and that can only be the trial's own (module docstring). Returns a line naming the
    trials' folders that are already in `experiment`, or None."""
    from ray import cloudpickle

    state_file = max(Path(experiment).glob("experiment_state-*.json"), default=None)
    if state_file is None:
        return None
    state = json.loads(state_file.read_text())
    named, found = 0, []
    for entry in state["trial_data"]:
        trial = json.loads(entry[0])
        folder = trial.get("custom_dirname")
        if trial["relative_logdir"] is None and folder:
            storage = cloudpickle.loads(bytes.fromhex(trial["storage"]["value"]))
            storage.trial_dir_name = folder
            trial["storage"]["value"] = cloudpickle.dumps(storage).hex()
            entry[0] = json.dumps({**trial, "relative_logdir": folder})
            named += 1
            if (Path(experiment) / folder).is_dir():
                found.append(folder)
    if named:
        temporary = state_file.with_name(f".{state_file.name}.tmp")
        temporary.write_text(json.dumps(state))
        os.replace(temporary, state_file)
    if not found:
        return None
    return (f"Tune's state listed {len(found)} started trial(s) without a folder (the driver ended before "
            f"its next snapshot); they continue in their folders: {', '.join(found)}")


def repair_state(experiment: str | Path) -> str | None:
    """Before a resume: when one of the newest state files in `experiment` is cut and WHOLE_COPY
    can be read, set the newest files aside (`<name>.cut` or `<name>.newer`) and write the copied
    set in their place. Returns a line saying so, or None when there was nothing to repair (or no
    copy to repair it with)."""
    experiment = Path(experiment)
    cut = cut_files(experiment)
    copy = read_whole_copy(experiment)
    if not cut or copy is None:
        return None
    for path in newest_state_files(experiment):
        if path in cut:
            os.replace(path, path.with_name(path.name + ".cut"))
        elif copy.get(path.name) != path.read_bytes():
            os.replace(path, path.with_name(path.name + ".newer"))
    for name, data in copy.items():
        (experiment / name).write_bytes(data)
    return (f"{', '.join(map(str, cut))} {'was' if len(cut) == 1 else 'were'} cut (written while the storage was "
            f"full?): resuming from the last whole copy of Tune's state ({experiment / WHOLE_COPY}); the cut "
            f"{'file is' if len(cut) == 1 else 'files are'} kept as <name>.cut")
