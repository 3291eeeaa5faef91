"""What a suite returns (`SuiteResult`) and the files it becomes: `<suite>.csv` (its DataFrame, one
row per run and seed), `<suite>.md` and `<suite>.json` (what `vidcap-bench report` reads; its `runs`
list holds each row's convergence and caption-health facts for REPORT.md)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.profiles import Profile
from benchmark.stats import Comparison, format_ci, format_p
from benchmark.suites.context import BenchContext
from benchmark.tables import csv_text, markdown_table
from vidcap_core.files import atomic_write_text, json_safe, write_json

NO_COMPARISON = "_No paired comparison could be computed._"
# Columns of a suite's table that tell its rows apart besides config and seed (which ones a suite has varies).
VARIANT_COLUMNS = ("backbone", "frames", "beam", "train_order", "test_order")
RUN_FACTS = ("run_label", "converged", "convergence", "convergence_rule", "status", "trained", "stop_reason", "steps",
             "best_step", "val_exact", "val_CIDEr", "last_val_step", "last_val_exact", "last_val_CIDEr", "test_clips",
             "distinct_captions", "distinct_references", "collapsed", "run_key", "parent_key", "parent_converged")


@dataclass
class SuiteResult:
    """What a suite writes: its table (CSV), a markdown body, figures, comparisons and other facts."""

    name: str
    title: str
    table: pd.DataFrame  # one row per run and seed (and variant: frames, beam, frame order...)
    body: str  # markdown: tables and figure links, paths relative to the results folder
    figures: list[str] = field(default_factory=list)
    comparisons: dict[str, Comparison] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    runs_trained: int = 0
    runs_reused: int = 0


SuiteFunction = Callable[[BenchContext], SuiteResult]


def comparisons_frame(comparisons: dict[str, Comparison], digits: int = 3) -> pd.DataFrame:
    """One row per paired comparison, A - B with its CI and p-value, numbers as shown in the report."""
    values = list(comparisons.values())
    return pd.DataFrame({
        "A": [c.a for c in values], "B": [c.b for c in values], "metric": [c.metric for c in values],
        "mean A": [f"{c.mean_a:.{digits}f}" for c in values], "mean B": [f"{c.mean_b:.{digits}f}" for c in values],
        "A − B": [f"{c.diff:+.{digits}f}" for c in values], "95% CI": [format_ci(c, digits) for c in values],
        "p": [format_p(c.p_value) for c in values], "paired over": [f"{c.n} {c.unit}" for c in values],
    })


def comparisons_table(comparisons: dict[str, Comparison], digits: int = 3) -> str:
    return markdown_table(comparisons_frame(comparisons, digits)) if comparisons else NO_COMPARISON


def figure_link(name: str, caption: str) -> str:
    return f"![{caption}](figures/{name})"


def suite_markdown(result: SuiteResult, profile: Profile, seeds: Sequence[int]) -> str:
    parts = [f"# {result.title}", "",
             f"Profile `{profile.name}`, seeds {', '.join(map(str, seeds))}; "
             f"{result.runs_trained} run(s) trained and {result.runs_reused} reused in this invocation; "
             f"wall time {result.wall_seconds:.0f} s.", "", result.body]
    if result.comparisons:
        parts += ["", "## Paired comparisons (95% bootstrap CI)", "", comparisons_table(result.comparisons)]
    if result.notes:
        parts += ["", "## Notes", "", *(f"- {n}" for n in result.notes)]
    return "\n".join(parts) + "\n"


def run_facts(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per row of a suite's table: config, seed, its variant in words, convergence and caption health."""
    if table.empty or "config" not in table:
        return []
    variants = [c for c in VARIANT_COLUMNS if c in table]
    facts = table.reindex(columns=["config", "seed", *RUN_FACTS])
    words = table.apply(lambda row: ", ".join(f"{c} {row[c]}" for c in variants if pd.notna(row[c])), axis=1)
    facts.insert(2, "variant", words if variants else "")
    return json_safe(facts.astype(object).where(facts.notna(), None).to_dict(orient="records"))


def config_seeds(table: pd.DataFrame) -> dict[str, list[int]]:
    """{trained configuration (run label): its seeds} of a suite's table."""
    if table.empty or "seed" not in table:
        return {}
    label = "run_label" if "run_label" in table else "config"
    return {str(k): sorted(int(s) for s in set(v)) for k, v in table.groupby(label, sort=False)["seed"]}


def write_suite(out: Path, result: SuiteResult, profile: Profile, seeds: Sequence[int]) -> None:
    """`<suite>.csv`, `<suite>.md` and `<suite>.json` (what `vidcap-bench report` reads); `seeds`: every seed
    the invocation may use, narrowed to those the suite's table holds."""
    out.mkdir(parents=True, exist_ok=True)
    by_config = config_seeds(result.table)
    if by_config:
        seeds = sorted({s for values in by_config.values() for s in values})
    atomic_write_text(out / f"{result.name}.csv", csv_text(result.table))
    atomic_write_text(out / f"{result.name}.md", suite_markdown(result, profile, seeds))
    write_json(out / f"{result.name}.json", {
        "name": result.name, "title": result.title, "profile": profile.name, "seeds": list(seeds),
        "body": result.body, "figures": result.figures, "notes": result.notes,
        "comparisons": {k: c.to_dict() for k, c in result.comparisons.items()},
        "config_seeds": by_config,
        "facts": json_safe(result.facts), "runs": run_facts(result.table), "wall_seconds": round(result.wall_seconds, 2),
        "runs_trained": result.runs_trained, "runs_reused": result.runs_reused,
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    })


def read_suite(out: Path, name: str) -> dict[str, Any] | None:
    path = out / f"{name}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
