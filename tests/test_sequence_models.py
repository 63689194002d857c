"""Methods composed of a sequence core x a conditioning x an objective: the table rejects invalid
rows, and the rows beyond the paper's (LSTM, transformer, FiLM) train through `rl-hyper train`
and a study YAML."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml

from rl_hyper.cli import main
from rl_hyper.models.cores import GRUCore, LSTMCore, TransformerCore
from rl_hyper.models.methods import METHODS, Method

NEW_METHODS = ["rnn_film", "lstm", "lstm_hn", "transformer", "transformer_hn", "vi_film"]


@pytest.mark.parametrize("fields,message", [
    (dict(policy_input="latent", hyper_init="kaiming"), "needs policy_input 'hyper'"),
    (dict(policy_input="hyper", core="mamba"), "unknown core 'mamba'"),
    (dict(policy_input="concat"), "unknown policy_input 'concat'"),
    (dict(policy_input="hyper", task_loss="task_embedding"), "warm-up"),
    (dict(policy_input="hyper", elbo=True), "trains the encoder alone"),
])
def test_invalid_combinations_fail_when_the_row_is_built(fields, message):
    with pytest.raises(ValueError, match=message):
        Method("x", "X", **fields)


def test_rows_compose_core_conditioning_and_objective():
    compositions = {m.id: (m.core, m.policy_input, m.aux_loss) for m in METHODS.values()}
    assert compositions["rnn_hn"] == ("gru", "hyper", "none")  # the paper's ids keep their meaning
    assert compositions["lstm_hn"] == ("lstm", "hyper", "none")
    assert compositions["transformer"] == ("transformer", "latent", "none")
    assert compositions["rnn_film"] == ("gru", "film", "none")
    assert compositions["vi_film"] == ("gru", "film", "elbo")


@pytest.mark.parametrize("core", [GRUCore(6, 8), LSTMCore(6, 8),
                                  TransformerCore(6, width=8, layers=2, heads=2, max_len=12)])
def test_core_steps_one_at_a_time_like_one_pass(core):
    """Feeding a sequence step by step with the carried state gives the one-pass outputs, and
    padded steps after a sequence never change its earlier outputs (causality)."""
    torch.manual_seed(0)
    x = torch.randn(3, 10, 6)
    start = {name: torch.as_tensor(value).expand(3, *value.shape).clone() for name, value in core.initial_state().items()}
    with torch.no_grad():
        whole, _ = core(x, start)
        state, steps = start, []
        for t in range(10):
            out, state = core(x[:, t:t + 1], state)
            steps.append(out)
        padded, _ = core(torch.cat([x[:, :6], torch.randn(3, 4, 6)], dim=1), start)
    torch.testing.assert_close(torch.cat(steps, dim=1), whole, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(padded[:, :6], whole[:, :6], rtol=1e-4, atol=1e-5)


def test_transformer_memory_holds_the_trial_and_keeps_the_newest():
    core = TransformerCore(2, width=8, layers=1, heads=2, max_len=4)
    state = {name: torch.as_tensor(value).unsqueeze(0) for name, value in core.initial_state().items()}
    inputs = torch.arange(1.0, 13.0).view(1, 6, 2)  # six steps, step k = (2k + 1, 2k + 2)
    with torch.no_grad():
        _, state = core(inputs[:, :3], state)
        assert state["length"].item() == 3
        torch.testing.assert_close(state["memory"][0, :3], inputs[0, :3])
        assert torch.all(state["memory"][0, 3] == 0)
        _, state = core(inputs[:, 3:], state)
    assert state["length"].item() == 4  # full: the oldest two steps were dropped
    torch.testing.assert_close(state["memory"][0], inputs[0, 2:])


def test_new_method_trains_through_rl_hyper_train(ray_session, tmp_path):
    code = main(["train", "--method", "transformer_hn", "--frames", "960", "--eval-interval", "1",
                 "--output", str(tmp_path), "--name", "tf"])
    assert code == 0
    (progress,) = (tmp_path / "tf").glob("*/progress.csv")
    df = pd.read_csv(progress)
    assert df["rl_hyper/method"].iloc[0] == "transformer_hn" and df["rl_hyper/frames"].iloc[-1] >= 960
    assert df["rl_hyper/eval_trial_return"].notna().all()


def test_new_methods_train_through_a_study_yaml(ray_session, tmp_path):
    study = {"name": "cores", "env": "GridNavi", "methods": NEW_METHODS, "lr_grid": [1e-3], "seeds": [1],
             "frames": 960, "evaluation": {"interval": 1, "num_tasks": 4}, "storage": str(tmp_path / "results"),
             "max_failures": 0}
    path = tmp_path / "cores.yaml"
    path.write_text(yaml.safe_dump(study))
    proc = subprocess.run([sys.executable, "-m", "rl_hyper", "sweep", str(path), "--quiet",
                           "--address", ray_session.get_runtime_context().gcs_address],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    methods = {pd.read_csv(csv)["rl_hyper/method"].iloc[0] for csv in (tmp_path / "results" / "cores").glob("*/progress.csv")}
    assert methods == set(NEW_METHODS)
