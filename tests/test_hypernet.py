"""Hypernetwork: the outer-product GEMM equals per-sample generated weights; Bias-HyperInit."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rl_hyper.models.hypernet import GeneratedLinear
from rl_hyper.models.module import MetaRLModule


def make_module(method: str, action_space=None) -> MetaRLModule:
    action_space = action_space or gym.spaces.Discrete(5)
    action_dim = action_space.n if hasattr(action_space, "n") else action_space.shape[0]
    obs_dim = 3 + action_dim + 1
    return MetaRLModule(
        observation_space=gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32), action_space=action_space,
        model_config={"method": method, "state_dim": 3, "action_dim": action_dim, "reward_dim": 1, "max_seq_len": 61},
    )


@pytest.mark.parametrize("init", ["bias", "kaiming"])
def test_outer_product_form_equals_per_sample_weights(init):
    torch.manual_seed(0)
    layer = GeneratedLinear(7, 4, 3, init=init, base_kind="hidden")
    with torch.no_grad():  # move away from the init so every head matters
        layer.weight_heads.add_(0.1 * torch.randn_like(layer.weight_heads))
        layer.bias_heads.add_(0.1 * torch.randn_like(layer.bias_heads))
    x, cond = torch.randn(5, 7), torch.randn(5, 3)
    weights = layer.generated_weight(cond)  # (5, 4, 7)
    expected = torch.bmm(weights, x.unsqueeze(-1)).squeeze(-1) + layer.generated_bias(cond)
    # independent reference: heads as explicit linear maps from cond to each tensor
    heads = layer.weight_heads.detach()  # (out, C + 1, in): head k's weight for cond_k, last = constant
    manual = torch.stack([heads[:, 3, :] + sum(c[k] * heads[:, k, :] for k in range(3)) for c in cond])
    torch.testing.assert_close(weights, manual)
    torch.testing.assert_close(layer(x, cond), expected, rtol=1e-5, atol=1e-5)


def _generated_layers(module):
    return [layer for trunk in (module.actor, module.critic) for layer in trunk.trunk.layers]


def test_bias_hyperinit_generates_latent_independent_well_scaled_policy():
    torch.manual_seed(1)
    module = make_module("rnn_hn", gym.spaces.Box(-1, 1, (6,), np.float32))
    cond_a, cond_b = torch.randn(1, 25), 3 * torch.randn(1, 25)
    for trunk in (module.actor, module.critic):
        for layer in trunk.trunk.layers:
            torch.testing.assert_close(layer.generated_weight(cond_a), layer.generated_weight(cond_b))
            torch.testing.assert_close(layer.generated_bias(cond_a), layer.generated_bias(cond_b))
    for layer in [*module.actor.trunk.layers, *module.critic.trunk.layers[:-1]]:
        assert torch.count_nonzero(layer.generated_bias(cond_a)) == 0
    row_norms = lambda layer: layer.generated_weight(cond_a)[0].norm(dim=1)  # noqa: E731
    for hidden in module.actor.trunk.layers[:-1]:
        torch.testing.assert_close(row_norms(hidden), torch.full((hidden.out_features,), 5 / 3))
    gaussian_head = module.actor.trunk.layers[-1]
    torch.testing.assert_close(row_norms(gaussian_head), torch.ones(6))
    assert sum(p.numel() for p in module.actor.parameters()) > 2_500_000


def test_critic_head_keeps_torch_default_linear_init():
    """The original's critic head is a default nn.Linear: weight and bias ~ U(-1/sqrt(128), 1/sqrt(128)),
    for the plain critic (RNN+S) and as the generated head's base (RNN+HN)."""
    torch.manual_seed(4)
    bound = 1 / np.sqrt(128)
    plain = make_module("rnn_s").critic.trunk.net[-1]
    generated = make_module("rnn_hn").critic.trunk.layers[-1]
    cond = torch.randn(1, 25)
    for weight, bias in ((plain.weight.detach(), plain.bias.detach()),
                         (generated.generated_weight(cond)[0], generated.generated_bias(cond)[0])):
        assert weight.abs().max() <= bound and weight.abs().max() > 0.8 * bound
        assert bias.abs().max() <= bound and torch.count_nonzero(bias) == 1


def test_kaiming_variant_depends_on_latent_from_the_start():
    torch.manual_seed(2)
    module = make_module("rnn_hn_kaiming")
    cond_a, cond_b = torch.randn(1, 25), torch.randn(1, 25)
    for layer in _generated_layers(module):
        assert not torch.allclose(layer.generated_weight(cond_a), layer.generated_weight(cond_b))


def test_discrete_head_is_small_orthogonal():
    torch.manual_seed(3)
    module = make_module("rnn_s")
    head = module.actor.trunk.net[-1].weight.detach()  # (5, 128)
    torch.testing.assert_close(head @ head.t(), torch.eye(5) * 0.01**2, atol=1e-7, rtol=1e-3)
