"""The original code's optimisation and its switches (training/learner.py): separate encoder Adam,
random-step minibatches over all trials, Huber value loss. Ray-free, on real GridNavi batches."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

from rl_hyper.training.config import build_config
from rl_hyper.training.learner import (ENCODER_OPTIMIZER, MINIBATCH_MASK, MetaPPOLearner, random_step_masks,
                                       value_error_fn)

MID = DEFAULT_MODULE_ID


class RecordingLearner(MetaPPOLearner):
    """MetaPPOLearner that keeps the (B, T) step mask of every minibatch its PPO loss saw."""

    def build(self) -> None:
        super().build()
        self.seen_masks: list[torch.Tensor] = []

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        steps = batch[MINIBATCH_MASK] if MINIBATCH_MASK in batch else batch[Columns.LOSS_MASK]
        self.seen_masks.append(steps.clone())
        return super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)


def _config(method: str = "rnn_hn", **ppo):
    config = build_config("GridNavi", method, lr=1e-3, seed=3, eval_interval=0, ppo=ppo)
    config.learners(learner_class=RecordingLearner)
    return config


def _sample_and_update(config):
    runner = SingleAgentEnvRunner(config=config)
    episodes = runner.sample()
    learner = config.build_learner(env=runner.env)
    learner.update(episodes=copy.deepcopy(episodes), num_epochs=config.num_epochs,
                   minibatch_size=config.minibatch_size, shuffle_batch_per_epoch=config.shuffle_batch_per_epoch)
    return learner


def _optimizers(learner) -> dict[str, torch.optim.Optimizer]:
    return {name.removeprefix(f"{MID}_"): optimizer for name, optimizer in learner._named_optimizers.items()}


def test_encoder_has_its_own_adam_with_eps_1e8_and_the_policy_lr(registered_envs):
    learner = _config("rnn_hn").build_learner(env=SingleAgentEnvRunner(config=_config("rnn_hn")).env)
    module = learner.module[MID].unwrapped()
    optimizers = _optimizers(learner)
    encoder_ids = {id(p) for p in module.encoder.parameters()}
    encoder_group = optimizers[ENCODER_OPTIMIZER].param_groups[0]
    policy_group = optimizers["default_optimizer"].param_groups[0]
    assert {id(p) for p in encoder_group["params"]} == encoder_ids
    assert not encoder_ids & {id(p) for p in policy_group["params"]}
    assert encoder_group["eps"] == 1e-8 and policy_group["eps"] == 1e-5  # grid-world PPO Adam eps
    assert encoder_group["lr"] == policy_group["lr"] == pytest.approx(1e-3)


def test_joint_encoder_optimizer_switch_keeps_one_adam(registered_envs):
    config = _config("rnn", encoder_optimizer="joint")
    learner = config.build_learner(env=SingleAgentEnvRunner(config=config).env)
    assert list(_optimizers(learner)) == ["default_optimizer"]


def test_encoder_gradient_clipped_on_its_own(registered_envs):
    """Each optimiser's gradients are clipped to norm 0.5 separately: after the update the encoder
    moved although the policy's much larger gradient alone would have shrunk it under a joint clip."""
    config = _config("rnn")
    learner = config.build_learner(env=SingleAgentEnvRunner(config=config).env)
    module = learner.module[MID].unwrapped()
    for p in module.parameters():
        p.grad = torch.ones_like(p)
    grads = {p: p.grad for p in module.parameters()}
    clipped = learner.postprocess_gradients(grads)
    encoder = [clipped[p] for p in module.encoder.parameters()]
    policy = [g for p, g in clipped.items() if all(p is not q for q in module.encoder.parameters())]
    norm = lambda gs: float(torch.sqrt(sum(g.pow(2).sum() for g in gs)))  # noqa: E731
    assert norm(encoder) == pytest.approx(0.5, rel=1e-4)
    assert norm(policy) == pytest.approx(0.5, rel=1e-4)


def test_random_step_masks_partition_the_real_steps():
    loss_mask = torch.zeros(16, 61, dtype=torch.bool)
    loss_mask[:, :60] = True
    masks = random_step_masks(loss_mask, 4, np.random.default_rng(0))
    stacked = torch.stack(masks)
    assert [int(m.sum()) for m in masks] == [240] * 4
    assert int(stacked.sum(0).max()) == 1  # disjoint
    assert torch.equal(stacked.any(0), loss_mask)  # 960 = 4 x 240: every real step once
    assert all(int(m.any(1).sum()) == 16 for m in masks)  # each minibatch draws from all 16 trials


def test_update_uses_random_step_minibatches_of_all_trials(registered_envs):
    learner = _sample_and_update(_config("rnn_hn"))
    masks = learner.seen_masks
    assert len(masks) == 8  # 2 epochs x 4 minibatches
    assert all(m.shape == (16, 61) and int(m.sum()) == 240 for m in masks)
    assert all(int(m.any(1).sum()) == 16 for m in masks)
    for epoch in (masks[:4], masks[4:]):
        assert int(torch.stack(epoch).sum(0).max()) == 1
    assert not torch.equal(masks[0], masks[4])  # a new permutation every epoch


def test_sequences_switch_gives_minibatches_of_whole_trials(registered_envs):
    learner = _sample_and_update(_config("rnn_hn", minibatch_mode="sequences"))
    assert len(learner.seen_masks) == 8
    assert all(m.shape == (4, 61) and int(m.sum()) == 240 for m in learner.seen_masks)


def test_huber_value_error_by_hand():
    values = torch.tensor([0.0, 0.0, 1.0])
    targets = torch.tensor([3.0, 0.5, -1.0])
    # smooth L1 with beta 1: |e| - 0.5 where |e| >= 1, else e^2 / 2
    torch.testing.assert_close(value_error_fn("huber")(values, targets), torch.tensor([2.5, 0.125, 1.5]))
    torch.testing.assert_close(value_error_fn("squared")(values, targets), torch.tensor([9.0, 0.25, 4.0]))
    with pytest.raises(ValueError, match="unknown value_loss"):
        value_error_fn("l1")


def test_learner_value_loss_is_huber_by_default(registered_envs):
    """One epoch of one minibatch (all 960 steps, the network unchanged, so v == v_old): the logged
    vf_loss is 0.5 x the mean Huber loss of the old values against the targets."""
    config = _config("rnn", num_epochs=1, minibatches=1)
    runner = SingleAgentEnvRunner(config=config)
    episodes = runner.sample()
    learner = config.build_learner(env=runner.env)
    batch = learner._learner_connector(rl_module=learner.module, batch={}, episodes=copy.deepcopy(episodes),
                                       shared_data={}, metrics=learner.metrics)[MID]
    mask = batch[Columns.LOSS_MASK]
    old, targets = batch[Columns.VF_PREDS][mask], batch["value_targets"][mask]
    huber = float(0.5 * F.smooth_l1_loss(old, targets, reduction="none").mean())
    squared = float(0.5 * (old - targets).pow(2).mean())
    results = learner.update(episodes=copy.deepcopy(episodes), num_epochs=1)[MID]
    assert len(learner.seen_masks) == 1 and int(learner.seen_masks[0].sum()) == 960
    assert float(results["vf_loss"].peek()) == pytest.approx(huber, rel=1e-3)
    assert abs(squared - huber) > 1e-3  # the two losses differ on this batch
