"""vidcap-bench's judgement on hand-made numbers: the verdict rule and comparisons (benchmark/stats.py), the
claims (claims.py), the suite tables' health columns (tables.py), how the best configuration is chosen
(selection.py) and the report's budget line (report/manifest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.claims import CLAIMS, Claim, judge
from benchmark.runner import RunRecord
from benchmark.selection import choose
from benchmark.stats import (
    NOT_JUDGED,
    Comparison,
    compare_independent,
    compare_per_video,
    is_collapsed,
    summarise_seeds,
    verdict,
)
from benchmark.tables import per_seed, run_health, suite_summary
from vidcap_core.errors import ConfigError


def comparison(diff: float, low: float, high: float, mean_b: float = 1.0, converged: tuple[int, int] = (3, 3)) -> Comparison:
    """A - B with its CI; `converged`: runs of A and of B that converged (of 3 each)."""
    return Comparison(a="A", b="B", metric="CIDEr", mean_a=mean_b + diff, mean_b=mean_b, diff=diff, ci_low=low,
                      ci_high=high, p_value=0.5, n=10, unit="videos", n_resamples=1000, method="test",
                      a_converged=converged[0], a_runs=3, b_converged=converged[1], b_runs=3)


# ----------------------------------------------------------------------------- verdict rule


@pytest.mark.parametrize(("diff", "low", "high", "better", "expected"), [
    (0.20, 0.05, 0.35, "higher", "supported"),  # whole CI above zero
    (0.01, -0.02, 0.04, "higher", "not supported"),  # CI below delta: no effect of interest
    (-0.30, -0.50, -0.10, "higher", "not supported"),  # significant the other way
    (0.05, -0.10, 0.20, "higher", "inconclusive"),  # spans zero and delta
    (-0.20, -0.35, -0.05, "lower", "supported"),  # lower is better: A - B < 0 everywhere
    (0.20, 0.05, 0.35, "lower", "not supported"),
    (-0.05, -0.20, 0.10, "lower", "inconclusive"),
])
def test_verdict_rule(diff, low, high, better, expected):
    assert verdict(comparison(diff, low, high), better, delta=0.05).name == expected


def test_verdict_edges_and_bad_input():
    assert verdict(None, "higher", 0.05).name == "not measured"
    assert verdict(comparison(0.0, 0.0, 0.1), "higher", 0.05).name == "inconclusive"  # lo == 0 is not > 0
    assert verdict(comparison(0.0, -0.01, 0.05), "higher", 0.05).name == "inconclusive"  # hi == delta
    with pytest.raises(ConfigError, match="better"):
        verdict(comparison(0.1, 0.0, 0.2), "bigger", 0.05)
    with pytest.raises(ConfigError, match="delta"):
        verdict(comparison(0.1, 0.0, 0.2), "higher", -1.0)


def test_relative_delta_uses_the_baseline_mean():
    claim = Claim("x", "x", "x", "cells", "A vs B: CIDEr", "x", "higher", 0.05, relative=True)
    # delta = 5% of 2.0 = 0.1: an interval [-0.02, 0.08] rules out 0.1 -> not supported
    assert claim.resolve_delta(comparison(0.03, -0.02, 0.08, mean_b=2.0)) == pytest.approx(0.1)
    suites = {"cells": {"comparisons": {"A vs B: CIDEr": comparison(0.03, -0.02, 0.08, mean_b=2.0).to_dict()}}}
    assert judge(claim, suites).verdict.name == "not supported"
    suites["cells"]["comparisons"]["A vs B: CIDEr"] = comparison(0.03, -0.02, 0.12, mean_b=2.0).to_dict()
    assert judge(claim, suites).verdict.name == "inconclusive"
    assert judge(claim, {}).verdict.name == "not measured"


@pytest.mark.parametrize("converged", [(2, 3), (3, 0), (0, 0)])
def test_no_verdict_unless_every_compared_run_converged(converged):
    decisive = comparison(0.20, 0.05, 0.35, converged=converged)  # would be "supported"
    judged = verdict(decisive, "higher", delta=0.05)
    assert judged.name == NOT_JUDGED == "not judged (undertrained)"  # comparisons without training status: convergence decides
    assert judged.effect == pytest.approx(0.20)  # the effect is still reported, only not judged
    assert verdict(comparison(0.01, -0.02, 0.04, converged=converged), "higher", 0.05).name == NOT_JUDGED
    # a claim about training itself (gradients exploding without clipping) judges unconverged runs
    assert verdict(decisive, "higher", 0.05, needs_convergence=False).name == "supported"


def test_a_comparison_without_convergence_counts_is_not_judged():
    """Stored before convergence was recorded (old <suite>.json): no verdict rather than a guess."""
    stored = {k: v for k, v in comparison(0.2, 0.05, 0.35).to_dict().items() if not k.endswith(("_converged", "_runs"))}
    old = Comparison.from_dict(stored)
    assert old.all_converged is None and verdict(old, "higher", 0.05).name == NOT_JUDGED
    assert Comparison.from_dict(comparison(0.2, 0.05, 0.35).to_dict()).all_converged is True


def test_claims_use_the_convergence_of_their_comparison():
    lstm = next(c for c in CLAIMS if c.id == "lstm_vs_rnn")
    exploding = next(c for c in CLAIMS if c.id == "exploding")
    for claim in (lstm, exploding):
        stored = {claim.suite: {"comparisons": {claim.comparison: comparison(0.5, 0.3, 0.7, converged=(3, 1)).to_dict()}}}
        expected = "supported" if claim is exploding else NOT_JUDGED  # divergence is what `exploding` measures
        assert judge(claim, stored).verdict.name == expected
    oracle = next(c for c in CLAIMS if c.id == "lstm_vs_rnn_oracle")
    assert oracle.comparison == "s2vt-lstm-oracle vs s2vt-rnn-oracle: CIDEr" and "oracle features" in oracle.text
    assert {c.id for c in CLAIMS} >= {"attention_precise_oracle", "attention_faster_oracle"}


def test_collapse_rule_allows_for_references_that_repeat():
    assert is_collapsed(distinct_captions=1, distinct_references=120)  # one caption for every clip
    assert is_collapsed(59, 120) and not is_collapsed(60, 120)  # the 50% line
    # 120 clips but only 2 different reference sets: 1 caption is half of what a perfect model needs
    assert not is_collapsed(1, 2) and not is_collapsed(0, 0)


def health_rows() -> pd.DataFrame:
    return pd.DataFrame([
        {"config": "s2vt-rnn", "seed": 0, "CIDEr": 0.1, "converged": False, "distinct_captions": 1, "test_clips": 10, "collapsed": True},
        {"config": "s2vt-rnn", "seed": 1, "CIDEr": 0.3, "converged": True, "distinct_captions": 9, "test_clips": 10, "collapsed": False},
        {"config": "s2vt-lstm", "seed": 0, "CIDEr": 0.5, "converged": True, "distinct_captions": 10, "test_clips": 10, "collapsed": False},
        {"config": "s2vt-lstm", "seed": 1, "CIDEr": 0.7, "converged": True, "distinct_captions": 8, "test_clips": 10, "collapsed": False},
    ])


def test_suite_tables_show_convergence_distinct_captions_and_collapse():
    health = run_health(health_rows(), ["config"]).set_index("config")
    assert health.loc["s2vt-rnn", "converged"] == "1/2" and health.loc["s2vt-lstm", "converged"] == "2/2"
    assert health.loc["s2vt-rnn", "distinct captions"] == "0.50 (5/10)"
    assert health.loc["s2vt-rnn", "collapsed"] == "yes (1/2)" and health.loc["s2vt-lstm", "collapsed"] == "no"
    table = suite_summary(health_rows(), ["config"], ["CIDEr"])
    assert list(table.columns) == ["config", "seeds", "CIDEr", "converged", "distinct captions", "collapsed"]
    assert table.iloc[0].tolist() == ["s2vt-rnn", "2", "0.200 ± 0.141", "1/2", "0.50 (5/10)", "yes (1/2)"]
    no_eval = health_rows().drop(columns=["distinct_captions", "test_clips", "collapsed"])  # e.g. the gradients suite
    assert run_health(no_eval, ["config"])["collapsed"].tolist() == ["n/a", "n/a"]


def test_suite_tables_print_counts_as_integers():
    rows = health_rows().assign(steps=[3000, 1700, 2800, 2800], sem_exact=[0.0, 1.0, 1.0, 0.0])
    rows = pd.concat([rows, pd.DataFrame([{"config": "attention-gru", "seed": 1, "CIDEr": 0.4, "steps": 2600}])],
                     ignore_index=True)  # a seed of its own: the pivot below has NaN, so its counts turn float
    table = suite_summary(rows, ["config"], ["CIDEr", "sem_exact", "steps", "distinct_captions"]).set_index("config")
    assert table.loc["s2vt-rnn", ["steps", "distinct_captions"]].tolist() == ["2350 ± 919.2", "5 ± 5.7"]
    assert table.loc["s2vt-lstm", ["steps", "distinct_captions"]].tolist() == ["2800 ± 0", "9 ± 1.4"]
    assert table.loc["attention-gru", ["steps", "distinct_captions"]].tolist() == ["2600", "n/a"]
    assert table.loc["s2vt-lstm", "sem_exact"] == "0.500 ± 0.707"  # a score stays a score, even when whole
    assert table.loc["attention-gru", "sem_exact"] == "n/a"
    assert per_seed(rows, ["config"], "steps").values.tolist() == [
        ["s2vt-rnn", "3000", "1700"], ["s2vt-lstm", "2800", "2800"], ["attention-gru", "n/a", "2600"]]
    assert per_seed(rows, ["config"], "CIDEr").iloc[0].tolist() == ["s2vt-rnn", "0.100", "0.300"]
    undeclared = suite_summary(health_rows().assign(frames=[8, 8, 16, 32]), ["config"], ["frames"])  # int dtype
    assert undeclared["frames"].tolist() == ["8 ± 0", "24 ± 11.3"]


def record_with(tmp: Path, name: str, dataset: str, seed: int, exact: float | None, cider: float) -> RunRecord:
    directory = tmp / name
    (directory / "train").mkdir(parents=True)
    (directory / "train" / "best.pt").write_bytes(b"checkpoint")
    best_val = {"CIDEr": cider, **({"exact": exact} if exact is not None else {})}
    return RunRecord(key=name, label=name.split("_")[0], config={"seed": seed, "dataset": dataset}, dir=directory,
                     result={"best_val": best_val, "convergence": {"converged": True}}, wall_seconds=0.0)


def test_selection_uses_exact_accuracy_on_synthclips_and_cider_on_real_data(tmp_path):
    synth = {"attention-lstm": [record_with(tmp_path, "attention-lstm_0", "synth", 0, 0.50, 0.9),
                                record_with(tmp_path, "attention-lstm_1", "synth", 1, 0.60, 0.8)],
             "s2vt-lstm": [record_with(tmp_path, "s2vt-lstm_0", "synth", 0, 0.40, 1.5)]}
    choice = choose(synth)
    assert choice.label == "attention-lstm" and choice.record.seed == 1  # exact first, CIDEr-D second
    assert choice.mean_key == pytest.approx((0.55, 0.85)) and "val exact 0.550" in choice.describe()
    tie = {"a-lstm": [record_with(tmp_path, "a-lstm_0", "synth", 0, 0.5, 0.7)],
           "b-lstm": [record_with(tmp_path, "b-lstm_0", "synth", 0, 0.5, 0.9)]}
    assert choose(tie).label == "b-lstm"  # equal exact accuracy: CIDEr-D breaks the tie
    real = {"attention-lstm": [record_with(tmp_path, "r-attention_0", "msvd", 0, None, 0.3)],
            "s2vt-lstm": [record_with(tmp_path, "r-s2vt_0", "msvd", 0, None, 0.4)]}
    assert choose(real).label == "s2vt-lstm"


def test_independent_comparison_of_two_clip_sets():
    same = compare_independent([1.0, 0.0] * 50, [1.0, 0.0, 1.0, 0.0] * 30)
    assert same.mean_a == same.mean_b == 0.5 and same.within_sampling_error and same.n_b == 120
    worse = compare_independent([1.0] * 10 + [0.0] * 90, [1.0] * 90 + [0.0] * 10)
    assert worse.diff == pytest.approx(-0.8) and not worse.within_sampling_error
    assert worse.ci_a[0] <= 0.1 <= worse.ci_a[1] and compare_independent([], [1.0]) is None


def test_paired_comparison_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(1)
    base = {f"video{i}": float(v) for i, v in enumerate(rng.uniform(0.2, 0.8, 60))}
    better = [{k: v + 0.1 + rng.normal(0, 0.02) for k, v in base.items()} for _ in range(3)]
    same = [{k: v + rng.normal(0, 0.02) for k, v in base.items()} for _ in range(3)]
    up = compare_per_video("A", better, "B", [base], "CIDEr")
    null = compare_per_video("A", same, "B", [base], "CIDEr")
    assert up is not None and null is not None
    assert up.ci_low > 0.05 and up.diff == pytest.approx(0.1, abs=0.02) and up.n == 60
    assert null.ci_low < 0 < null.ci_high
    assert compare_per_video("A", [{"x": 1.0}], "B", [{"y": 1.0}], "CIDEr") is None


def test_seed_summary():
    summary = summarise_seeds([1.0, 2.0, 3.0, float("nan")])
    assert (summary.mean, summary.n) == (2.0, 3) and summary.std == pytest.approx(1.0)
    assert summarise_seeds([]).format() == "n/a"


def test_budget_verdict_only_for_an_invocation_that_trained_every_run():
    from benchmark.report import budget_text

    def manifest(trained: int, total: int, seconds: float) -> dict:
        return {"invocations": [{"profile": "full", "profile_settings": {"budget_s": 3600}, "wall_seconds": seconds,
                                 "suites": ["cells"], "runs_trained": trained, "runs_total": total, "jobs": 2,
                                 "suite_seconds": {"cells": seconds}}]}

    assert "within its 60-minute budget" in budget_text(manifest(81, 81, 3000))
    assert "over its 60-minute budget" in budget_text(manifest(81, 81, 4000))
    partial = budget_text(manifest(6, 81, 500))  # a resumed run's wall time says nothing about the budget
    assert "reused 75 of its 81 runs" in partial and "within" not in partial and "over its" not in partial
