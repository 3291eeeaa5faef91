"""Issue #21's rules for judging claims: the training status (trained vs undertrained) that gates a verdict,
the configurations each claim compares and the seeds the profile gives them, per-architecture step budgets,
and REPORT.md saying which runs and which rule decided each claim. Hand-made histories and suite results,
plus the benchmark's own plans on the smoke profile (nothing is trained here)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchmark.claims import CLAIMS, claim_configurations, judge
from benchmark.invocation import BenchOptions, build_context
from benchmark.profiles import PROFILES
from benchmark.report import decided_frame, measured_text, seeds_text
from benchmark.runner import RunRecord
from benchmark.stats import NOT_JUDGED, Comparison, verdict
from benchmark.suites import SUITES
from vidcap_core.training.convergence import (
    CONVERGED,
    DIVERGED,
    FELL_OFF,
    SCHEDULE_ENDED,
    TRAINED_STATUSES,
    UNDERTRAINED,
    convergence_verdict,
    training_status,
)


def history(scores: list[tuple[float, float]], every: int = 100) -> list[tuple[int, tuple[float, float]]]:
    """(step, (exact, CIDEr)) validations every `every` steps."""
    return [((i + 1) * every, key) for i, key in enumerate(scores)]


RISING = [(0.05 * i, 0.5 + 0.1 * i) for i in range(10)]
FLAT = RISING[:6] + [(0.27, 1.05), (0.26, 1.06), (0.27, 1.04), (0.26, 1.05), (0.27, 1.05), (0.26, 1.06), (0.27, 1.05)]
# a plain RNN: climbs to a plateau early, then falls off it (instability), 20 validations
UNSTABLE = [(0.02, 0.3), (0.05, 0.45), (0.05, 0.43), (0.05, 0.44), (0.04, 0.43), (0.05, 0.44), (0.01, 0.25),
            (0.0, 0.2), (0.0, 0.21), (0.0, 0.2), (0.01, 0.22), (0.0, 0.2), (0.0, 0.19), (0.0, 0.2), (0.0, 0.2),
            (0.0, 0.2), (0.0, 0.2), (0.0, 0.2), (0.0, 0.2), (0.0, 0.2)]


# ----------------------------------------------------------------------------- training status


def test_training_status_separates_undertrained_from_trained_runs():
    assert convergence_verdict(history(FLAT), 1300, "plateau")["status"] == CONVERGED
    # still climbing when the budget ran out: undertrained, the one status that blocks a verdict
    climbing = convergence_verdict(history(RISING), 1000, "budget")
    assert climbing["status"] == UNDERTRAINED and climbing["trained"] is False
    # the same late plateau, but the plateau schedule stopped the run (LR cut and cut again): trained
    stopped = convergence_verdict(history(RISING), 1000, "plateau")
    assert not stopped["converged"] and stopped["status"] == SCHEDULE_ENDED and stopped["trained"]
    # a plain RNN that reached its plateau and fell off it is trained, whatever stopped it
    for stop in ("budget", "plateau"):
        fell = convergence_verdict(history(UNSTABLE), 2000, stop, val_clips=300)
        assert not fell["converged"] and fell["status"] == (FELL_OFF if stop == "budget" else SCHEDULE_ENDED)
        assert fell["trained"]
        assert fell["best_validation"] == {"step": 200, "key": [0.05, 0.45]}  # best and last, for the report
        assert fell["last_validation"] == {"step": 2000, "key": [0.0, 0.2]}
    assert convergence_verdict(history(FLAT), 1300, "diverged")["status"] == DIVERGED
    assert convergence_verdict([], 0, "budget")["status"] == UNDERTRAINED
    # too few validations after the plateau to tell: undertrained
    short = convergence_verdict(history([(0.1, 0.5), (0.3, 1.0), (0.3, 1.0)]), 300, "budget")
    assert short["status"] == UNDERTRAINED and "fewer than 3 validations" in short["reason"]
    assert set(TRAINED_STATUSES) == {CONVERGED, SCHEDULE_ENDED, FELL_OFF, DIVERGED}


def test_verdicts_recorded_before_the_status_existed_get_one(tmp_path):
    old = {"converged": False, "reason": "still improving", "stop_reason": "plateau", "validations": 27,
           "plateau_fraction": 0.71}  # what results/ holds for s2vt-gru-oracle (issue #19's round)
    assert training_status(old) == SCHEDULE_ENDED
    assert training_status({**old, "stop_reason": "budget", "plateau_fraction": 0.775}) == UNDERTRAINED
    assert training_status({**old, "stop_reason": "budget", "plateau_fraction": 0.4}) == FELL_OFF
    record = RunRecord(key="k", label="s2vt-gru-oracle", config={"seed": 0}, dir=tmp_path,
                       result={"stop_reason": "plateau", "convergence": old}, wall_seconds=0.0)
    assert record.convergence["status"] == SCHEDULE_ENDED and record.trained and not record.converged


# ----------------------------------------------------------------------------- the verdict gate


def comparison(trained: tuple[int, int] | None, converged: tuple[int, int] = (0, 0), runs: int = 3) -> Comparison:
    """A decisive A - B (CI [0.05, 0.35]) over `runs` runs a side."""
    counts = {} if trained is None else {"a_trained": trained[0], "b_trained": trained[1]}
    return Comparison(a="A", b="B", metric="CIDEr", mean_a=1.2, mean_b=1.0, diff=0.2, ci_low=0.05, ci_high=0.35,
                      p_value=0.01, n=600, unit="videos", n_resamples=1000, method="paired bootstrap",
                      a_converged=converged[0], a_runs=runs, b_converged=converged[1], b_runs=runs,
                      a_keys=("a0", "a1", "a2"), b_keys=("b0", "b1", "b2"), **counts)


def test_trained_runs_are_judged_even_when_they_did_not_converge():
    assert verdict(comparison(trained=(3, 3)), "higher", 0.05).name == "supported"
    assert verdict(comparison(trained=(3, 2)), "higher", 0.05).name == NOT_JUDGED == "not judged (undertrained)"
    assert verdict(comparison(trained=(3, 2)), "higher", 0.05, needs_convergence=False).name == "supported"
    # stored before training status: convergence decides, as it did
    assert verdict(comparison(trained=None, converged=(3, 3)), "higher", 0.05).name == "supported"
    assert verdict(comparison(trained=None, converged=(3, 1)), "higher", 0.05).name == NOT_JUDGED
    stored = Comparison.from_dict(comparison(trained=(3, 3)).to_dict())
    assert stored.a_keys == ("a0", "a1", "a2") and stored.all_trained is True


# ----------------------------------------------------------------------------- what each claim compares


def test_every_claim_names_the_configurations_it_compares():
    for claim in CLAIMS:
        if claim.id == "beam_one":
            assert claim.configs == ()  # the best model's configuration: known after training
            continue
        assert len(claim.configs) == 2, claim.id
        if claim.id.endswith("_oracle"):
            assert all(c.endswith("-oracle") for c in claim.configs)
    claimed = claim_configurations()
    assert {"s2vt-lstm", "s2vt-rnn", "s2vt-rnn-noclip", "s2vt-lstm-noclip", "attention-lstm-oracle",
            "attention-lstm-adversarial", "s2vt-lstm-trainshuffled"} <= claimed
    assert not {"s2vt-gru", "attention-gru", "attention-lstm-scst-semantic", "s2vt-rnn-8f"} & claimed


@pytest.fixture()
def smoke_with(monkeypatch, tmp_path):
    """build_context on the smoke profile with some fields replaced (nothing is generated or trained)."""
    def build(suites=("all",), **fields) -> object:
        monkeypatch.setitem(PROFILES, "smoke", replace(PROFILES["smoke"], **fields))
        return build_context(BenchOptions(suites=list(suites), profile="smoke", out=tmp_path / "out",
                                          cache=tmp_path / "cache"))
    return build


def planned_seeds(ctx) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for suite in SUITES.values():
        for spec in suite.plan(ctx):
            found.setdefault(spec.label, set()).add(spec.seed)
    return found


def test_configurations_a_claim_compares_get_the_claim_seeds(smoke_with):
    ctx = smoke_with(claim_seeds=3, config_seeds={"length-free": 2, "s2vt-gru": 2})
    seeds = planned_seeds(ctx)
    for label in claim_configurations():
        assert seeds[label] == {0, 1, 2}, label  # every claim configuration is planned by its suite, with 3 seeds
    assert seeds["s2vt-gru"] == {0, 1}  # a per-label override
    assert seeds["attention-gru"] == {0} and seeds["s2vt-rnn-8f"] == {0}  # no claim compares them
    # the fine-tunes follow their own label's seeds, among their parent's
    assert seeds["attention-lstm-scst-semantic"] == {0} and seeds["attention-lstm-adversarial"] == {0, 1, 2}
    assert ctx.all_seeds == (0, 1, 2)


def test_seeds_options_override_the_profile(smoke_with, tmp_path):
    smoke_with(claim_seeds=3)
    every = build_context(BenchOptions(suites=["cells"], profile="smoke", seeds=2, cache=tmp_path / "c"))
    assert every.seeds_for("s2vt-lstm") == every.seeds_for("s2vt-gru") == (0, 1)
    claims = build_context(BenchOptions(suites=["cells"], profile="smoke", seeds=1, claim_seeds=4, cache=tmp_path / "c"))
    assert claims.seeds_for("s2vt-lstm") == (0, 1, 2, 3) and claims.seeds_for("s2vt-gru") == (0,)


def test_step_budgets_per_architecture_and_per_configuration(smoke_with, tmp_path):
    ctx = smoke_with(arch_max_steps={"s2vt": 40}, config_max_steps={"s2vt-rnn-noclip": 30})
    assert ctx.spec("s2vt", "lstm", 0).config.max_steps == 40
    assert ctx.spec("attention", "lstm", 0).config.max_steps == PROFILES["smoke"].train["max_steps"] == 20
    assert ctx.spec("s2vt", "rnn", 0, suffix="-noclip", grad_clip=None).config.max_steps == 30
    assert ctx.spec("s2vt", "lstm", 0, max_steps=50).config.max_steps == 50  # a suite's own override wins
    # a fine-tune keeps the profile's fine-tune budget whatever its parent's
    parent = ctx.spec("attention", "lstm", 0)
    assert ctx.finetune_spec(parent, "scst", "-scst").config.max_steps == PROFILES["smoke"].finetune_train["max_steps"]
    cli = build_context(BenchOptions(suites=["cells"], profile="smoke", max_steps=60, cache=tmp_path / "c"))
    assert cli.spec("s2vt", "lstm", 0).config.max_steps == 60  # --max-steps over the profile's budgets


# ----------------------------------------------------------------------------- REPORT.md: which runs, which rule


def run_fact(label: str, seed: int, status: str, **more) -> dict:
    return {"config": label, "run_label": label, "seed": seed, "run_key": f"{label}-{seed}", "status": status,
            "trained": status != UNDERTRAINED, "converged": status == CONVERGED, "val_exact": 0.3, "best_step": 900,
            "last_val_exact": 0.3, "last_val_step": 2000, "convergence": "plateau reached and held", **more}


def cells_results(rnn_status: str) -> dict[str, dict]:
    lstm = [run_fact("s2vt-lstm", s, CONVERGED) for s in range(3)]
    rnn = [run_fact("s2vt-rnn", s, rnn_status, val_exact=0.05, best_step=1000, last_val_exact=0.017,
                    last_val_step=1700, convergence="still improving: plateau reached at step 7600 of 8000")
           for s in range(3)]
    trained = 3 if rnn_status != UNDERTRAINED else 0
    stored = replace(comparison(trained=(3, trained)), a="s2vt-lstm", b="s2vt-rnn", method="paired bootstrap over 600 test videos",
                     a_keys=tuple(r["run_key"] for r in lstm), b_keys=tuple(r["run_key"] for r in rnn))
    return {"cells": {"runs": lstm + rnn, "seeds": [0, 1, 2],
                      "comparisons": {"s2vt-lstm vs s2vt-rnn: CIDEr": stored.to_dict()}}}


def test_report_names_the_runs_and_the_rule_behind_each_claim():
    claim = next(c for c in CLAIMS if c.id == "lstm_vs_rnn")
    suites = cells_results(FELL_OFF)
    judged = judge(claim, suites)
    assert judged.verdict.name == "supported"
    row = decided_frame([judged], suites).iloc[0]
    assert "s2vt-rnn (3 run(s)) seed 0: fell off (best val exact 0.050 at step 1000, last 0.017 at 1700)" in row["runs compared"]
    assert "s2vt-lstm (3 run(s)) seed 0: converged; 1: converged; 2: converged" in row["runs compared"]
    assert row["decided by"].startswith("every compared run trained; CI lower bound +0.050 > 0 (paired bootstrap")
    suites = cells_results(UNDERTRAINED)
    judged = judge(claim, suites)
    row = decided_frame([judged], suites).iloc[0]
    assert judged.verdict.name == NOT_JUDGED and row["decided by"].startswith("training-status gate")
    assert "undertrained (still improving: plateau reached at step 7600 of 8000)" in row["runs compared"]
    assert "trained runs: s2vt-lstm 3/3, s2vt-rnn 0/3" in measured_text(judged, suites)


def test_report_says_why_a_per_run_claim_is_not_measured_and_which_configurations_kept_one_seed():
    vanishing = next(c for c in CLAIMS if c.id == "vanishing")
    one_seed = {"gradients": {"runs": [run_fact("s2vt-lstm", 0, CONVERGED), run_fact("s2vt-rnn", 0, FELL_OFF),
                                       run_fact("s2vt-gru", 0, CONVERGED)], "seeds": [0], "comparisons": {}}}
    text = measured_text(judge(vanishing, one_seed), one_seed)
    assert "needs at least 3 seeds of each configuration (seeds found: s2vt-lstm: 1; s2vt-rnn: 1)" in text
    faster_oracle = next(c for c in CLAIMS if c.id == "attention_faster_oracle")
    attention = {"attention": {"runs": [run_fact("attention-lstm-oracle", 0, CONVERGED)], "seeds": [0], "comparisons": {}}}
    assert "SynthClips only" not in measured_text(judge(faster_oracle, attention), attention)  # it is a seeds question
    three = {"gradients": {"runs": [run_fact(label, s, CONVERGED) for label in ("s2vt-lstm", "s2vt-rnn") for s in range(3)]
                           + [run_fact("s2vt-gru", 0, CONVERGED)], "seeds": [0, 1, 2], "comparisons": {}}}
    text = seeds_text(three, {"invocations": []}, 1000)
    assert "3 seed(s) (0, 1, 2) for 2 configuration(s), compared by a claim: s2vt-lstm, s2vt-rnn" in text
    assert "1 seed(s) (0) for 1 configuration(s), no claim compares them: s2vt-gru" in text


def test_full_profile_sets_the_issue_21_fields():
    full = PROFILES["full"]
    assert full.claim_seeds == 3 and full.seeds == 1
    assert full.arch_max_steps["s2vt"] > full.train["max_steps"]  # S2VT needs more steps than attention
    assert full.data_multipliers == (1, 2, 4, 8) and full.train_multiplier in full.data_multipliers


def test_per_run_scope_gives_claim_seeds_only_to_what_per_run_claims_compare():
    per_run = claim_configurations(scope="per-run")
    assert per_run == {"s2vt-lstm", "s2vt-rnn", "s2vt-rnn-noclip", "s2vt-lstm-noclip", "attention-lstm",
                       "attention-lstm-adversarial", "attention-lstm-oracle", "s2vt-lstm-oracle"}
    assert per_run < claim_configurations(scope="all")
    with pytest.raises(ValueError, match="per-run"):
        claim_configurations(scope="per-claim")


def test_the_per_run_scope_plans_one_seed_for_corpus_level_comparisons(smoke_with):
    seeds = planned_seeds(smoke_with(claim_seeds=3, claim_seed_scope="per-run"))
    for label in ("s2vt-lstm", "s2vt-rnn-noclip", "attention-lstm", "attention-lstm-adversarial"):
        assert seeds[label] == {0, 1, 2}, label
    for label in ("s2vt-rnn-oracle", "attention-lstm-regions", "s2vt-lstm-trainshuffled", "meanpool-lstm"):
        assert seeds[label] == {0}, label  # compared only by claims bootstrapped over test clips
