"""One row per run: which run, its variant, test metrics (+ semantic slots), the health of its test
captions (distinct captions, collapse), the in-distribution / held-out-composition split on
SynthClips, and training facts (steps, speed, convergence, clipping) read from its log."""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from benchmark.runner import EvalRecord, RunRecord
from benchmark.stats import is_collapsed
import pandas as pd

from benchmark.suites.context import CAPTION_METRICS, ORACLE_SUFFIX, PRIMARY, SEMANTIC_SLOTS
from benchmark.tables import finite_numbers

SPLIT_SUFFIXES = ("in", "heldout")
CEILING_METRICS = ("sem_exact", "sem_exact_in", "sem_exact_heldout", "CIDEr")  # test clips without / with a composition held out of train and val


def history_facts(record: RunRecord) -> dict[str, Any]:
    """Steps, speed and convergence facts of one run, from its summary and its per-validation log."""
    rows = [r for r in record.history if r.get("seconds") is not None]
    train_seconds = [float(r.get("train_seconds", r["seconds"])) for r in rows]
    steps = [int(r.get("steps") or 0) for r in rows]
    val = [((r.get("val") or {}).get(PRIMARY)) for r in rows]
    cumulative = list(_cumulative(float(r["seconds"]) for r in rows))
    scored = [(v, t) for v, t in zip(val, cumulative) if v is not None and math.isfinite(v)]
    best_cider = max((v for v, _ in scored), default=float("nan"))
    to_95 = next((t for v, t in scored if v >= 0.95 * best_cider), float("nan")) if scored and best_cider > 0 else float("nan")
    clip = [float(r["clip_fraction"]) for r in rows if r.get("clip_fraction") is not None]
    norms = [float(r["grad_norm_max"]) for r in rows if r.get("grad_norm_max") is not None]
    best_val = record.result.get("best_val") or {}
    convergence = record.convergence
    last = next((r for r in reversed(record.history) if r.get("val")), None)  # the last validation
    last_val = (last or {}).get("val") or {}
    return {
        "steps": int(record.result.get("steps_done") or sum(steps)),
        "best_step": record.result.get("best_step"),
        "stop_reason": record.result.get("stop_reason"),
        "converged": record.converged,
        "convergence": convergence.get("reason", "no verdict recorded"),
        "convergence_rule": convergence.get("rule"),
        "status": convergence.get("status"),  # training status (convergence.training_status)
        "trained": record.trained,
        "diverged": record.diverged,
        "val_exact": _number(best_val.get("exact")),  # of best.pt (the selection), SynthClips only
        "val_CIDEr": _number(best_val.get(PRIMARY)),
        "last_val_step": None if last is None else int(last["step"]),  # best and last: a run that fell off its plateau
        "last_val_exact": _number(last_val.get("exact")),
        "last_val_CIDEr": _number(last_val.get(PRIMARY)),
        "train_ms_per_step": 1000 * sum(train_seconds) / sum(steps) if sum(steps) else float("nan"),
        "train_seconds": sum(float(r["seconds"]) for r in rows),
        "s_to_95pct_val_CIDEr": to_95,
        "clip_fraction": sum(clip) / len(clip) if clip else float("nan"),
        "grad_norm_max": max(norms) if norms else float("nan"),
    }


def _number(value: Any) -> float:
    return float(value) if value is not None else float("nan")


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


def caption_facts(evaluation: EvalRecord | None) -> dict[str, Any]:
    """How varied the test captions are: distinct captions, test clips, distinct reference sets (clips
    whose references are identical cannot be told apart by a caption) and the collapse flag."""
    if evaluation is None:
        return {"test_clips": 0, "distinct_captions": 0, "distinct_references": 0, "distinct_ratio": float("nan"),
                "collapsed": False}
    rows = evaluation.predictions()
    distinct = len({row["caption"] for row in rows})
    references = len({tuple(sorted(row["references"])) for row in rows})
    return {"test_clips": len(rows), "distinct_captions": distinct, "distinct_references": references,
            "distinct_ratio": distinct / len(rows) if rows else float("nan"),
            "collapsed": is_collapsed(distinct, references)}


@lru_cache(maxsize=16)
def heldout_videos(root: str) -> frozenset[str]:
    """SynthClips clips (of any split) that show a composition held out of train and val
    (ground_truth.json's `heldout`, set from the clip's plan when the data were generated)."""
    from vidcap_core.synth import load_ground_truth

    return frozenset(video for video, truth in load_ground_truth(root).items() if truth.heldout)


def split_facts(record: RunRecord, evaluation: EvalRecord | None) -> dict[str, Any]:
    """SynthClips only: test exact accuracy and CIDEr-D on the in-distribution clips and on the
    held-out-composition clips separately ({} on real data or without an evaluation)."""
    if evaluation is None or record.config.get("dataset") != "synth" or not evaluation.per_video_semantic:
        return {}
    from vidcap_core.evaluation.validation import cider_d

    heldout = heldout_videos(str(record.config["root"]))
    captions, references = evaluation.captions(), evaluation.references()
    facts: dict[str, Any] = {}
    for suffix in SPLIT_SUFFIXES:
        ids = sorted(v for v in captions if (v in heldout) == (suffix == "heldout"))
        exact = [evaluation.per_video_semantic[v].get("exact") for v in ids if v in evaluation.per_video_semantic]
        exact = [float(x) for x in exact if x is not None]
        facts[f"clips_{suffix}"] = len(ids)
        facts[f"sem_exact_{suffix}"] = sum(exact) / len(exact) if exact else float("nan")
        facts[f"CIDEr_{suffix}"] = (cider_d({v: captions[v] for v in ids}, {v: references[v] for v in ids}).corpus["CIDEr"]
                                    if ids else float("nan"))
    return facts


def run_row(suite: str, record: RunRecord, evaluation: EvalRecord | None, **variant: Any) -> dict[str, Any]:
    """One CSV row: which run, its variant (frames, beam, order...), test metrics and training facts."""
    config = record.config
    row: dict[str, Any] = {"suite": suite, "config": record.label, "arch": config["arch"], "cell": config["cell"],
                           "seed": record.seed, **variant}
    row.update(eval_facts(evaluation))
    row.update(split_facts(record, evaluation))
    row.update(caption_facts(evaluation))
    row.update(history_facts(record))
    if record.parent is not None:  # a fine-tune: the run it started from, and whether that one converged
        row["parent_key"] = record.parent.get("key")
        row["parent_converged"] = record.parent_converged
    row["run_label"] = record.label  # the trained configuration, whatever `config` the suite shows it as
    row["run_key"] = record.key
    return row


def oracle_ceiling(table: pd.DataFrame) -> list[dict[str, object]]:
    """Per architecture x cell: mean over seeds of CEILING_METRICS on oracle features and on the main
    features, and the runs of each that converged (REPORT.md's "Oracle ceiling" section)."""
    out = []
    for label in dict.fromkeys(c for c in table["config"] if not c.endswith(ORACLE_SUFFIX)):
        main, oracle = table[table["config"] == label], table[table["config"] == label + ORACLE_SUFFIX]
        if oracle.empty:
            continue
        row: dict[str, object] = {"config": label}
        for name, rows in (("oracle", oracle), ("main", main)):
            means = finite_numbers(rows, CEILING_METRICS).mean()
            row.update({f"{name}_{m}": float(means[m]) for m in CEILING_METRICS})
            row[f"{name}_converged"] = f"{int(rows['converged'].astype(bool).sum())}/{len(rows)}"
        out.append(row)
    return out
