"""The Python API: `rl_hyper.meta_ppo_config` is a plain RLlib PPOConfig, the env ids work with
`gymnasium.make` after `import rl_hyper`, and examples/python_api.py trains as documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from ray.rllib.algorithms.ppo import PPOConfig

import rl_hyper
from rl_hyper.envs.registry import ENVS
from rl_hyper.models.methods import UnknownMethodError
from rl_hyper.models.module import MetaRLModule
from rl_hyper.training.learner import MetaPPOLearner

ROOT = Path(__file__).resolve().parents[1]


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_meta_ppo_config_is_an_rllib_ppo_config_of_the_method():
    config = rl_hyper.meta_ppo_config("GridNavi", "rnn_s", lr=3e-4, seed=5)
    assert isinstance(config, PPOConfig)
    assert config.env == "GridNavi" and config.seed == 5 and config.lr == 3e-4
    assert config.rl_module_spec.module_class is MetaRLModule and config.model_config["method"] == "rnn_s"
    assert config.learner_class is MetaPPOLearner
    config.training(gamma=0.9).env_runners(num_env_runners=3)  # RLlib's own setters keep working
    assert config.gamma == 0.9 and config.num_env_runners == 3
    with pytest.raises(UnknownMethodError, match="choose from"):
        rl_hyper.meta_ppo_config("GridNavi", "mamba_hn")


def test_meta_ppo_config_passes_build_config_options():
    config = rl_hyper.meta_ppo_config("MC-LS", "rnn", env_config={"resolution": 42}, envs_per_runner=2)
    assert config.env_config == {"resolution": 42} and config.num_envs_per_env_runner == 2
    assert config.model_config["state_dim"] == 3 * 42 * 42 + 1  # the frame and the inner-episode flag
    assert config.model_config["max_seq_len"] == 2 * 200 + 1  # a whole trial plus the bootstrap step


def test_import_alone_registers_gymnasium_ids_without_ray():
    """A fresh interpreter: `import rl_hyper` (or gymnasium's "module:id" form) is enough."""
    proc = python(
        "import sys, gymnasium as gym\n"
        "env = gym.make('rl_hyper:rl_hyper/GridNavi-v0')\n"
        "print('grid', env.observation_space.shape, env.unwrapped.episodes_per_trial)\n"
        "print('mcls', gym.make('rl_hyper/MC-LS-v0', resolution=42).observation_space.shape)\n"
        "print('ids', sorted(i for i in gym.registry if i.startswith('rl_hyper/')))\n"
        "print('heavy', 'ray' in sys.modules, 'torch' in sys.modules)\n"
    )
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines["grid"] == "(9,) 4"
    assert lines["mcls"] == f"({3 * 42 * 42 + 1 + 3 + 1},)"  # frame, inner-done flag, previous action and reward
    assert lines["ids"] == str(sorted(f"rl_hyper/{name}-v0" for name in ENVS))
    assert lines["heavy"] == "False False"


def test_python_api_example_trains_two_iterations():
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "python_api.py")], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "GridNavi: observation Box" in proc.stdout
    iterations = re.findall(r"iteration (\d+): (\d+) frames, train trial return (-?[\d.]+), eval trial return (-?[\d.]+)",
                            proc.stdout)
    assert [(int(i), int(frames)) for i, frames, _, _ in iterations] == [(1, 960), (2, 1920)]
    for _, _, train, evaluation in iterations:  # GridNavi: -6 (never found) ... 44.3 (goal known)
        assert -6.0 - 1e-6 <= float(train) <= 44.3 and -6.0 - 1e-6 <= float(evaluation) <= 44.3
