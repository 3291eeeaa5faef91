"""REPORT.md's claims: the claims table (what was measured, the CI, δ, the verdict) and how each claim
was decided (the runs it compared with their training status, and the rule that gave the verdict)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from benchmark.claims import ClaimResult
from benchmark.stats import MIN_SEEDS, NOT_JUDGED, format_p
from benchmark.tables import fmt, markdown_table
from vidcap_core.training.convergence import FELL_OFF, STATUS_RULE, UNDERTRAINED


def verdict_badge(name: str) -> str:
    return {"supported": "**supported**", "not supported": "**not supported**",
            "inconclusive": "inconclusive", "not measured": "not measured", NOT_JUDGED: f"_{NOT_JUDGED}_"}[name]


def not_measured_reason(result: ClaimResult, suites: dict[str, dict[str, Any]]) -> str:
    """Why a claim has no comparison, in words."""
    claim = result.claim
    if claim.suite not in suites:
        return f"run the `{claim.suite}` suite"
    if claim.per_seed:
        seeds = seeds_of_configs(suites, claim.configs)
        found = "; ".join(f"{label}: {len(found)}" for label, found in seeds.items()) or "none recorded"
        if seeds and all(len(found) >= MIN_SEEDS for found in seeds.values()):
            return (f"fewer than {MIN_SEEDS} seeds of each configuration have a finite value (seeds run: {found}); "
                    f"see the `{claim.suite}` suite's per-seed table")
        return f"a per-run quantity needs at least {MIN_SEEDS} seeds of each configuration (seeds found: {found})"
    if claim.id.endswith("_oracle") and not any(seeds_of_configs(suites, claim.configs).values()):
        return "oracle features exist for SynthClips only"
    return f"no usable runs: see the `{claim.suite}` suite"


def measured_text(result: ClaimResult, suites: dict[str, dict[str, Any]]) -> str:
    c = result.comparison
    if c is None:
        return f"{result.claim.measured}: not measured ({not_measured_reason(result, suites)})"
    text = (f"{result.claim.measured}: {c.mean_a:.3f} vs {c.mean_b:.3f}, difference {c.diff:+.3f} "
            f"(p {format_p(c.p_value)}, {c.n} paired {c.unit})")
    if result.verdict.name == NOT_JUDGED:
        if c.a_trained is not None and c.b_trained is not None:
            text += (f"; trained runs: {converged_text(c.a, c.a_trained, c.a_runs)}, "
                     f"{converged_text(c.b, c.b_trained, c.b_runs)}")
        else:
            text += (f"; converged runs: {converged_text(c.a, c.a_converged, c.a_runs)}, "
                     f"{converged_text(c.b, c.b_converged, c.b_runs)}")
    return text


def converged_text(label: str, converged: int | None, runs: int | None) -> str:
    return f"{label} {'?' if converged is None else converged}/{'?' if runs is None else runs}"


def seeds_of_configs(suites: dict[str, dict[str, Any]], labels: tuple[str, ...]) -> dict[str, list[int]]:
    """{label: seeds recorded} for the training configurations `labels` (from every suite's runs)."""
    found: dict[str, set[int]] = {label: set() for label in labels}
    for run in all_runs(suites):
        if run.get("run_label") in found and run.get("seed") is not None:
            found[run["run_label"]].add(int(run["seed"]))
    return {label: sorted(seeds) for label, seeds in found.items()}


def all_runs(suites: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"suite": name, **run} for name, data in suites.items() for run in data.get("runs", [])]


DECIDED_NOTE = (
    "Which runs each claim compared and which rule decided it. Runs: every seed of configuration A and of "
    "configuration B with its training status ({status_rule}); a run that fell off its plateau shows its best "
    "and its last validation (exact accuracy on SynthClips, else CIDEr-D). Rule: the training-status gate (an "
    "undertrained run means no verdict; claims about training itself skip it), then the verdict rule on the "
    "95% CI of the oriented effect (supported: lower bound > 0; not supported: upper bound < δ; else inconclusive)."
)


def run_status_text(run: dict[str, Any]) -> str:
    """One run as the decided-by table shows it: seed, status, and best / last validation when it fell off."""
    status = run.get("status") or ("converged" if run.get("converged") else "not recorded")
    text = f"{fmt(run.get('seed'))}: {status}"
    if status == FELL_OFF:
        metric = "exact" if run.get("val_exact") is not None else "CIDEr"
        text += (f" (best val {metric} {fmt(run.get(f'val_{metric}'))} at step {fmt(run.get('best_step'))}, last "
                 f"{fmt(run.get(f'last_val_{metric}'))} at {fmt(run.get('last_val_step'))})")
    elif status == UNDERTRAINED:
        text += f" ({run.get('convergence') or 'no reason recorded'})"
    return text


def runs_text(suites: dict[str, dict[str, Any]], keys: tuple[str, ...] | None, label: str, fallback: str) -> str:
    """'label: 0: converged; 1: fell off (...)' for the runs `keys` (else the runs of configuration `fallback`)."""
    by_key = {run["run_key"]: run for run in reversed(all_runs(suites)) if run.get("run_key")}
    if keys is not None:
        runs = [by_key[k] for k in keys if k in by_key]
    else:
        runs = list({r["run_key"]: r for r in all_runs(suites) if r.get("run_label") == fallback and r.get("run_key")}.values())
    if not runs:
        return f"{label}: no runs recorded"
    name = runs[0].get("run_label") or label
    return f"{name} ({len(runs)} run(s)) seed " + "; ".join(run_status_text(r) for r in sorted(runs, key=lambda r: r.get("seed") or 0))


def rule_text(result: ClaimResult, suites: dict[str, dict[str, Any]]) -> str:
    """The rule that gave the claim its verdict, with the numbers it read."""
    c, v = result.comparison, result.verdict
    if c is None:
        return f"not measured: {not_measured_reason(result, suites)}"
    gate = ("training-status gate skipped (a claim about training itself)" if not result.claim.needs_convergence
            else "every compared run trained" if c.all_trained else "training-status gate: a compared run is undertrained")
    if v.name == NOT_JUDGED:
        return gate
    if v.name == "supported":
        decided = f"CI lower bound {v.low:+.3f} > 0"
    elif v.name == "not supported":
        decided = f"CI upper bound {v.high:+.3f} < δ {v.delta:.3g}"
    else:
        decided = f"CI [{v.low:+.3f}, {v.high:+.3f}] holds 0 and δ {v.delta:.3g}"
    return f"{gate}; {decided} ({c.method})"


def decided_frame(results: list[ClaimResult], suites: dict[str, dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for r in results:
        c, configs = r.comparison, r.claim.configs
        a_label, b_label = (c.a, c.b) if c is not None else (configs + ("", ""))[:2]
        runs = "n/a"
        if c is not None or configs:
            fallback_a, fallback_b = (configs + (a_label, b_label))[:2]
            runs = (f"A = {runs_text(suites, c.a_keys if c else None, a_label, fallback_a)}; "
                    f"B = {runs_text(suites, c.b_keys if c else None, b_label, fallback_b)}")
        rows.append({"claim": f"`{r.claim.id}`", "verdict": verdict_badge(r.verdict.name), "runs compared": runs,
                     "decided by": rule_text(r, suites)})
    return pd.DataFrame(rows, columns=["claim", "verdict", "runs compared", "decided by"])


def decided_text(results: list[ClaimResult], suites: dict[str, dict[str, Any]]) -> str:
    return "\n\n".join([DECIDED_NOTE.format(status_rule=STATUS_RULE), markdown_table(decided_frame(results, suites))])


def claims_frame(results: list[ClaimResult], suites: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per claim: where it comes from, what was measured, the CI, δ and the verdict."""
    return pd.DataFrame({
        "claim": [r.claim.text for r in results],
        "where": [r.claim.where for r in results],
        "what we measured": [measured_text(r, suites) for r in results],
        "95% CI of the difference": ["n/a" if r.comparison is None else f"[{r.comparison.ci_low:+.3f}, {r.comparison.ci_high:+.3f}]"
                                     for r in results],
        "δ": ["n/a" if not math.isfinite(r.delta) else f"{r.delta:.3g} ({r.claim.delta_reason})" for r in results],
        "verdict": [verdict_badge(r.verdict.name) for r in results],
    })


def claims_table(results: list[ClaimResult], suites: dict[str, dict[str, Any]]) -> str:
    return markdown_table(claims_frame(results, suites))
