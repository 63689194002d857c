"""The paper's claims (PAPER_SPEC section 7) as comparisons of methods, judged by 68% bootstrap CIs.

Each claim says that one method beats one or more others in some environments. It is tested on
the per-(env, method) summary at each method's best learning rate (`analysis.summary_table`),
on both statistics: auc (mean return over all evaluations; sample efficiency) and final (return
of the last evaluation; asymptote). One comparison of the claimed better method with another is

    supported (CIs apart)        better's CI low > other's CI high
    contradicted (CIs apart)     other's CI low > better's CI high
    not separated (CIs overlap)  otherwise

and a claim, per env and statistic, is supported when all its comparisons are, contradicted when
any is, and not separated otherwise.

    summary = analysis.summary_table(evals, analysis.best_lr(evals))
    evaluate_claims(summary)

Not encoded (no two-method comparison to test): plain RNN failing on Cheetah-Dir and Walker, and
Walker's small TI / TI Naive differences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from rl_hyper.models.methods import PAPER_METHODS

SUPPORTED = "supported (CIs apart)"
CONTRADICTED = "contradicted (CIs apart)"
NOT_SEPARATED = "not separated (CIs overlap)"
STATISTICS = ("auc", "final")
GRID_WORLDS = ("GridNavi", "GridNavi-Dense", "GridNavi-Show")
COLUMNS = [
    "claim", "env", "metric", "better", "worse",
    "better_mean", "better_ci_low", "better_ci_high", "worse_mean", "worse_ci_low", "worse_ci_high",
    "verdict", "claim_verdict",
]


@dataclass(frozen=True)
class Claim:
    """`better` beats each method of `worse` in each env of `envs`.

    worse: method ids; None = every other method with results in that env. Listed methods without
        results are left out; the claim is testable in an env that has results for `better` and
        for at least one method it is compared with.
    envs: env names (registry short names); None = every env.
    """

    text: str
    better: str
    worse: tuple[str, ...] | None = None
    envs: tuple[str, ...] | None = None

    def rivals(self, env: str, methods_with_results: Sequence[str]) -> list[str]:
        """The methods `better` is compared with in `env`; empty when the claim is not testable there."""
        if (self.envs is not None and env not in self.envs) or self.better not in methods_with_results:
            return []
        candidates = self.worse if self.worse is not None else [m for m in PAPER_METHODS if m != self.better]
        return [method for method in candidates if method in methods_with_results]


CLAIMS: tuple[Claim, ...] = (
    Claim("RNN+HN > RNN", "rnn_hn", ("rnn",), GRID_WORLDS),
    Claim("RNN+S > RNN", "rnn_s", ("rnn",)),
    Claim("RNN+HN >= RNN+S", "rnn_hn", ("rnn_s",)),
    Claim("RNN+HN > RNN+HN-Kaiming", "rnn_hn", ("rnn_hn_kaiming",)),
    Claim("TI++HN best task-inference method", "ti_pp_hn", ("ti_naive", "ti", "ti_pp"), GRID_WORLDS),
    Claim("RNN+HN best overall", "rnn_hn", None, GRID_WORLDS),
    Claim("RNN+HN beats every other method", "rnn_hn", None, ("CheetahDir", "AntDir")),
    Claim("RNN+HN highest (small margin)", "rnn_hn", None, ("CheetahVel",)),
    Claim("RNN+HN > VI+HN", "rnn_hn", ("vi_hn",), ("MC-LS",)),
)


def comparison_verdict(better_low: float, better_high: float, worse_low: float, worse_high: float) -> str:
    """Verdict on "better beats worse" from the two confidence intervals."""
    if better_low > worse_high:
        return SUPPORTED
    if worse_low > better_high:
        return CONTRADICTED
    return NOT_SEPARATED


def claim_verdict(comparison_verdicts: Sequence[str]) -> str:
    """Supported when every comparison is, contradicted when any is, not separated otherwise."""
    if all(verdict == SUPPORTED for verdict in comparison_verdicts):
        return SUPPORTED
    if CONTRADICTED in comparison_verdicts:
        return CONTRADICTED
    return NOT_SEPARATED


def evaluate_claims(summary: pd.DataFrame, claims: Sequence[Claim] = CLAIMS) -> pd.DataFrame:
    """One row per comparison of each testable claim, env and statistic (claims in order, then env,
    metric auc before final, compared method).

    summary: `analysis.summary_table` output (env, method, <stat>_mean, <stat>_ci_low, <stat>_ci_high).
    Columns: claim, env, metric, better, worse, better_/worse_ mean, ci_low, ci_high, verdict (of
    this comparison), claim_verdict (of all the claim's comparisons in this env and metric).
    """
    rows = []
    for claim in claims:
        for env, results in summary.groupby("env", sort=True):
            by_method = results.set_index("method")
            rivals = claim.rivals(env, list(by_method.index))
            if not rivals:
                continue
            for metric in STATISTICS:
                bounds = [f"{metric}_mean", f"{metric}_ci_low", f"{metric}_ci_high"]
                better_mean, better_low, better_high = by_method.loc[claim.better, bounds]
                comparisons = []
                for rival in rivals:
                    worse_mean, worse_low, worse_high = by_method.loc[rival, bounds]
                    comparisons.append(
                        {"claim": claim.text, "env": env, "metric": metric, "better": claim.better, "worse": rival,
                         "better_mean": better_mean, "better_ci_low": better_low, "better_ci_high": better_high,
                         "worse_mean": worse_mean, "worse_ci_low": worse_low, "worse_ci_high": worse_high,
                         "verdict": comparison_verdict(better_low, better_high, worse_low, worse_high)}
                    )
                overall = claim_verdict([comparison["verdict"] for comparison in comparisons])
                rows += [comparison | {"claim_verdict": overall} for comparison in comparisons]
    return pd.DataFrame(rows, columns=COLUMNS)
