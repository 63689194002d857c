"""benchmarks/gpu_learner.py: the GPU learner check runs here through the same code path on the CPU.

The script builds two learners with `build_config(..., num_gpus_per_learner=N)` (N = 1 for CUDA,
0 here), gives both the same weights and the same sampled batch, and compares one PPO update. On
one device the two updates must agree exactly: an update that reads the batch after the first
learner's connectors changed it (the script copies it for that reason) gives other losses.
"""

import os
import re
import subprocess
import sys

import pytest
import torch

from conftest import BENCHMARKS

SCRIPT = BENCHMARKS / "gpu_learner.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def test_cpu_run_of_the_gpu_check_gives_identical_updates_and_timings():
    run = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--method", "rnn", "--repeats", "1"],
                         capture_output=True, text=True, timeout=600, env=ENV)
    assert run.returncode == 0, run.stderr[-3000:]
    losses = dict(re.findall(r"^\s+(total_loss|policy_loss|vf_loss|entropy)\s+\S+\s+\S+\s+diff (\S+)$",
                             run.stdout, re.MULTILINE))
    assert set(losses) == {"total_loss", "policy_loss", "vf_loss", "entropy"}, run.stdout
    assert all(float(diff) == 0.0 for diff in losses.values()), losses
    weights = re.search(r"largest weight difference after the update: (\S+)", run.stdout)
    assert weights and float(weights.group(1)) == 0.0, run.stdout
    speeds = re.findall(r"cpu learner, (paper batch|8x batch) .*: ([\d.]+) updates/s", run.stdout)
    assert [label for label, _ in speeds] == ["paper batch", "8x batch"], run.stdout
    assert all(float(rate) > 0 for _, rate in speeds)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present: the script would run on it")
def test_asking_for_cuda_without_a_gpu_stops_with_a_clear_message():
    run = subprocess.run([sys.executable, str(SCRIPT), "--device", "cuda"], capture_output=True, text=True,
                         timeout=120, env=ENV)
    assert run.returncode != 0
    assert "no CUDA device here" in run.stderr
