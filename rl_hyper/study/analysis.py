"""Results directory -> tidy tables: evaluation points, best learning rate, bootstrap CIs, compute.

Input: a results directory with, anywhere below it, Ray Tune trial directories holding a
`progress.csv` (one row per training iteration). The columns read (a contract with the training
code; the `rl_hyper/` prefix is dropped here):

    rl_hyper/env, rl_hyper/method, rl_hyper/lr, rl_hyper/seed     constant per trial
    rl_hyper/frames                     env steps sampled so far
    rl_hyper/train_trial_return         (may be NaN)
    rl_hyper/eval_trial_return          NaN/empty on iterations without evaluation
    rl_hyper/eval_inner_return_1..K     return of inner episode k in the evaluation trials
    rl_hyper/num_params                 parameters of the RLModule
    rl_hyper/sampler_time_s, rl_hyper/learner_time_s    cumulative seconds
    time_total_s                        Tune's cumulative wall-clock seconds

The paper's protocol (PAPER_SPEC section 6): per method, the best learning rate is the one with
the highest mean over seeds of the mean over all evaluation points ("auc"); "final" uses the last
evaluation point instead. Uncertainty = 68% percentile bootstrap of the mean over seeds.

    evals = load_results("results/quickstart")
    best = best_lr(evals, select="auc")
    summary_table(evals, best)
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from rl_hyper.study.spec import Study

PREFIX = "rl_hyper/"
TRIAL_KEY = ["env", "method", "lr", "seed"]
METHOD_KEY = ["env", "method"]
INNER_PREFIX = "eval_inner_return_"
Select = Literal["auc", "final"]
SELECT_RULES = ("auc", "final")

_REQUIRED = ("env", "method", "lr", "seed", "frames", "eval_trial_return", "train_trial_return")
_NUMBERS = ("lr", "seed", "frames", "eval_trial_return", "train_trial_return")
_TRIAL_COLUMNS = ("num_params", "time_total_s", "sampler_time_s", "learner_time_s")


def read_progress(results_dir: str | Path | Sequence[str | Path]) -> pd.DataFrame:
    """Every training iteration of every trial below `results_dir`, one row each; given several
    directories (e.g. one study per seed, run apart), the trials below all of them.

    Columns: the contract columns without their prefix, time_total_s, and trial_dir. Trials whose
    progress.csv is still empty (no iteration finished) are left out. Raises ResultsError (a
    ValueError) naming the file and line for a bad row (see `checked_progress_text`) or a
    progress.csv without the contract columns, and ValueError for two trial directories holding
    the same (env, method, lr, seed).
    """
    roots = [Path(results_dir)] if isinstance(results_dir, (str, Path)) else [Path(d) for d in results_dir]
    for root in roots:
        if not root.is_dir():
            raise FileNotFoundError(f"results directory not found: {root}")
    tables = [_read_trial(path) for root in roots for path in sorted(root.rglob("progress.csv"))]
    tables = [table for table in tables if table is not None]
    if not tables:
        return pd.DataFrame(columns=[*_REQUIRED, *_TRIAL_COLUMNS, "trial_dir"])
    progress = pd.concat(tables, ignore_index=True)
    _check_one_dir_per_trial(progress)
    return progress


class ResultsError(ValueError):
    """A results file that cannot be read as written by rl_hyper training; names the file and line."""


class IncompleteRowWarning(UserWarning):
    """A progress.csv whose last line was cut by a crash: the line is left out."""


def checked_progress_text(path: Path) -> str:
    """The text of one progress.csv, every row checked: as many fields as the header, and the
    contract's number columns (lr, seed, frames, returns; returns may be empty) numbers.

    A last line without its newline (the writer was stopped inside it) is left out with an
    IncompleteRowWarning naming the file and line; any other bad row raises ResultsError naming
    the file and line, so no value is ever guessed.
    """
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        warnings.warn(f"{path}:{len(lines)}: incomplete last line (an interrupted write) left out",
                      IncompleteRowWarning, stacklevel=2)
        lines = lines[:-1]
    records = list(csv.reader(lines))
    if not records:
        return ""
    header = records[0]
    numbers = {header.index(PREFIX + name): name for name in _NUMBERS if PREFIX + name in header}
    for line, record in enumerate(records[1:], start=2):
        if len(record) != len(header):
            raise ResultsError(f"{path}:{line}: {len(record)} fields, the header has {len(header)}")
        for column, name in numbers.items():
            if not _is_number(record[column], empty=name not in ("lr", "seed", "frames")):
                raise ResultsError(f"{path}:{line}: {PREFIX + name} is {record[column]!r}, not a number")
    return "".join(lines)


def _is_number(value: str, empty: bool) -> bool:
    if value == "":
        return empty
    try:
        float(value)
    except ValueError:
        return False
    return True


def _read_trial(path: Path) -> pd.DataFrame | None:
    """One progress.csv, checked (`checked_progress_text`) and sorted by frames; rows repeated
    after a retry keep their latest version."""
    text = checked_progress_text(path)
    if not text.strip():
        return None
    table = pd.read_csv(io.StringIO(text))
    if table.empty:
        return None
    missing = [PREFIX + name for name in _REQUIRED if PREFIX + name not in table.columns]
    if missing:
        raise ResultsError(f"{path}: missing columns {', '.join(missing)} (not written by rl_hyper training?)")
    renamed = {column: column[len(PREFIX):] for column in table.columns if column.startswith(PREFIX)}
    ours = table[list(renamed)].rename(columns=renamed)
    ours["time_total_s"] = table["time_total_s"] if "time_total_s" in table.columns else np.nan
    ours = ours.astype({"env": str, "method": str, "lr": float, "seed": int, "frames": int})
    ours = ours.drop_duplicates("frames", keep="last").sort_values("frames", kind="stable")
    return ours.assign(trial_dir=str(path.parent))


def _check_one_dir_per_trial(progress: pd.DataFrame) -> None:
    dirs = progress.groupby(TRIAL_KEY)["trial_dir"].unique()
    clashes = dirs[dirs.map(len) > 1]
    if not clashes.empty:
        key, paths = next(iter(clashes.items()))
        raise ValueError(
            f"trial env={key[0]} method={key[1]} lr={key[2]:g} seed={key[3]} appears in several "
            f"directories ({', '.join(paths)}); point the analysis at one study's directory"
        )


def inner_return_columns(table: pd.DataFrame) -> list[str]:
    """The eval_inner_return_k columns of `table`, ordered by k."""
    columns = [c for c in table.columns if c.startswith(INNER_PREFIX)]
    return sorted(columns, key=lambda c: int(c[len(INNER_PREFIX):]))


def evaluation_points(progress: pd.DataFrame) -> pd.DataFrame:
    """Tidy evaluation points: one row per trial x evaluation, sorted by trial then frames.

    Columns: env, method, lr, seed, frames, eval_trial_return, eval_inner_return_1..K,
    train_trial_return (the training trials' mean return of the same iteration), trial_dir.
    """
    points = progress[progress["eval_trial_return"].notna()]
    columns = [*TRIAL_KEY, "frames", "eval_trial_return", *inner_return_columns(progress), "train_trial_return",
               "trial_dir"]
    return points[columns].sort_values([*TRIAL_KEY, "frames"]).reset_index(drop=True)


def load_results(results_dir: str | Path) -> pd.DataFrame:
    """`evaluation_points(read_progress(results_dir))`."""
    return evaluation_points(read_progress(results_dir))


def trial_table(progress: pd.DataFrame) -> pd.DataFrame:
    """One row per trial (its last iteration): env, method, lr, seed, frames, num_params,
    time_total_s, sampler_time_s, learner_time_s, iterations, trial_dir."""
    last = progress.groupby("trial_dir", sort=False).tail(1).set_index("trial_dir")
    last = last.reindex(columns=[*TRIAL_KEY, "frames", *_TRIAL_COLUMNS])
    last["iterations"] = progress.groupby("trial_dir", sort=False).size()
    return last.reset_index().sort_values(TRIAL_KEY).reset_index(drop=True)


def per_seed_scores(evals: pd.DataFrame) -> pd.DataFrame:
    """Per trial: auc = mean eval_trial_return over all its evaluation points, final = the last one,
    final_train = the training (stochastic) return at that last evaluation point."""
    ordered = evals.sort_values("frames", kind="stable").groupby(TRIAL_KEY)
    scores = ordered["eval_trial_return"].agg(auc="mean", final="last")
    scores["final_train"] = ordered["train_trial_return"].last()
    return scores.reset_index()


def best_lr(evals: pd.DataFrame, select: Select = "auc") -> pd.DataFrame:
    """Per (env, method), the lr with the highest mean over seeds of `select` (auc or final).

    Returns columns env, method, lr, score (that mean), n_seeds. Ties go to the smaller lr.
    """
    if select not in SELECT_RULES:
        raise ValueError(f"select must be one of {SELECT_RULES}, got {select!r}")
    by_lr = per_seed_scores(evals).groupby([*METHOD_KEY, "lr"])[select].agg(score="mean", n_seeds="count")
    by_lr = by_lr.reset_index()
    return by_lr.loc[by_lr.groupby(METHOD_KEY)["score"].idxmax()].reset_index(drop=True)


def bootstrap_ci(
    values: np.ndarray, confidence: float = 0.68, n_resamples: int = 10_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CI of the mean over the last axis (seeds).

    values: (..., S). Draws `rng.integers(0, S, size=(n_resamples, S))` with
    `rng = np.random.default_rng(seed)` (the same resamples for every leading index), takes each
    resample's mean and returns the (1 - confidence)/2 and (1 + confidence)/2 percentiles, each of
    shape (...). One seed gives a zero-width interval at its value.
    """
    values = np.asarray(values, dtype=float)
    n_seeds = values.shape[-1]
    draws = np.random.default_rng(seed).integers(0, n_seeds, size=(n_resamples, n_seeds))
    counts = (draws[:, :, None] == np.arange(n_seeds)).sum(axis=1)  # (n_resamples, S)
    means = values @ counts.T / n_seeds  # (..., n_resamples)
    tail = 50.0 * (1.0 - confidence)
    low, high = np.percentile(means, [tail, 100.0 - tail], axis=-1)
    return low, high


def summary_table(evals: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """Per (env, method) at its best lr: n_seeds, final, auc and final_train means with 68% bootstrap CIs."""
    scores = per_seed_scores(evals).merge(best[[*METHOD_KEY, "lr"]], on=[*METHOD_KEY, "lr"])
    rows = []
    for (env, method), group in scores.groupby(METHOD_KEY):
        row = {"env": env, "method": method, "lr": group["lr"].iloc[0], "n_seeds": len(group)}
        for stat in ("final", "auc", "final_train"):
            low, high = bootstrap_ci(group[stat].to_numpy())
            row |= {f"{stat}_mean": group[stat].mean(), f"{stat}_ci_low": float(low), f"{stat}_ci_high": float(high)}
        rows.append(row)
    return pd.DataFrame(rows)


def trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """(..., P) -> (..., P): mean of the last `window` points up to and including each point."""
    values = np.asarray(values, dtype=float)
    points = values.shape[-1]
    return np.stack([values[..., max(0, i - window + 1) : i + 1].mean(axis=-1) for i in range(points)], axis=-1)


def learning_curves(evals: pd.DataFrame, best: pd.DataFrame, smoothing: float = 0.1) -> pd.DataFrame:
    """Per (env, method) at its best lr: the curve over evaluation points, mean over seeds.

    Each seed's curve is smoothed by a trailing moving average over `smoothing` of its points
    (at least 1), then mean and 68% bootstrap CI over seeds are taken per evaluation point. Seeds
    are aligned by evaluation index and cut to the shortest one; frames = mean over seeds.
    Columns: env, method, lr, frames, mean, ci_low, ci_high, n_seeds.
    """
    curves = []
    for row in best.itertuples():
        runs = evals[(evals["env"] == row.env) & (evals["method"] == row.method) & (evals["lr"] == row.lr)]
        seeds = [group.sort_values("frames") for _, group in runs.groupby("seed")]
        points = min(len(group) for group in seeds)
        returns = np.stack([group["eval_trial_return"].to_numpy()[:points] for group in seeds])  # (S, P)
        frames = np.stack([group["frames"].to_numpy()[:points] for group in seeds]).mean(axis=0)
        smoothed = trailing_mean(returns, max(1, round(smoothing * points)))
        low, high = bootstrap_ci(smoothed.T)
        curves.append(
            pd.DataFrame(
                {"env": row.env, "method": row.method, "lr": row.lr, "frames": frames,
                 "mean": smoothed.mean(axis=0), "ci_low": low, "ci_high": high, "n_seeds": len(seeds)}
            )
        )
    return pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()


def inner_episode_returns(evals: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """Per (env, method) at its best lr and inner episode k: the return of episode k at each seed's
    last evaluation point, mean over seeds with 68% bootstrap CI.

    Columns: env, method, lr, episode (1..K), mean, ci_low, ci_high, n_seeds.
    """
    last = evals.sort_values("frames", kind="stable").groupby(TRIAL_KEY).tail(1)
    last = last.merge(best[[*METHOD_KEY, "lr"]], on=[*METHOD_KEY, "lr"])
    rows = []
    for (env, method), group in last.groupby(METHOD_KEY):
        for column in inner_return_columns(group):
            values = group[column].dropna().to_numpy()
            if len(values):
                low, high = bootstrap_ci(values)
                rows.append(
                    {"env": env, "method": method, "lr": group["lr"].iloc[0],
                     "episode": int(column[len(INNER_PREFIX):]), "mean": values.mean(),
                     "ci_low": float(low), "ci_high": float(high), "n_seeds": len(values)}
                )
    return pd.DataFrame(rows)


def compute_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (env, method) over all its trials with frames > 0: num_params (constant per method),
    n_trials, frames, and wall-clock / sampler / learner seconds per 1e6 frames (total seconds
    over total frames)."""
    ran = trials[trials["frames"] > 0]
    totals = ran.groupby(METHOD_KEY).agg(
        num_params=("num_params", "max"),
        n_trials=("trial_dir", "count"),
        frames=("frames", "sum"),
        wall_s=("time_total_s", "sum"),
        sampler_s=("sampler_time_s", "sum"),
        learner_s=("learner_time_s", "sum"),
    )
    per_million = 1e6 / totals["frames"]
    return pd.DataFrame(
        {
            "num_params": totals["num_params"],
            "n_trials": totals["n_trials"],
            "frames": totals["frames"],
            "wall_s_per_1m_frames": totals["wall_s"] * per_million,
            "sampler_s_per_1m_frames": totals["sampler_s"] * per_million,
            "learner_s_per_1m_frames": totals["learner_s"] * per_million,
        }
    ).reset_index()


def missing_trials(study: Study, trials: pd.DataFrame) -> pd.DataFrame:
    """The study's trials without full results: status "missing" (no iteration recorded) or
    "unfinished" (final frames < study.frames). Columns: method, lr, seed, status, frames.
    Matches results of `study.env` only; learning rates match to 1e-9 relative."""
    mine = trials[trials["env"] == study.env]
    rows = []
    for trial in study.trials():
        match = mine[
            (mine["method"] == trial.method)
            & (mine["seed"] == trial.seed)
            & np.isclose(mine["lr"].to_numpy(dtype=float), trial.lr, rtol=1e-9, atol=0.0)
        ]
        frames = int(match["frames"].max()) if not match.empty else 0
        if frames < study.frames:
            status = "unfinished" if not match.empty else "missing"
            rows.append({"method": trial.method, "lr": trial.lr, "seed": trial.seed, "status": status, "frames": frames})
    return pd.DataFrame(rows, columns=["method", "lr", "seed", "status", "frames"])
