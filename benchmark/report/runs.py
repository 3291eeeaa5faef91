"""REPORT.md's sections on the training runs themselves: the best model, convergence per run, collapsed
configurations, the oracle ceiling, the generalisation check on a fresh SynthClips set, and the seeds
behind every number."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.claims import claim_configurations
from benchmark.generalise import read_generalisation
from benchmark.report.manifest import data_of
from benchmark.report.verdicts import all_runs
from benchmark.stats import COLLAPSE_RULE
from benchmark.tables import fmt, markdown_table
from vidcap_core.training.convergence import STATUS_RULE, UNDERTRAINED


def best_text(results: Path) -> str:
    summary = results / "best" / "summary.json"
    if not summary.is_file():
        return "_No best model exported yet (it is chosen after the runs of the architecture x cell grid)._"
    data = json.loads(summary.read_text(encoding="utf-8"))
    val, test = data.get("val") or {}, data.get("test") or {}
    exact = "" if val.get("exact") is None else f"validation exact {fmt(val.get('exact'))}, "
    test_exact = ((test.get("semantic") or {}).get("exact"))
    test_text = f"test exact {fmt(test_exact)}, " if test_exact is not None else ""
    convergence = data.get("convergence") or {}
    converged = ("converged" if convergence.get("converged") else
                 f"**not converged** ({convergence.get('reason', 'no verdict recorded')})")
    return (f"Best model: **{data['config']}** seed {data['seed']} — chosen on validation ({data['selection_rule']}); "
            f"{exact}validation CIDEr-D {fmt(val.get('CIDEr'))}, {test_text}test CIDEr-D {fmt(test.get('CIDEr'))}; "
            f"{converged}. Files: `best/model.pt`, `best/MODEL_CARD.md`; "
            "the best seed of every architecture x cell is in `checkpoints/` (see `checkpoints/index.json`).")


CONVERGENCE_NOTE = (
    "Every run is judged by one rule, written by the training loop into its summary.json "
    "(vidcap_core/training/convergence.py): {rules}. A run that diverged, or whose budget of steps ran out "
    "while it was still improving, did not converge. Training status, what a claim needs: {status_rule}. "
    "One row per distinct training run (runs shared between suites appear once); best / last val: the best "
    "and the last validation's exact accuracy (SynthClips) or CIDEr-D."
)


def distinct_runs(suites: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every training run behind the suites, once (by run key), with the suite that first used it."""
    seen: dict[str, dict[str, Any]] = {}
    for name, data in suites.items():
        for run in data.get("runs", []):
            key = run.get("run_key")
            if key and key not in seen and run.get("converged") is not None:
                seen[key] = {"suite": name, **run}
    return list(seen.values())


def convergence_frame(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per training run: configuration, seed, converged, training status, the verdict's reason, steps,
    best and last validation."""
    def best_last(run: dict[str, Any]) -> str:
        metric = "exact" if run.get("val_exact") is not None else "CIDEr"
        if run.get(f"val_{metric}") is None:
            return "n/a"
        return f"{fmt(run.get(f'val_{metric}'))} / {fmt(run.get(f'last_val_{metric}'))}"

    return pd.DataFrame([{
        "configuration": run.get("run_label") or run["config"], "seed": fmt(run["seed"]),
        "converged": "yes" if run["converged"] else "**no**",
        "status": (f"**{run['status']}**" if run.get("status") == UNDERTRAINED else run.get("status") or "n/a"),
        "reason": run.get("convergence") or "n/a",
        "best step / steps": f"{fmt(run.get('best_step'))} / {fmt(run.get('steps'))}", "best / last val": best_last(run),
        "stopped by": run.get("stop_reason") or "n/a", "first used by": run["suite"],
    } for run in runs], columns=["configuration", "seed", "converged", "status", "reason", "best step / steps",
                                 "best / last val", "stopped by", "first used by"])


def convergence_text(suites: dict[str, dict[str, Any]]) -> str:
    runs = distinct_runs(suites)
    if not runs:
        return "_No run recorded a convergence verdict (results written before convergence was recorded)._"
    rules = sorted({r["convergence_rule"] for r in runs if r.get("convergence_rule")}) or ["not recorded"]
    converged = sum(bool(r["converged"]) for r in runs)
    counts = f"{converged} of {len(runs)} runs converged"
    if any(r.get("status") for r in runs):
        undertrained = [r for r in runs if r.get("status") == UNDERTRAINED]
        counts += f"; {len(runs) - len(undertrained)} trained, {len(undertrained)} undertrained"
    return "\n\n".join([CONVERGENCE_NOTE.format(rules="; ".join(rules), status_rule=STATUS_RULE),
                         f"{counts}.", markdown_table(convergence_frame(runs))])


def collapsed_text(suites: dict[str, dict[str, Any]]) -> str:
    """REPORT.md's call-out of collapsed configurations (COLLAPSE_RULE), by suite and variant."""
    rows: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for name, data in suites.items():
        for run in data.get("runs", []):
            if run.get("test_clips"):
                rows.setdefault((name, run["config"], run.get("variant") or ""), []).append(run)
    flagged = [(key, runs) for key, runs in rows.items() if any(r.get("collapsed") for r in runs)]
    head = f"Collapse rule: {COLLAPSE_RULE}."
    if not flagged:
        return f"{head} No configuration collapsed." if rows else f"{head} No test captions recorded."
    frame = pd.DataFrame([{
        "suite": suite, "configuration": config, "variant": variant or "-",
        "collapsed runs": f"{sum(bool(r.get('collapsed')) for r in runs)}/{len(runs)}",
        "distinct captions / test clips": ", ".join(f"{r['distinct_captions']}/{r['test_clips']}" for r in runs),
        "distinct reference sets": ", ".join(str(r.get("distinct_references")) for r in runs),
    } for (suite, config, variant), runs in flagged])
    return "\n\n".join([f"{head} **{len(flagged)} configuration(s) collapsed**: their means in the suite tables "
                         "average captions that barely depend on the clip.", markdown_table(frame)])


CEILING_NOTE = (
    "What each decoder reaches on oracle features (`oracle`: the SynthClips ground-truth scene state per frame, "
    "perfect perception) and on the main features, test exact accuracy (all test clips, in-distribution, held-out "
    "compositions) and CIDEr-D, mean over seeds. gap = oracle − main: what the frame features lose. A low oracle "
    "number is the decoder's (or its training's) limit, not perception's."
)


def ceiling_rows(suites: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """oracle_ceiling facts of the attention and cells suites, each configuration once."""
    rows: dict[str, dict[str, Any]] = {}
    for name in ("attention", "cells"):
        for row in ((suites.get(name) or {}).get("facts") or {}).get("oracle_ceiling", []):
            rows.setdefault(row["config"], row)
    return list(rows.values())


def ceiling_text(suites: dict[str, dict[str, Any]]) -> str:
    rows = ceiling_rows(suites)
    if not rows:
        return ("_Not measured: run the `cells` or `attention` suite on SynthClips (oracle features exist for "
                "SynthClips only)._")

    def gap(row: dict[str, Any], metric: str) -> str:
        a, b = row.get(f"oracle_{metric}"), row.get(f"main_{metric}")
        return "n/a" if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) else f"{a - b:+.3f}"

    frame = pd.DataFrame([{
        "configuration": row["config"],
        "oracle exact (all / in / held-out)": " / ".join(fmt(row.get(f"oracle_sem_exact{s}")) for s in ("", "_in", "_heldout")),
        "main exact (all / in / held-out)": " / ".join(fmt(row.get(f"main_sem_exact{s}")) for s in ("", "_in", "_heldout")),
        "gap exact": gap(row, "sem_exact"), "gap exact (in)": gap(row, "sem_exact_in"),
        "oracle CIDEr-D": fmt(row.get("oracle_CIDEr")), "main CIDEr-D": fmt(row.get("main_CIDEr")),
        "gap CIDEr-D": gap(row, "CIDEr"),
        "converged (oracle / main)": f"{row.get('oracle_converged', 'n/a')} / {row.get('main_converged', 'n/a')}",
    } for row in rows])
    return "\n\n".join([CEILING_NOTE, markdown_table(frame)])


def generalisation_text(results: Path) -> str:
    data = read_generalisation(results)
    if data is None:
        return ("_Not measured: `vidcap-bench run` checks the exported best model on a fresh SynthClips set after "
                "exporting it (SynthClips only)._")
    rows = []
    for part, words in (("all", "all test clips"), ("in", "in-distribution"), ("heldout", "held-out compositions")):
        c = data.get(part)
        if not c:
            continue
        rows.append({
            "test clips": words,
            "committed test split": f"{c['mean_b']:.3f} [{c['ci_b'][0]:.3f}, {c['ci_b'][1]:.3f}] ({c['n_b']} clips)",
            "fresh set": f"{c['mean_a']:.3f} [{c['ci_a'][0]:.3f}, {c['ci_a'][1]:.3f}] ({c['n_a']} clips)",
            "fresh − committed": f"{c['diff']:+.3f} [{c['ci_diff'][0]:+.3f}, {c['ci_diff'][1]:+.3f}]",
            "same within sampling error": "yes" if c["within_sampling_error"] else "**no**",
        })
    return "\n\n".join([
        f"The exported best model ({data['config']} seed {data['run_seed']}) captions the test split of a fresh "
        f"SynthClips set, {data['data']}, made with a seed no other part of the benchmark uses, next to the "
        f"committed test split ({data['committed_data']}). Test exact accuracy with 95% percentile bootstrap CIs "
        "over clips; the difference's CI resamples the two independent sets separately. Test CIDEr-D: fresh "
        f"{fmt(data.get('fresh_CIDEr'))}, committed {fmt(data.get('committed_CIDEr'))}.",
        markdown_table(pd.DataFrame(rows)),
    ])


def config_seed_groups(suites: dict[str, dict[str, Any]]) -> dict[tuple[int, ...], list[str]]:
    """{seeds: training configurations (run labels) with exactly those seeds}, over every suite's runs; a run
    shared between suites (one key) counts under the label of the first suite that used it."""
    seeds: dict[str, set[int]] = {}
    seen: set[str] = set()
    for run in all_runs(suites):
        key = run.get("run_key")
        if not run.get("run_label") or run.get("seed") is None or (key is not None and key in seen):
            continue
        if key is not None:
            seen.add(key)
        seeds.setdefault(run["run_label"], set()).add(int(run["seed"]))
    groups: dict[tuple[int, ...], list[str]] = {}
    for label, found in seeds.items():
        groups.setdefault(tuple(sorted(found)), []).append(label)
    return dict(sorted(groups.items(), key=lambda kv: (-len(kv[0]), kv[0])))


def seeds_text(suites: dict[str, dict[str, Any]], manifest: dict[str, Any], resamples: int) -> str:
    """Every seed behind the numbers: training seeds per configuration (those a claim compares and the
    others), the data seed, the bootstrap seed."""
    groups = config_seed_groups(suites)
    if groups:
        claimed = claim_configurations()
        parts = []
        for seeds, labels in groups.items():
            others = sorted(label for label in labels if label not in claimed)
            compared = sorted(label for label in labels if label in claimed)
            words = []
            if compared:
                words.append(f"compared by a claim: {', '.join(compared)}")
            if others:
                words.append(f"no claim compares them: {', '.join(others)}")
            parts.append(f"{len(seeds)} seed(s) ({', '.join(map(str, seeds))}) for {len(labels)} configuration(s), "
                         + "; ".join(words))
        training = " — ".join(parts)
    else:  # results written before suites recorded run labels
        by_seeds: dict[tuple[int, ...], list[str]] = {}
        for name, data in suites.items():
            by_seeds.setdefault(tuple(data["seeds"]), []).append(name)
        training = "; ".join(f"{', '.join(map(str, seeds))} ({', '.join(names)})" for seeds, names in by_seeds.items())
    return (f"Seeds. Training seeds per configuration: {training}. A seed fixes weight initialisation, batch order, "
            f"dropout masks and scheduled sampling, and the same seed gives the same metrics (tests/test_training.py; "
            f"tests/test_interrupted.py compares a whole benchmark suite run twice). Data: {data_of(manifest)}. "
            f"Paired bootstraps: {resamples} resamples with generator seed 0.")
