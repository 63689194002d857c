"""A study submitted as a Ray job to a real two-node cluster on this machine, token auth on.

The module starts its own cluster: a head and a second node, each a separate `ray start --block`
process with its own temp dir and its own free ports, both with `RAY_AUTH_MODE=token` and a
random `RAY_AUTH_TOKEN`. Every process of the cluster inherits a marker environment variable,
which is how teardown finds (and the last check proves gone) exactly this cluster's processes:
`ray stop` is never used, as it would stop every other Ray session of the user on the machine.

Everything that talks to the cluster (`rl-hyper submit`, the job and state APIs, `rl-hyper
sweep --address`) runs in a subprocess with the cluster's token in its environment, so this
test process never loads a Ray token of its own.

Ray 2.60 rewrites `--node-ip-address=127.0.0.1` to the machine's network address, so the nodes use
two other loopback addresses, 127.0.0.2 (head) and 127.0.0.3, which Ray keeps as given: every
connection stays on loopback. The nodes are told apart by their Ray node ids.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BUDGET = 1920  # two iterations of 16 envs x 60 steps
JOB_TIMEOUT_S = 480
HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"  # loopback addresses Ray does not rewrite
START_TIMEOUT_S = 180
MARKER = "RL_HYPER_TEST_CLUSTER"
MAX_UPLOAD_BYTES = 5_000_000

# Runs in a subprocess with the cluster's token: python -c CLIENT COMMAND DASHBOARD_URL [ARGS...]
CLIENT = textwrap.dedent("""
    import json, sys, time
    command, address, *args = sys.argv[1:]
    from ray.util.state import list_actors, list_nodes

    def nodes():
        return [{"node_id": n.node_id, "is_head_node": n.is_head_node, "state": n.state,
                 "resources_total": n.resources_total} for n in list_nodes(address=address, detail=True)]

    if command == "nodes":  # wait until N nodes are alive
        wanted, deadline = int(args[0]), time.time() + float(args[1])
        while True:
            try:
                alive = [n for n in nodes() if n["state"] == "ALIVE"]
            except Exception:  # the dashboard is not up yet
                alive = []
            if len(alive) >= wanted or time.time() > deadline:
                break
            time.sleep(1.0)
        print(json.dumps(alive))
    elif command == "job":  # wait for the job to end; everything the test checks, as JSON
        from ray.job_submission import JobStatus, JobSubmissionClient
        submission_id, deadline = args[0], time.time() + float(args[1])
        client = JobSubmissionClient(address)
        while client.get_job_status(submission_id) not in {JobStatus.SUCCEEDED, JobStatus.FAILED,
                                                           JobStatus.STOPPED} and time.time() < deadline:
            time.sleep(2.0)
        info = client.get_job_info(submission_id)
        if not info.status.is_terminal():
            client.stop_job(submission_id)
        actors = list_actors(address=address, detail=True, limit=10000,
                             filters=[("job_id", "=", info.job_id)]) if info.job_id else []
        print(json.dumps({
            "status": str(info.status.value), "message": info.message, "job_id": info.job_id,
            "driver_node_id": info.driver_node_id, "logs": client.get_job_logs(submission_id),
            "nodes": nodes(),
            "actors": [{"class_name": a.class_name, "node_id": a.node_id, "pid": a.pid, "state": a.state}
                       for a in actors],
        }))
""")


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def marked_pids(marker: str) -> list[int]:
    """Processes whose environment carries this cluster's marker (readable: our own user's)."""
    needle = f"{MARKER}={marker}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if needle in (proc / "environ").read_bytes().split(b"\0"):
                    pids.append(int(proc.name))
            except OSError:  # gone, or not ours
                pass
    return pids


@dataclass
class Cluster:
    temp_root: Path
    env: dict
    marker: str
    gcs_address: str = ""
    dashboard_url: str = ""
    nodes: list = field(default_factory=list)  # the `ray start --block` processes
    logs: list = field(default_factory=list)
    node_ids: dict = field(default_factory=dict)  # "head"/"worker" -> Ray node id

    def client(self, *args: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", CLIENT, *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def start_node(self, name: str, ip: str, args: list[str]) -> None:
        temp_dir = self.temp_root / name
        temp_dir.mkdir()
        log = open(self.temp_root / f"{name}.log", "w")
        self.logs.append(log)
        command = [str(Path(sys.executable).parent / "ray"), "start", "--block", f"--node-ip-address={ip}",
                   "--num-cpus=1", f"--temp-dir={temp_dir}", "--object-store-memory=200000000",
                   "--disable-usage-stats", *args]
        self.nodes.append(subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, start_new_session=True))

    def node_log(self, name: str) -> str:
        path = self.temp_root / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> list[int]:
        """SIGTERM each `ray start` (it stops its node's processes), then SIGKILL stragglers by pid."""
        for node in reversed(self.nodes):  # the worker node first, then the head
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait(timeout=30)
        deadline = time.time() + 20
        while marked_pids(self.marker) and time.time() < deadline:
            time.sleep(0.5)
        for pid in marked_pids(self.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.time() + 20
        while (left := marked_pids(self.marker)) and time.time() < deadline:
            time.sleep(0.5)
        for log in self.logs:
            log.close()
        return left


@pytest.fixture(scope="module")
def cluster():
    """Head (1 CPU, `head_node` resource, dashboard) + a second node (1 CPU), loopback, token auth."""
    # short: Ray's socket paths (<temp>/session_.../sockets/plasma_store) must fit in 107 bytes
    temp_root = Path(tempfile.mkdtemp(prefix="rhc", dir="/tmp"))
    marker = secrets.token_hex(8)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("RAY_", "PYTEST_")) and key != MARKER}
    env.update({
        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), MARKER: marker,
        "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",  # SIGTERM stops a node at once (no 30 s drain)
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # rl-hyper, ray
    })
    cluster = Cluster(temp_root=temp_root, env=env, marker=marker)
    try:
        gcs, dashboard, *ports = free_ports(11)
        cluster.gcs_address = f"{HEAD_IP}:{gcs}"
        cluster.dashboard_url = f"http://127.0.0.1:{dashboard}"
        cluster.start_node("head", HEAD_IP, [
            "--head", f"--port={gcs}", '--resources={"head_node": 1}', "--include-dashboard=true",
            "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
            f"--dashboard-agent-listen-port={ports[0]}", f"--dashboard-agent-grpc-port={ports[1]}",
            f"--runtime-env-agent-port={ports[2]}", f"--metrics-export-port={ports[3]}",
            f"--ray-client-server-port={ports[4]}"])
        up = cluster.client("nodes", cluster.dashboard_url, "1", str(START_TIMEOUT_S), timeout=START_TIMEOUT_S + 60)
        assert up.returncode == 0 and up.stdout.strip() not in ("", "[]"), \
            f"head did not start:\n{up.stderr[-3000:]}\n{cluster.node_log('head')}"
        cluster.start_node("worker", WORKER_IP, [
            f"--address={cluster.gcs_address}",
            f"--dashboard-agent-listen-port={ports[5]}", f"--dashboard-agent-grpc-port={ports[6]}",
            f"--runtime-env-agent-port={ports[7]}", f"--metrics-export-port={ports[8]}"])
        up = cluster.client("nodes", cluster.dashboard_url, "2", str(START_TIMEOUT_S), timeout=START_TIMEOUT_S + 60)
        assert up.returncode == 0 and len(json.loads(up.stdout or "[]")) == 2, \
            f"second node did not join:\n{up.stdout}{up.stderr[-3000:]}\n{cluster.node_log('worker')}"
        cluster.node_ids = {("head" if n["is_head_node"] else "worker"): n["node_id"] for n in json.loads(up.stdout)}
        yield cluster
    finally:
        left = cluster.stop()
        in_ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
        shutil.rmtree(temp_root, ignore_errors=True)
        assert not left, f"processes of the test cluster survived teardown: {left}"
        assert str(temp_root) not in in_ps, f"a process still names {temp_root}:\n{in_ps}"


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
