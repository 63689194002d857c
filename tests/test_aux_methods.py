"""The auxiliary-objective methods (TI Naive, TI, TI++, TI++HN, VI, VI+HN) on real sampled batches.

Ray-free: SingleAgentEnvRunner samples GridNavi trials, the learner built from the same config
runs its connector pipeline and its updates. Paper grid-world model sizes; for speed every config
samples 4 envs x 60 steps (4 trials per batch, one sequence per minibatch) instead of 16.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

from rl_hyper.models.methods import METHODS
from rl_hyper.models.objectives import objectives_of
from rl_hyper.models.columns import ROLLOUT_LATENT, TASK
from rl_hyper.training.config import build_config
from rl_hyper.training.connectors import AddTaskToTrainBatch

MID = DEFAULT_MODULE_ID


def _setup(method: str, *, warm_up_updates: int | None = None, seed: int = 1, envs: int = 4):
    """(runner, learner, episodes of one sampled batch: `envs` trials) for `method` on GridNavi."""
    aux = None if warm_up_updates is None else {"warm_up_updates": warm_up_updates}
    config = build_config("GridNavi", method, lr=1e-3, seed=seed, eval_interval=0, envs_per_runner=envs, aux=aux)
    runner = SingleAgentEnvRunner(config=config)
    episodes = runner.sample()
    learner = config.build_learner(env=runner.env)
    return runner, learner, episodes


def _train_batch(learner, episodes, *, add_task: bool = False) -> dict:
    """The learner connector's output for the default module: padded (B, T, ...) tensors
    (`add_task`: plus the task column, for a method whose learner does not need it)."""
    episodes = copy.deepcopy(episodes)
    batch = learner._learner_connector(rl_module=learner.module, batch={}, episodes=episodes,
                                       shared_data={}, metrics=learner.metrics)
    if add_task:
        batch = AddTaskToTrainBatch()(rl_module=learner.module, episodes=episodes, batch=batch)
    return batch[MID]


def _update(learner, episodes) -> dict:
    """One learner update (all epochs and minibatches) -> {metric name: float}."""
    results = learner.update(episodes=copy.deepcopy(episodes), num_epochs=2, minibatch_size=61,
                             shuffle_batch_per_epoch=True)[MID]
    return {name: float(stat.peek()) for name, stat in results.items()}


def _module(learner):
    return learner.module[MID].unwrapped()


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_samples_and_updates(method, registered_envs):
    _, learner, episodes = _setup(method, warm_up_updates=1)
    module = _module(learner)
    encoder_before = _snapshot(module.encoder)
    metrics = _update(learner, episodes)
    assert np.isfinite(metrics["total_loss"]) and np.isfinite(metrics["latent_norm"])
    row = METHODS[method]
    expected = {name for objective in objectives_of(row) for name in objective.metric_names}
    if row.warm_up == "reset":
        expected = set()  # encoder frozen during the warm-up: no auxiliary loss yet
    aux_logged = {name for name in metrics if name.startswith("aux_") and name != "aux_learning_rate"}
    assert aux_logged == expected
    encoder_changed = any(not torch.equal(p, encoder_before[n]) for n, p in module.encoder.named_parameters())
    assert encoder_changed == (row.warm_up != "reset"), "TI's encoder must stay frozen during its warm-up"
    if row.warm_up != "none":
        assert metrics["warm_up"] == 1.0
        assert not bool(module.warm_up_active)  # N = 1: the warm-up ended after this update
        second = _update(learner, episodes)
        assert second["warm_up"] == 0.0 and "aux_task_loss" in second


@pytest.mark.parametrize("method", list(METHODS))
def test_the_learner_gives_each_sampled_action_its_sampling_probability(method, registered_envs):
    """The learner's forward pass over the sampled trials, with the weights the env runner acted
    with, gives every action the log-probability recorded at sampling (PPO's ratio is exactly 1):
    the encoder over the trial, the recorded latent, the normalisers and the step alignment all
    agree between sampling and learning. After one update, so that the hypernetworks' weight heads
    (zero under Bias-HyperInit) read their input, the normalisers have statistics and the TI
    warm-up has ended. For the methods whose policy acts on the recorded latent, that latent also
    equals the encoder's posterior over the trial from the core's initial state, the latent the
    VAE objective trains (no core state leaks between the runner's trials)."""
    runner, learner, episodes = _setup(method, warm_up_updates=1 if METHODS[method].warm_up != "none" else None)
    module = _module(learner)
    _update(learner, episodes)
    runner.module.set_state(module.get_state())
    batch = _train_batch(learner, runner.sample())
    steps = batch[Columns.LOSS_MASK]
    with torch.no_grad():
        features = module.features_at(module.forward_train(batch)[Columns.EMBEDDINGS], steps)
        dist = module.get_train_action_dist_cls().from_logits(module.action_dist_inputs(features))
        logp = dist.logp(batch[Columns.ACTIONS][steps])
    assert steps.sum() == 4 * 60
    torch.testing.assert_close(logp, batch[Columns.ACTION_LOGP][steps], atol=1e-5, rtol=0)
    if not METHODS[method].rl_grad_to_encoder:
        with torch.no_grad():
            mu, logvar = module.posterior(batch[Columns.OBS])
        torch.testing.assert_close(batch[ROLLOUT_LATENT][steps], torch.cat([mu, logvar], dim=-1)[steps],
                                   atol=1e-5, rtol=0)


def test_task_column_has_the_obs_layout_and_the_episode_tasks(registered_envs):
    _, learner, episodes = _setup("ti_naive", seed=3)  # seed 3: the batch has steps paid +1
    batch = _train_batch(learner, episodes)
    obs, task, mask = batch[Columns.OBS], batch[TASK], batch[Columns.LOSS_MASK]
    assert task.shape == (*obs.shape[:2], 2) and task.dtype == torch.float32
    assert batch[Columns.VF_PREDS].shape == obs.shape[:2]  # the GAE columns share the layout
    real = mask | torch.cat([torch.zeros_like(mask[:, :1]), mask[:, :-1]], dim=1)  # + bootstrap step
    assert torch.all(task[~real] == 0)  # padding is zero
    goals = {tuple(t) for t in task[real].tolist()}
    assert len(goals) > 1  # several tasks in one batch
    assert torch.any(real & (obs[..., -1] == 1.0))
    for row in range(task.shape[0]):  # one trial per row: one goal, on the 5x5 grid, off the start block
        row_goals = task[row][real[row]]
        assert torch.all(row_goals == row_goals[0])
        gx, gy = row_goals[0].tolist()
        assert 0 <= gx <= 4 and 0 <= gy <= 4 and not (gx < 2 and gy < 2)
        # GridNavi pays +1 exactly on the goal: wherever a step was paid +1, the agent stood on it
        paid = real[row] & (obs[row, :, -1] == 1.0)
        assert torch.all(obs[row, paid, :2] == row_goals[0])


@pytest.mark.parametrize("method", list(METHODS))  # every core x conditioning x objective of the table
def test_ppo_gradient_reaches_the_encoder_only_without_aux_objective(method, registered_envs):
    stopped = not METHODS[method].rl_grad_to_encoder
    _, learner, episodes = _setup(method, warm_up_updates=0)  # after the warm-up, for TI methods
    learner.update(episodes=copy.deepcopy(episodes))  # one update, so the hypernetwork heads are non-zero
    batch = _train_batch(learner, episodes)
    module = _module(learner)
    config = learner.config.get_config_for_module(MID)
    fwd_out = module.forward_train(batch)
    ppo = learner.compute_loss_for_module(module_id=MID, config=config, batch=batch, fwd_out=fwd_out)
    params = list(module.encoder.parameters())
    grads = torch.autograd.grad(ppo, params, allow_unused=True, retain_graph=True)
    nonzero = [g is not None and bool(g.abs().sum() > 0) for g in grads]
    if stopped:
        assert not any(nonzero)
        sample = learner._trial_buffers[MID].sample(4, np.random.default_rng(0))
        aux, _ = learner.vae_loss(module, sample, kl_weight=1.0)
        aux_grads = torch.autograd.grad(aux, params, allow_unused=True)
        assert any(g is not None and bool(g.abs().sum() > 0) for g in aux_grads)  # the encoder does learn
    else:
        assert any(nonzero)


@pytest.mark.parametrize("method,loss_name,envs", [("vi_hn", "elbo", 4), ("ti_naive", "task", 16)])
def test_repeated_updates_on_one_batch_halve_the_aux_loss(method, loss_name, envs, registered_envs):
    """The VAE steps draw from the trial buffer, which here holds copies of this batch only.
    16 trials for the task loss: its floor early in a trial is the goals' variance in the batch,
    about 1/4 of the initial error over the 21 goals, but noisy with only 4 trials."""
    _, learner, episodes = _setup(method, seed=3, envs=envs)  # seed 3: the 4-trial batch has steps paid +1
    batch = _train_batch(learner, episodes)
    module = _module(learner)
    steps = batch[Columns.LOSS_MASK] | torch.cat([torch.zeros_like(batch[Columns.LOSS_MASK][:, :1]),
                                                  batch[Columns.LOSS_MASK][:, :-1]], dim=1)

    def loss() -> float:
        torch.manual_seed(0)  # the same latent samples every time
        with torch.no_grad():
            mu, logvar = module.posterior(batch[Columns.OBS])
            if loss_name == "elbo":
                return float(module.objectives[0].terms(module, batch[Columns.OBS], mu, logvar, steps)[0][steps].mean())
            return float(module.objectives[-1].errors(module, batch[TASK], mu, logvar)[steps].mean())

    before = loss()
    for _ in range(25):
        learner.update(episodes=copy.deepcopy(episodes), num_epochs=2, minibatch_size=envs * 61 // 4)
    after = loss()
    print(f"{method} {loss_name}: {before:.4f} -> {after:.4f}")
    assert after <= 0.5 * before


def test_grid_reward_targets_match_the_goal(registered_envs):
    """A decoder that knows the goal (cell k = x * 5 + y) explains every observed reward; one that
    names the start cell (visited at t=0, never the goal) does not: the targets are (position,
    paid +1) pairs of the right steps."""
    _, learner, episodes = _setup("vi", seed=3)  # seed 3: the batch has steps paid +1
    batch = _train_batch(learner, episodes, add_task=True)
    module = _module(learner)
    steps = batch[Columns.LOSS_MASK] | torch.cat([torch.zeros_like(batch[Columns.LOSS_MASK][:, :1]),
                                                  batch[Columns.LOSS_MASK][:, :-1]], dim=1)
    goal = batch[TASK].long()  # (B, T, 2) from the env's infos

    class Oracle(torch.nn.Module):  # ignores z, names the given cell of every step
        def __init__(self, logits: torch.Tensor):
            super().__init__()
            self.logits = logits

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.logits

    def nll_of_decoder_naming(cells: torch.Tensor) -> float:
        module.decoder.net = Oracle(torch.full((*cells.shape, 25), -30.0).scatter(-1, cells.unsqueeze(-1), 30.0))
        mu, logvar = module.posterior(batch[Columns.OBS])
        return float(module.objectives[0].terms(module, batch[Columns.OBS], mu, logvar, steps)[0][steps].mean())

    true_cells = goal[..., 0] * 5 + goal[..., 1]
    assert nll_of_decoder_naming(true_cells) < 1e-6
    assert nll_of_decoder_naming(torch.zeros_like(true_cells)) > 25.0


def test_env_runner_acts_on_the_episode_task_during_warm_up(registered_envs):
    runner, _, episodes = _setup("ti")
    module = runner.module
    assert bool(module.warm_up_active)
    done = [e for e in episodes if e.is_done]
    assert len(done) >= 2
    tasks = [np.stack([i["task"] for i in e.get_infos()[:-1]]) for e in done]
    assert any(not np.array_equal(tasks[0], t) for t in tasks[1:]), "need two different goals"

    def logits(episode, task: np.ndarray, h: torch.Tensor) -> torch.Tensor:
        obs = torch.as_tensor(np.asarray(episode.get_observations())[:-1]).unsqueeze(0)
        batch = {Columns.OBS: obs, TASK: torch.as_tensor(task).unsqueeze(0), Columns.STATE_IN: {"h": h}}
        with torch.no_grad():
            return module._forward(batch)[Columns.ACTION_DIST_INPUTS][0]

    for index, episode in enumerate(done):
        sampled = torch.as_tensor(np.asarray(episode.get_extra_model_outputs(Columns.ACTION_DIST_INPUTS)))
        other = next(t for t in tasks if not np.array_equal(t, tasks[index]))
        noise = torch.randn(1, module.sizes.gru_hidden)  # a different latent: no effect in warm-up
        torch.testing.assert_close(logits(episode, tasks[index], noise), sampled, rtol=1e-4, atol=1e-5)
        assert not torch.allclose(logits(episode, other, noise), sampled, rtol=1e-4, atol=1e-5)


def test_ti_warm_up_end_resets_the_policy_but_not_g(registered_envs):
    _, learner, episodes = _setup("ti", warm_up_updates=2)
    module = _module(learner)
    assert _update(learner, episodes)["warm_up"] == 1.0 and bool(module.warm_up_active)
    before = _snapshot(module)
    assert len(learner.get_optimizer(MID).state) > 0
    learner.end_warm_up(MID)
    after = _snapshot(module)
    assert not bool(module.warm_up_active)
    policy = [n for n in after if n.split(".")[0] in ("latent_embedding", "state_embedding", "actor", "critic")]
    kept = [n for n in after if n.split(".")[0] in ("task_embedding", "encoder", "decoder", "task_decoder")]
    assert len(policy) + len(kept) == len(after)
    assert all(not torch.equal(after[n], before[n]) for n in policy)
    assert all(torch.equal(after[n], before[n]) for n in kept)
    assert len(learner.get_optimizer(MID).state) == 0  # fresh Adam moments for the fresh policy


def test_ti_warm_up_ends_after_n_updates_and_the_latent_takes_over(registered_envs):
    _, learner, episodes = _setup("ti", warm_up_updates=2)
    module = _module(learner)
    flags = [_update(learner, episodes)["warm_up"] for _ in range(3)]
    assert flags == [1.0, 1.0, 0.0]
    assert int(module.warm_up_updates_done) == 2 and not bool(module.warm_up_active)


def test_ti_pp_hn_keeps_its_parameters_across_the_switch(registered_envs):
    _, learner, episodes = _setup("ti_pp_hn", warm_up_updates=2)
    module = _module(learner)
    _update(learner, episodes)
    before = _snapshot(module)
    state_size = len(learner.get_optimizer(MID).state)
    learner.end_warm_up(MID)
    after = _snapshot(module)
    assert not bool(module.warm_up_active)
    assert all(torch.equal(after[n], before[n]) for n in before)
    assert len(learner.get_optimizer(MID).state) == state_size > 0


@pytest.mark.parametrize("method", list(METHODS))
def test_outside_warm_up_the_policy_never_sees_the_task(method, registered_envs):
    _, learner, episodes = _setup(method, warm_up_updates=0)
    learner.update(episodes=copy.deepcopy(episodes))  # non-trivial weights (hypernetwork heads)
    batch = dict(_train_batch(learner, episodes))
    module = _module(learner)
    assert not module.in_warm_up()

    def outputs(task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch[TASK] = task
        with torch.no_grad():
            features = module.forward_train(batch)[Columns.EMBEDDINGS]
            return module.action_dist_inputs(features), module.compute_values(batch, embeddings=features)

    shape = (*batch[Columns.OBS].shape[:2], 2)
    generator = torch.Generator().manual_seed(0)
    task = torch.randint(0, 5, shape, generator=generator).float()
    logits, values = outputs(task)
    logits_perm, values_perm = outputs(task[torch.randperm(shape[0], generator=generator)].flip(1))
    assert torch.equal(logits, logits_perm) and torch.equal(values, values_perm)


def test_during_warm_up_the_policy_follows_the_task(registered_envs):
    """The counterpart of the test above: the same check does detect a policy that reads the task."""
    _, learner, episodes = _setup("ti", warm_up_updates=5)
    learner.update(episodes=copy.deepcopy(episodes))
    batch = dict(_train_batch(learner, episodes))
    module = _module(learner)
    with torch.no_grad():
        logits = module.action_dist_inputs(module.forward_train(batch)[Columns.EMBEDDINGS])
        batch[TASK] = batch[TASK] + 1.0  # every goal moved
        flipped = module.action_dist_inputs(module.forward_train(batch)[Columns.EMBEDDINGS])
    assert not torch.allclose(logits, flipped)
