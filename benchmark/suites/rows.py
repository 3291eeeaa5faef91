"""One row per run: which run, its variant, test metrics (+ semantic slots) and training facts
(speed, convergence, clipping) read from its per-epoch log."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from benchmark.runner import EvalRecord, RunRecord
from benchmark.suites.context import CAPTION_METRICS, PRIMARY, SEMANTIC_SLOTS


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
