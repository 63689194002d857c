"""Learning benchmark: methods x seeds at one learning rate and one frame budget, one Tune study.

Run (the issue-9 benchmark: 3 methods x 3 seeds x 1e6 frames, 110 minutes measured on 2 cores):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/learn_gridnavi.py --frames 1000000 \
        --methods rnn_hn rnn rnn_s --seeds 73 20 3 --out benchmarks/results/learn_gridnavi_1e6.md

It runs the study through the same path as `rl-hyper sweep` (results in Tune's layout under
--storage, so `rl-hyper report` works on them; a second run with the same --name resumes it) and
writes a markdown table: per method and frame count (1e5, 2.5e5, 4e5, 1e6 by default), the
evaluation return per trial (deterministic, every one of GridNavi's 21 goals: exact, see
training/evaluation.py) as the mean over seeds of each seed's last evaluation at or before that
frame count, the seeds' values, and the training (stochastic) return of the same iteration. A
second table gives each method's PPO clip fraction and policy latent norm, averaged over every
update of the run and then over seeds. The file also holds the command, the seeds, the PPO and
auxiliary-objective settings used and the versions.

Studies run apart (e.g. one per seed, each pinned to its own core) are tabled together, without
training, by

    .venv/bin/python benchmarks/learn_gridnavi.py --tables-from results/bench/run_seed73 results/bench/run_seed20 \
        --checkpoints 100000 250000 400000 500000

Reference points (PAPER_SPEC section 4): a uniformly random policy scores about -4.7 per trial;
knowing the goal, 44.3 is the ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd  # noqa: E402

from rl_hyper.study import analysis  # noqa: E402
from rl_hyper.study.spec import parse_study  # noqa: E402
from rl_hyper.study.sweep import run_sweep  # noqa: E402
from rl_hyper.training.settings import aux_settings, ppo_settings  # noqa: E402
from rl_hyper.training.ray_setup import init_ray, versions  # noqa: E402


def evaluated_up_to(progress: pd.DataFrame, frames: int) -> pd.DataFrame:
    """The evaluated rows at or before `frames` of the seeds that have trained to `frames` (a run
    still going, or one with a smaller budget, has no value there yet)."""
    reached = progress.groupby("seed")["frames"].transform("max") >= frames
    return progress[reached & progress["eval_trial_return"].notna() & (progress["frames"] <= frames)]


def at_frames(progress: pd.DataFrame, frames: int) -> pd.DataFrame:
    """Per seed that reached `frames`, the last evaluated iteration at or before it (rows of `progress`)."""
    return evaluated_up_to(progress, frames).sort_values("frames").groupby("seed").tail(1).sort_values("seed")


def window_mean(progress: pd.DataFrame, frames: int, window: int) -> float:
    """Mean over the seeds that reached `frames` of each seed's mean evaluation return in (frames - window, frames]."""
    evaluated = evaluated_up_to(progress, frames)
    in_window = evaluated[evaluated["frames"] > frames - window]
    return float(in_window.groupby("seed")["eval_trial_return"].mean().mean())


def results_table(progress: pd.DataFrame, methods: list[str], checkpoints: list[int], window: int = 48_000) -> str:
    """Markdown rows: method, frames, eval mean over seeds [per seed], the eval mean over the last
    `window` frames (less noisy), train mean over seeds [per seed]."""
    lines = ["| method | frames | eval return (mean over seeds) | eval per seed | eval, mean over the last 48k frames "
             "| train return (mean) | train per seed |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for method in methods:
        rows = progress[progress["method"] == method]
        for frames in checkpoints:
            point = at_frames(rows, frames)
            if point.empty:
                continue
            per_seed = lambda column: " / ".join(f"{seed}: {value:.2f}"  # noqa: E731
                                                 for seed, value in zip(point["seed"], point[column]))
            lines.append(f"| {method} | {frames:,} | {point['eval_trial_return'].mean():.2f} | {per_seed('eval_trial_return')} "
                         f"| {window_mean(rows, frames, window):.2f} "
                         f"| {point['train_trial_return'].mean():.2f} | {per_seed('train_trial_return')} |")
    return "\n".join(lines)


def optimisation_table(progress: pd.DataFrame, methods: list[str]) -> str:
    """Markdown rows: method, mean over seeds of each run's mean clip fraction and latent norm."""
    lines = ["| method | PPO clip fraction, run mean (per seed) | policy latent norm, run mean (per seed) |",
             "| --- | --- | --- |"]
    for method in methods:
        per_seed = progress[progress["method"] == method].groupby("seed")[["clip_fraction", "latent_norm"]].mean()
        if per_seed.empty:
            continue
        cells = [f"{per_seed[column].mean():.3f} ({' / '.join(f'{seed}: {v:.3f}' for seed, v in per_seed[column].items())})"
                 for column in ("clip_fraction", "latent_norm")]
        lines.append(f"| {method} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def typed_overrides(items: list[str], defaults) -> dict:
    """KEY=VALUE strings -> {key: value} typed like the field of the settings dataclass `defaults`;
    a field whose default is an int also takes a float (`latent_norm_window=inf`)."""
    def typed(key: str, value: str):
        kind = type(getattr(defaults, key))
        if kind is int:
            try:
                return int(value)
            except ValueError:
                return float(value)
        return kind(value)

    return {key: typed(key, value) for key, value in (item.split("=", 1) for item in items)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--methods", nargs="+", default=None, help="default: rnn rnn_s rnn_hn (with --tables-from: "
                        "every method stored)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[73, 20, 3])
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--env", default="GridNavi")
    parser.add_argument("--checkpoints", nargs="+", type=int, default=[100_000, 250_000, 400_000, 1_000_000])
    parser.add_argument("--eval-interval", type=int, default=5, help="iterations (960 frames each)")
    parser.add_argument("--ppo", nargs="*", default=[], metavar="KEY=VALUE",
                        help="PPO setting overrides, e.g. minibatch_mode=sequences value_loss=squared")
    parser.add_argument("--aux", nargs="*", default=[], metavar="KEY=VALUE",
                        help="auxiliary-objective overrides (VariBAD, TI), e.g. latent_norm_window=inf vae_updates=1")
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--storage", default="results/bench")
    parser.add_argument("--name", default=None)
    parser.add_argument("--out", default=None, help="markdown file for the table (default: print only)")
    parser.add_argument("--tables-from", nargs="+", default=None, metavar="STUDY_DIR",
                        help="train nothing: table the stored studies together (e.g. one per seed)")
    args = parser.parse_args()
    if args.tables_from:
        try:
            write_report(tables_report(args.tables_from, args.methods, args.checkpoints), args.out)
        except (FileNotFoundError, ValueError) as error:  # a missing folder, a clash or a bad row
            sys.exit(f"learn_gridnavi: {error}")
        return
    args.methods = args.methods or ["rnn", "rnn_s", "rnn_hn"]

    ppo = typed_overrides(args.ppo, ppo_settings(args.env))
    aux = typed_overrides(args.aux, aux_settings(args.env))
    name = args.name or f"learn_{args.env}_{args.frames}".replace("-", "_")
    study = parse_study({
        "name": name, "env": args.env, "methods": args.methods, "lr_grid": [args.lr], "seeds": args.seeds,
        "frames": args.frames, "evaluation": {"interval": args.eval_interval}, "ppo": ppo, "aux": aux,
        "resources": {"max_concurrent": args.max_concurrent}, "storage": args.storage,
    }, source="learn_gridnavi")
    init_ray(include_dashboard=False)
    started = time.time()
    study_dir = Path(args.storage).absolute() / name
    run_sweep(study, resume=(study_dir / "study.yaml").exists())
    wall = time.time() - started

    progress = analysis.read_progress(study_dir)
    checkpoints = [frames for frames in args.checkpoints if frames <= args.frames]
    table = results_table(progress, args.methods, checkpoints)
    report = "\n".join([
        f"# {args.env}: {', '.join(args.methods)} at lr {args.lr:g}, seeds {args.seeds}, {args.frames:,} frames",
        "",
        f"Command: `OMP_NUM_THREADS=1 .venv/bin/python {' '.join(sys.argv)}`",
        f"Wall time: {wall / 60:.1f} min ({args.max_concurrent} trials at a time). Results: {study_dir}",
        f"PPO settings: {ppo_settings(args.env, ppo)}",
        f"Auxiliary-objective settings (VariBAD / TI methods): {aux_settings(args.env, aux)}",
        f"Versions: {versions()}",
        "",
        "Eval: deterministic actions, one trial on each task of the evaluation set (GridNavi: all 21 goals, exact);",
        "each seed's last evaluation at or before the frame count. Train: mean raw return of the",
        "training (stochastic) trials of that iteration. Random policy about -4.7, known-goal ceiling 44.3.",
        "",
        table,
        "",
        optimisation_table(progress, args.methods),
        "",
    ])
    write_report(report, args.out)


def tables_report(study_dirs: list[str], methods: list[str] | None, checkpoints: list[int]) -> str:
    """The result and optimisation tables of several stored studies read as one, with each
    study's recorded versions; `methods` None = every method stored, in order of appearance."""
    progress = analysis.read_progress(study_dirs)
    methods = methods or list(dict.fromkeys(progress["method"]))
    sources = [f"- {Path(d).absolute()}: versions {json.dumps(json.loads((Path(d) / 'versions.json').read_text()))}"
               if (Path(d) / "versions.json").exists() else f"- {Path(d).absolute()}: no versions.json"
               for d in study_dirs]
    return "\n".join([
        f"# {', '.join(methods)}: tables from {len(study_dirs)} stored studies",
        "",
        f"Command: `.venv/bin/python {' '.join(sys.argv)}`",
        *sources,
        "",
        results_table(progress, methods, checkpoints),
        "",
        optimisation_table(progress, methods),
        "",
    ])


def write_report(report: str, out: str | None) -> None:
    print(report)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(report)


if __name__ == "__main__":
    main()
