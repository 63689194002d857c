"""The Ray dashboard in a browser while a study submitted with `rl-hyper submit` runs.

The cluster is the `cluster` fixture of tests/conftest.py (two nodes on 127.0.0.2/127.0.0.3, token
auth on, dashboard on). The study (GridNavi, rnn, one seed, 7,680 frames) is submitted as a Ray job;
while the job is RUNNING, headless Chromium logs in to the dashboard with the cluster's token, opens
the Jobs page and must show the job's submission id, its entrypoint and RUNNING. The screenshot is
written under tmp_path and its path printed (`pytest -s` shows it). `ray job stop` then ends the job.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from rl_hyper.study.browser import find_browser, render_ray_dashboard

REPO = Path(__file__).resolve().parents[1]
FRAMES = 7680  # eight iterations of 16 envs x 60 steps: the job is still RUNNING when the page is read

pytestmark = pytest.mark.skipif(find_browser() is None, reason="no Chromium on PATH (Debian: apt-get install chromium)")


def job_status(cluster, submission_id: str) -> str:
    """The job's status as `ray job status` prints it while it is PENDING or RUNNING."""
    done = subprocess.run(["ray", "job", "status", submission_id, "--address", cluster.dashboard_url],
                          env=cluster.env, capture_output=True, text=True, timeout=60)
    found = re.search(r"Status for job '\S+': (\w+)", done.stdout)
    assert found, done.stdout + done.stderr
    return found.group(1)


def test_submitted_study_is_listed_in_the_dashboard(cluster, tmp_path):
    study = {"name": "dashboard_watch", "env": "GridNavi", "methods": ["rnn"], "lr_grid": [1e-3], "seeds": [1],
             "frames": FRAMES, "evaluation": {"interval": 2, "num_tasks": 4}, "max_failures": 0}
    # The study file must travel in the uploaded working dir (the repo root): a scratch dir in tests/.
    scratch = Path(tempfile.mkdtemp(prefix=".dashboard_", dir=REPO / "tests"))
    try:
        path = scratch / "dashboard_watch.yaml"
        path.write_text(yaml.safe_dump(study))
        submitted = subprocess.run(
            [sys.executable, "-m", "rl_hyper", "submit", str(path.relative_to(REPO)),
             "--address", cluster.dashboard_url, "--storage", str(tmp_path / "results")],
            cwd=REPO, env=cluster.env, capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    submission_id = re.search(r"as job (\S+)", submitted.stdout).group(1)

    deadline = time.time() + 60
    while (status := job_status(cluster, submission_id)) == "PENDING" and time.time() < deadline:
        time.sleep(1.0)
    assert status == "RUNNING", status

    screenshot = tmp_path / "dashboard_jobs.png"
    text = render_ray_dashboard(cluster.dashboard_url, screenshot, expect=submission_id,
                                token=cluster.env["RAY_AUTH_TOKEN"])
    print(f"screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000  # a rendered page, not a blank one
    row = text[text.index(submission_id):][:300]  # the job's table row: the only one on the page
    assert "rl-hyper sweep tests/.dashboard_" in row and "RUNNING" in row, row

    # the README's last step; the job's success is test_cluster_job.py's to check
    stopped = subprocess.run(["ray", "job", "stop", submission_id, "--address", cluster.dashboard_url],
                             env=cluster.env, capture_output=True, text=True, timeout=120)
    assert stopped.returncode == 0 and f"Job '{submission_id}' was stopped" in stopped.stdout + stopped.stderr, \
        stopped.stdout + stopped.stderr
