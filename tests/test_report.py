"""Analysis and report on a synthetic results directory with known numbers."""

from __future__ import annotations

import base64
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from PIL import Image

from rl_hyper.study import analysis
from rl_hyper.study.browser import find_browser, render_in_browser
from rl_hyper.study.report import write_report
from rl_hyper.study.spec import Study

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FRAMES_PER_ITERATION = 1000
SEED_OFFSET = {73: 1.0, 20: -1.0}  # added to every evaluation return of that seed
# Evaluation returns per (method, lr) before the seed offset; one evaluation every 2 iterations.
# rnn: lr 1e-3 is best by auc (7.5 vs 1.5) and lr 3e-4 best by final (6 vs 0).
CURVES = {
    ("rnn", 1e-3): [10.0, 10.0, 10.0, 0.0],
    ("rnn", 3e-4): [0.0, 0.0, 0.0, 6.0],
    ("rnn_hn", 1e-3): [5.0, 5.0, 5.0, 5.0],
    ("rnn_hn", 3e-4): [1.0, 2.0, 3.0, 4.0],
}
UNFINISHED = ("rnn_hn", 3e-4, 20)  # stops after 3 evaluations (6000 of 8000 frames)
WALL_SECONDS = {"rnn": 16.0, "rnn_hn": 8.0}  # time_total_s at each trial's last iteration
NUM_PARAMS = {"rnn": 1000, "rnn_hn": 5000}


def write_trial(trial_dir: Path, method: str, lr: float, seed: int, returns: list[float], wall_s: float) -> None:
    """A progress.csv in Tune's layout: one row per iteration, evaluation on every 2nd iteration."""
    iterations = 2 * len(returns)
    rows = []
    for i in range(1, iterations + 1):
        ret = returns[i // 2 - 1] if i % 2 == 0 else math.nan
        rows.append(
            {
                "training_iteration": i,
                "time_total_s": wall_s * i / iterations,
                "env_runners/episode_return_mean": 0.0,
                "rl_hyper/env": "GridNavi",
                "rl_hyper/method": method,
                "rl_hyper/lr": lr,
                "rl_hyper/seed": seed,
                "rl_hyper/frames": FRAMES_PER_ITERATION * i,
                "rl_hyper/train_trial_return": ret / 2,
                "rl_hyper/eval_trial_return": ret,
                # inner episodes k = 1..4 sum to the trial return
                **{f"rl_hyper/eval_inner_return_{k}": ret / 4 + k - 2.5 for k in range(1, 5)},
                "rl_hyper/num_params": NUM_PARAMS[method],
                "rl_hyper/sampler_time_s": 0.5 * wall_s * i / iterations,
                "rl_hyper/learner_time_s": 0.25 * wall_s * i / iterations,
            }
        )
    trial_dir.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(trial_dir / "progress.csv", index=False)


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    for n, ((method, lr), curve) in enumerate(CURVES.items()):
        for seed, offset in SEED_OFFSET.items():
            returns = [value + offset for value in curve]
            if (method, lr, seed) == UNFINISHED:
                returns = returns[:3]
            # nested at different depths, as Tune does for several experiments
            parent = root / "study" / ("nested" if seed == 20 else "")
            write_trial(parent / f"PPO_GridNavi_{n}_{seed}", method, lr, seed, returns, WALL_SECONDS[method])
    started = root / "study" / "PPO_GridNavi_started"  # a trial that never finished an iteration
    started.mkdir()
    (started / "progress.csv").write_text("")
    return root


def make_study(**changes) -> Study:
    fields = dict(
        name="synthetic", env="GridNavi", methods=["rnn", "rnn_hn", "rnn_s"], lr_grid=[1e-3, 3e-4],
        seeds=[73, 20], frames=8000,
    )
    return Study.model_validate(fields | changes)


def reference_bootstrap(values: np.ndarray, confidence: float, n_resamples: int, seed: int) -> tuple[float, float]:
    """Independent percentile bootstrap of the mean: explicit resampling by index."""
    draws = np.random.default_rng(seed).integers(0, len(values), size=(n_resamples, len(values)))
    means = values[draws].mean(axis=1)
    tail = (1 - confidence) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


# --- loading ---------------------------------------------------------------------------------


def test_load_results_tidy_evaluation_points(results_dir):
    evals = analysis.load_results(results_dir)
    assert len(evals) == 8 * 4 - 1  # 8 trials x 4 evaluations, one trial stopped after 3
    assert list(evals.columns) == [
        "env", "method", "lr", "seed", "frames", "eval_trial_return",
        "eval_inner_return_1", "eval_inner_return_2", "eval_inner_return_3", "eval_inner_return_4",
        "train_trial_return", "trial_dir",
    ]
    rnn_73 = evals[(evals["method"] == "rnn") & (evals["lr"] == 1e-3) & (evals["seed"] == 73)]
    assert rnn_73["frames"].tolist() == [2000, 4000, 6000, 8000]
    assert rnn_73["eval_trial_return"].tolist() == [11.0, 11.0, 11.0, 1.0]
    assert rnn_73["eval_inner_return_4"].tolist() == pytest.approx([11 / 4 + 1.5] * 3 + [1 / 4 + 1.5])


def test_trial_table_has_final_frames_and_empty_trial_is_absent(results_dir):
    trials = analysis.trial_table(analysis.read_progress(results_dir))
    assert len(trials) == 8
    unfinished = trials[(trials["method"] == "rnn_hn") & (trials["lr"] == 3e-4) & (trials["seed"] == 20)]
    assert unfinished["frames"].tolist() == [6000]
    assert unfinished["iterations"].tolist() == [6]
    assert set(trials["frames"]) == {6000, 8000}


def test_retried_iterations_keep_the_latest_rows(tmp_path):
    write_trial(tmp_path / "a", "rnn", 1e-3, 73, [1.0, 2.0], wall_s=4.0)
    path = tmp_path / "a" / "progress.csv"
    table = pd.read_csv(path)
    retried = table.iloc[2:].assign(**{"rl_hyper/eval_trial_return": [math.nan, 9.0]})  # iterations 3, 4 again
    pd.concat([table, retried]).to_csv(path, index=False)
    evals = analysis.load_results(tmp_path)
    assert evals["frames"].tolist() == [2000, 4000]
    assert evals["eval_trial_return"].tolist() == [1.0, 9.0]


def test_same_trial_in_two_directories_is_an_error(tmp_path):
    write_trial(tmp_path / "run1" / "t", "rnn", 1e-3, 73, [1.0], wall_s=1.0)
    write_trial(tmp_path / "run2" / "t", "rnn", 1e-3, 73, [2.0], wall_s=1.0)
    with pytest.raises(ValueError, match="several directories"):
        analysis.read_progress(tmp_path)


def test_several_study_directories_read_as_one(tmp_path):
    write_trial(tmp_path / "seed73" / "t", "rnn", 1e-3, 73, [1.0, 2.0], wall_s=1.0)
    write_trial(tmp_path / "seed20" / "t", "rnn", 1e-3, 20, [3.0, 4.0], wall_s=1.0)
    write_trial(tmp_path / "elsewhere" / "t", "rnn_hn", 1e-3, 3, [5.0], wall_s=1.0)
    progress = analysis.read_progress([tmp_path / "seed73", str(tmp_path / "seed20")])
    assert sorted(progress["seed"].unique().tolist()) == [20, 73]
    final = progress[progress["eval_trial_return"].notna()].groupby("seed")["eval_trial_return"].last()
    assert final.to_dict() == {20: 4.0, 73: 2.0}
    write_trial(tmp_path / "seed73_again" / "t", "rnn", 1e-3, 73, [9.0], wall_s=1.0)
    with pytest.raises(ValueError, match="several directories"):
        analysis.read_progress([tmp_path / "seed73", tmp_path / "seed73_again"])
    with pytest.raises(FileNotFoundError, match="missing"):
        analysis.read_progress([tmp_path / "seed73", tmp_path / "missing"])


def test_progress_without_contract_columns_is_an_error(tmp_path):
    (tmp_path / "t").mkdir()
    pd.DataFrame({"training_iteration": [1], "episode_return_mean": [0.0]}).to_csv(tmp_path / "t" / "progress.csv")
    with pytest.raises(ValueError, match="rl_hyper/eval_trial_return"):
        analysis.read_progress(tmp_path)


# --- best lr, summary ------------------------------------------------------------------------


def test_best_lr_auc_and_final_choose_differently(results_dir):
    evals = analysis.load_results(results_dir)
    by_auc = analysis.best_lr(evals, "auc").set_index("method")
    by_final = analysis.best_lr(evals, "final").set_index("method")
    assert by_auc.loc["rnn", "lr"] == 1e-3
    assert by_auc.loc["rnn", "score"] == pytest.approx(7.5)
    assert by_final.loc["rnn", "lr"] == 3e-4
    assert by_final.loc["rnn", "score"] == pytest.approx(6.0)
    assert by_auc.loc["rnn_hn", "lr"] == 1e-3 and by_final.loc["rnn_hn", "lr"] == 1e-3
    assert by_auc.loc["rnn_hn", "n_seeds"] == 2
    with pytest.raises(ValueError, match="select"):
        analysis.best_lr(evals, "median")


def test_auc_of_an_unfinished_trial_uses_its_points(results_dir):
    scores = analysis.per_seed_scores(analysis.load_results(results_dir)).set_index(["method", "lr", "seed"])
    assert scores.loc[("rnn_hn", 3e-4, 20), "auc"] == pytest.approx(np.mean([0.0, 1.0, 2.0]))
    assert scores.loc[("rnn_hn", 3e-4, 20), "final"] == pytest.approx(2.0)
    assert scores.loc[("rnn_hn", 3e-4, 73), "auc"] == pytest.approx(np.mean([2.0, 3.0, 4.0, 5.0]))


def test_summary_means_and_ci_over_seeds(results_dir):
    evals = analysis.load_results(results_dir)
    summary = analysis.summary_table(evals, analysis.best_lr(evals, "auc")).set_index("method")
    rnn = summary.loc["rnn"]
    # seeds' finals are 0 + 1 and 0 - 1; auc 7.5 + 1 and 7.5 - 1
    assert rnn["lr"] == 1e-3 and rnn["n_seeds"] == 2
    assert rnn["final_mean"] == pytest.approx(0.0)
    assert rnn["auc_mean"] == pytest.approx(7.5)
    # two seeds a < b: resample means a, (a+b)/2, b with probability 1/4, 1/2, 1/4, so the
    # 16th and 84th percentiles are a and b.
    assert (rnn["final_ci_low"], rnn["final_ci_high"]) == pytest.approx((-1.0, 1.0))
    assert (rnn["auc_ci_low"], rnn["auc_ci_high"]) == pytest.approx((6.5, 8.5))
    assert summary.loc["rnn_hn", "final_mean"] == pytest.approx(5.0)
    # the training return written beside each evaluation is half of it (write_trial)
    assert rnn["final_train_mean"] == pytest.approx(0.0)
    assert (rnn["final_train_ci_low"], rnn["final_train_ci_high"]) == pytest.approx((-0.5, 0.5))


# --- bootstrap, smoothing --------------------------------------------------------------------


def test_bootstrap_matches_an_independent_resampling():
    values = np.random.default_rng(3).normal(size=8)  # enough distinct resample means to separate percentiles
    low, high = analysis.bootstrap_ci(values, confidence=0.68, n_resamples=2000, seed=5)
    assert (float(low), float(high)) == pytest.approx(reference_bootstrap(values, 0.68, 2000, 5))
    assert low < values.mean() < high


def test_bootstrap_known_cases():
    assert analysis.bootstrap_ci(np.array([4.0, 4.0, 4.0])) == pytest.approx((4.0, 4.0))
    assert analysis.bootstrap_ci(np.array([2.5])) == pytest.approx((2.5, 2.5))
    # three seeds 0, 0, 3: the resample mean is 0, 1, 2, 3 with probability 8/27, 12/27, 6/27, 1/27
    assert analysis.bootstrap_ci(np.array([0.0, 0.0, 3.0])) == pytest.approx((0.0, 2.0))


def test_bootstrap_width_grows_with_spread_and_confidence():
    rng = np.random.default_rng(1)
    values = rng.normal(size=4)
    low68, high68 = analysis.bootstrap_ci(values)
    low95, high95 = analysis.bootstrap_ci(values, confidence=0.95)
    wide_low, wide_high = analysis.bootstrap_ci(10 * values)
    assert low95 < low68 < high68 < high95
    assert wide_high - wide_low == pytest.approx(10 * (high68 - low68))


def test_bootstrap_over_the_last_axis():
    values = np.array([[0.0, 0.0, 3.0], [1.0, 1.0, 1.0]])
    low, high = analysis.bootstrap_ci(values)
    assert low.tolist() == pytest.approx([0.0, 1.0])
    assert high.tolist() == pytest.approx([2.0, 1.0])


def test_trailing_mean():
    values = np.array([[1.0, 3.0, 5.0, 7.0], [0.0, 0.0, 6.0, 0.0]])
    assert analysis.trailing_mean(values, 2).tolist() == [[1.0, 2.0, 4.0, 6.0], [0.0, 0.0, 3.0, 3.0]]
    assert analysis.trailing_mean(values, 1).tolist() == values.tolist()


def test_learning_curve_is_smoothed_over_ten_percent_of_points():
    points = np.arange(20, dtype=float)
    evals = pd.DataFrame(
        {
            "env": "GridNavi", "method": "rnn", "lr": 1e-3,
            "seed": np.repeat([1, 2], 20),
            "frames": np.tile((points + 1) * 100, 2),
            "eval_trial_return": np.concatenate([points, 2 * points]),
        }
    )
    best = pd.DataFrame({"env": ["GridNavi"], "method": ["rnn"], "lr": [1e-3]})
    curve = analysis.learning_curves(evals, best)
    # window = 10% of 20 points = 2: seed 1 -> i - 0.5, seed 2 -> 2i - 1 (first point unsmoothed)
    smooth_1 = np.concatenate([[0.0], points[1:] - 0.5])
    smooth_2 = np.concatenate([[0.0], 2 * points[1:] - 1])
    assert curve["frames"].tolist() == ((points + 1) * 100).tolist()
    assert curve["mean"].to_numpy() == pytest.approx((smooth_1 + smooth_2) / 2)
    assert curve["ci_low"].to_numpy() == pytest.approx(np.minimum(smooth_1, smooth_2))
    assert curve["ci_high"].to_numpy() == pytest.approx(np.maximum(smooth_1, smooth_2))


def test_inner_episode_returns_at_the_last_evaluation(results_dir):
    evals = analysis.load_results(results_dir)
    inner = analysis.inner_episode_returns(evals, analysis.best_lr(evals, "auc"))
    rnn = inner[inner["method"] == "rnn"].set_index("episode")
    # last evaluation of rnn at lr 1e-3: trial returns 1 and -1; episode k = return/4 + k - 2.5
    assert rnn.index.tolist() == [1, 2, 3, 4]
    for k in range(1, 5):
        assert rnn.loc[k, "mean"] == pytest.approx(k - 2.5)
        assert (rnn.loc[k, "ci_low"], rnn.loc[k, "ci_high"]) == pytest.approx((k - 2.75, k - 2.25))


# --- compute, missing ------------------------------------------------------------------------


def test_compute_table_seconds_per_million_frames(results_dir):
    trials = analysis.trial_table(analysis.read_progress(results_dir))
    compute = analysis.compute_table(trials).set_index("method")
    assert compute.loc["rnn", "num_params"] == 1000
    assert compute.loc["rnn_hn", "num_params"] == 5000
    assert compute.loc["rnn", "n_trials"] == 4
    # rnn: 4 trials x 16 s over 4 x 8000 frames
    assert compute.loc["rnn", "wall_s_per_1m_frames"] == pytest.approx(4 * 16 / 32000 * 1e6)
    assert compute.loc["rnn", "sampler_s_per_1m_frames"] == pytest.approx(4 * 8 / 32000 * 1e6)
    assert compute.loc["rnn", "learner_s_per_1m_frames"] == pytest.approx(4 * 4 / 32000 * 1e6)
    # rnn_hn: 4 trials x 8 s over 3 x 8000 + 6000 frames
    assert compute.loc["rnn_hn", "wall_s_per_1m_frames"] == pytest.approx(32 / 30000 * 1e6)


EXPECTED_MISSING = {
    ("rnn_hn", 3e-4, 20, "unfinished", 6000),
    ("rnn_s", 1e-3, 73, "missing", 0),
    ("rnn_s", 1e-3, 20, "missing", 0),
    ("rnn_s", 3e-4, 73, "missing", 0),
    ("rnn_s", 3e-4, 20, "missing", 0),
}


def test_missing_trials_of_a_partial_study(results_dir):
    trials = analysis.trial_table(analysis.read_progress(results_dir))
    missing = analysis.missing_trials(make_study(), trials)
    assert set(missing.itertuples(index=False, name=None)) == EXPECTED_MISSING
    assert analysis.missing_trials(make_study(methods=["rnn"]), trials).empty
    other_env = analysis.missing_trials(make_study(env="GridNavi-Dense", methods=["rnn"]), trials)
    assert set(other_env["status"]) == {"missing"} and len(other_env) == 4


# --- report ----------------------------------------------------------------------------------


def test_write_report_files(results_dir, tmp_path):
    out = tmp_path / "report"
    written = write_report(results_dir, out, study=make_study())
    for name in ("evaluations.csv", "trials.csv", "curves_GridNavi.png", "inner_episodes_GridNavi.png", "report.md", "report.html"):
        assert out / name in written
        assert (out / name).stat().st_size > 0
    for png in ("curves_GridNavi.png", "inner_episodes_GridNavi.png"):
        assert (out / png).read_bytes().startswith(PNG_SIGNATURE)
    assert len(pd.read_csv(out / "evaluations.csv")) == 31

    page = (out / "report.html").read_text()
    embedded = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(embedded) == 3  # curves, inner episodes, every trial
    assert all(base64.b64decode(image).startswith(PNG_SIGNATURE) for image in embedded)

    markdown = (out / "report.md").read_text()
    assert "| rnn_s | 0.001 | 73 | missing | 0 |" in markdown
    assert "| rnn_hn | 0.0003 | 20 | unfinished | 6000 |" in markdown
    assert "5 of 12 trials" in markdown
    assert "| GridNavi | rnn | 0.001 | 2 | 0.00 [-1.00, 1.00] | 7.50 [6.50, 8.50] |" in markdown
    assert "![curves_GridNavi](curves_GridNavi.png)" in markdown


def test_write_report_final_rule_and_no_study(results_dir, tmp_path):
    write_report(results_dir, tmp_path / "final", select="final")
    markdown = (tmp_path / "final" / "report.md").read_text()
    assert "| GridNavi | rnn | 0.0003 | 2 | 6.00 [5.00, 7.00] | 1.50 [0.50, 2.50] |" in markdown
    assert "missing trials not checked" in markdown


def test_write_report_before_any_evaluation(tmp_path):
    (tmp_path / "results").mkdir()
    write_report(tmp_path / "results", tmp_path / "out", study=make_study(methods=["rnn"], seeds=[73]))
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "No evaluation points yet." in markdown
    assert "2 of 2 trials" in markdown


def test_report_shows_every_trial_compute_totals_and_versions(results_dir, tmp_path):
    (results_dir / "study" / "versions.json").write_text(json.dumps({"python": "3.11.9", "ray": "2.60.0"}))
    out = tmp_path / "report"
    written = write_report(results_dir, out, study=make_study(resources={"num_env_runners": 2}))  # 3 CPUs a trial
    # a row per (method, lr) with results (4), a column per seed (2)
    assert out / "trials_GridNavi.png" in written
    assert Image.open(out / "trials_GridNavi.png").size == (540, 765)
    markdown = (out / "report.md").read_text()
    assert "## Every trial" in markdown and "![trials_GridNavi](trials_GridNavi.png)" in markdown
    # 8 trials: 4 x 16 s (rnn) + 4 x 8 s (rnn_hn) = 96 s = 0.0267 h, x 3 CPUs = 0.08 core-hours
    assert "| trials | frames | trial_hours | cpus_per_trial | core_hours |" in markdown
    assert "| 8 | 62000 | 0.027 | 3 | 0.080 |" in markdown
    assert "| package | study |" in markdown and "| ray | 2.60.0 |" in markdown

    write_report(results_dir, tmp_path / "no_study")  # CPUs then come from params.json, absent here
    assert "| 8 | 62000 | 0.027 | unknown | 0.000 (8 trials unknown) |" in (tmp_path / "no_study" / "report.md").read_text()


NEEDS_CHROMIUM = pytest.mark.skipif(find_browser() is None, reason="no Chromium on PATH (Debian: apt-get install "
                                    "chromium); the browser check of report.html cannot run")


@NEEDS_CHROMIUM
def test_report_renders_in_headless_chromium(results_dir, tmp_path):
    (results_dir / "study" / "versions.json").write_text(json.dumps({"python": "3.11.9", "ray": "2.60.0"}))
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "rl_hyper", "report", str(results_dir / "study"), "--out", str(out),
                           "--screenshot"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    print(proc.stdout.splitlines()[-1])  # "screenshot: <path>" (shown with pytest -s / -rP)
    tables = (out / "report.html").read_text().count("<table>")
    assert f"browser check: 3 images (3 shown, 0 broken), {tables} tables" in proc.stdout
    assert proc.stdout.splitlines()[-1] == f"screenshot: {out / 'report.png'}"
    shot = np.asarray(Image.open(out / "report.png").convert("L"), dtype=float)
    assert shot.shape[1] == 1100 and shot.shape[0] > 2000  # the whole page, not one screen
    assert shot.std() > 20  # text and plots, not a blank page


@NEEDS_CHROMIUM
def test_browser_check_counts_a_broken_plot(results_dir, tmp_path):
    out = tmp_path / "report"
    write_report(results_dir, out)
    page = (out / "report.html").read_text()
    broken = tmp_path / "broken.html"
    broken.write_text(page.replace("src='data:image/png;base64,iVBOR", "src='data:image/png;base64,AAAA", 1))
    check = render_in_browser(broken, tmp_path / "broken.png")
    assert (check["images"], check["decoded"], check["broken"]) == (3, 2, 1)
