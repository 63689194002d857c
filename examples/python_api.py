"""Use rl_hyper from Python, without the CLI: an RLlib PPOConfig for (env, method), trained with RLlib.

    python examples/python_api.py                      # GridNavi, rnn, 2 iterations (about 30 s on 2 busy cores)
    python examples/python_api.py --env MC-LS --method rnn_hn --iterations 20

What it shows:
1. `rl_hyper.meta_ppo_config(env, method, lr=..., seed=...)` returns an ordinary
   `ray.rllib.algorithms.ppo.PPOConfig` (the meta-RL RLModule, the method's learner, the paper's PPO
   settings for the env); change it with RLlib's own methods before building the algorithm.
2. The trial env is a normal gymnasium env: `gymnasium.make("rl_hyper/<Name>-v0")` (one episode =
   one trial of K inner episodes; `info["task"]` is the task descriptor).
3. `config.build_algo().train()` returns RLlib's result dict with this platform's metrics under
   `result["rl_hyper"]` (the names of README's metrics table).

Expected output: the env's spaces, then one line per iteration, e.g.
    iteration 1: 960 frames, train trial return -4.90, eval trial return -3.07
(returns of an untrained agent: GridNavi's random policy scores about -4.7 per trial).
With 0 env runners sampling, learning and evaluation all run in this process; RLlib still
wants Ray for its bookkeeping, so the example starts a local one on loopback (`init_ray`).
"""

from __future__ import annotations

import argparse
import math
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one torch thread: on a small machine it is faster

import gymnasium as gym  # noqa: E402

from rl_hyper import init_ray, meta_ppo_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="GridNavi", help="an env of `rl-hyper envs` (default: %(default)s)")
    parser.add_argument("--method", default="rnn", help="a method of `rl-hyper methods` (default: %(default)s)")
    parser.add_argument("--iterations", type=int, default=2, help="PPO updates to run (default: %(default)s)")
    args = parser.parse_args()

    config = meta_ppo_config(args.env, args.method, lr=1e-3, seed=73, eval_interval=1, eval_tasks=4)
    config.env_runners(num_env_runners=0)  # sample in this process: any PPOConfig setting can be changed here

    env = gym.make(f"rl_hyper/{args.env}-v0")  # the same trial env, straight from gymnasium
    print(f"{args.env}: observation {env.observation_space}, actions {env.action_space}, "
          f"{env.unwrapped.episodes_per_trial} inner episodes per trial")
    env.close()

    init_ray(include_dashboard=False)  # RLlib would otherwise start Ray itself, on the network address
    algo = config.build_algo()
    for _ in range(args.iterations):
        metrics = algo.train()["rl_hyper"]
        evaluation = metrics.get("eval_trial_return", math.nan)
        print(f"iteration {algo.iteration}: {metrics['frames']} frames, train trial return "
              f"{metrics['train_trial_return']:.2f}, eval trial return {evaluation:.2f}", flush=True)
    algo.stop()


if __name__ == "__main__":
    main()
