"""Does this code still give the committed numbers? `vidcap-bench verify` and `vidcap-bench rekey`.

Run keys hold declared numerics versions, not source hashes (benchmark/identity.py), so a key that has
not changed promises the same numbers. `verify_results` checks the promise on a results folder: it
re-plans the runs of the folder's invocations (bench_run.json, the same planning code `run` uses),
retrains the cheapest of them from scratch in a cache of its own, evaluates them on the test split as
the suites do, and compares steps, best step, validation and test scores with the committed rows of
the suites' CSVs.

`rekey_results` rewrites the run keys a results folder records (CSVs, suite JSONs, REPORT.md, the best
model's card and summary, the checkpoint index) to the keys this code computes for the same runs, matched
by suite, label and seed: what a change of the key's recipe (not of the numbers) needs.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vidcap_core.errors import ConfigError
from vidcap_core.files import atomic_write_text

# What a retrained run must reproduce (columns of the suites' CSVs); ints exactly, floats to the CSV's
# 6 significant digits.
COMPARED = ("steps", "best_step", "val_exact", "val_CIDEr", "CIDEr", "sem_exact", "distinct_captions")
RTOL = 2e-5
KEY_PATTERN = re.compile(r"\b[0-9a-f]{16}\b")
REKEYED_SUFFIXES = (".csv", ".json", ".md")


@dataclass(frozen=True)
class PlannedRun:
    suite: str
    spec: Any  # benchmark.runner.RunSpec


def committed_rows(results: Path) -> pd.DataFrame:
    """Every row of the suites' CSVs in `results` that names a run key."""
    from benchmark.suites import SUITE_NAMES

    frames = [pd.read_csv(results / f"{name}.csv") for name in SUITE_NAMES if (results / f"{name}.csv").is_file()]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if rows.empty or "run_key" not in rows:
        raise ConfigError(f"{results} holds no suite CSV with run keys: pass the folder `vidcap-bench run --out` wrote.")
    return rows[rows["run_key"].notna()]


def invocation_options(command: str, cache: Path, out: Path):
    """The BenchOptions of a recorded `vidcap-bench run ...` command, with another cache and output folder."""
    import typer.main

    from benchmark.cli import app
    from benchmark.invocation import BenchOptions
    from vidcap_core.data import parse_max_videos

    words = shlex.split(command)
    if words[:2] != ["vidcap-bench", "run"]:
        raise ConfigError(f"bench_run.json records {command!r}, not a `vidcap-bench run` command.")
    run_command = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    params = run_command.make_context("run", words[2:]).params
    return BenchOptions(
        suites=list(params["suite"]), profile=params["profile"].value, out=out, seeds=params["seeds"],
        claim_seeds=params.get("claim_seeds"),
        dataset=None if params["dataset"] is None else params["dataset"].value, root=params["root"],
        annotations=params["annotations"], backbone=params["backbone"], weights=params["weights"],
        max_videos=parse_max_videos(params["max_videos"]), cache=cache, jobs=params["jobs"],
        max_steps=params["max_steps"], command=command, generalise=False,
    )


def planned_runs(results: Path, cache: Path) -> dict[tuple[str, str, int], PlannedRun]:
    """{(suite, label, seed): the run as this code plans it} over every invocation of bench_run.json."""
    from benchmark.invocation import MANIFEST, build_context
    from benchmark.suites import SUITES

    manifest = results / MANIFEST
    if not manifest.is_file():
        raise ConfigError(f"{manifest} not found: verify and rekey re-plan the runs of the invocations it records.")
    planned: dict[tuple[str, str, int], PlannedRun] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for entry in json.loads(manifest.read_text(encoding="utf-8"))["invocations"]:
            options = invocation_options(entry["command"], cache, Path(scratch))
            ctx = build_context(options)
            for name in options.resolved_suites():
                for spec in SUITES[name].plan(ctx):
                    planned[(name, spec.label, spec.seed)] = PlannedRun(name, spec)
    return planned


def key_mapping(results: Path, cache: Path) -> dict[str, str]:
    """{committed key: this code's key} for every committed row (and fine-tune parent) this code plans."""
    rows = committed_rows(results)
    planned = planned_runs(results, cache)
    mapping: dict[str, str] = {}
    for row in rows.itertuples():
        run = planned.get((row.suite, row.run_label, int(row.seed)))
        if run is None:
            continue
        mapping[row.run_key] = run.spec.key
        parent_key = getattr(row, "parent_key", None)
        if isinstance(parent_key, str) and run.spec.stage is not None:
            mapping[parent_key] = run.spec.stage.parent.key
    return mapping


def rekey_results(results: Path, cache: Path, say: Callable[[str], None] = print) -> dict[str, str]:
    """Rewrite every committed run key in `results` to this code's key of the same run; returns the mapping."""
    mapping = {old: new for old, new in key_mapping(results, cache).items() if old != new}
    changed = 0
    for path in sorted(p for p in results.rglob("*") if p.suffix in REKEYED_SUFFIXES and p.is_file()):
        text = path.read_text(encoding="utf-8")
        new_text = KEY_PATTERN.sub(lambda m: mapping.get(m.group(0), m.group(0)), text)
        if new_text != text:
            atomic_write_text(path, new_text)
            changed += 1
    say(f"rekeyed {len(mapping)} run(s) in {changed} file(s) of {results}")
    return mapping


def cheapest_runs(results: Path, cache: Path, count: int) -> list[tuple[PlannedRun, pd.Series]]:
    """The `count` committed runs from scratch (no fine-tune) with the least training time whose key this
    code reproduces, each with its committed row."""
    rows = committed_rows(results).drop_duplicates("run_key")
    by_key = {run.spec.key: run for run in planned_runs(results, cache).values() if run.spec.stage is None}
    rows = rows[rows["run_key"].isin(list(by_key))]
    if rows.empty:
        raise ConfigError(f"no committed run of {results} has the key this code computes: the numerics versions or "
                          "the key recipe changed since; regenerate the results (or `vidcap-bench rekey` them).")
    rows = rows.sort_values("train_seconds", kind="stable").head(count)
    return [(by_key[row.run_key], row) for _, row in rows.iterrows()]


def verify_results(results: Path, cache: Path | None = None, runs: int = 2, jobs: int = 1,
                   say: Callable[[str], None] = print) -> pd.DataFrame:
    """Retrain the `runs` cheapest committed runs in `cache` (a fresh temporary folder by default) and
    compare; one row per run and compared column, with `match`."""
    from benchmark.invocation import build_context
    from benchmark.runner import EvalRequest
    from benchmark.suites.rows import run_row

    scratch = None
    if cache is None:
        scratch = tempfile.TemporaryDirectory(prefix="vidcap-verify-")
        cache = Path(scratch.name)
    try:
        chosen = cheapest_runs(results, cache, runs)
        manifest = json.loads((results / "bench_run.json").read_text(encoding="utf-8"))
        options = invocation_options(manifest["invocations"][-1]["command"], cache, Path(cache) / "out")
        options.jobs = jobs
        ctx = build_context(options)
        try:
            say(f"verifying {len(chosen)} run(s) of {results}: " + ", ".join(f"{r.spec.title} ({r.suite})" for r, _ in chosen))
            records = ctx.executor.ensure("verify", [run.spec for run, _ in chosen])
            comparisons = []
            for run, committed in chosen:
                record = records[run.spec.key]
                fresh = run_row(run.suite, record, ctx.evaluate(record, EvalRequest()))
                comparisons += compare_row(run, committed, fresh)
        finally:
            ctx.close()
    finally:
        if scratch is not None:
            scratch.cleanup()
    return pd.DataFrame(comparisons)


def compare_row(run: PlannedRun, committed: pd.Series, fresh: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for column in COMPARED:
        if column not in committed.index or pd.isna(committed[column]):
            continue
        expected, actual = committed[column], fresh.get(column)
        out.append({"run": run.spec.title, "suite": run.suite, "key": run.spec.key, "column": column,
                    "committed": expected, "now": actual, "match": same_number(expected, actual)})
    return out


def same_number(expected: Any, actual: Any) -> bool:
    if actual is None:
        return False
    if isinstance(expected, (bool,)) or isinstance(actual, bool):
        return bool(expected) == bool(actual)
    try:
        return math.isclose(float(expected), float(actual), rel_tol=RTOL, abs_tol=1e-9)
    except (TypeError, ValueError):
        return str(expected) == str(actual)
