"""rl_hyper: recurrent meta-RL (RNN, RNN+S, RNN+HN, task inference, VariBAD) on Ray RLlib and Tune.

Importing the package registers every environment with gymnasium (`rl_hyper/<Name>-v0`).
`from rl_hyper import meta_ppo_config, init_ray` gives the Python API (see `rl_hyper/api.py`); it is
imported on first use, so `import rl_hyper` stays free of Ray and torch.
"""

from rl_hyper.envs.registry import register_gymnasium

__version__ = "0.1.0"
__all__ = ["init_ray", "meta_ppo_config", "register_envs"]

register_gymnasium()


def __getattr__(name: str):
    if name in __all__:
        from rl_hyper import api

        return getattr(api, name)
    raise AttributeError(f"module 'rl_hyper' has no attribute {name!r}")
