"""The paper's settings per environment (PAPER_SPEC sections 2-5), as tables keyed by env family
("grid", "mujoco", "minecraft") with per-env overrides (e.g. "AntDir").

`PPO_SETTINGS`: PPO's batch, epochs, clip, entropy, discounts and Adam eps, and how the original
code optimises (switches). `MODEL_SIZES`: the per-env network sizes. `AUX_SETTINGS`: the auxiliary
objectives (VariBAD decoder, KL weight, TI decoder and warm-up length, their Adam lr, the VAE
buffer and schedule, the latent normaliser). `ppo_settings` / `aux_settings` look an env up and
apply a study's overrides; training/config.py builds the RLlib config from them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rl_hyper.envs.registry import get_entry


class UnknownFamilyError(LookupError):
    """An env whose family has no row in a settings table (a registry entry without settings)."""


@dataclass(frozen=True)
class PPOSettings:
    """PPO settings of one environment (PAPER_SPEC section 5)."""

    frames: int
    parallel_envs: int
    rollout_steps_per_env: int  # env steps per env per update
    num_epochs: int
    minibatches: int
    clip_param: float
    entropy_coeff: float
    gamma: float
    lambda_: float
    adam_eps: float
    lr_schedule: str = "constant"  # or "linear_to_zero": linear decay to 0 over the frame budget
    vf_loss_coeff: float = 0.5
    grad_clip: float = 0.5
    # how the original code optimises (training/learner.py); the alternatives are switches
    minibatch_mode: str = "random_steps"  # or "sequences": RLlib's minibatches of whole sequences
    value_loss: str = "huber"  # or "squared"
    encoder_optimizer: str = "separate"  # or "joint": RNN methods' encoder in the policy's Adam
    encoder_adam_eps: float = 1e-8


_GRID = PPOSettings(4_000_000, 16, 60, 2, 4, 0.05, 0.1, 0.95, 0.95, 1e-5)
_MUJOCO = PPOSettings(75_000_000, 16, 400, 2, 4, 0.1, 0.01, 0.97, 0.9, 1e-8)
PPO_SETTINGS: dict[str, PPOSettings] = {
    "grid": _GRID,
    "mujoco": _MUJOCO,
    "AntDir": replace(_MUJOCO, rollout_steps_per_env=200, minibatches=1),
    "WalkerRandParams": replace(_MUJOCO, rollout_steps_per_env=200, minibatches=2, clip_param=0.05),
    "minecraft": PPOSettings(60_000_000, 16, 800, 2, 4, 0.05, 0.1, 0.95, 0.95, 1e-5, lr_schedule="linear_to_zero"),
}

MODEL_SIZES: dict[str, dict] = {
    "grid": {"action_embed": 0, "reward_embed": 8},
    "minecraft": {"action_embed": 8, "reward_embed": 8},
    "mujoco": {"action_embed": 16, "reward_embed": 16},
    "AntDir": {"action_embed": 16, "reward_embed": 16, "latent_embed": 10},
    "WalkerRandParams": {"action_embed": 32, "reward_embed": 32, "latent_dim": 10},
}


@dataclass(frozen=True)
class AuxSettings:
    """Auxiliary objectives of one environment (PAPER_SPEC section 3).

    decoder: VariBAD decoder, "grid_reward" (multi-head Bernoulli over the grid cells),
        "reward" (MSE on (z, s, a, s')) or "state" (MSE of s' from (z, s, a)).
    warm_up_updates: N, PPO updates of the TI warm-up (they count against the frame budget).
    vae_buffer_trajectories / vae_batch_trajectories / vae_updates: the trial buffer's size, the
        sequences drawn per VAE step and the VAE steps per PPO update (training/learner.py; the
        original's size_vae_buffer, vae_batch_num_trajs, num_vae_updates). The buffer never
        holds more than the trial's frame budget can fill.
    latent_norm_window / latent_norm_clip: the policy's latent normaliser forgets (its sample
        count saturates at `latent_norm_window` updates' worth of latents) and clamps its output
        (models/normalize.py); inf / inf give the original's cumulative statistics.
    """

    decoder: str
    decoder_hidden: tuple[int, ...]
    task_decoder_hidden: tuple[int, ...]
    warm_up_updates: int
    kl_weight: float = 1.0
    aux_lr: float = 1e-3
    vae_buffer_trajectories: int = 100_000
    vae_batch_trajectories: int = 25
    vae_updates: int = 3
    latent_norm_window: float = 10
    latent_norm_clip: float = 5.0


_MUJOCO_AUX = AuxSettings("reward", (64, 32), (64, 32), 563, kl_weight=0.1, vae_buffer_trajectories=10_000,
                          vae_batch_trajectories=10, vae_updates=1)
AUX_SETTINGS: dict[str, AuxSettings] = {
    "grid": AuxSettings("grid_reward", (32, 32), (32, 32), 100),
    "mujoco": _MUJOCO_AUX,  # Cheetah-Dir, Cheetah-Vel, Ant-Dir
    "WalkerRandParams": replace(_MUJOCO_AUX, decoder="state", decoder_hidden=(256, 128), kl_weight=1.0),
    # not given by the paper for MC-LS: grid-world values with a reward decoder on its frames
    "minecraft": AuxSettings("reward", (64, 32), (32, 32), 100, vae_buffer_trajectories=10_000),
}


def lookup(table: dict, env: str):
    """The row for `env`: its own if it has one, else its family's (UnknownFamilyError if neither)."""
    entry = get_entry(env)
    if env in table:
        return table[env]
    if entry.family not in table:
        raise UnknownFamilyError(f"no settings for env {env!r} of family {entry.family!r}; the tables "
                                 f"(training/settings.py) have: {', '.join(sorted(table))}")
    return table[entry.family]


def ppo_settings(env: str, overrides: dict | None = None) -> PPOSettings:
    """The paper's PPO settings for `env`, with `overrides` (field -> value) applied."""
    settings = lookup(PPO_SETTINGS, env)
    return replace(settings, **(overrides or {}))


def aux_settings(env: str, overrides: dict | None = None) -> AuxSettings:
    """The auxiliary-objective settings of `env`, with `overrides` (field -> value) applied."""
    return replace(lookup(AUX_SETTINGS, env), **(overrides or {}))
