"""Training path of the base methods: memory, gradients, learner updates, `rl-hyper train`."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

from rl_hyper.cli import main
from rl_hyper.training.config import build_config

BASE_METHODS = ["rnn", "rnn_s", "rnn_hn", "rnn_hn_kaiming"]
# one method per sequence core x conditioning pair that trains the encoder with RL gradients
CORE_METHODS = ["rnn_film", "lstm", "lstm_hn", "transformer", "transformer_hn"]


def _runner(method: str, envs: int = 2) -> SingleAgentEnvRunner:
    config = build_config("GridNavi", method, lr=1e-3, seed=7, eval_interval=0, envs_per_runner=envs)
    return SingleAgentEnvRunner(config=config)


def _logits(module, obs: np.ndarray, starts: list[int]) -> torch.Tensor:
    """Recompute action-distribution inputs over obs (T, D) in one pass per piece, resetting the
    encoder's core to its initial state at `starts`."""
    pieces = []
    bounds = starts + [len(obs)]
    for begin, end in zip(bounds[:-1], bounds[1:]):
        batch = {Columns.OBS: torch.as_tensor(obs[begin:end]).unsqueeze(0),
                 Columns.STATE_IN: module.encoder.initial_state_batch(1, "cpu")}
        with torch.no_grad():
            pieces.append(module._forward(batch)[Columns.ACTION_DIST_INPUTS][0])
    return torch.cat(pieces)


@pytest.mark.parametrize("method", ["rnn_s", "lstm", "transformer"])  # the gru, lstm and transformer cores
def test_memory_carried_across_inner_episodes_and_reset_between_trials(method, registered_envs):
    runner = _runner(method, envs=2)
    episodes = runner.sample(num_episodes=4, random_actions=False)
    complete = [e for e in episodes if e.is_done]
    assert len(complete) >= 4  # two envs -> at least two of these are second trials of an env
    module = runner.module
    for episode in complete:
        obs = np.asarray(episode.get_observations())[:-1]  # (60, D): the inputs of the 60 actions
        sampled = torch.as_tensor(np.asarray(episode.get_extra_model_outputs(Columns.ACTION_DIST_INPUTS)))
        assert len(obs) == 60
        # one pass from the initial state over the whole trial reproduces what the sampler
        # computed step by step: the state was reset at the trial's start and carried through
        # steps 15, 30, 45
        torch.testing.assert_close(_logits(module, obs, [0]), sampled, rtol=1e-4, atol=1e-5)
        # resetting at the first inner-episode boundary changes the outputs from there on
        reset_inner = _logits(module, obs, [0, 15])
        torch.testing.assert_close(reset_inner[:15], sampled[:15], rtol=1e-4, atol=1e-5)
        assert not torch.allclose(reset_inner[15:], sampled[15:], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", BASE_METHODS + CORE_METHODS)
def test_sample_and_learner_update_changes_encoder(method, registered_envs):
    runner = _runner(method, envs=4)
    episodes = runner.sample()
    assert sum(len(e) for e in episodes) >= 4 * 60
    config = runner.config
    learner = config.build_learner(env=runner.env)
    module = learner.module["default_policy"]
    core_before = [p.detach().clone() for p in module.encoder.core.parameters()]
    # as PPO calls it: 2 epochs x 4 minibatches. With Bias-HyperInit (and FiLM's zero-initialised
    # modulation) the first minibatch cannot reach the core (the latent's heads start at 0); the
    # later ones must.
    results = learner.update(episodes=episodes, num_epochs=config.num_epochs, minibatch_size=config.minibatch_size)
    stats = results["default_policy"]
    for name in ("policy_loss", "vf_loss", "entropy", "total_loss"):
        assert math.isfinite(float(stats[name].peek())), name
    changed = [not torch.equal(a, b) for a, b in zip(core_before, module.encoder.core.parameters())]
    assert all(changed), f"RL gradients must reach every tensor of {method}'s sequence core"


def test_train_end_to_end_writes_tune_results(ray_session, tmp_path, capsys):
    code = main(["train", "--frames", "1920", "--eval-interval", "1", "--output", str(tmp_path), "--name", "e2e"])
    assert code == 0
    out = capsys.readouterr().out
    assert "frames" in out and "eval" in out
    progress = list((tmp_path / "e2e").glob("*/progress.csv"))
    assert len(progress) == 1
    df = pd.read_csv(progress[0])
    assert df["rl_hyper/frames"].iloc[-1] >= 1920
    assert df["rl_hyper/method"].iloc[0] == "rnn_hn" and df["rl_hyper/seed"].iloc[0] == 73
    evals = df["rl_hyper/eval_trial_return"].dropna()
    assert len(evals) == len(df) and evals.between(-6.0 - 1e-4, 44.3).all()
    assert (df["rl_hyper/eval_trials"] == 21).all()  # every goal of GridNavi: the exact evaluation
    inner = df[[f"rl_hyper/eval_inner_return_{k}" for k in range(1, 5)]].sum(axis=1)
    np.testing.assert_allclose(inner, df["rl_hyper/eval_trial_return"], rtol=1e-5)
    versions = json.loads((tmp_path / "e2e" / "versions.json").read_text())
    assert versions["ray"] == "2.60.0" and versions["torch"].startswith("2.13.0")
    assert list(progress[0].parent.glob("checkpoint_*"))


@pytest.mark.parametrize("args, message", [
    (["--env", "Nope"], "unknown env 'Nope'; choose from: GridNavi"),
    (["--method", "mamba"], "unknown method 'mamba'; choose from: rnn, rnn_s, rnn_hn"),
    (["--frames", "0"], "--frames must be > 0"),
    (["--frames", "-100"], "--frames must be > 0"),
    (["--lr", "-0.001"], "--lr must be > 0"),
    (["--num-env-runners", "-1"], "--num-env-runners must be >= 0"),
])
def test_bad_input_exits_2_with_one_line(args, message):
    proc = subprocess.run([sys.executable, "-m", "rl_hyper", "train", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Ray" not in proc.stdout + proc.stderr


def test_unwritable_output_dir_exits_2(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    proc = subprocess.run([sys.executable, "-m", "rl_hyper", "train", "--output", str(blocker / "sub")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "not writable" in proc.stderr


@pytest.mark.parametrize("method, columns", [
    ("ti_naive", ["aux_task_loss"]),
    ("ti", ["aux_task_loss", "warm_up"]),
    ("ti_pp", ["aux_task_loss", "warm_up"]),
    ("ti_pp_hn", ["aux_task_loss", "warm_up"]),
    ("vi", ["aux_reconstruction_nll", "aux_kl", "aux_elbo"]),
    ("vi_hn", ["aux_reconstruction_nll", "aux_kl", "aux_elbo"]),
])
def test_train_end_to_end_aux_methods(method, columns, ray_session, tmp_path):
    code = main(["train", "--method", method, "--frames", "1920", "--eval-interval", "2", "--output", str(tmp_path),
                 "--name", method])
    assert code == 0
    (progress,) = (tmp_path / method).glob("*/progress.csv")
    df = pd.read_csv(progress)
    assert df["rl_hyper/frames"].iloc[-1] >= 1920 and df["rl_hyper/method"].iloc[0] == method
    assert np.isfinite(df["rl_hyper/eval_trial_return"].iloc[-1])
    for column in columns:
        assert f"rl_hyper/{column}" in df.columns, column
    if "warm_up" in columns:  # 2 of the 100 warm-up updates: still warming up, policy on g(task)
        assert (df["rl_hyper/warm_up"] == 1.0).all()
    if method == "ti":  # the encoder is frozen and untrained during TI's warm-up
        assert df["rl_hyper/aux_task_loss"].isna().all()
    else:
        assert np.isfinite(df[f"rl_hyper/{columns[0]}"]).all()


@pytest.mark.parametrize("env, frames", [("CheetahDir", 800), ("MC-LS", 1600)])
def test_train_end_to_end_other_envs(env, frames, ray_session, tmp_path):
    """Two envs per runner: one update = 2 x the env's rollout (400 Cheetah, 800 MC-LS steps)."""
    code = main(["train", "--env", env, "--method", "rnn_hn", "--frames", str(frames), "--envs-per-runner", "2",
                 "--eval-interval", "1", "--output", str(tmp_path), "--name", env])
    assert code == 0
    (progress,) = (tmp_path / env).glob("*/progress.csv")
    df = pd.read_csv(progress)
    assert df["rl_hyper/frames"].iloc[-1] >= frames and df["rl_hyper/env"].iloc[0] == env
    assert np.isfinite(df["rl_hyper/eval_trial_return"].iloc[-1])
    inner = [c for c in df.columns if c.startswith("rl_hyper/eval_inner_return_")]
    assert len(inner) == {"CheetahDir": 1, "MC-LS": 2}[env]
    assert (df["rl_hyper/eval_trials"] == 16).all()  # both tasks x 8 trials
