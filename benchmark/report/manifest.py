"""REPORT.md's sections read from bench_run.json (the run manifest) and the suites' wall times: cost per
suite, each profile's budget, the machine and versions, the commands that regenerate the results, the data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.tables import markdown_table


BUDGET_PARTIAL = (
    "The last invocation of the {profile} profile took {minutes:.1f} min but reused {reused} of its {total} runs, "
    "trained by an earlier invocation, so it does not measure the profile's cost against its {budget:.0f}-minute "
    "budget; see \"About this run\" for the whole cost."
)
BUDGET_OK = "The {profile} profile took {minutes:.1f} min on this machine, within its {budget:.0f}-minute budget."
BUDGET_MISSED = (
    "The {profile} profile took {minutes:.1f} min on this machine, over its {budget:.0f}-minute budget on a "
    "2-core machine. Where the time went: {where}. Why: training on CPU dominates, and every run is "
    "trained to its own early stop. What would fix it: `--jobs 2` (two runs at once, one thread each), "
    "a smaller step budget (`--max-steps N`), fewer clips in the profile, or a GPU (`device` is picked automatically)."
)


def latest_invocations(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """For each suite, the last invocation that ran it."""
    latest: dict[str, dict[str, Any]] = {}
    for entry in manifest.get("invocations", []):
        for suite in entry.get("suites", []):
            latest[suite] = entry
    return latest


def timing_frame(suites: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per suite: the wall time of its last run and how many runs it trained or reused."""
    return pd.DataFrame([{
        "suite": name, "wall time (last run of it)": f"{data['wall_seconds'] / 60:.1f} min",
        "runs trained then": str(data["runs_trained"]), "runs reused": str(data["runs_reused"]),
        "profile": data["profile"], "seeds": ", ".join(map(str, data["seeds"])),
    } for name, data in suites.items()])


def timing_table(suites: dict[str, dict[str, Any]]) -> str:
    return markdown_table(timing_frame(suites))


def budget_text(manifest: dict[str, Any]) -> str:
    """One paragraph per profile about its budget, from the longest invocation of that profile with all suites."""
    texts = []
    by_profile: dict[str, dict[str, Any]] = {}
    for entry in manifest.get("invocations", []):
        if entry.get("runs_trained", 0) > 0 and entry["wall_seconds"] >= by_profile.get(entry["profile"], {}).get("wall_seconds", -1):
            by_profile[entry["profile"]] = entry
    for profile, entry in by_profile.items():
        budget = entry["profile_settings"]["budget_s"] / 60
        minutes = entry["wall_seconds"] / 60
        scope = f" (suites: {', '.join(entry['suites'])}; {entry['runs_trained']} runs trained, --jobs {entry['jobs']})"
        reused = entry.get("runs_total", entry["runs_trained"]) - entry["runs_trained"]
        if reused > 0:  # its wall time leaves out the runs trained before: no verdict on the budget
            texts.append(BUDGET_PARTIAL.format(profile=profile, minutes=minutes, reused=reused,
                                               total=entry["runs_total"], budget=budget) + scope)
        elif minutes <= budget:
            texts.append(BUDGET_OK.format(profile=profile, minutes=minutes, budget=budget) + scope)
        else:
            where = ", ".join(f"{k} {v / 60:.1f} min" for k, v in sorted(entry["suite_seconds"].items(), key=lambda kv: -kv[1]))
            texts.append(BUDGET_MISSED.format(profile=profile, minutes=minutes, budget=budget, where=where) + scope)
    return "\n\n".join(texts) if texts else "No invocation that trained runs is recorded yet."


def machine_text(manifest: dict[str, Any]) -> str:
    invocations = manifest.get("invocations", [])
    if not invocations:
        return "_Unknown: bench_run.json is missing._"
    m = invocations[-1]["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    return "\n".join([f"- CPU: {m['cpu_model']}, {m['cores']} core(s)", f"- RAM: {m['ram_gib']:.1f} GiB",
                      f"- GPU: {m['gpu']}", f"- OS: {m['os']}; Python {m['python']}; Java: {m['java']}",
                      f"- Libraries: {versions}"])


def commands_text(results: Path, manifest: dict[str, Any]) -> str:
    seen: list[str] = []
    for entry in manifest.get("invocations", []):
        if entry["command"] not in seen:
            seen.append(entry["command"])
    lines = ["```bash", *seen, f"vidcap-bench report --results {results}"]
    if (results / "perf.md").is_file():
        lines.insert(-1, f"vidcap-bench perf --out {results}")
    lines.append("```")
    return "\n".join(lines)


def data_of(manifest: dict[str, Any]) -> str:
    invocations = manifest.get("invocations", [])
    return invocations[-1]["dataset"] if invocations else "unknown"
