"""The Python API: this platform's meta-RL agent as an ordinary RLlib `PPOConfig`.

    from rl_hyper import init_ray, meta_ppo_config

    init_ray()                                                         # or join a cluster: init_ray("auto")
    config = meta_ppo_config("GridNavi", "rnn_hn", lr=1e-3, seed=73)   # a ray.rllib PPOConfig
    config.env_runners(num_env_runners=2)                              # change it like any other
    algo = config.build_algo()
    print(algo.train()["rl_hyper"]["train_trial_return"])

The config holds the env's trial wrapper (`config.environment("GridNavi")`), the `MetaRLModule`
with the method's switches, the learner with the method's auxiliary losses, the paper's PPO
settings for the env (PAPER_SPEC section 5) and the `rl_hyper/*` metrics and evaluation
callbacks: exactly what `rl-hyper train` and every trial of a study run. `examples/python_api.py`
runs it end to end.

`init_ray(address=None)` starts Ray as the CLI does (one torch thread per process; a local Ray
on a loopback address, 127.0.0.2 on Linux) or joins `address`.
RLlib starts Ray by itself on first need otherwise, on the machine's network address.

Environments: `register_envs()` (called here) registers each env with Ray under its short name
and with gymnasium as `rl_hyper/<Name>-v0`; `import rl_hyper` already does the gymnasium part,
so `gymnasium.make("rl_hyper/GridNavi-v0")` works after it.
"""

from __future__ import annotations

from ray.rllib.algorithms.ppo import PPOConfig

from rl_hyper.envs.registry import register_all
from rl_hyper.training.config import build_config
from rl_hyper.training.ray_setup import init_ray

__all__ = ["init_ray", "meta_ppo_config", "register_envs"]


def register_envs() -> None:
    """Register every env with Ray (short name, e.g. "GridNavi") and gymnasium (`rl_hyper/<Name>-v0`)."""
    register_all()


def meta_ppo_config(env: str = "GridNavi", method: str = "rnn_hn", *, lr: float = 1e-3, seed: int = 73,
                    **options) -> PPOConfig:
    """The RLlib PPOConfig of one meta-RL trial: `method` (a row of `rl-hyper methods`) on `env`
    (a name of `rl-hyper envs`) at learning rate `lr`, seeded with `seed`; registers the envs.

    options: the other keyword arguments of `rl_hyper.training.config.build_config`, e.g.
    frames (the budget the learning-rate schedule decays over; stopping is the caller's),
    num_env_runners, envs_per_runner, env_config (task-env arguments, e.g. {"resolution": 42}
    for MC-LS), ppo (PPO setting overrides, e.g. {"minibatch_mode": "sequences"}), max_seq_len,
    eval_interval / eval_tasks (evaluation every N iterations on N tasks; 0 = none).
    Raises UnknownEnvError / UnknownMethodError (ValueErrors naming the choices) on a bad name.
    """
    register_envs()
    return build_config(env, method, lr=lr, seed=seed, **options)
