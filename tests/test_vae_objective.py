"""VariBAD's objective as the original code trains it: the trial buffer, the VAE steps after the PPO
epochs, the loss's reductions, and the policy's latent normaliser.

Ray-free where it can be: SingleAgentEnvRunner samples GridNavi trials and the learner built from
the same config runs its real updates (4 envs x 60 steps, 4 trials per batch, for speed).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

from rl_hyper.models.methods import METHODS
from rl_hyper.models.normalize import RunningMeanStd
from rl_hyper.training.config import build_config
from rl_hyper.training.settings import UnknownFamilyError, aux_settings, lookup
from rl_hyper.models.objectives import (ELBOObjective, TaskObjective, elbo_reduction, objectives_of, task_reduction,
                                        usable_targets)
from rl_hyper.training.trial_buffer import STEPS, TrialBuffer

MID = DEFAULT_MODULE_ID


def _runner_and_learner(method: str = "vi_hn", **aux):
    config = build_config("GridNavi", method, lr=1e-3, seed=2, eval_interval=0, envs_per_runner=4, aux=aux)
    runner = SingleAgentEnvRunner(config=config)
    return runner, config.build_learner(env=runner.env)


def _update(learner, episodes) -> dict:
    results = learner.update(episodes=copy.deepcopy(episodes), num_epochs=2, minibatch_size=61)[MID]
    return {name: float(stat.peek()) for name, stat in results.items()}


def _trial_rows(episodes) -> set[bytes]:
    """Each complete trial's observations (its steps and the bootstrap step), as bytes."""
    return {np.asarray(e.get_observations(), np.float32).tobytes() for e in episodes if e.is_done}


def _buffer_rows(buffer: TrialBuffer) -> set[bytes]:
    obs, lengths = buffer.columns[Columns.OBS], buffer.lengths
    return {obs[i, :lengths[i]].numpy().tobytes() for i in range(len(buffer))}


def test_vae_objective_reductions_on_a_hand_computed_example():
    """Reconstruction summed over ELBO terms and averaged over sequences; KL and task loss summed
    over both (the original's reductions)."""
    steps = torch.tensor([[True, True, False], [True, True, True]])
    nll = torch.tensor([[1.0, 2.0, 99.0], [3.0, 4.0, 5.0]])
    kl = torch.tensor([[0.5, 0.5, 99.0], [1.0, 1.0, 1.0]])
    task = torch.tensor([[0.25, 0.25, 99.0], [0.5, 0.5, 0.5]])
    parts = elbo_reduction(steps, nll, kl, kl_weight=0.1)
    assert parts["aux_reconstruction_nll"].item() == pytest.approx((1 + 2 + 3 + 4 + 5) / 2)  # 7.5
    assert parts["aux_kl"].item() == pytest.approx(0.5 + 0.5 + 1 + 1 + 1)  # 4.0
    assert parts["aux_elbo"].item() == pytest.approx(7.5 + 0.1 * 4.0)
    assert task_reduction(steps, task)["aux_task_loss"].item() == pytest.approx(0.25 + 0.25 + 0.5 * 3)  # 2.0


def test_decoding_targets_at_an_inner_episode_boundary_on_a_hand_example():
    """Six observed steps (the seventh is padding), obs 3 has the inner-episode-ended flag up.
    "terminal" (obs 3 shows where the episode ended, then the agent acts from the start state):
    (s_3, r_3) is whole, the transition into s_4 starts from the start state, not s_3.
    "reset" (obs 3 shows the next start): (s_3, r_3) pairs the start with the last reward.
    A transition has no s_{-1} at step 0. The original decodes every transition of the trial."""
    steps = torch.tensor([[True] * 6 + [False]])
    flag = torch.tensor([[False, False, False, True, False, False, False]])

    def left_out(boundary, reads_previous_state):
        kept = usable_targets(steps, flag, boundary, reads_previous_state)
        return [j for j in range(6) if not kept[0, j]]

    assert left_out("terminal", False) == []  # GridNavi's multi-head reward decoder
    assert left_out("reset", False) == [3]
    assert left_out("terminal", True) == [0, 4]  # MuJoCo's transition decoders
    assert left_out("reset", True) == [0, 3]
    assert left_out(None, True) == [0]
    assert not usable_targets(steps, flag, "terminal", False)[0, 6]  # padding stays out


def test_each_env_tells_the_decoder_what_its_boundary_obs_shows():
    boundaries = {env: build_config(env, "vi", lr=1e-3, seed=0).model_config["inner_boundary"]
                  for env in ("GridNavi", "MC-LS")}
    assert boundaries == {"GridNavi": "terminal", "MC-LS": "reset"}


def test_kl_weight_relative_to_reconstruction_grows_with_the_sequences_drawn():
    """Doubling the batch with copies of itself leaves the reconstruction term and doubles the KL."""
    steps = torch.ones(2, 4, dtype=torch.bool)
    nll, kl = torch.rand(2, 4), torch.rand(2, 4)
    one = elbo_reduction(steps, nll, kl, kl_weight=1.0)
    two = elbo_reduction(steps.repeat(2, 1), nll.repeat(2, 1), kl.repeat(2, 1), kl_weight=1.0)
    assert two["aux_reconstruction_nll"].item() == pytest.approx(one["aux_reconstruction_nll"].item())
    assert two["aux_kl"].item() == pytest.approx(2 * one["aux_kl"].item())


def test_trial_buffer_keeps_the_newest_and_samples_distinct_rows():
    buffer = TrialBuffer(capacity=5)
    marks = torch.arange(7, dtype=torch.float32)
    obs = marks.view(7, 1, 1).expand(7, 4, 3).clone()  # row i is all i
    lengths = torch.tensor([4, 3, 2, 4, 1, 4, 2])
    buffer.add({Columns.OBS: obs[:3]}, lengths[:3])
    assert len(buffer) == 3
    buffer.add({Columns.OBS: obs[3:]}, lengths[3:])
    assert len(buffer) == 5
    stored = sorted(buffer.columns[Columns.OBS][:5, 0, 0].tolist())
    assert stored == [2.0, 3.0, 4.0, 5.0, 6.0]  # rows 0 and 1, the oldest, were overwritten
    sample = buffer.sample(3, np.random.default_rng(0))
    drawn = sample[Columns.OBS][:, 0, 0].tolist()
    assert len(set(drawn)) == 3 and set(drawn) <= set(stored)
    for row, mark in enumerate(drawn):
        assert sample[STEPS][row].tolist() == [t < lengths[int(mark)] for t in range(4)]
    assert buffer.sample(50, np.random.default_rng(0))[Columns.OBS].shape[0] == 5
    buffer.add({Columns.OBS: obs[:2]}, torch.tensor([0, 0]))  # sequences without an observed step
    assert sorted(buffer.columns[Columns.OBS][:5, 0, 0].tolist()) == stored
    with pytest.raises(ValueError, match="empty"):
        TrialBuffer(capacity=2).sample(1, np.random.default_rng(0))


def test_every_update_adds_its_trials_and_the_vae_draws_from_the_buffer(registered_envs):
    runner, learner = _runner_and_learner("vi_hn", vae_batch_trajectories=8)
    buffer = learner._trial_buffers[MID]
    first = runner.sample()
    with pytest.raises(ValueError, match="empty"):  # the VAE step reads the buffer and nothing else
        learner.train_vae(MID)
    _update(learner, first)
    second = runner.sample()
    _update(learner, second)
    assert len(buffer) == 8
    assert _buffer_rows(buffer) == _trial_rows(first) | _trial_rows(second)


def test_only_the_vae_steps_train_the_encoder_after_the_ppo_epochs(registered_envs):
    runner, learner = _runner_and_learner("vi_hn", vae_updates=0)
    episodes = runner.sample()
    module = learner.module[MID].unwrapped()
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    metrics = _update(learner, episodes)
    assert all(torch.equal(p, before[n]) for n, p in module.named_parameters()
               if n.startswith(("encoder.", "decoder.")))  # PPO's minibatches leave them alone
    assert "aux_elbo" not in metrics
    assert any(not torch.equal(p, before[n]) for n, p in module.named_parameters() if n.startswith("actor."))
    learner.train_vae(MID)  # the same learner with vae_updates=0 takes no VAE step
    assert all(torch.equal(p, before[f"encoder.{n}"]) for n, p in module.encoder.named_parameters())

    runner, learner = _runner_and_learner("vi_hn")  # the grid default: 3 VAE steps per update
    module = learner.module[MID].unwrapped()
    before = {n: p.detach().clone() for n, p in module.encoder.named_parameters()}
    metrics = _update(learner, runner.sample())
    assert np.isfinite(metrics["aux_elbo"])
    assert any(not torch.equal(p, before[n]) for n, p in module.encoder.named_parameters())


@pytest.mark.parametrize("method", [m for m in METHODS if m.startswith("ti")])
def test_task_inference_methods_are_built_on_varibad(method, registered_envs):
    """As in the original: every TI method has VariBAD's decoder, KL and normalised latent, and
    adds its task loss to that objective."""
    _, learner = _runner_and_learner(method)
    module = learner.module[MID].unwrapped()
    assert hasattr(module, "decoder") and hasattr(module, "task_decoder") and hasattr(module, "latent_norm")
    assert METHODS[method].aux_loss.startswith("elbo+task_")
    aux_params = {id(p) for p in module.aux_parameters()}
    assert {id(p) for p in module.decoder.parameters()} <= aux_params
    assert {id(p) for p in module.task_decoder.parameters()} <= aux_params


def test_latent_normaliser_stays_bounded_when_the_latent_shifts_by_many_stds():
    """The grid settings' normaliser (the one vi / vi_hn read): fed a near-constant latent for three
    updates, then a latent shifted by 50 of those stds, its output never leaves [-clip, clip], and
    within ten windows it is centred and scaled on the new latent again. Cumulative statistics
    (the earlier code's) put the shifted latent at about 50, and later squash it."""
    settings = aux_settings("GridNavi")
    batch = 960  # latents per grid update
    bounded = RunningMeanStd(10, max_count=settings.latent_norm_window * batch, clip=settings.latent_norm_clip)
    cumulative = RunningMeanStd(10)
    generator = torch.Generator().manual_seed(0)
    early = [0.02 * torch.randn(batch, 10, generator=generator) for _ in range(3)]
    shifted = [1.0 + 0.02 * torch.randn(batch, 10, generator=generator) for _ in range(10 * int(settings.latent_norm_window))]
    for latents in early:
        bounded.update(latents)
        cumulative.update(latents)
    assert cumulative(shifted[0]).abs().mean() > 40
    worst = 0.0
    for latents in shifted:
        worst = max(worst, float(bounded(latents).abs().max()))
        bounded.update(latents)
        cumulative.update(latents)
    assert worst <= settings.latent_norm_clip
    final = bounded(shifted[-1])
    assert final.mean().abs() < 0.25 and 0.5 < final.std() < 2.0
    assert cumulative(shifted[-1]).std() < 0.2
    assert math.isinf(RunningMeanStd(3).clip)  # the state normaliser keeps plain statistics


def test_grid_settings_match_the_original_vae_schedule():
    grid, mujoco, minecraft = aux_settings("GridNavi"), aux_settings("CheetahDir"), aux_settings("MC-LS")
    assert (grid.vae_buffer_trajectories, grid.vae_batch_trajectories, grid.vae_updates) == (100_000, 25, 3)
    assert (mujoco.vae_buffer_trajectories, mujoco.vae_batch_trajectories, mujoco.vae_updates) == (10_000, 10, 1)
    assert (minecraft.vae_buffer_trajectories, minecraft.vae_batch_trajectories, minecraft.vae_updates) == (10_000, 25, 3)
    small = build_config("GridNavi", "vi", lr=1e-3, seed=0, frames=9_600, eval_interval=0)
    assert small.learner_config_dict["vae_buffer_trajectories"] == 160  # 10 updates x 16 trials: the budget's


def test_each_method_sums_the_losses_of_its_objectives(registered_envs):
    """The learner's auxiliary loss is the sum of the method's objectives' losses (ELBO, then the
    task loss for the TI methods) on the same buffer sample and latent draws."""
    runner, learner = _runner_and_learner("ti_naive")
    _update(learner, runner.sample())
    module = learner.module[MID].unwrapped()
    assert [type(o) for o in objectives_of(METHODS["ti_naive"])] == [ELBOObjective, TaskObjective]
    sample = learner._trial_buffers[MID].sample(4, np.random.default_rng(0))
    torch.manual_seed(0)
    total, parts = learner.vae_loss(module, sample, kl_weight=1.0)
    torch.manual_seed(0)
    mu, logvar = module.posterior(sample[Columns.OBS])
    elbo, _ = module.objectives[0].loss(module, sample, mu, logvar, sample[STEPS], 1.0)
    task, _ = module.objectives[1].loss(module, sample, mu, logvar, sample[STEPS], 1.0)
    torch.testing.assert_close(total, elbo + task)
    assert set(parts) == {"aux_reconstruction_nll", "aux_kl", "aux_elbo", "aux_task_loss"}


def test_an_env_family_without_settings_is_a_named_error():
    with pytest.raises(UnknownFamilyError, match="family 'mujoco'"):
        lookup({"grid": aux_settings("GridNavi")}, "CheetahDir")
