"""(env, method, hyper-parameters) -> RLlib PPOConfig, with the paper's settings per environment
(the tables of training/settings.py).

Every PPO setting is set explicitly: RLlib's defaults (KL penalty, lr 5e-5, 30 epochs, ...) are not the paper's.

Batch arithmetic: one update uses `parallel_envs * rollout_steps` env steps; a stateful module's
batch is cut into sequences of at most `max_seq_len` steps plus one bootstrap step each. With
`minibatch_mode: sequences`, RLlib's `minibatch_size` counts those padded steps, so it is derived
from the padded batch size; with "random_steps" (the default) the learner cuts the real steps into
`minibatches` itself (training/learner.py) and RLlib's `minibatch_size` is not used.
"""

from __future__ import annotations

import functools
import math

from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rl_hyper.envs.gridworld import GRID_SIZE
from rl_hyper.envs.registry import make_trial_env
from rl_hyper.models.methods import get_method
from rl_hyper.models.module import MetaRLModule
from rl_hyper.training.callbacks import MetaMetricsCallbacks
from rl_hyper.training.connectors import AddCurrentTaskToBatch
from rl_hyper.training.evaluation import EvaluationSettings
from rl_hyper.training.learner import MetaPPOLearner
from rl_hyper.training.settings import MODEL_SIZES, aux_settings, lookup, ppo_settings


def padded_minibatch_size(num_envs: int, rollout_steps: int, max_seq_len: int, minibatches: int) -> int:
    """Padded time steps per minibatch so that one epoch makes `minibatches` updates.

    Each env's rollout of `rollout_steps` is cut into ceil(rollout / (max_seq_len - 1))
    sequences, each padded to `max_seq_len` (trial steps plus PPO's bootstrap step). A minibatch
    holds at least one whole sequence (fewer envs than minibatches give fewer minibatches).
    """
    sequences_per_env = math.ceil(rollout_steps / (max_seq_len - 1))
    return max(max_seq_len, math.ceil(num_envs * sequences_per_env * max_seq_len / minibatches))


def build_config(env: str, method: str, *, lr: float, seed: int, frames: int | None = None,
                 num_env_runners: int = 0, envs_per_runner: int | None = None, ppo: dict | None = None,
                 env_config: dict | None = None, max_seq_len: int | None = None,
                 eval_interval: int = 10, eval_tasks: int = 16, eval_task_set: str = "all", eval_deterministic: bool = True,
                 num_gpus_per_learner: float = 0, main_process_cpus: int = 1, aux: dict | None = None) -> PPOConfig:
    """The PPOConfig of one trial.

    env / method: registry names (validated here). frames: budget (used for LR decay; stopping is
    the caller's). envs_per_runner: default = the paper's parallel envs spread over the runners.
    max_seq_len: backprop length; default = full trial (+1 bootstrap step). eval_interval: in
    iterations (0 = no evaluation); eval_tasks, eval_task_set ("all" | "sampled"),
    eval_deterministic: see training/evaluation.py.
    main_process_cpus: CPUs of the trial's own process (sampling with 0 runners, and learning);
    it runs that many torch threads. aux: overrides of the env's `AuxSettings` (field -> value).
    """
    method_row = get_method(method)
    settings = ppo_settings(env, ppo)
    aux_set = aux_settings(env, aux)
    frames = frames or settings.frames
    probe = make_trial_env(env, env_config)
    runners = max(num_env_runners, 1)
    envs_per_runner = envs_per_runner or max(1, settings.parallel_envs // runners)
    num_envs = runners * envs_per_runner
    max_seq_len = max_seq_len or probe.trial_length + 1
    model_config = {"method": method, "max_seq_len": max_seq_len, "trial_length": probe.trial_length,
                    **probe.layout.as_model_config(),
                    **lookup(MODEL_SIZES, env)}
    learner_config = {"adam_eps": settings.adam_eps, "minibatch_mode": settings.minibatch_mode,
                      "minibatches": settings.minibatches, "minibatch_updates": settings.num_epochs * settings.minibatches,
                      "value_loss": settings.value_loss, "encoder_optimizer": settings.encoder_optimizer,
                      "encoder_adam_eps": settings.encoder_adam_eps}
    train_batch = num_envs * settings.rollout_steps_per_env
    if method_row.normalize_latent:
        model_config.update(latent_norm_max_count=aux_set.latent_norm_window * train_batch,
                            latent_norm_clip=aux_set.latent_norm_clip)
    if method_row.has_aux_objective:
        model_config.update(decoder=aux_set.decoder, decoder_hidden=list(aux_set.decoder_hidden),
                            task_decoder_hidden=list(aux_set.task_decoder_hidden), task_dim=probe.task_env.task_dim,
                            inner_boundary=probe.boundary_obs if probe.episodes_per_trial > 1 else None)
        if aux_set.decoder == "grid_reward":
            model_config.update(grid_size=GRID_SIZE, goal_reward=1.0)
        sequences_per_update = num_envs * math.ceil(settings.rollout_steps_per_env / (max_seq_len - 1))
        budget_sequences = math.ceil(frames / train_batch) * sequences_per_update
        learner_config.update(aux_lr=aux_set.aux_lr, kl_weight=aux_set.kl_weight, warm_up_updates=aux_set.warm_up_updates,
                              vae_buffer_trajectories=min(aux_set.vae_buffer_trajectories, budget_sequences),
                              vae_batch_trajectories=aux_set.vae_batch_trajectories, vae_updates=aux_set.vae_updates)
    lr_schedule = [[0, lr], [frames, 0.0]] if settings.lr_schedule == "linear_to_zero" else lr
    probe.close()

    config = (
        PPOConfig()
        .environment(env, env_config=dict(env_config or {}))
        .framework("torch")
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=envs_per_runner,
                     rollout_fragment_length=settings.rollout_steps_per_env, num_cpus_per_env_runner=1)
        .resources(num_cpus_for_main_process=main_process_cpus)
        .learners(num_learners=0, num_gpus_per_learner=num_gpus_per_learner, learner_class=MetaPPOLearner,
                  learner_config_dict=learner_config)
        .rl_module(rl_module_spec=RLModuleSpec(module_class=MetaRLModule), model_config=model_config)
        .training(
            lr=lr_schedule, gamma=settings.gamma, lambda_=settings.lambda_, clip_param=settings.clip_param,
            entropy_coeff=settings.entropy_coeff, vf_loss_coeff=settings.vf_loss_coeff,
            num_epochs=settings.num_epochs, train_batch_size_per_learner=train_batch,
            minibatch_size=padded_minibatch_size(num_envs, settings.rollout_steps_per_env, max_seq_len,
                                                 settings.minibatches),
            grad_clip=settings.grad_clip, grad_clip_by="global_norm", use_kl_loss=False, kl_coeff=0.0,
            shuffle_batch_per_epoch=settings.minibatch_mode == "sequences",
        )
        .callbacks(functools.partial(MetaMetricsCallbacks, evaluation=EvaluationSettings(
            interval=eval_interval, num_tasks=eval_tasks, task_set=eval_task_set,
            deterministic=eval_deterministic, seed=seed + 100_000)))
        .reporting(metrics_num_episodes_for_smoothing=max(num_envs, 1))
        .debugging(seed=seed)
    )
    if method_row.warm_up != "none":  # the env runners act on g(c) during the warm-up
        config.env_runners(env_to_module_connector=lambda env=None, spaces=None, device=None: AddCurrentTaskToBatch())
    return config

