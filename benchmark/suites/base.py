"""What every suite shares: the context (profile, data, runs), rows, tables and result files."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.prepare import FeatureSource
from benchmark.profiles import Profile
from benchmark.runner import (
    VALIDATION_METRICS,
    EvalRecord,
    EvalRequest,
    Executor,
    RunRecord,
    RunSpec,
    RunStore,
)
from benchmark.selection import ARCHS, CELLS  # noqa: F401  (re-exported for the suites)
from benchmark.stats import (
    Comparison,
    compare_corpus,
    compare_per_seed,
    compare_per_video,
    format_ci,
    format_p,
    summarise_seeds,
)
from vidcap_core.training.config import TrainConfig
from vidcap_core.files import atomic_write_text, json_safe, write_json

CAPTION_METRICS = ("Bleu_4", "METEOR", "ROUGE_L", "CIDEr")
SEMANTIC_SLOTS = ("colour", "shape", "action", "direction", "order", "exact")
PRIMARY = "CIDEr"  # selection metric everywhere (on val) and the headline test metric
# Recomputed on every resample (fast, in numpy). METEOR is resampled as per-video scores instead:
# recomputing it means one round trip to the Java scorer per resample, minutes per comparison.
CORPUS_METRICS = ("CIDEr", "Bleu_4")


@dataclass
class BenchContext:
    """Everything a suite needs to plan runs, get them trained and evaluated, and write results."""

    profile: Profile
    seeds: tuple[int, ...]
    out: Path
    main: FeatureSource  # dataset + features of every suite but `length` (and `backbone`'s alternatives)
    length_sources: dict[int, FeatureSource]  # frames -> features for the `length` suite
    backbone_sources: list[FeatureSource]  # alternatives to `main` for the `backbone` suite
    store: RunStore
    executor: Executor
    train_overrides: dict[str, Any] = field(default_factory=dict)
    _scorer: Any = None

    @property
    def is_synth(self) -> bool:
        return self.main.dataset.is_synth

    @property
    def figures_dir(self) -> Path:
        path = self.out / "figures"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def spec(self, arch: str, cell: str, seed: int, features: FeatureSource | None = None, suffix: str = "",
             **overrides: Any) -> RunSpec:
        """The run of `arch` x `cell` with this seed, the profile's settings and any overrides."""
        source = features or self.main
        data = source.dataset
        values = {
            "val_metrics": list(VALIDATION_METRICS),
            **self.profile.train, **self.train_overrides, **overrides,
            "dataset": data.name, "root": str(data.root), "features": str(source.dir),
            "annotations": None if data.annotations is None else str(data.annotations),
            "max_videos": data.max_videos, "arch": arch, "cell": cell, "seed": seed,
        }
        label = f"{arch}-{cell}{suffix}"
        return RunSpec(label=label, config=TrainConfig.from_dict(values, source=label), features=source)

    def grid(self, arch: str, cell: str, **kwargs: Any) -> list[RunSpec]:
        """The same configuration for every seed."""
        return [self.spec(arch, cell, seed, **kwargs) for seed in self.seeds]

    def scorer(self) -> Any:
        """One long-lived scorer (Java started once) for every evaluation of this invocation."""
        if self._scorer is None:
            from vidcap_core.evaluation import Scorer

            self._scorer = Scorer()
        return self._scorer

    def close(self) -> None:
        if self._scorer is not None:
            self._scorer.close()
            self._scorer = None

    def evaluate(self, record: RunRecord, request: EvalRequest = EvalRequest()) -> EvalRecord | None:
        return self.store.evaluate(record, request, self.scorer())


@dataclass
class SuiteResult:
    """What a suite writes: CSV rows, a markdown body, figures, comparisons and other facts."""

    name: str
    title: str
    rows: list[dict[str, Any]]
    body: str  # markdown: tables and figure links, paths relative to the results folder
    figures: list[str] = field(default_factory=list)
    comparisons: dict[str, Comparison] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    runs_trained: int = 0
    runs_reused: int = 0


# ----------------------------------------------------------------------------- running


@dataclass
class Trained:
    """The seeds of one configuration: their records and one evaluation of each."""

    label: str
    records: list[RunRecord]
    evals: list[EvalRecord | None]

    def facts(self, column: str) -> dict[int, float]:
        """{seed: value} of a training fact (history_facts) or a test column (eval_facts)."""
        out: dict[int, float] = {}
        for record, evaluation in zip(self.records, self.evals):
            values = {**history_facts(record), **eval_facts(evaluation)}
            out[record.seed] = float(values.get(column, float("nan")))
        return out


def train_and_evaluate(ctx: BenchContext, suite: str, groups: dict[str, list[RunSpec]],
                       request: EvalRequest | None = EvalRequest()) -> dict[str, Trained]:
    """Train (or reuse) every run of every group, then evaluate each on `request` (None: do not evaluate)."""
    records = ctx.executor.ensure(suite, [spec for specs in groups.values() for spec in specs])
    trained: dict[str, Trained] = {}
    for label, specs in groups.items():
        runs = [records[spec.key] for spec in specs]
        evals = [ctx.evaluate(r, request) if request is not None else None for r in runs]
        trained[label] = Trained(label, runs, evals)
    return trained


def reevaluate(ctx: BenchContext, group: Trained, request: EvalRequest) -> Trained:
    """The same runs evaluated another way (beam size, test-time frame order)."""
    return Trained(group.label, group.records, [ctx.evaluate(r, request) for r in group.records])


def rows_of(suite: str, group: Trained, **variant: Any) -> list[dict[str, Any]]:
    return [run_row(suite, record, evaluation, **variant) for record, evaluation in zip(group.records, group.evals)]


def curves_of(group: Trained, x: str = "seconds") -> list[tuple[list[float], list[float]]]:
    """Per seed: (cumulative seconds or epochs, val CIDEr) at every validated epoch."""
    out = []
    for record in group.records:
        xs, ys, total = [], [], 0.0
        for row in record.history:
            total += float(row.get("seconds") or 0.0)
            value = (row.get("val") or {}).get(PRIMARY)
            if value is not None:
                xs.append(total if x == "seconds" else float(row["epoch"]))
                ys.append(float(value))
        out.append((xs, ys))
    return out


def metric_values(groups: dict[str, Trained], metric: str) -> dict[str, list[float]]:
    """{label: per-seed test values of a metric column} for figures."""
    out: dict[str, list[float]] = {}
    for label, group in groups.items():
        out[label] = [eval_facts(e).get(metric, float("nan")) for e in group.evals]
    return out


# ----------------------------------------------------------------------------- rows


def history_facts(record: RunRecord) -> dict[str, Any]:
    """Speed and convergence facts of one run, from its per-epoch log."""
    rows = [r for r in record.history if r.get("seconds") is not None]
    seconds = [float(r.get("train_seconds", r["seconds"])) for r in rows]
    val = [((r.get("val") or {}).get(PRIMARY)) for r in rows]
    cumulative = list(_cumulative(float(r.get("train_seconds", r["seconds"])) for r in rows))
    scored = [(v, t) for v, t in zip(val, cumulative) if v is not None and math.isfinite(v)]
    best = max((v for v, _ in scored), default=float("nan"))
    to_95 = next((t for v, t in scored if v >= 0.95 * best), float("nan")) if scored and best > 0 else float("nan")
    clip = [float(r["clip_fraction"]) for r in rows if r.get("clip_fraction") is not None]
    norms = [float(r["grad_norm_max"]) for r in rows if r.get("grad_norm_max") is not None]
    return {
        "epochs": len(rows),
        "best_epoch": record.result.get("best_epoch"),
        "diverged": record.diverged,
        "val_CIDEr": best,
        "train_s_per_epoch": sum(seconds) / len(seconds) if seconds else float("nan"),
        "train_seconds": sum(float(r["seconds"]) for r in rows),
        "s_to_95pct_val_CIDEr": to_95,
        "clip_fraction": sum(clip) / len(clip) if clip else float("nan"),
        "grad_norm_max": max(norms) if norms else float("nan"),
    }


def _cumulative(values: Iterable[float]) -> Iterable[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def eval_facts(evaluation: EvalRecord | None) -> dict[str, Any]:
    """Test metrics (+ semantic slots) of one evaluation, NaN when the run has no checkpoint."""
    facts: dict[str, Any] = {m: float("nan") for m in CAPTION_METRICS}
    facts["inference_ms_per_clip"] = float("nan")
    if evaluation is None:
        return facts
    facts.update({m: float(evaluation.metrics.get(m, float("nan"))) for m in CAPTION_METRICS})
    facts["inference_ms_per_clip"] = evaluation.inference_ms_per_clip
    if evaluation.semantic is not None:
        facts.update({f"sem_{slot}": float(evaluation.semantic.get(slot, float("nan"))) for slot in SEMANTIC_SLOTS})
    return facts


def run_row(suite: str, record: RunRecord, evaluation: EvalRecord | None, **variant: Any) -> dict[str, Any]:
    """One CSV row: which run, its variant (frames, beam, order...), test metrics and training facts."""
    config = record.config
    row: dict[str, Any] = {"suite": suite, "config": record.label, "arch": config["arch"], "cell": config["cell"],
                           "seed": record.seed, **variant}
    row.update(eval_facts(evaluation))
    row.update(history_facts(record))
    row["run_key"] = record.key
    return row


# ----------------------------------------------------------------------------- comparisons


def per_video(evaluations: Sequence[EvalRecord | None], metric: str) -> list[dict[str, float]]:
    """Per-seed {video_id: score} for a caption metric or a semantic slot (`sem_<slot>`)."""
    out = []
    for evaluation in evaluations:
        if evaluation is None:
            continue
        if metric.startswith("sem_"):
            slot = metric[len("sem_"):]
            out.append({v: s[slot] for v, s in evaluation.per_video_semantic.items()
                        if slot in s and s[slot] is not None and math.isfinite(s[slot])})
        else:
            out.append({v: s[metric] for v, s in evaluation.per_video.items() if metric in s})
    return out


def compare_configs(ctx: BenchContext, a_label: str, a: Sequence[EvalRecord | None], b_label: str,
                    b: Sequence[EvalRecord | None], metrics: Sequence[str]) -> dict[str, Comparison]:
    """Paired bootstrap of A - B on each metric, keyed '<A> vs <B>: <metric>'.

    Corpus metrics are recomputed per resample (`compare_corpus`) when every seed of both captioned
    the same test videos; otherwise, and for the semantic slots, per-video scores are resampled.
    """
    found: dict[str, Comparison] = {}
    a_runs, b_runs = [e for e in a if e is not None], [e for e in b if e is not None]
    captions_a, captions_b = [e.captions() for e in a_runs], [e.captions() for e in b_runs]
    references: dict[str, list[str]] = {}
    for evaluation in (*a_runs, *b_runs):
        references.update(evaluation.references())
    for metric in metrics:
        comparison = None
        if metric in CORPUS_METRICS:
            comparison = compare_corpus(a_label, captions_a, b_label, captions_b, references, metric,
                                        n_resamples=ctx.profile.resamples, scorer=ctx.scorer())
        if comparison is None:
            comparison = compare_per_video(a_label, per_video(a, metric), b_label, per_video(b, metric), metric,
                                           n_resamples=ctx.profile.resamples)
        if comparison is not None:
            found[comparison_id(a_label, b_label, metric)] = comparison
    return found


def compare_runs(ctx: BenchContext, a_label: str, a: dict[int, float], b_label: str, b: dict[int, float],
                 metric: str) -> dict[str, Comparison]:
    comparison = compare_per_seed(a_label, a, b_label, b, metric, n_resamples=ctx.profile.resamples)
    return {} if comparison is None else {comparison_id(a_label, b_label, metric): comparison}


def comparison_id(a: str, b: str, metric: str) -> str:
    return f"{a} vs {b}: {metric}"


def metrics_for(ctx: BenchContext, extra: Sequence[str] = ()) -> list[str]:
    """Metrics compared in every suite: the caption metrics, plus semantic slots on SynthClips."""
    metrics = ["CIDEr", "METEOR", "Bleu_4"]
    if ctx.is_synth:
        metrics += [f"sem_{s}" for s in ("exact", *extra)]
    return metrics


# ----------------------------------------------------------------------------- markdown


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def summary_table(rows: Sequence[dict[str, Any]], group_by: Sequence[str], columns: Sequence[str],
                  digits: int = 3) -> str:
    """Markdown: one line per group, each column 'mean ± std' over its rows (seeds)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(g) for g in group_by), []).append(row)
    header = [*group_by, "seeds", *columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, members in groups.items():
        cells = [fmt(k) for k in key] + [str(len(members))]
        for column in columns:
            cells.append(summarise_seeds([m.get(column, float("nan")) for m in members]).format(digits))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_seed_table(rows: Sequence[dict[str, Any]], group_by: Sequence[str], column: str, digits: int = 3) -> str:
    """Markdown: the per-seed values behind a summary column."""
    groups: dict[tuple, dict[int, Any]] = {}
    seeds: set[int] = set()
    for row in rows:
        groups.setdefault(tuple(row.get(g) for g in group_by), {})[int(row["seed"])] = row.get(column)
        seeds.add(int(row["seed"]))
    order = sorted(seeds)
    lines = ["| " + " | ".join([*group_by, *(f"{column} seed {s}" for s in order)]) + " |",
             "|" + "---|" * (len(group_by) + len(order))]
    for key, values in groups.items():
        lines.append("| " + " | ".join([*(fmt(k) for k in key), *(fmt(values.get(s), digits) for s in order)]) + " |")
    return "\n".join(lines)


def comparisons_table(comparisons: dict[str, Comparison], digits: int = 3) -> str:
    if not comparisons:
        return "_No paired comparison could be computed._"
    lines = ["| A | B | metric | mean A | mean B | A − B | 95% CI | p | paired over |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in comparisons.values():
        lines.append(f"| {c.a} | {c.b} | {c.metric} | {c.mean_a:.{digits}f} | {c.mean_b:.{digits}f} | "
                     f"{c.diff:+.{digits}f} | {format_ci(c, digits)} | {format_p(c.p_value)} | {c.n} {c.unit} |")
    return "\n".join(lines)


def figure_link(name: str, caption: str) -> str:
    return f"![{caption}](figures/{name})"


# ----------------------------------------------------------------------------- files


def csv_text(rows: Sequence[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k)) for k in columns})
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return "" if value is None else value


def write_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)


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


def write_suite(out: Path, result: SuiteResult, profile: Profile, seeds: Sequence[int]) -> None:
    """`<suite>.csv`, `<suite>.md` and `<suite>.json` (what `vidcap-bench report` reads)."""
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / f"{result.name}.csv", csv_text(result.rows))
    write_text(out / f"{result.name}.md", suite_markdown(result, profile, seeds))
    write_json(out / f"{result.name}.json", {
        "name": result.name, "title": result.title, "profile": profile.name, "seeds": list(seeds),
        "body": result.body, "figures": result.figures, "notes": result.notes,
        "comparisons": {k: c.to_dict() for k, c in result.comparisons.items()},
        "facts": json_safe(result.facts), "wall_seconds": round(result.wall_seconds, 2),
        "runs_trained": result.runs_trained, "runs_reused": result.runs_reused,
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    })


def read_suite(out: Path, name: str) -> dict[str, Any] | None:
    path = out / f"{name}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


SuiteFunction = Callable[[BenchContext], SuiteResult]
