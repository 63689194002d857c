"""(env, method, hyper-parameters) -> RLlib PPOConfig, with the paper's settings per environment.

`PPO_SETTINGS` holds PAPER_SPEC section 5 (keyed by env family, with per-env overrides), and
`MODEL_SIZES` the per-env network sizes of sections 2-3. Every PPO setting is set explicitly:
RLlib's defaults (KL penalty, lr 5e-5, 30 epochs, ...) are not the paper's.

Batch arithmetic: one update uses `parallel_envs * rollout_steps` env steps; a stateful module's
batch is cut into sequences of at most `max_seq_len` steps plus one bootstrap step each, and
`minibatch_size` counts those padded steps, so it is derived from the padded batch size.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rl_hyper.envs.registry import get_entry, make_trial_env
from rl_hyper.models.methods import get_method
from rl_hyper.models.module import MetaRLModule
from rl_hyper.training.callbacks import MetaMetricsCallbacks
from rl_hyper.training.learner import MetaPPOLearner


@dataclass(frozen=True)
class PPOSettings:
    """PPO settings of one environment (PAPER_SPEC section 5)."""

    frames: int
    parallel_envs: int
    rollout_steps: int  # env steps per env per update
    epochs: int
    minibatches: int
    clip_param: float
    entropy_coeff: float
    gamma: float
    lambda_: float
    adam_eps: float
    lr_decay: bool = False  # linear decay to 0 over the frame budget
    vf_loss_coeff: float = 0.5
    grad_clip: float = 0.5


_GRID = PPOSettings(4_000_000, 16, 60, 2, 4, 0.05, 0.1, 0.95, 0.95, 1e-5)
_MUJOCO = PPOSettings(75_000_000, 16, 400, 2, 4, 0.1, 0.01, 0.97, 0.9, 1e-8)
PPO_SETTINGS: dict[str, PPOSettings] = {
    "grid": _GRID,
    "mujoco": _MUJOCO,
    "AntDir": replace(_MUJOCO, rollout_steps=200, minibatches=1),
    "WalkerRandParams": replace(_MUJOCO, rollout_steps=200, minibatches=2, clip_param=0.05),
    "minecraft": PPOSettings(60_000_000, 16, 800, 2, 4, 0.05, 0.1, 0.95, 0.95, 1e-5, lr_decay=True),
}

MODEL_SIZES: dict[str, dict] = {
    "grid": {"action_embed": 0, "reward_embed": 8},
    "minecraft": {"action_embed": 8, "reward_embed": 8},
    "mujoco": {"action_embed": 16, "reward_embed": 16},
    "AntDir": {"action_embed": 16, "reward_embed": 16, "latent_embed": 10},
    "WalkerRandParams": {"action_embed": 32, "reward_embed": 32, "latent_dim": 10},
}


def _lookup(table: dict, env: str):
    entry = get_entry(env)
    return table[env] if env in table else table[entry.family]


def ppo_settings(env: str, overrides: dict | None = None) -> PPOSettings:
    """The paper's PPO settings for `env`, with `overrides` (field -> value) applied."""
    settings = _lookup(PPO_SETTINGS, env)
    return replace(settings, **(overrides or {}))


def padded_minibatch_size(num_envs: int, rollout_steps: int, max_seq_len: int, minibatches: int) -> int:
    """Padded time steps per minibatch so that one epoch makes `minibatches` updates.

    Each env's rollout of `rollout_steps` is cut into ceil(rollout / (max_seq_len - 1))
    sequences, each padded to `max_seq_len` (trial steps plus PPO's bootstrap step).
    """
    sequences_per_env = math.ceil(rollout_steps / (max_seq_len - 1))
    return math.ceil(num_envs * sequences_per_env * max_seq_len / minibatches)


def build_config(env: str, method: str, *, lr: float, seed: int, frames: int | None = None,
                 num_env_runners: int = 0, envs_per_runner: int | None = None, ppo: dict | None = None,
                 env_config: dict | None = None, max_seq_len: int | None = None,
                 eval_interval: int = 10, eval_tasks: int = 16, num_gpus_per_learner: float = 0) -> PPOConfig:
    """The PPOConfig of one trial.

    env / method: registry names (validated here). frames: budget (used for LR decay; stopping is
    the caller's). envs_per_runner: default = the paper's parallel envs spread over the runners.
    max_seq_len: backprop length; default = full trial (+1 bootstrap step). eval_interval: in
    iterations (0 = no evaluation).
    """
    get_method(method)
    settings = ppo_settings(env, ppo)
    frames = frames or settings.frames
    probe = make_trial_env(env, env_config)
    runners = max(num_env_runners, 1)
    envs_per_runner = envs_per_runner or max(1, settings.parallel_envs // runners)
    num_envs = runners * envs_per_runner
    max_seq_len = max_seq_len or probe.trial_length + 1
    model_config = {"method": method, "max_seq_len": max_seq_len, **probe.layout.as_model_config(),
                    **_lookup(MODEL_SIZES, env)}
    train_batch = num_envs * settings.rollout_steps
    lr_schedule = [[0, lr], [frames, 0.0]] if settings.lr_decay else lr
    probe.close()

    config = (
        PPOConfig()
        .environment(env, env_config=dict(env_config or {}))
        .framework("torch")
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=envs_per_runner,
                     rollout_fragment_length=settings.rollout_steps, num_cpus_per_env_runner=1)
        .learners(num_learners=0, num_gpus_per_learner=num_gpus_per_learner, learner_class=MetaPPOLearner,
                  learner_config_dict={"adam_eps": settings.adam_eps})
        .rl_module(rl_module_spec=RLModuleSpec(module_class=MetaRLModule), model_config=model_config)
        .training(
            lr=lr_schedule, gamma=settings.gamma, lambda_=settings.lambda_, clip_param=settings.clip_param,
            entropy_coeff=settings.entropy_coeff, vf_loss_coeff=settings.vf_loss_coeff,
            num_epochs=settings.epochs, train_batch_size_per_learner=train_batch,
            minibatch_size=padded_minibatch_size(num_envs, settings.rollout_steps, max_seq_len, settings.minibatches),
            grad_clip=settings.grad_clip, grad_clip_by="global_norm", use_kl_loss=False, kl_coeff=0.0,
            shuffle_batch_per_epoch=True,
        )
        .callbacks(MetaMetricsCallbacks)
        .reporting(metrics_num_episodes_for_smoothing=max(num_envs, 1))
        .debugging(seed=seed)
    )
    if eval_interval > 0:
        config.evaluation(
            evaluation_interval=eval_interval, evaluation_duration=eval_tasks, evaluation_duration_unit="episodes",
            evaluation_num_env_runners=0,
            evaluation_config={"explore": False, "seed": seed + 100_000, "num_envs_per_env_runner": eval_tasks,
                               "metrics_num_episodes_for_smoothing": eval_tasks},
        )
    return config


def describe(settings: PPOSettings) -> dict:
    return asdict(settings)
