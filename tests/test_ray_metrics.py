"""Per-trial metrics reach the node's Prometheus endpoint (rl_hyper.training.ray_metrics).

The end-to-end test runs this file as a script in a child process: the child starts its own
loopback-only Ray with token authentication on (its own random token in RAY_AUTH_TOKEN, so no
~/.ray/auth_token is written), records metrics in a Ray task, scrapes the node's metrics export
port with urllib until the series appear (bounded wait) and shuts down only that Ray. A child
keeps the auth environment and the fixed metrics port away from any Ray this test session shares.
Metrics export needs ray[default] (the dashboard agent's reporter module: grpcio, aiohttp,
opentelemetry, prometheus_client) but not the dashboard itself (include_dashboard=False here).
"""

import math
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from rl_hyper.training import ray_metrics
from rl_hyper.training.ray_setup import LOCAL_NODE_IP

TAGS = {"study": "metrics-test", "trial": "trial-0", "method": "rnn_hn", "env": "GridNavi-v0"}
SCRAPE_TIMEOUT_S = 60.0


def test_read_metrics_flat_and_nested():
    flat = {"rl_hyper/train_trial_return": 1.5, "rl_hyper/frames": np.int64(600)}
    nested = {"rl_hyper": {"eval_trial_return": np.float32(2.0), "env_steps_per_s": 300}}
    assert ray_metrics.read_metrics(flat) == {"train_trial_return": 1.5, "frames": 600.0}
    assert ray_metrics.read_metrics(nested) == {"eval_trial_return": 2.0, "env_steps_per_s": 300.0}
    both = {"rl_hyper/frames": 10, "rl_hyper": {"frames": 20}}
    assert ray_metrics.read_metrics(both) == {"frames": 10.0}


def test_read_metrics_skips_missing_and_bad_values():
    result = {
        "rl_hyper/train_trial_return": math.nan,
        "rl_hyper/eval_trial_return": None,
        "rl_hyper/env_steps_per_s": "fast",
        "rl_hyper/frames": True,
        "rl_hyper": "not a dict",
    }
    assert ray_metrics.read_metrics(result) == {}


def test_export_result_requires_every_tag():
    with pytest.raises(ValueError, match="env"):
        ray_metrics.export_result({"rl_hyper/frames": 1}, {k: TAGS[k] for k in TAGS if k != "env"})


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _child_main(port: int) -> None:
    """Run in the child: start Ray, export from a task, scrape, shut down; exit 0 on success."""
    import ray

    ray.init(
        num_cpus=1,
        include_dashboard=False,
        _node_ip_address=LOCAL_NODE_IP,
        _metrics_export_port=port,
        _system_config={"metrics_report_interval_ms": 1000},
    )
    try:

        @ray.remote(num_cpus=0)
        def export(result, tags):
            from rl_hyper.training.ray_metrics import export_result

            return export_result(result, tags)

        result = {
            "rl_hyper/train_trial_return": 12.5,
            "rl_hyper/env_steps_per_s": 321.0,
            "rl_hyper": {"frames": 4200, "eval_trial_return": 7.25},
        }
        exported = ray.get(export.remote(result, TAGS))
        assert set(exported) == set(ray_metrics.GAUGES), exported
        expected = {f"ray_{name}": exported[key] for key, (name, _) in ray_metrics.GAUGES.items()}
        found = {}
        deadline = time.monotonic() + SCRAPE_TIMEOUT_S
        while time.monotonic() < deadline and set(found) != set(expected):
            try:
                url = f"http://127.0.0.1:{port}/metrics"
                text = urllib.request.urlopen(url, timeout=5).read().decode()
            except OSError:
                text = ""
            for line in text.splitlines():
                name, _, rest = line.partition("{")
                if name in expected and 'study="metrics-test"' in rest:
                    found[name] = float(rest.rsplit(" ", 1)[1])
            time.sleep(0.5)
        if found != expected:
            sys.exit(f"scraped {found}, expected {expected} within {SCRAPE_TIMEOUT_S} s")
        for tag, value in TAGS.items():
            assert f'{tag}="{value}"' in text, f"tag {tag} missing from the scrape"
    finally:
        ray.shutdown()


def test_metrics_reach_prometheus_endpoint():
    port = _free_loopback_port()
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
        "OMP_NUM_THREADS": "1",
    }
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    env.pop("RAY_ADDRESS", None)
    child = subprocess.run(
        [sys.executable, __file__, str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=SCRAPE_TIMEOUT_S + 60,
    )
    assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-3000:]


if __name__ == "__main__":
    _child_main(int(sys.argv[1]))
