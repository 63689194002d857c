"""Paper claims judged on synthetic evaluation points with known, clearly separated or overlapping CIs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report import write_trial

from rl_hyper.study import analysis
from rl_hyper.study.claims import (
    CONTRADICTED,
    NOT_SEPARATED,
    SUPPORTED,
    Claim,
    claim_verdict,
    comparison_verdict,
    evaluate_claims,
)
from rl_hyper.study.report import write_report

# Evaluation returns per env, method and seed (two seeds, one lr). Per seed: auc = mean of the
# curve, final = its last point. With two seeds the 68% bootstrap CI of the mean is [lower seed,
# higher seed] (resample means a, (a+b)/2, b with probability 1/4, 1/2, 1/4).
CURVES = {
    "GridNavi": {
        "rnn": [[0.0, 2.0], [2.0, 4.0]],  # auc [1, 3], final [2, 4]
        "rnn_s": [[0.0, 6.0], [0.0, 8.0]],  # auc [3, 4] touches rnn's; final [6, 8] apart
        "rnn_hn": [[10.0, 12.0], [12.0, 14.0]],  # auc [11, 13], final [12, 14]
        "rnn_hn_kaiming": [[20.0, 20.0], [22.0, 22.0]],  # above rnn_hn: contradicts the claim
        "ti": [[0.0, 0.0], [1.0, 1.0]],  # [0, 1]: below ti_pp_hn
        "ti_pp": [[6.0, 6.0], [8.0, 8.0]],  # [6, 8]: overlaps ti_pp_hn
        "ti_pp_hn": [[5.0, 5.0], [7.0, 7.0]],  # [5, 7]
        "vi_hn": [[0.0, 0.0], [0.0, 0.0]],
    },
    "MC-LS": {
        "rnn_hn": [[1.0, 1.0], [3.0, 3.0]],
        "vi_hn": [[0.0, 0.0], [0.0, 0.0]],
    },
}


def evaluation_points(curves: dict[str, dict[str, list[list[float]]]]) -> pd.DataFrame:
    """Tidy evaluation points (analysis.evaluation_points columns used by the summary)."""
    rows = [
        {"env": env, "method": method, "lr": 1e-3, "seed": seed, "frames": 1000 * (point + 1), "eval_trial_return": ret,
         "train_trial_return": ret - 1.0}
        for env, methods in curves.items()
        for method, seeds in methods.items()
        for seed, curve in enumerate(seeds)
        for point, ret in enumerate(curve)
    ]
    return pd.DataFrame(rows)


def expected_statistic(env: str, method: str, metric: str) -> tuple[float, float, float]:
    """(mean, CI low, CI high) over the two seeds, from CURVES directly."""
    per_seed = [np.mean(curve) if metric == "auc" else curve[-1] for curve in CURVES[env][method]]
    return float(np.mean(per_seed)), min(per_seed), max(per_seed)


@pytest.fixture(scope="module")
def evaluated() -> pd.DataFrame:
    evals = evaluation_points(CURVES)
    return evaluate_claims(analysis.summary_table(evals, analysis.best_lr(evals)))


def rows_of(evaluated: pd.DataFrame, claim: str, env: str = "GridNavi", metric: str = "auc") -> pd.DataFrame:
    return evaluated[(evaluated["claim"] == claim) & (evaluated["env"] == env) & (evaluated["metric"] == metric)]


def test_testable_claims_per_env(evaluated):
    testable = set(zip(evaluated["claim"], evaluated["env"], evaluated["metric"]))
    claims_by_env = {
        "GridNavi": ["RNN+HN > RNN", "RNN+S > RNN", "RNN+HN >= RNN+S", "RNN+HN > RNN+HN-Kaiming",
                     "TI++HN best task-inference method", "RNN+HN best overall"],
        "MC-LS": ["RNN+HN > VI+HN"],  # RNN+S, RNN, Kaiming have no MC-LS results
    }
    assert testable == {
        (claim, env, metric) for env, claims in claims_by_env.items() for claim in claims for metric in ("auc", "final")
    }


@pytest.mark.parametrize("metric", ["auc", "final"])
def test_pairwise_claim_numbers(evaluated, metric):
    row = rows_of(evaluated, "RNN+HN > RNN", metric=metric).iloc[0]
    assert (row["better"], row["worse"]) == ("rnn_hn", "rnn")
    better = (row["better_mean"], row["better_ci_low"], row["better_ci_high"])
    worse = (row["worse_mean"], row["worse_ci_low"], row["worse_ci_high"])
    assert better == pytest.approx(expected_statistic("GridNavi", "rnn_hn", metric))
    assert worse == pytest.approx(expected_statistic("GridNavi", "rnn", metric))
    assert row["verdict"] == row["claim_verdict"] == SUPPORTED


def test_verdict_depends_on_the_metric(evaluated):
    # auc: rnn_s [3, 4] and rnn [1, 3] touch, which is not apart; final: [6, 8] vs [2, 4]
    assert rows_of(evaluated, "RNN+S > RNN", metric="auc")["claim_verdict"].tolist() == [NOT_SEPARATED]
    assert rows_of(evaluated, "RNN+S > RNN", metric="final")["claim_verdict"].tolist() == [SUPPORTED]


def test_contradicted_when_the_other_method_is_clearly_better(evaluated):
    for metric in ("auc", "final"):
        assert rows_of(evaluated, "RNN+HN > RNN+HN-Kaiming", metric=metric)["claim_verdict"].tolist() == [CONTRADICTED]
    assert rows_of(evaluated, "RNN+HN >= RNN+S")["claim_verdict"].tolist() == [SUPPORTED]
    assert rows_of(evaluated, "RNN+HN > VI+HN", env="MC-LS")["claim_verdict"].tolist() == [SUPPORTED]


def test_best_of_listed_methods_compares_with_those_present(evaluated):
    rows = rows_of(evaluated, "TI++HN best task-inference method")
    assert rows["worse"].tolist() == ["ti", "ti_pp"]  # ti_naive has no results
    assert rows["verdict"].tolist() == [SUPPORTED, NOT_SEPARATED]
    assert set(rows["claim_verdict"]) == {NOT_SEPARATED}
    ti_pp = rows.iloc[1]
    assert (ti_pp["worse_mean"], ti_pp["worse_ci_low"], ti_pp["worse_ci_high"]) == pytest.approx(
        expected_statistic("GridNavi", "ti_pp", "auc")
    )


def test_best_overall_compares_with_every_other_method(evaluated):
    rows = rows_of(evaluated, "RNN+HN best overall", metric="final")
    assert rows["worse"].tolist() == ["rnn", "rnn_s", "rnn_hn_kaiming", "ti", "ti_pp", "ti_pp_hn", "vi_hn"]
    assert rows["verdict"].tolist() == [SUPPORTED, SUPPORTED, CONTRADICTED, SUPPORTED, SUPPORTED, SUPPORTED, SUPPORTED]
    assert set(rows["claim_verdict"]) == {CONTRADICTED}


def test_nothing_testable_with_one_method():
    evals = evaluation_points({"GridNavi": {"rnn_hn": CURVES["GridNavi"]["rnn_hn"]}})
    assert evaluate_claims(analysis.summary_table(evals, analysis.best_lr(evals))).empty


def test_claim_limited_to_its_envs():
    claim = Claim("RNN+HN > VI+HN", "rnn_hn", ("vi_hn",), ("MC-LS",))
    assert claim.rivals("MC-LS", ["vi_hn", "rnn_hn"]) == ["vi_hn"]
    assert claim.rivals("GridNavi", ["vi_hn", "rnn_hn"]) == []
    assert claim.rivals("MC-LS", ["vi_hn"]) == []


def test_comparison_verdict_needs_strictly_apart_intervals():
    assert comparison_verdict(2.0, 3.0, 0.0, 1.0) == SUPPORTED
    assert comparison_verdict(0.0, 1.0, 2.0, 3.0) == CONTRADICTED
    assert comparison_verdict(1.0, 3.0, 0.0, 1.0) == NOT_SEPARATED
    assert comparison_verdict(0.0, 1.0, 1.0, 3.0) == NOT_SEPARATED


def test_claim_verdict_of_several_comparisons():
    assert claim_verdict([SUPPORTED, SUPPORTED]) == SUPPORTED
    assert claim_verdict([SUPPORTED, NOT_SEPARATED]) == NOT_SEPARATED
    assert claim_verdict([SUPPORTED, NOT_SEPARATED, CONTRADICTED]) == CONTRADICTED


# --- report ----------------------------------------------------------------------------------


def write_results(root: Path, curves: dict[str, list[list[float]]]) -> Path:
    """GridNavi trials in Tune's layout (test_report.write_trial), seeds 0 and 1 at lr 1e-3."""
    for method, seeds in curves.items():
        for seed, returns in enumerate(seeds):
            write_trial(root / f"PPO_GridNavi_{method}_{seed}", method, 1e-3, seed, returns, wall_s=4.0)
    return root


def test_report_states_a_supported_claim(tmp_path):
    curves = {"rnn": [[0.0, 0.0], [1.0, 1.0]], "rnn_hn": [[10.0, 10.0], [12.0, 12.0]]}
    results = write_results(tmp_path / "results", curves)
    write_report(results, tmp_path / "report")
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "## Paper claims" in markdown
    assert (
        "| RNN+HN > RNN | GridNavi | auc | rnn_hn | 11.00 [10.00, 12.00] | rnn | 0.50 [0.00, 1.00] "
        "| supported (CIs apart) | supported (CIs apart) |"
    ) in markdown
    assert "| RNN+HN best overall | GridNavi | final | rnn_hn |" in markdown
    assert "<h2>Paper claims</h2>" in (tmp_path / "report" / "report.html").read_text()


def test_report_says_when_no_claim_is_testable(tmp_path):
    results = write_results(tmp_path / "results", {"rnn": [[0.0, 0.0], [1.0, 1.0]]})
    write_report(results, tmp_path / "report")
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "## Paper claims" in markdown
    assert "No claim of PAPER_SPEC section 7 is testable" in markdown
