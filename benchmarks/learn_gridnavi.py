"""Learning benchmark on GridNavi: equal budgets for several methods, one Tune study.

Run (1e6 frames x 3 methods: about an hour on 2 cores; budgets and methods are arguments):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/learn_gridnavi.py --frames 1000000 \
        --methods rnn rnn_s rnn_hn --seeds 73 --lr 1e-3 --storage results/bench

It runs the study through the same path as `rl-hyper sweep` (results in Tune's layout under
--storage, then `rl-hyper report` works on them) and prints, per method, the deterministic
evaluation return (16 fresh tasks, one trial each) at fixed frame counts, the final and mean
(area under the curve) trial return, and the per-inner-episode returns of the last evaluation.
Reference points (PAPER_SPEC section 4): a uniformly random policy scores about -4.7 per trial;
knowing the goal, 44.3 is the ceiling.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from rl_hyper.study import analysis  # noqa: E402
from rl_hyper.study.spec import parse_study  # noqa: E402
from rl_hyper.study.sweep import run_sweep  # noqa: E402
from rl_hyper.training.run import init_ray  # noqa: E402


def return_at(evals, frames: int) -> float:
    """Mean over seeds of the last evaluation at or before `frames`."""
    before = evals[evals["frames"] <= frames]
    if before.empty:
        return float("nan")
    last = before.sort_values("frames").groupby("seed").tail(1)
    return float(last["eval_trial_return"].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--methods", nargs="+", default=["rnn", "rnn_s", "rnn_hn"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[73])
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--env", default="GridNavi")
    parser.add_argument("--eval-interval", type=int, default=20, help="iterations (960 frames each)")
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--storage", default="results/bench")
    parser.add_argument("--name", default=None)
    args = parser.parse_args()

    name = args.name or f"learn_{args.env}_{args.frames}".replace("-", "_")
    study = parse_study({
        "name": name, "env": args.env, "methods": args.methods, "lr_grid": [args.lr], "seeds": args.seeds,
        "frames": args.frames, "evaluation": {"interval": args.eval_interval},
        "resources": {"max_concurrent": args.max_concurrent}, "storage": args.storage,
    }, source="learn_gridnavi")
    init_ray(include_dashboard=False)
    run_sweep(study)

    evals = analysis.load_results(os.path.join(os.path.abspath(args.storage), name))
    checkpoints = [f for f in (100_000, 250_000, 500_000, 1_000_000, 2_000_000) if f <= args.frames]
    header = f"{'method':<15}" + "".join(f"{f'@{f:,}':>12}" for f in checkpoints) + f"{'final':>9}{'mean':>9}  inner episodes (last eval)"
    print(f"\n{args.env}, lr {args.lr:g}, seeds {args.seeds}: deterministic eval return per trial\n{header}")
    for method in args.methods:
        rows = evals[evals["method"] == method].sort_values("frames")
        finals = rows.groupby("seed").tail(1)
        inner = [c for c in analysis.inner_return_columns(rows)]
        print(f"{method:<15}" + "".join(f"{return_at(rows, f):>12.2f}" for f in checkpoints)
              + f"{finals['eval_trial_return'].mean():>9.2f}{rows.groupby('seed')['eval_trial_return'].mean().mean():>9.2f}  "
              + " / ".join(f"{np.mean(finals[c]):.2f}" for c in inner))


if __name__ == "__main__":
    main()
