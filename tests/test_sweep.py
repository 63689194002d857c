"""Studies on Ray Tune: equal-compute expansion, a real sweep, and resume after a killed driver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

BUDGET = 1920  # two iterations of 16 envs x 60 steps


def write_study(directory: Path, name: str, methods: list[str], seeds: list[int]) -> Path:
    study = {"name": name, "env": "GridNavi", "methods": methods, "lr_grid": [1e-3], "seeds": seeds,
             "frames": BUDGET, "evaluation": {"interval": 1, "num_tasks": 4},
             "resources": {"max_concurrent": 1}, "storage": str(directory / "results"), "max_failures": 0}
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def trial_progress(experiment: Path) -> dict[tuple, pd.DataFrame]:
    out = {}
    for csv in experiment.glob("*/progress.csv"):
        if csv.stat().st_size:
            df = pd.read_csv(csv)
            out[(df["rl_hyper/method"].iloc[0], df["rl_hyper/seed"].iloc[0])] = df
    return out


def sweep(args: list[str], address: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rl_hyper", "sweep", *args, "--address", address],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            **kwargs)


@pytest.fixture(scope="module")
def address(ray_session):
    return ray_session.get_runtime_context().gcs_address


def test_dry_run_prints_every_trial_with_one_budget(tmp_path):
    study = write_study(tmp_path, "dry", ["rnn", "rnn_s", "rnn_hn"], [1, 2])
    proc = subprocess.run([sys.executable, "-m", "rl_hyper", "sweep", str(study), "--dry-run"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    rows = [line.split() for line in proc.stdout.splitlines() if line.strip()[:1].isdigit() and "trials" not in line]
    assert sorted((r[1], int(r[3])) for r in rows) == sorted((m, s) for m in ["rnn", "rnn_s", "rnn_hn"] for s in [1, 2])
    assert {r[4] for r in rows} == {f"{BUDGET:,}"}
    assert not (tmp_path / "results").exists()


def test_dry_run_calibrate_projects_core_hours_from_the_measured_speed(tmp_path, address):
    """--calibrate runs each method's trial briefly and projects hours = frames / frames/s over the
    study's trials; without --dry-run it is refused before Ray starts."""
    study = write_study(tmp_path, "cost", ["rnn", "rnn_hn"], [1, 2])
    spec = yaml.safe_load(study.read_text())
    study.write_text(yaml.safe_dump({**spec, "frames": 4_000_000, "lr_grid": [1e-3, 3e-4]}))
    alone = subprocess.run([sys.executable, "-m", "rl_hyper", "sweep", str(study), "--calibrate"],
                           capture_output=True, text=True, timeout=120)
    assert alone.returncode == 2 and "--calibrate goes with --dry-run" in alone.stderr

    proc = subprocess.run([sys.executable, "-m", "rl_hyper", "sweep", str(study), "--dry-run", "--calibrate",
                           "--address", address], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {line.split()[0]: [float(value.replace(",", "")) for value in line.split()[1:]]
            for line in proc.stdout.splitlines() if line.split()[:1] in (["rnn"], ["rnn_hn"])}
    assert set(rows) == {"rnn", "rnn_hn"}
    for frames_per_s, trials, hours, core_hours in rows.values():
        assert trials == 4  # 2 learning rates x 2 seeds
        # hours are printed to 0.01 (off by up to 0.005) and frames/s to 1 (off by up to 0.5, which
        # moves 4e6 / frames/s / 3600 by up to hours * 0.5 / (frames/s - 0.5): 0.0034 at 400 frames/s)
        assert hours == pytest.approx(4_000_000 / frames_per_s / 3600,
                                      abs=0.005 + hours * 0.5 / (frames_per_s - 0.5) + 1e-9)
        # one CPU per trial; core-hours are printed to 0.1 (off by up to 0.05), hours per trial to 0.01 (0.005)
        assert core_hours == pytest.approx(trials * hours * 1, abs=0.05 + trials * 0.005 + 1e-9)
    assert rows["rnn_hn"][0] < rows["rnn"][0]  # the hypernetwork's trial is the slower one
    # the total is printed to 0.1 (off by up to 0.05) and each method's part recomputed here from its
    # frames/s printed to 1 is off by up to part * 0.5 / (frames/s - 0.5), as the hours above
    speeds = [frames_per_s for frames_per_s, *_ in rows.values()]
    parts = [4 * 4_000_000 / frames_per_s / 3600 for frames_per_s in speeds]
    rounding = sum(part * 0.5 / (frames_per_s - 0.5) for part, frames_per_s in zip(parts, speeds))
    (line,) = [line for line in proc.stdout.splitlines() if line.startswith("projected cost of cost: ")]
    assert float(line.split()[4].replace(",", "")) == pytest.approx(sum(parts), abs=0.05 + rounding + 1e-9)
    assert not (tmp_path / "results").exists()


def test_sweep_runs_grid_at_equal_budget(tmp_path, address):
    study = write_study(tmp_path, "grid", ["rnn", "rnn_s"], [5])
    proc = sweep([str(study)], address)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    experiment = tmp_path / "results" / "grid"
    runs = trial_progress(experiment)
    assert set(runs) == {("rnn", 5), ("rnn_s", 5)}
    for df in runs.values():
        assert BUDGET <= df["rl_hyper/frames"].iloc[-1] < BUDGET + 960
    params = [json.loads(p.read_text()) for p in experiment.glob("*/params.json")]
    assert sorted(p["method"] for p in params) == ["rnn", "rnn_s"]
    assert {p["frames"] for p in params} == {BUDGET} and {p["lr"] for p in params} == {1e-3}
    manifest = json.loads((experiment / "manifest.json").read_text())
    assert manifest["versions"]["ray"] == "2.60.0" and set(manifest["trials"].values()) == {"done"}
    assert yaml.safe_load((experiment / "study.yaml").read_text())["frames"] == BUDGET


def test_resume_after_killed_driver_keeps_finished_trial(tmp_path, address):
    study = write_study(tmp_path, "resume", ["rnn"], [1, 2])
    experiment = tmp_path / "results" / "resume"
    proc = sweep([str(study)], address)
    deadline = time.time() + 300
    finished = {}
    while time.time() < deadline and not finished:
        finished = {key: df for key, df in trial_progress(experiment).items()
                    if df["rl_hyper/frames"].iloc[-1] >= BUDGET}
        time.sleep(0.5)
    assert finished, "no trial finished in time"
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    done_key = sorted(finished)[0]  # (both may have finished by the time the poll saw them)
    done_csv = next(p for p in experiment.glob("*/progress.csv")
                    if not pd.read_csv(p).empty and pd.read_csv(p)["rl_hyper/seed"].iloc[0] == done_key[1])
    snapshot = done_csv.read_bytes()

    resumed = sweep([str(study), "--resume"], address)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out
    assert "resuming" in out
    runs = trial_progress(experiment)
    assert set(runs) == {("rnn", 1), ("rnn", 2)}
    assert all(df["rl_hyper/frames"].iloc[-1] >= BUDGET for df in runs.values())
    assert done_csv.read_bytes() == snapshot  # the finished trial was neither lost nor re-run


def test_second_sweep_into_an_existing_study_asks_for_resume(tmp_path):
    study = write_study(tmp_path, "again", ["rnn"], [1])
    experiment = tmp_path / "results" / "again"
    experiment.mkdir(parents=True)
    (experiment / "experiment_state-2026-01-01_00-00-00.json").write_text("{}")
    proc = subprocess.run([sys.executable, "-m", "rl_hyper", "sweep", str(study)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "already holds this study: add --resume" in proc.stderr


def test_nan_loss_fails_the_trial_with_its_reason(tmp_path, address):
    """lr 1e38 blows the weights up to inf within the first update (Adam steps are about lr each; at
    1e30 the saturated network kept the loss finite and sampling failed first); 2 envs also exercise
    a minibatch that must hold at least one whole 61-step sequence."""
    path = write_study(tmp_path, "nan", ["rnn"], [1])
    study = yaml.safe_load(path.read_text())
    study.update(lr_grid=[1e38], max_failures=1, resources={"envs_per_runner": 2, "max_concurrent": 1})
    path.write_text(yaml.safe_dump(study))
    proc = sweep([str(path)], address)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 1, out
    assert "0/1 trials done" in out and "failed: rnn/lr=1e+38/seed=1" in out
    manifest = json.loads((tmp_path / "results" / "nan" / "manifest.json").read_text())
    (state,) = manifest["trials"].values()
    assert state.startswith("ERROR") and "non-finite" in state and "loss" in state
