"""Results directory -> report: tidy CSVs, PNG plots, report.md and a self-contained report.html.

    write_report("results/quickstart", "reports/quickstart", study=load_study("tune_configs/quickstart.yaml"))

writes into the output directory:
    evaluations.csv           every evaluation point (analysis.evaluation_points)
    trials.csv                one row per trial: final frames, parameters, times
    curves_<env>.png          learning curves per method at its best lr (mean, 68% bootstrap CI)
    inner_episodes_<env>.png  return of each inner episode at the end of training per method
    trials_<env>.png          every trial's own curves, small multiples: a row per (method, lr),
                              a column per seed, evaluation and training return against frames
    report.md, report.html    best-lr, summary, paper-claims, compute (seconds per 1e6 frames per
                              method; trial hours and core-hours of the whole study), versions
                              (versions.json beside the trials) and missing-trials tables;
                              the html embeds the plots as base64 PNGs
Plots are drawn on matplotlib Figure objects (Agg canvas); pyplot's global state is not touched.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rl_hyper.models.methods import METHODS
from rl_hyper.study import analysis, claims
from rl_hyper.study.spec import Study

_METHOD_RANK = {method_id: rank for rank, method_id in enumerate(METHODS)}
_COUNT_COLUMNS = ("num_params", "n_trials", "frames", "n_seeds", "seed")


@dataclass
class Section:
    """One report section: a title, paragraphs, an optional table, optional plot files."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    table: pd.DataFrame | None = None
    images: list[Path] = field(default_factory=list)
    extra_tables: list[pd.DataFrame] = field(default_factory=list)

    def tables(self) -> list[pd.DataFrame]:
        return ([] if self.table is None else [self.table]) + self.extra_tables


def write_report(
    results_dir: str | Path, out_dir: str | Path, select: analysis.Select = "auc", study: Study | None = None
) -> list[Path]:
    """Analyse `results_dir` and write the report files into `out_dir`; return the paths written.

    select: rule for the best learning rate ("auc" = mean over all evaluation points, the paper's
    rule; "final" = last evaluation point). study: when given, the report lists its trials that
    are missing or unfinished, and its resources.cpus_per_trial gives the core-hours (else each
    trial's params.json does).
    """
    if select not in analysis.SELECT_RULES:
        raise ValueError(f"select must be one of {analysis.SELECT_RULES}, got {select!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    progress = analysis.read_progress(results_dir)
    evals = analysis.evaluation_points(progress)
    trials = analysis.trial_table(progress)
    evals.to_csv(out / "evaluations.csv", index=False)
    trials.to_csv(out / "trials.csv", index=False)
    written = [out / "evaluations.csv", out / "trials.csv"]

    sections = [
        Section(
            "Overview",
            [
                f"Results: {results_dir}. Trials with results: {len(trials)}; evaluation points: {len(evals)}.",
                f"Best learning rate per method by '{select}' "
                + ("(highest mean over seeds of the mean over all evaluation points)." if select == "auc"
                   else "(highest mean over seeds of the last evaluation point)."),
                "Uncertainty: 68% percentile bootstrap confidence interval of the mean over seeds.",
            ],
        )
    ]
    if evals.empty:
        sections.append(Section("Results", ["No evaluation points yet."]))
    else:
        best = analysis.best_lr(evals, select)
        summary = analysis.summary_table(evals, best)
        images = [_plot_curves(analysis.learning_curves(evals, best), env, select, out) for env in best["env"].unique()]
        inner = analysis.inner_episode_returns(evals, best)
        images += [_plot_inner_episodes(inner, env, out) for env in inner["env"].unique()] if not inner.empty else []
        trial_images = [_plot_trial_curves(evals, env, out) for env in best["env"].unique()]
        written += images + trial_images
        sections += [
            Section("Best learning rate", [f"Score = mean over seeds of '{select}'."], _by_method(best)),
            Section(
                "Summary at the best learning rate",
                ["final = return of the last evaluation (deterministic actions); auc = mean return over all "
                 "evaluations; final train = the training trials' (stochastic actions) return at the last "
                 "evaluation; [68% bootstrap CI over seeds]."],
                _summary_display(summary),
            ),
            _claims_section(summary),
            Section(
                "Plots",
                ["Learning curves: evaluation trial return against environment frames, each seed smoothed by a "
                 "trailing moving average over 10% of its points. Inner episodes: return of each episode of the "
                 "evaluation trials at the last evaluation (adaptation within a trial)."],
                images=images,
            ),
            Section(
                "Every trial",
                ["One panel per trial, unsmoothed: a row per method and learning rate, a column per seed; "
                 "evaluation return (deterministic actions, solid) and the training trials' return at the same "
                 "iterations (stochastic actions, dashed) against environment frames; all panels share both axes."],
                images=trial_images,
            ),
        ]
    if not trials.empty:
        sections.append(_compute_section(trials, study, results_dir))
    sections.append(_versions_section(results_dir))
    sections.append(_missing_section(study, trials))

    (out / "report.md").write_text(_render_markdown(sections), encoding="utf-8")
    (out / "report.html").write_text(_render_html(sections), encoding="utf-8")
    return written + [out / "report.md", out / "report.html"]


def _cpus_per_trial(trials: pd.DataFrame, study: Study | None) -> pd.Series:
    """CPUs each trial held: the study's resources.cpus_per_trial, else from the trial's params.json
    (its own process plus one per env runner, as training/run.py requests them); NaN if unknown."""
    if study is not None:
        return pd.Series(study.resources.cpus_per_trial, index=trials.index, dtype=float)

    def from_params(trial_dir: str) -> float:
        try:
            params = json.loads(Path(trial_dir, "params.json").read_text())
            return float(params["main_process_cpus"] + params["num_env_runners"])
        except (OSError, ValueError, KeyError, TypeError):
            return float("nan")

    return trials["trial_dir"].map(from_params).astype(float)


def _compute_section(trials: pd.DataFrame, study: Study | None, results_dir: str | Path) -> Section:
    """Seconds per 1e6 frames per method, then the whole study's trial hours and core-hours."""
    ran = trials[trials["frames"] > 0]
    cpus = _cpus_per_trial(ran, study)
    trial_hours = ran["time_total_s"].astype(float) / 3600.0
    known = cpus.notna()
    total = pd.DataFrame([{
        "trials": len(ran), "frames": int(ran["frames"].sum()), "trial_hours": f"{trial_hours.sum():,.3f}",
        "cpus_per_trial": "/".join(f"{c:g}" for c in sorted(cpus[known].unique())) or "unknown",
        "core_hours": f"{(trial_hours[known] * cpus[known]).sum():,.3f}" + ("" if known.all() else
                                                                           f" ({(~known).sum()} trials unknown)"),
    }])
    text = ["Per method: seconds per 1e6 environment frames over all its trials (wall clock = Tune's time_total_s; "
            "sampler and learner = sums of RLlib's smoothed per-iteration timers, approximate: a few % high early "
            "in a run).",
            "Whole study (table below the per-method one): trial hours = the trials' wall-clock time summed; "
            "core-hours = each trial's hours x the CPUs it held"
            + (" (resources.cpus_per_trial of the study)." if study is not None else " (from its params.json).")]
    manifest = Path(results_dir, "manifest.json")
    if manifest.is_file():
        try:
            wall = json.loads(manifest.read_text()).get("wall_s")
        except ValueError:
            wall = None
        if wall:
            text.append(f"The sweep itself ran {wall:,.0f} s ({wall / 3600.0:.2f} h) of wall-clock time (manifest.json).")
    per_method = _by_method(analysis.compute_table(trials))
    return Section("Compute", text, per_method, extra_tables=[total])


def _versions_section(results_dir: str | Path) -> Section:
    """The versions.json files below `results_dir` (one per experiment), as a package x file table."""
    root = Path(results_dir)
    found = {}
    for path in sorted(root.rglob("versions.json")):
        try:
            folder = str(path.parent.relative_to(root))
            found[root.resolve().name if folder == "." else folder] = json.loads(path.read_text())
        except ValueError:
            continue
    if not found:
        return Section("Versions", [f"No versions.json below {results_dir}."])
    packages = list(dict.fromkeys(key for versions in found.values() for key in versions))
    table = pd.DataFrame({"package": packages,
                          **{folder: [str(versions.get(p, "-")) for p in packages] for folder, versions in found.items()}})
    return Section("Versions", ["Versions of everything that changes results, as recorded beside the trials "
                                "(versions.json; one column per experiment folder)."], table)


def _missing_section(study: Study | None, trials: pd.DataFrame) -> Section:
    if study is None:
        return Section("Missing trials", ["No study file given: missing trials not checked."])
    missing = analysis.missing_trials(study, trials)
    expected = len(study.trials())
    if missing.empty:
        return Section("Missing trials", [f"All {expected} trials of study '{study.name}' reached {study.frames:,} frames."])
    text = (
        f"{len(missing)} of {expected} trials of study '{study.name}' lack full results "
        f"(missing = no iteration recorded; unfinished = fewer than {study.frames:,} frames). "
        "The tables above use the trials that have results."
    )
    return Section("Missing trials", [text], missing)


def _claims_section(summary: pd.DataFrame) -> Section:
    evaluated = claims.evaluate_claims(summary)
    if evaluated.empty:
        return Section(
            "Paper claims",
            ["No claim of PAPER_SPEC section 7 is testable: no env has results for a claimed better method "
             "and a method it is compared with."],
        )
    text = (
        "Claims of PAPER_SPEC section 7 that these results can test, at each method's best learning rate: "
        "one row per comparison of the method the claim says is better (better) with another (worse), on auc "
        "and final [68% bootstrap CI over seeds]. A comparison is supported or contradicted when the two CIs "
        "are apart; a claim is supported when all its comparisons in that env and metric are, contradicted when "
        "any is."
    )
    shown = evaluated[["claim", "env", "metric", "better"]].copy()
    shown["better [68% CI]"] = _with_ci(evaluated, "better")
    shown["worse"] = evaluated["worse"]
    shown["worse [68% CI]"] = _with_ci(evaluated, "worse")
    shown["comparison"] = evaluated["verdict"]
    shown["claim verdict"] = evaluated["claim_verdict"]
    return Section("Paper claims", [text], shown)


def _method_label(method_id: str) -> str:
    return METHODS[method_id].name if method_id in METHODS else method_id


def _by_method(table: pd.DataFrame) -> pd.DataFrame:
    """Rows in method-table order (then env, lr, seed where present)."""
    ranked = table.assign(_rank=table["method"].map(lambda m: _METHOD_RANK.get(m, len(_METHOD_RANK))))
    keys = [key for key in ("env", "_rank", "lr", "seed") if key in ranked.columns]
    return ranked.sort_values(keys, kind="stable").drop(columns="_rank").reset_index(drop=True)


def _summary_display(summary: pd.DataFrame) -> pd.DataFrame:
    """Summary with each statistic as 'mean [low, high]'."""
    table = _by_method(summary)
    shown = table[["env", "method", "lr", "n_seeds"]].copy()
    for stat in ("final", "auc", "final_train"):
        shown[f"{stat.replace('_', ' ')} [68% CI]"] = _with_ci(table, stat)
    return shown


def _with_ci(table: pd.DataFrame, prefix: str) -> list[str]:
    """'mean [low, high]' per row from the columns <prefix>_mean, <prefix>_ci_low, <prefix>_ci_high."""
    columns = zip(table[f"{prefix}_mean"], table[f"{prefix}_ci_low"], table[f"{prefix}_ci_high"])
    return [f"{mean:.2f} [{low:.2f}, {high:.2f}]" for mean, low, high in columns]


def _plot_curves(curves: pd.DataFrame, env: str, select: str, out: Path) -> Path:
    figure = Figure(figsize=(7.5, 4.5))
    axes = figure.subplots()
    for method, curve in _by_method(curves[curves["env"] == env]).groupby("method", sort=False):
        line = axes.plot(curve["frames"], curve["mean"], label=f"{_method_label(method)} (lr {curve['lr'].iloc[0]:g})")
        axes.fill_between(curve["frames"], curve["ci_low"], curve["ci_high"], color=line[0].get_color(), alpha=0.2)
    axes.set_xlabel("environment frames")
    axes.set_ylabel("evaluation trial return")
    axes.set_title(f"{env}: mean over seeds, 68% bootstrap CI (best lr by {select})")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    path = out / f"curves_{env}.png"
    figure.savefig(path, dpi=110)
    return path


def _plot_inner_episodes(inner: pd.DataFrame, env: str, out: Path) -> Path:
    """Grouped bars: one group per method, one bar per inner episode, CI as error bars."""
    data = _by_method(inner[inner["env"] == env])
    methods = list(dict.fromkeys(data["method"]))
    episodes = sorted(data["episode"].unique())
    width = 0.8 / len(episodes)
    figure = Figure(figsize=(7.5, 4.0))
    axes = figure.subplots()
    for offset, episode in enumerate(episodes):
        rows = data[data["episode"] == episode].set_index("method").reindex(methods)
        positions = np.arange(len(methods)) + (offset - (len(episodes) - 1) / 2) * width
        errors = [rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]]
        axes.bar(positions, rows["mean"], width, yerr=errors, capsize=2, label=f"episode {episode}")
    axes.set_xticks(np.arange(len(methods)), [_method_label(m) for m in methods], rotation=20)
    axes.set_ylabel("evaluation return of the episode")
    axes.set_title(f"{env}: return per inner episode at the last evaluation (68% CI)")
    axes.axhline(0.0, color="black", linewidth=0.5)
    axes.legend(fontsize="small")
    figure.tight_layout()
    path = out / f"inner_episodes_{env}.png"
    figure.savefig(path, dpi=110)
    return path


def _plot_trial_curves(evals: pd.DataFrame, env: str, out: Path) -> Path:
    """Small multiples of every trial of `env`: a row per (method, lr) in method-table order, a column
    per seed; evaluation return (solid) and training return (dashed) against frames, shared axes."""
    data = _by_method(evals[evals["env"] == env])
    rows = list(dict.fromkeys(zip(data["method"], data["lr"])))
    seeds = sorted(data["seed"].unique())
    figure = Figure(figsize=(2.6 * len(seeds) + 0.8, 1.9 * len(rows) + 0.9))
    grid = figure.subplots(len(rows), len(seeds), sharex=True, sharey=True, squeeze=False)
    for (row, (method, lr)), (column, seed) in ((r, c) for r in enumerate(rows) for c in enumerate(seeds)):
        axes = grid[row][column]
        trial = data[(data["method"] == method) & (data["lr"] == lr) & (data["seed"] == seed)]
        if trial.empty:
            axes.text(0.5, 0.5, "no results", ha="center", va="center", transform=axes.transAxes, fontsize=8)
        else:
            line = axes.plot(trial["frames"], trial["eval_trial_return"], marker=".", markersize=3, linewidth=1)
            axes.plot(trial["frames"], trial["train_trial_return"], linestyle="--", linewidth=1,
                      color=line[0].get_color(), alpha=0.6)
        axes.set_title(f"{_method_label(method)} lr {lr:g} seed {seed}", fontsize=8)
        axes.tick_params(labelsize=7)
        axes.grid(alpha=0.3)
    figure.supxlabel("environment frames", fontsize=9)
    figure.supylabel("trial return (eval solid, train dashed)", fontsize=9)
    figure.suptitle(f"{env}: every trial", fontsize=10)
    figure.tight_layout()
    path = out / f"trials_{env}.png"
    figure.savefig(path, dpi=90)
    return path


def _cell(column: str, value: object) -> str:
    """Table cell text: lr in short float form, counts as integers, other floats with 2 decimals."""
    if isinstance(value, float) and np.isnan(value):
        return "-"
    if column == "lr":
        return f"{value:g}"
    if column in _COUNT_COLUMNS:
        return f"{int(value)}"
    if isinstance(value, (float, np.floating)):
        return f"{value:.2f}"
    return str(value)


def _cells(table: pd.DataFrame) -> list[list[str]]:
    return [[_cell(column, value) for column, value in zip(table.columns, row)] for row in table.itertuples(index=False)]


def _render_markdown(sections: list[Section]) -> str:
    lines = ["# rl_hyper study report", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
        for table in section.tables():
            lines.append("| " + " | ".join(table.columns) + " |")
            lines.append("|" + "---|" * len(table.columns))
            lines += ["| " + " | ".join(row) + " |" for row in _cells(table)]
            lines.append("")
        for image in section.images:
            lines += [f"![{image.stem}]({image.name})", ""]
    return "\n".join(lines)


_CSS = (
    "body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "img{max-width:100%;display:block;margin:1em 0}"
)


def _render_html(sections: list[Section]) -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>rl_hyper study report</title>"
             f"<style>{_CSS}</style></head><body><h1>rl_hyper study report</h1>"]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{html.escape(paragraph)}</p>" for paragraph in section.paragraphs]
        for table in section.tables():
            # long snake_case headers may break after an underscore, so wide tables fit the page
            header = "".join(f"<th>{html.escape(str(c)).replace('_', '_<wbr>')}</th>" for c in table.columns)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in _cells(table)
            )
            parts.append(f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>")
        for image in section.images:
            encoded = base64.b64encode(image.read_bytes()).decode("ascii")
            parts.append(f"<img alt='{html.escape(image.stem)}' src='data:image/png;base64,{encoded}'>")
    parts.append("</body></html>")
    return "\n".join(parts)
