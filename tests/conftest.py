"""Shared fixtures: one loopback Ray instance per test session, started and stopped here; and a
real two-node Ray cluster on this machine (`cluster`, one per test module that asks for it).

The cluster: a head and a second node, each a separate `ray start --block` process with its own
temp dir and its own free ports, both with `RAY_AUTH_MODE=token` and a random `RAY_AUTH_TOKEN`.
Every process of the cluster inherits a marker environment variable, which is how teardown finds
(and the last check proves gone) exactly this cluster's processes: `ray stop` is never used, as
it would stop every other Ray session of the user on the machine.

Ray 2.60 rewrites `--node-ip-address=127.0.0.1` to the machine's network address, so the nodes use
two other loopback addresses, 127.0.0.2 (head) and 127.0.0.3, which Ray keeps as given: every
connection stays on loopback.
"""

from __future__ import annotations

import importlib.util
import json
import os
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

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"  # loopback addresses Ray does not rewrite
START_TIMEOUT_S = 180
MARKER = "RL_HYPER_TEST_CLUSTER"

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


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str):
    """The module of `benchmarks/<name>.py` (the scripts are not a package), registered in
    sys.modules under `name` (a dataclass in the script looks its module up there)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


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


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray on loopback for the whole session; shut down only if this fixture started it."""
    import ray

    from rl_hyper.envs.registry import register_all
    from rl_hyper.training.ray_setup import init_ray

    started = not ray.is_initialized()
    init_ray(num_cpus=2, include_dashboard=False)
    register_all()
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def registered_envs():
    """Every env registered with gymnasium and Ray's registry (no Ray start needed)."""
    from rl_hyper.envs.registry import register_all

    register_all()
