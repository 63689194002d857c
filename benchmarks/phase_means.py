"""Phase means of GridNavi learning runs, rl_hyper's and the original code's, side by side.

Single evaluations jump by several points from one to the next, so two implementations are best
compared on means over phases of a run. For each run (one seed) this prints, as markdown rows:
the mean evaluation return in each phase, the mean of the evaluations in the last `--window`
frames before each phase's end, the latent's information in nats per trial (the ELBO's KL, which
both codes sum over the trials a VAE step draws, divided by `--kl-trials`) and the policy
entropy in each phase, and the run's mean PPO clip fraction (rl_hyper only); then each group's
mean over its seeds, and for every group after the first its difference from the first group's
mean in each phase with the two-sided permutation p-value of that difference over seeds (is it
larger than relabelling the seeds between the two groups makes it?).

    python benchmarks/phase_means.py [--phases 0 1e5 3e5 5e5 7.5e5 1e6] [--window 48000] \
        LABEL=DIR[,DIR...] [LABEL=DIR...]

DIR is an rl_hyper study folder (trial subfolders with progress.csv, as `learn_gridnavi.py`
writes) or a log folder of the original code (jacooba/hyper `main.py --results_log_dir DIR`: a
TensorBoard event file and config.json somewhere below it). Reading the original's event file
needs the `tensorboard` package, which the original's environment has; the script needs only
numpy otherwise, so it runs in either environment. The original evaluates on 16 sampled goals
with greedy actions, rl_hyper on all 21 goals exactly; the original logs its KL and entropy
against the update index, which is turned into frames here (960 frames an update on GridNavi).
"""

from __future__ import annotations

import argparse
import csv
import glob
import itertools
import json
import math
import os
import warnings
from dataclasses import dataclass

import numpy as np

FRAMES_PER_UPDATE = 960  # GridNavi: 16 envs x 60 steps, in both codes


@dataclass
class Run:
    """One seed's series, each an array (n, 2) of (frames, value); clip is None for the original."""

    seed: int
    eval_return: np.ndarray
    kl: np.ndarray
    entropy: np.ndarray
    clip: np.ndarray | None


def _series(rows: list[dict], column: str) -> np.ndarray:
    """(frames, value) of the progress.csv rows where `column` has a value (not empty, not nan)."""
    pairs = np.array([(float(row["rl_hyper/frames"]), float(row.get(column) or "nan")) for row in rows], dtype=float)
    return pairs[~np.isnan(pairs).any(axis=1)].reshape(-1, 2)


def read_rl_hyper(study_dir: str) -> list[Run]:
    """Every trial of an rl_hyper study folder, one Run per progress.csv."""
    runs = []
    for path in sorted(glob.glob(os.path.join(study_dir, "*", "progress.csv"))):
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        if rows:
            runs.append(Run(seed=int(float(rows[0]["rl_hyper/seed"])), eval_return=_series(rows, "rl_hyper/eval_trial_return"),
                            kl=_series(rows, "rl_hyper/aux_kl"), entropy=_series(rows, "rl_hyper/entropy"),
                            clip=_series(rows, "rl_hyper/clip_fraction")))
    return runs


def read_original(log_dir: str) -> list[Run]:
    """The run of the original code below `log_dir` (its TensorBoard scalars and config.json)."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        raise SystemExit(f"{log_dir}: reading the original code's logs needs the tensorboard package; run this "
                         "script with the original's Python, or pip install tensorboard") from None

    events = glob.glob(os.path.join(log_dir, "**", "events.out.tfevents.*"), recursive=True)
    if len(events) != 1:
        raise SystemExit(f"{log_dir}: expected one TensorBoard event file below it, found {len(events)}")
    run_dir = os.path.dirname(events[0])
    with open(os.path.join(run_dir, "config.json")) as handle:
        seed = int(json.load(handle)["seed"])
    accumulator = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    accumulator.Reload()

    def scalars(tag: str, frames_per_step: int) -> np.ndarray:
        return np.array([(event.step * frames_per_step, event.value) for event in accumulator.Scalars(tag)], dtype=float)

    return [Run(seed=seed, eval_return=scalars("Meta-Episode Return", 1), clip=None,
                kl=scalars("vae_losses/kl", FRAMES_PER_UPDATE), entropy=scalars("policy_losses/dist_entropy", FRAMES_PER_UPDATE))]


def read_runs(path: str) -> list[Run]:
    """rl_hyper's study folder or the original's log folder, told apart by what they hold."""
    if not os.path.isdir(path):
        raise SystemExit(f"{path}: no such folder")
    if glob.glob(os.path.join(path, "*", "progress.csv")):
        return read_rl_hyper(path)
    return read_original(path)


def mean_between(series: np.ndarray, start: float, end: float) -> float:
    """Mean value of the points with start < frames <= end (nan if none)."""
    inside = series[(series[:, 0] > start) & (series[:, 0] <= end), 1]
    return float(inside.mean()) if len(inside) else float("nan")


PER_PHASE_GROUPS = 4  # run_cells' column groups with a value per phase (all but the clip fraction)


def run_cells(run: Run, phases: list[float], window: float, kl_trials: int) -> list[list[float]]:
    """Per column group (eval per phase, eval over the last `window` before each phase end, nats
    per trial per phase, entropy per phase, clip fraction), the run's values."""
    spans = list(zip(phases[:-1], phases[1:]))
    return [[mean_between(run.eval_return, a, b) for a, b in spans],
            [mean_between(run.eval_return, b - window, b) for _, b in spans],
            [mean_between(run.kl, a, b) / kl_trials for a, b in spans],
            [mean_between(run.entropy, a, b) for a, b in spans],
            [float(run.clip[:, 1].mean()) if run.clip is not None and len(run.clip) else float("nan")]]


def permutation_p_value(first: list[float], second: list[float], resamples: int = 100_000) -> float:
    """Two-sided permutation test of mean(second) - mean(first), one value per seed: the share of
    the splits of the pooled values into groups of the same two sizes whose difference of means is
    at least as large in magnitude. Every split when there are at most `resamples` of them, else
    `resamples` random ones (numpy seed 0)."""
    pooled, size = np.array(first + second, dtype=float), len(first)
    observed = abs(np.mean(second) - np.mean(first)) * (1 - 1e-9)  # ties count as at least as large
    splits = math.comb(len(pooled), size)
    if splits <= resamples:
        masks = np.zeros((splits, len(pooled)), dtype=bool)
        for row, chosen in enumerate(itertools.combinations(range(len(pooled)), size)):
            masks[row, list(chosen)] = True
    else:
        rng = np.random.default_rng(0)
        masks = np.argsort(rng.random((resamples, len(pooled))), axis=1) < size
    first_means = (masks * pooled).sum(1) / size
    second_means = (~masks * pooled).sum(1) / (len(pooled) - size)
    return float(np.mean(np.abs(second_means - first_means) >= observed))


def fmt(values: list[float]) -> str:
    return " / ".join("-" if np.isnan(value) else f"{value:.2f}" for value in values)


def difference_cell(first: list[list[list[float]]], second: list[list[list[float]]], column: int) -> str:
    """One column group of the difference row: per phase, mean(second) - mean(first) and its
    permutation p-value, both over the seeds' values (run_cells of each seed)."""
    parts = []
    for phase in range(len(first[0][column])):
        a = [cells[column][phase] for cells in first if not np.isnan(cells[column][phase])]
        b = [cells[column][phase] for cells in second if not np.isnan(cells[column][phase])]
        parts.append(f"{np.mean(b) - np.mean(a):+.2f} (p {permutation_p_value(a, b):.2f})" if a and b else "-")
    return " / ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="+", metavar="LABEL=DIR[,DIR...]")
    parser.add_argument("--phases", type=float, nargs="+", default=[0, 1e5, 3e5, 5e5, 7.5e5, 1e6],
                        help="phase boundaries in frames; a phase is (start, end]")
    parser.add_argument("--window", type=float, default=48_000, help="frames before each phase end to average the evaluations over")
    parser.add_argument("--kl-trials", type=int, default=25, help="trials the logged KL is summed over (25 on grid-worlds in both codes)")
    args = parser.parse_args()
    groups = []
    for group in args.groups:
        label, _, dirs = group.partition("=")
        if not dirs:
            raise SystemExit(f"{group!r}: expected LABEL=DIR[,DIR...]")
        runs = sorted((run for path in dirs.split(",") for run in read_runs(path)), key=lambda run: run.seed)
        if not runs:
            raise SystemExit(f"{group!r}: no runs found")
        groups.append((label, runs))
    spans = ", ".join(f"{a:,.0f}-{b:,.0f}" for a, b in zip(args.phases[:-1], args.phases[1:]))
    print(f"Phases (frames): {spans}. Each cell lists the phases in this order.\n")
    print(f"| run | seed | frames logged | eval return, phase mean | eval return, mean of the last {args.window:,.0f} frames "
          "of each phase | latent nats per trial | policy entropy | PPO clip fraction, run mean |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    group_cells = [[run_cells(run, args.phases, args.window, args.kl_trials) for run in runs] for _, runs in groups]
    for (label, runs), cells in zip(groups, group_cells):
        for run, run_cell in zip(runs, cells):
            last_frame = max(series[-1, 0] for series in (run.eval_return, run.kl, run.entropy) if len(series))
            print(f"| {label} | {run.seed} | {last_frame:,.0f} | " + " | ".join(fmt(values) for values in run_cell) + " |")
        with warnings.catch_warnings():  # a column no run has (the original's clip fraction) stays nan
            warnings.simplefilter("ignore", RuntimeWarning)
            means = [np.nanmean(np.array([run_cell[i] for run_cell in cells]), axis=0).tolist() for i in range(len(cells[0]))]
        print(f"| {label}, mean over {len(runs)} seeds | | | " + " | ".join(f"**{fmt(values)}**" for values in means) + " |")
    for (label, _), cells in zip(groups[1:], group_cells[1:]):
        print(f"| {label} minus {groups[0][0]} (permutation p over seeds) | | | "
              + " | ".join(difference_cell(group_cells[0], cells, column) for column in range(PER_PHASE_GROUPS)) + " | |")


if __name__ == "__main__":
    main()
