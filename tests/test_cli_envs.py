"""`rl-hyper envs`: list, solve and render, as a user runs them (subprocess, no Ray)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from PIL import Image

from rl_hyper.envs.registry import ENVS


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rl_hyper", "envs", *args], capture_output=True, text=True,
                          timeout=300)


def test_list_names_every_registered_env_with_its_spaces():
    proc = run("list")
    assert proc.returncode == 0
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[1:]}
    assert set(rows) == set(ENVS) and len(ENVS) == 8
    assert rows["GridNavi"][1:6] == ["rl_hyper/GridNavi-v0", "9", "Discrete(5)", "4", "15"]
    assert rows["CheetahDir"][3:6] == ["Box(6)", "1", "200"]


def test_solve_mcls_scores_the_spec_returns():
    proc = run("solve", "MC-LS")
    assert proc.returncode == 0
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in proc.stdout.splitlines()[1:]}
    np.testing.assert_allclose(rows["optimal"], [13.7, 13.7, 27.4], atol=1e-6)
    assert 9.7 < rows["memoryless"][0] < 11.2 and 19.5 < rows["memoryless"][2] < 22.5  # spec: about 10.2 / episode


def test_render_writes_a_strip_and_bad_requests_exit_2(tmp_path):
    out = tmp_path / "mcls.png"
    proc = run("render", "MC-LS", "--out", str(out))
    assert proc.returncode == 0
    image = np.asarray(Image.open(out))
    assert image.ndim == 3 and image.shape[1] > 4 * image.shape[0] and image.std() > 10
    for args, message in ((("solve", "GridNavi"), "MC-LS only"), (("render", "MC-LS"), "--out"),
                          (("solve", "Nope"), "unknown env 'Nope'")):
        proc = run(*args)
        assert proc.returncode == 2 and message in proc.stderr
