"""A study submitted as a Ray job to a real two-node cluster on this machine, token auth on.

The cluster is the `cluster` fixture of tests/conftest.py: a head and a second node on 127.0.0.2
and 127.0.0.3, token auth on, torn down by its processes' marker (never `ray stop`). Everything
that talks to the cluster (`rl-hyper submit`, the job and state APIs, `rl-hyper sweep --address`)
runs in a subprocess with the cluster's token in its environment, so this test process never
loads a Ray token of its own. The nodes are told apart by their Ray node ids.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from conftest import HEAD_IP, WORKER_IP, marked_pids

REPO = Path(__file__).resolve().parents[1]
BUDGET = 1920  # two iterations of 16 envs x 60 steps
JOB_TIMEOUT_S = 480
MAX_UPLOAD_BYTES = 5_000_000


def write_study(directory: Path, name: str, **overrides) -> Path:
    study = {"name": name, "env": "GridNavi", "methods": ["rnn", "rnn_s"], "lr_grid": [1e-3], "seeds": [1],
             "frames": BUDGET, "evaluation": {"interval": 1, "num_tasks": 4},
             "resources": {"max_concurrent": 2}, "storage": str(directory / "unused"), "max_failures": 0}
    study.update(overrides)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_study_job_runs_trials_on_both_nodes(cluster, tmp_path):
    storage = tmp_path / "shared"  # both nodes are this machine: a local absolute path is shared storage
    # The study file must travel in the uploaded working dir (the repo root): a scratch dir in tests/.
    scratch = Path(tempfile.mkdtemp(prefix=".cluster_job_", dir=REPO / "tests"))
    try:
        study = write_study(scratch, "cluster_job")
        submitted = subprocess.run(
            [sys.executable, "-m", "rl_hyper", "submit", str(study.relative_to(REPO)),
             "--address", cluster.dashboard_url, "--storage", str(storage)],
            cwd=REPO, env=cluster.env, capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    submission_id = re.search(r"as job (\S+)", submitted.stdout).group(1)

    waited = cluster.client("job", cluster.dashboard_url, submission_id, str(JOB_TIMEOUT_S),
                            timeout=JOB_TIMEOUT_S + 120)
    assert waited.returncode == 0, waited.stderr[-5000:]
    job = json.loads(waited.stdout)
    assert job["status"] == "SUCCEEDED", f"job {job['status']}: {job['message']}\n--- job logs ---\n{job['logs']}"

    # results landed in the storage given on the command line
    experiment = storage / "cluster_job"
    manifest = json.loads((experiment / "manifest.json").read_text())
    assert set(manifest["trials"].values()) == {"done"} and len(manifest["trials"]) == 2
    trial_dirs = sorted(path.parent for path in experiment.glob("*/progress.csv"))
    assert len(trial_dirs) == 2
    methods = set()
    for trial in trial_dirs:
        progress = pd.read_csv(trial / "progress.csv")
        assert BUDGET <= progress["rl_hyper/frames"].iloc[-1] < BUDGET + 960
        methods.add(progress["rl_hyper/method"].iloc[0])
    assert methods == {"rnn", "rnn_s"}

    # the trials ran on both nodes: each trial's pid (from its result.json) is one of the job's
    # actors, whose node id the state API knows; one CPU per node and one per trial force the spread
    node_of_pid = {actor["pid"]: actor["node_id"] for actor in job["actors"]}
    trial_nodes = []
    for trial in trial_dirs:
        last = json.loads((trial / "result.json").read_text().splitlines()[-1])
        assert last["pid"] in node_of_pid, (last["pid"], job["actors"])
        trial_nodes.append(node_of_pid[last["pid"]])
    assert sorted(trial_nodes) == sorted(cluster.node_ids.values()), (trial_nodes, cluster.node_ids)
    assert job["driver_node_id"] == cluster.node_ids["head"]

    # the working dir upload stayed small and left out what it must
    packages = [path for path in (cluster.temp_root / "head").glob(
        "session_latest/runtime_resources/working_dir_files/_ray_pkg_*") if path.is_dir()]
    assert len(packages) == 1, packages
    files = [path for path in packages[0].rglob("*") if path.is_file()]
    assert sum(path.stat().st_size for path in files) < MAX_UPLOAD_BYTES
    top = {path.relative_to(packages[0]).parts[0] for path in files}
    assert "rl_hyper" in top and not top & {".venv", ".git", "results", "rl_hyper.egg-info"}, top
    assert not (packages[0] / "benchmarks" / "output").exists()


def test_gpu_study_fails_fast_on_a_cluster_without_gpus(cluster, tmp_path):
    study = write_study(tmp_path, "needs_gpu", resources={"max_concurrent": 2, "num_gpus_per_learner": 1})
    begin = time.time()
    proc = subprocess.run([sys.executable, "-m", "rl_hyper", "sweep", str(study), "--address", cluster.gcs_address,
                           "--storage", str(tmp_path / "results")],
                          env=cluster.env, capture_output=True, text=True, timeout=120)
    elapsed = time.time() - begin
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("rl-hyper sweep: error:")]
    assert len(errors) == 1 and "GPU" in errors[0], proc.stderr
    assert elapsed < 60, f"took {elapsed:.0f} s"
    assert not (tmp_path / "results" / "needs_gpu").exists()  # failed before Tune started


def node_processes(cluster, node: str) -> dict[int, str]:
    """pid -> command line of every process of this cluster's `node` ("head" or "worker"): the
    processes with the cluster's marker whose command line or ancestry names the node's temp dir."""
    temp_dir = str(cluster.temp_root / node)
    found = {}
    for pid in marked_pids(cluster.marker):
        try:
            command = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if temp_dir in command:
            found[pid] = command
    return found


def test_losing_a_node_retries_its_trial_on_the_other_node_from_its_checkpoint(cluster, tmp_path):
    """Kill the second node's raylet while a trial runs there. Runs last in this module: the
    cluster keeps one node from here on."""
    from test_fault_tolerance import ITERATION, assert_whole, ended_on_failure, rows, wait_for_rows

    iterations = 8
    study = write_study(tmp_path, "node_loss", methods=["rnn"], seeds=[1, 2], frames=iterations * ITERATION,
                        evaluation={"interval": 2, "num_tasks": 4}, checkpoint_period_s=0, max_failures=2,
                        storage=str(tmp_path / "results"))
    experiment = tmp_path / "results" / "node_loss"
    proc = subprocess.Popen([sys.executable, "-m", "rl_hyper", "sweep", str(study), "--address", cluster.gcs_address],
                            env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    with ended_on_failure(proc):
        wait_for_rows(experiment, 2, trials=2)  # both trials run (one CPU per node) and have checkpoints
        raylets = [pid for pid, command in node_processes(cluster, "worker").items() if "/raylet " in command]
        assert len(raylets) == 1, node_processes(cluster, "worker")
        on_worker = [name for name, records in rows(experiment).items()
                     if dict(zip(records[0], records[-1]))["node_ip"] == WORKER_IP]
        assert len(on_worker) == 1, on_worker
        os.kill(raylets[0], signal.SIGKILL)

        survivor = next(name for name in rows(experiment) if name not in on_worker)
        survivor_csv = experiment / survivor / "progress.csv"
        deadline = time.time() + 300
        while len(rows(experiment)[survivor]) - 1 < iterations and time.time() < deadline:
            time.sleep(0.5)
        finished = survivor_csv.read_bytes()  # the survivor's whole record, before the retried trial ends
        out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    manifest = json.loads((experiment / "manifest.json").read_text())
    assert set(manifest["trials"].values()) == {"done"}, manifest["trials"]
    assert_whole(experiment, iterations)  # the retried trial continued from its checkpoint: each iteration once
    assert survivor_csv.read_bytes() == finished
    retried = pd.read_csv(experiment / on_worker[0] / "progress.csv")
    assert list(retried["node_ip"].unique()) == [WORKER_IP, HEAD_IP]  # on the lost node, then on the head
    assert retried["rl_hyper/frames"].is_monotonic_increasing
    report = subprocess.run([sys.executable, "-m", "rl_hyper", "report", str(experiment), "--out", str(tmp_path / "r")],
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stdout + report.stderr
