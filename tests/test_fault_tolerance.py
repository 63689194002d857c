"""Faults during a study (issue 11): every test is one row of the README's fault table.

Tiny real studies (GridNavi, rnn, 960 frames per iteration) on the session's loopback Ray, each
driver a `rl-hyper sweep --address` subprocess that the test signals or kills, as a user or a
scheduler would.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import cloudpickle
import pytest
import yaml

from rl_hyper.study.spec import StudyError
from rl_hyper.study.sweep import check_resumable
from rl_hyper.training.checkpoints import checkpoint_result
from rl_hyper.training.experiment_state import (STATE_FILES, WHOLE_COPY, KeepWholeState, newest_state_files,
                                                read_whole_copy, repair_state)
from rl_hyper.training.progress_csv import logged_iterations

ITERATION = 960  # frames of one GridNavi iteration (16 envs x 60 steps)


def write_study(directory: Path, name: str, seeds: list[int], iterations: int, **fields) -> Path:
    study = {"name": name, "env": "GridNavi", "methods": ["rnn"], "lr_grid": [1e-3], "seeds": seeds,
             "frames": iterations * ITERATION, "evaluation": {"interval": 2, "num_tasks": 4},
             "resources": {"max_concurrent": 1}, "storage": str(directory / "results"), "max_failures": 0, **fields}
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def rl_hyper(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rl_hyper", *args], capture_output=True, text=True, timeout=600,
                          **kwargs)


def start_sweep(study: Path, address: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rl_hyper", "sweep", str(study), "--address", address, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def rows(experiment: Path) -> dict[str, list[list[str]]]:
    """Every trial folder's progress.csv as csv records (header first)."""
    return {path.parent.name: list(csv.reader(path.open(newline="")))
            for path in sorted(experiment.glob("*/progress.csv")) if path.stat().st_size}


def wait_for_rows(experiment: Path, count: int, trials: int = 1, timeout: float = 300.0) -> None:
    """Until `trials` trials have written `count` iterations each."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if sum(len(records) - 1 >= count for records in rows(experiment).values()) >= trials:
            return
        time.sleep(0.3)
    raise AssertionError(f"{trials} trial(s) did not write {count} iterations in {timeout:.0f} s")


def wait_for_an_unlogged_checkpoint(experiment: Path, timeout: float = 120.0) -> None:
    """Until a trial folder holds a checkpoint of an iteration its progress.csv lacks: the trial
    has written it and the driver has not yet taken its result. For trials that checkpoint every
    iteration from the start (checkpoint_00000k is iteration k + 1)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for progress in experiment.glob("*/progress.csv"):
            newest = max(progress.parent.glob("checkpoint_*"), default=None)
            if newest and int(newest.name.split("_")[1]) + 1 > max(logged_iterations(progress), default=0):
                return
        time.sleep(0.002)
    raise AssertionError(f"no trial wrote a checkpoint before its row in {timeout:.0f} s")


def without_checkpoints(run_metadata: str) -> str:
    """A trial's run metadata from Tune's experiment state (JSON), with no checkpoint recorded."""
    metadata = json.loads(run_metadata)
    manager = cloudpickle.loads(bytes.fromhex(metadata["checkpoint_manager"]["value"]))
    manager._latest_checkpoint_result, manager._checkpoint_results = None, []
    metadata["checkpoint_manager"]["value"] = cloudpickle.dumps(manager).hex()
    return json.dumps(metadata)


def iterations(records: list[list[str]]) -> list[int]:
    column = records[0].index("training_iteration")
    return [int(record[column]) for record in records[1:]]


def assert_whole(experiment: Path, count: int) -> None:
    """Every trial's progress.csv: one width, iterations 1..count once each."""
    for name, records in rows(experiment).items():
        assert {len(record) for record in records} == {len(records[0])}, f"{name}: rows of several widths"
        assert iterations(records) == list(range(1, count + 1)), f"{name}: {iterations(records)}"


def descendants(pid: int) -> dict[int, str]:
    """pid -> command line of every process below `pid` (from /proc)."""
    parents, commands = {}, {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                commands[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, IndexError, ValueError):  # gone meanwhile
                pass
    found, frontier = {}, {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier and child not in found}
        found.update({child: commands.get(child, "") for child in frontier})
    return found


@contextmanager
def ended_on_failure(proc: subprocess.Popen):
    """Kill `proc`, its process group and every process below it when the block fails."""
    try:
        yield proc
    except BaseException:
        below = descendants(proc.pid)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in below:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise


@pytest.fixture(scope="module")
def address(ray_session):
    return ray_session.get_runtime_context().gcs_address


def test_resume_with_nothing_stored_is_one_line_before_ray(tmp_path):
    study = write_study(tmp_path, "nothing", [1], 2)
    proc = rl_hyper("sweep", str(study), "--resume")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"rl-hyper sweep: error: nothing to resume at {tmp_path / 'results' / 'nothing'}: no study state there "
        "(start the study without --resume)"]
    assert "Ray" not in proc.stdout + proc.stderr  # (a started Ray prints its address)
    assert not (tmp_path / "results").exists()  # nothing written, not even the storage folder


def test_report_names_a_bad_row_and_leaves_out_a_cut_last_line(tmp_path):
    trial = tmp_path / "study" / "rnn_lr0.001_seed1_00000"
    trial.mkdir(parents=True)
    header = ["training_iteration", "rl_hyper/env", "rl_hyper/method", "rl_hyper/lr", "rl_hyper/seed",
              "rl_hyper/frames", "rl_hyper/train_trial_return", "rl_hyper/eval_trial_return"]
    lines = [",".join(header)] + [f"{i},GridNavi,rnn,0.001,1,{960 * i},-5.0,{-5.0 + i}" for i in (1, 2)]
    progress = trial / "progress.csv"
    progress.write_text("\n".join(lines) + "\n3,GridNavi,rnn,0.001,1,2880,-5.0,-5.")  # cut inside -5.175
    proc = rl_hyper("report", str(tmp_path / "study"))
    assert proc.returncode == 0, proc.stderr
    assert f"{progress}:4: incomplete last line (an interrupted write) left out" in proc.stderr
    evaluations = list(csv.DictReader((tmp_path / "study" / "report" / "evaluations.csv").open()))
    assert [row["frames"] for row in evaluations] == ["960", "1920"]  # the cut row (-5.175 read as -5.) is not used

    progress.write_text("\n".join(lines[:2] + ["2,GridNavi,rnn,0.001,1,1920,-5.0,-3.0,7,8"] + lines[2:]) + "\n")
    proc = rl_hyper("report", str(tmp_path / "study"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"rl-hyper report: error: {progress}:3: 10 fields, the header has 8"


def test_whole_copy_of_tunes_state_keeps_whole_sets_only_and_repairs_any_cut_file(tmp_path):
    """Tune's three state files are copied as one set while all are whole; a cut JSON or pickle
    stops the copy; a repair sets the newest files aside and writes the copied set."""
    keeper = KeepWholeState(str(tmp_path))
    older = tmp_path / "experiment_state-2026-01-01_00-00-00.json"
    newer = tmp_path / "experiment_state-2026-01-02_00-00-00.json"
    search = tmp_path / "basic-variant-state-2026-01-02_00-00-00.json"  # a pickle, despite its name
    callbacks = tmp_path / "callback-states-2026-01-02_00-00-00.pkl"
    older.write_text(json.dumps({"trials": 1}))
    keeper.keep()
    assert pickle.loads((tmp_path / WHOLE_COPY).read_bytes()) == {older.name: older.read_bytes()}
    newer.write_text(json.dumps({"trials": 2, "pad": "x" * 100}))  # Tune's next set: the newest of each kind
    search.write_bytes(pickle.dumps({"_total_samples": 2, "pad": list(range(50))}))
    callbacks.write_bytes(pickle.dumps({"callback_states": [None] * 7}))
    keeper.keep()
    whole = {path.name: path.read_bytes() for path in (newer, search, callbacks)}
    assert pickle.loads((tmp_path / WHOLE_COPY).read_bytes()) == whole

    search.write_bytes(whole[search.name][:-1])  # the search state cut: the copy keeps the last whole set
    newer.write_text(json.dumps({"trials": 3}))
    keeper.keep()
    assert pickle.loads((tmp_path / WHOLE_COPY).read_bytes()) == whole
    assert repair_state(tmp_path) == (
        f"{search} was cut (written while the storage was full?): resuming from the last whole copy of Tune's "
        f"state ({tmp_path / WHOLE_COPY}); the cut file is kept as <name>.cut")
    assert {path.name: path.read_bytes() for path in (newer, search, callbacks)} == whole
    assert (tmp_path / f"{search.name}.cut").read_bytes() == whole[search.name][:-1]
    assert json.loads((tmp_path / f"{newer.name}.newer").read_text()) == {"trials": 3}  # whole, newer than the copy
    assert not (tmp_path / f"{callbacks.name}.newer").exists()  # the same as the copy: left in place
    assert repair_state(tmp_path) is None  # whole now: nothing to do

    newer.write_bytes(whole[newer.name][:40])
    callbacks.write_bytes(whole[callbacks.name][:10])
    assert repair_state(tmp_path).startswith(f"{newer}, {callbacks} were cut")
    (tmp_path / WHOLE_COPY).unlink()
    newer.write_bytes(whole[newer.name][:40])
    assert repair_state(tmp_path) is None and newer.read_bytes() == whole[newer.name][:40]  # no copy: left as it is
    (tmp_path / "tuner.pkl").touch()  # what Tune looks for to call a folder resumable
    with pytest.raises(StudyError, match=f"^{newer}: cut or unreadable .* there is no whole copy of Tune's state"):
        check_resumable(str(tmp_path))


def test_signals_lock_and_kill_leave_a_study_that_resumes_whole(tmp_path, address):
    """SIGTERM stops at a checkpoint (exit 143, manifest `stopped at N frames`, the resume command);
    a second driver is refused while one runs; a SIGKILLed driver's lock is taken over; after both
    resumes progress.csv has one width and every iteration once, and the report runs."""
    study = write_study(tmp_path, "faults", [1, 2], 24)  # about 1 s an iteration: running while checked
    experiment = tmp_path / "results" / "faults"
    with ended_on_failure(start_sweep(study, address)) as driver:
        wait_for_rows(experiment, 3)
        holder = json.loads((experiment / "driver.lock").read_text())
        assert holder["pid"] == driver.pid
        for args in ([], ["--resume"]):  # a second sweep, a resume: refused, naming the first driver
            second = rl_hyper("sweep", str(study), "--address", address, *args)
            assert second.returncode == 2
            assert f"study faults is being run by pid {driver.pid} on {holder['host']} since {holder['since']}" \
                in second.stderr
        driver.send_signal(signal.SIGTERM)
        out, _ = driver.communicate(timeout=300)
    assert driver.returncode == 143, out
    assert f"continue with: rl-hyper sweep {experiment}/study.yaml --resume --storage {tmp_path / 'results'}" in out
    manifest = json.loads((experiment / "manifest.json").read_text())
    states = manifest["trials"]
    assert manifest["stopped_by"] == "SIGTERM" and states["rnn/lr=0.001/seed=2"] == "not started"
    stopped = states["rnn/lr=0.001/seed=1"]
    assert stopped.startswith("stopped at ") and 3 * ITERATION <= int(stopped.split()[2]) < 24 * ITERATION
    (records,) = rows(experiment).values()
    assert int(stopped.split()[2]) == int(records[-1][records[0].index("rl_hyper/frames")])  # checkpoint = last row

    with ended_on_failure(start_sweep(study, address, "--resume")) as resumed:
        wait_for_rows(experiment, 2, trials=2)  # the second trial is under way, without a checkpoint yet
        os.killpg(resumed.pid, signal.SIGKILL)
        resumed.wait(timeout=60)
    assert (experiment / "driver.lock").exists()  # left behind by the killed driver
    assert (experiment / WHOLE_COPY).is_file()
    states = newest_state_files(experiment)  # Tune's experiment state and its search state (no callback has state)
    assert [pattern for pattern in STATE_FILES if any(state.match(pattern) for state in states)] == [
        "experiment_state-*.json", "basic-variant-state-*.json"]
    for state in states:
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])  # cut, as a full disk leaves it

    final = rl_hyper("sweep", str(study), "--address", address, "--resume")
    assert final.returncode == 0, final.stdout + final.stderr
    assert f"{', '.join(map(str, states))} were cut (written while the storage was full?)" in final.stderr
    assert all((experiment / f"{state.name}.cut").is_file() for state in states)
    assert set(json.loads((experiment / "manifest.json").read_text())["trials"].values()) == {"done"}
    assert_whole(experiment, 24)
    assert not (experiment / "driver.lock").exists()
    report = rl_hyper("report", str(experiment))
    assert report.returncode == 0, report.stderr


def test_a_final_checkpoint_the_driver_never_logged_gives_its_row_back_on_resume(tmp_path, address, ray_session):
    """The driver can die after a trial's final checkpoint reached the storage but before it logged
    that iteration (a SIGKILL in that window failed test_sweep's killed-driver test once). Made
    here without timing: a finished study loses its last progress.csv row and Tune's state says
    the trial still runs. The resume gives the row back from the checkpoint, without training."""
    study = write_study(tmp_path, "unlogged", [1], 2)
    experiment = tmp_path / "results" / "unlogged"
    first = rl_hyper("sweep", str(study), "--address", address)
    assert first.returncode == 0, first.stdout + first.stderr
    (finished,) = rows(experiment).values()
    assert iterations(finished) == [1, 2]
    (progress,) = experiment.glob("*/progress.csv")
    # the driver writes progress.csv in the Ray session's folder and copies it into the storage:
    # without the last row in both, as the killed driver leaves them
    session = Path(ray_session._private.worker._global_node.get_session_dir_path())
    for copy in [progress, *session.glob(f"artifacts/*/unlogged/driver_artifacts/{progress.parent.name}/progress.csv")]:
        copy.write_text("".join(copy.read_text().splitlines(keepends=True)[:-1]))
    state_file = max(experiment.glob("experiment_state-*.json"))
    state = json.loads(state_file.read_text())
    for entry in state["trial_data"]:
        trial = json.loads(entry[0])
        entry[0] = json.dumps({**trial, "status": "RUNNING"})
    state_file.write_text(json.dumps(state))
    checkpoints = sorted(path.name for path in progress.parent.glob("checkpoint_*"))

    resumed = rl_hyper("sweep", str(study), "--address", address, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    (records,) = rows(experiment).values()
    assert iterations(records) == [1, 2]
    for column in ("rl_hyper/frames", "rl_hyper/train_trial_return", "rl_hyper/eval_trial_return"):
        assert records[-1][records[0].index(column)] == finished[-1][finished[0].index(column)], column
    assert sorted(path.name for path in progress.parent.glob("checkpoint_*")) == checkpoints  # nothing trained
    assert json.loads((experiment / "manifest.json").read_text())["trials"] == {"rnn/lr=0.001/seed=1": "done"}


def test_a_checkpoint_tunes_state_never_recorded_keeps_the_stored_rows_on_resume(tmp_path, address, ray_session):
    """The driver can stop after a trial wrote checkpoints but before Tune's experiment state
    recorded them (test_damaged_checkpoints_... lost a trial's first rows that way once in CI).
    The trial then continues from the checkpoints in its folder while Tune, seeing none, does not
    fetch the stored progress.csv. Made here without timing: a finished study's state forgets the
    trial's checkpoints and says it still runs, its newest checkpoint is gone and the driver's
    staging copy of progress.csv too (a new Ray session has none)."""
    study = write_study(tmp_path, "unrecorded", [1], 3, checkpoint_period_s=0)
    experiment = tmp_path / "results" / "unrecorded"
    first = rl_hyper("sweep", str(study), "--address", address)
    assert first.returncode == 0, first.stdout + first.stderr
    (finished,) = rows(experiment).values()
    assert iterations(finished) == [1, 2, 3]
    (progress,) = experiment.glob("*/progress.csv")
    shutil.rmtree(max(progress.parent.glob("checkpoint_*")))  # continues from iteration 2's checkpoint
    session = Path(ray_session._private.worker._global_node.get_session_dir_path())
    for staged in session.glob(f"artifacts/*/unrecorded/driver_artifacts/{progress.parent.name}/progress.csv"):
        staged.unlink()
    state_file = max(experiment.glob("experiment_state-*.json"))
    state = json.loads(state_file.read_text())
    for entry in state["trial_data"]:
        entry[0] = json.dumps({**json.loads(entry[0]), "status": "RUNNING"})
        entry[1] = without_checkpoints(entry[1])
    state_file.write_text(json.dumps(state))

    resumed = rl_hyper("sweep", str(study), "--address", address, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    (records,) = rows(experiment).values()
    assert iterations(records) == [1, 2, 3]
    frames = finished[0].index("rl_hyper/frames")
    assert [row[frames] for row in records[1:3]] == [row[frames] for row in finished[1:3]]  # the stored rows


def test_a_trial_tunes_state_lists_without_a_folder_keeps_its_folder_on_resume(tmp_path, address):
    """A driver killed between a trial's start and Tune's next snapshot leaves the trial in Tune's
    state as pending, without a folder. Made here without timing: a finished study's second trial
    is set back to that. The resume gives the trial its folder back, not a second one beside it."""
    study = write_study(tmp_path, "unlisted", [1, 2], 2, checkpoint_period_s=0)
    experiment = tmp_path / "results" / "unlisted"
    first = rl_hyper("sweep", str(study), "--address", address)
    assert first.returncode == 0, first.stdout + first.stderr
    folders = sorted(experiment.glob("rnn_*"))
    assert len(folders) == 2
    state_file = max(experiment.glob("experiment_state-*.json"))
    state = json.loads(state_file.read_text())
    (entry,) = [entry for entry in state["trial_data"] if json.loads(entry[0])["evaluated_params"]["seed"] == 2]
    trial = json.loads(entry[0])
    storage = cloudpickle.loads(bytes.fromhex(trial["storage"]["value"]))
    storage.trial_dir_name = None
    trial["storage"]["value"] = cloudpickle.dumps(storage).hex()
    entry[0] = json.dumps({**trial, "status": "PENDING", "relative_logdir": None})
    entry[1] = without_checkpoints(entry[1])
    state_file.write_text(json.dumps(state))

    resumed = rl_hyper("sweep", str(study), "--address", address, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"they continue in their folders: {folders[1].name}" in resumed.stderr
    assert sorted(experiment.glob("rnn_*")) == folders
    assert set(json.loads((experiment / "manifest.json").read_text())["trials"].values()) == {"done"}
    assert_whole(experiment, 2)


def test_a_trial_made_after_tunes_last_state_keeps_its_folder_on_resume(tmp_path, address):
    """A driver killed after the search made a trial but before Tune's next snapshot leaves a state
    without the trial (so does a resume from an older whole copy: the signals test above failed
    twice so, the resume gave the second trial a second folder); the resume makes it again, with
    the same id. Made here without timing: Tune's state files are put back to a copy taken while
    only the first trial existed. The second trial continues in its folder, not in a second one."""
    study = write_study(tmp_path, "late", [1, 2], 12)
    experiment = tmp_path / "results" / "late"
    with ended_on_failure(start_sweep(study, address)) as driver:
        wait_for_rows(experiment, 2)  # one trial at a time: the second is made when the first ends, 10 s on
        early = read_whole_copy(experiment)
        wait_for_rows(experiment, 2, trials=2)
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=60)
    (state,) = [json.loads(data) for name, data in early.items() if name.startswith("experiment_state-")]
    assert len(state["trial_data"]) == 1
    for name, data in early.items():
        (experiment / name).write_bytes(data)
    folders = sorted(experiment.glob("rnn_*"))
    assert len(folders) == 2

    resumed = rl_hyper("sweep", str(study), "--address", address, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert sorted(experiment.glob("rnn_*")) == folders
    assert set(json.loads((experiment / "manifest.json").read_text())["trials"].values()) == {"done"}
    assert_whole(experiment, 12)


def test_damaged_checkpoints_fall_back_or_fail_never_fresh_weights(tmp_path, address):
    """SIGINT while a trial's periodic checkpoint is on its way to the driver: each trial still
    stops at its stop checkpoint, logged and kept by Tune. Latest checkpoint without its learner
    state: the trial continues from the one before and says so (console and manifest). Every
    checkpoint cut: the trial fails naming them."""
    study = write_study(tmp_path, "damaged", [1, 2], 12, checkpoint_period_s=0,
                        resources={"max_concurrent": 2})
    experiment = tmp_path / "results" / "damaged"
    with ended_on_failure(start_sweep(study, address)) as driver:
        wait_for_rows(experiment, 3, trials=2)
        wait_for_an_unlogged_checkpoint(experiment)
        driver.send_signal(signal.SIGINT)
        out, _ = driver.communicate(timeout=300)
    assert driver.returncode == 130, out
    trials = {json.loads((folder / "params.json").read_text())["seed"]: folder
              for folder in experiment.glob("rnn_*")}
    for folder in trials.values():  # each stopped at a checkpoint the driver logged, not one after it
        kept = sorted(folder.glob("checkpoint_*"))
        assert len(kept) == 2, kept
        assert checkpoint_result(kept[-1])["training_iteration"] == max(logged_iterations(folder / "progress.csv"))
    first = sorted(trials[1].glob("checkpoint_*"))
    shutil.rmtree(first[-1] / "learner_group")
    for checkpoint in trials[2].glob("checkpoint_*"):
        (checkpoint / "algorithm_state.pkl").write_bytes(b"")

    resumed = rl_hyper("sweep", str(study), "--address", address, "--resume")
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 1, output
    missing = first[-1] / "learner_group" / "class_and_ctor_args.pkl"
    assert f"checkpoint {first[-1].name} skipped: {missing} is missing" in output
    manifest = json.loads((experiment / "manifest.json").read_text())
    assert manifest["trials"]["rnn/lr=0.001/seed=1"] == "done"
    assert str(missing) in manifest["restore_notes"]["rnn lr=0.001 seed=1"]
    failed = manifest["trials"]["rnn/lr=0.001/seed=2"]
    assert failed.startswith("ERROR") and "no usable checkpoint" in failed and "algorithm_state.pkl has 0 bytes" in failed
    records = rows(experiment)[trials[1].name]
    assert iterations(records) == list(range(1, 13))


def test_a_killed_env_runner_is_restarted_not_taken_for_divergence(tmp_path):
    """SIGKILL of `train`'s env runner: RLlib restarts it, the iterations without samples are no
    NaN-loss failure, the trial finishes and counts the restart (env_runner_restarts)."""
    command = ["train", "--method", "rnn", "--frames", str(24 * ITERATION), "--num-env-runners", "1",
               "--eval-interval", "0", "--output", str(tmp_path), "--name", "runner"]
    train = subprocess.Popen([sys.executable, "-m", "rl_hyper", *command], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    experiment = tmp_path / "runner"
    with ended_on_failure(train):
        wait_for_rows(experiment, 2)
        (runner,) = [pid for pid, line in descendants(train.pid).items()
                     if line.startswith("ray::SingleAgentEnvRunner")]
        os.kill(runner, signal.SIGKILL)
        out, _ = train.communicate(timeout=600)
    assert train.returncode == 0, out
    assert "non-finite" not in out
    ((name, records),) = rows(experiment).items()
    last = dict(zip(records[0], records[-1]))
    assert int(last["rl_hyper/frames"]) >= 24 * ITERATION and int(last["rl_hyper/env_runner_restarts"]) == 1


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 6 MB tmpfs (one GridNavi checkpoint is about 3.8 MB) at tmp_path/mnt, unmounted after."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_is_one_line_naming_the_folder_and_errno(tmp_path, address, small_tmpfs):
    study = write_study(tmp_path, "full", [1], 6, checkpoint_period_s=0, max_failures=1,
                        storage=str(small_tmpfs / "results"))
    experiment = small_tmpfs / "results" / "full"
    proc = rl_hyper("sweep", str(study), "--address", address)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"rl-hyper sweep: error: storage trouble at {experiment}: No space left on device (errno 28, ENOSPC); once "
        f"it is fixed, continue with: rl-hyper sweep {experiment}/study.yaml --resume --storage {experiment.parent}")
    assert rl_hyper("report", str(experiment), "--out", str(tmp_path / "report")).returncode == 0  # still readable

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_tmpfs)], check=True)
    resumed = rl_hyper("sweep", str(study), "--address", address, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr  # a cut experiment state is repaired
    assert_whole(experiment, 6)


@pytest.fixture
def bind_mount(tmp_path):
    """(source, mount): tmp_path/disk bind-mounted at tmp_path/mnt, unmounted after (with a
    read-only bind mount the test stacks on top of it, if still there)."""
    source, mount = tmp_path / "disk", tmp_path / "mnt"
    source.mkdir()
    mount.mkdir()
    made = subprocess.run(["mount", "--bind", str(source), str(mount)], capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"cannot bind-mount here (needs root): {made.stderr.strip()}")
    yield source, mount
    while subprocess.run(["mountpoint", "-q", str(mount)]).returncode == 0:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_folder_made_read_only_mid_run_is_one_line_and_resumes_once_writable(tmp_path, address, bind_mount):
    """The results folder turns read-only under a running study (a read-only bind mount of the
    same folder stacked on top: files already open stay writable, as after a remount that waits
    for them): one line naming the folder and EROFS; once writable again the study resumes whole."""
    source, mount = bind_mount
    study = write_study(tmp_path, "readonly", [1], 8, checkpoint_period_s=0, max_failures=1,
                        storage=str(mount / "results"))
    experiment = mount / "results" / "readonly"
    with ended_on_failure(start_sweep(study, address)) as driver:
        wait_for_rows(experiment, 2)
        subprocess.run(["mount", "--bind", "-o", "ro", str(source), str(mount)], check=True)
        out, _ = driver.communicate(timeout=300)
    assert driver.returncode == 1, out
    assert out.strip().splitlines()[-1] == (
        f"rl-hyper sweep: error: storage trouble at {experiment}: Read-only file system (errno 30, EROFS); once "
        f"it is fixed, continue with: rl-hyper sweep {experiment}/study.yaml --resume --storage {experiment.parent}")
    assert rl_hyper("report", str(experiment), "--out", str(tmp_path / "report")).returncode == 0  # still readable

    subprocess.run(["umount", str(mount)], check=True)  # the read-only layer: writable again
    resumed = rl_hyper("sweep", str(study), "--address", address, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_whole(experiment, 8)
