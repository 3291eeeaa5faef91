"""Paired comparisons between configurations (A - B with a bootstrap CI, see benchmark.stats),
keyed '<A> vs <B>: <metric>'. Each comparison carries how many runs of A and of B converged and were
trained, and their keys, so a claim judged from it can be refused a verdict (benchmark.stats.verdict)
and the report can name the runs that decided it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from benchmark.runner import EvalRecord, RunRecord
from benchmark.stats import Comparison, compare_corpus, compare_per_seed, compare_per_video
from benchmark.suites.context import BenchContext
from benchmark.suites.groups import Trained

# Recomputed on every resample (fast, in numpy). METEOR is resampled as per-video scores instead:
# recomputing it means one round trip to the Java scorer per resample, minutes per comparison.
CORPUS_METRICS = ("CIDEr", "Bleu_4")


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


def with_convergence(comparison: Comparison, a_runs: Sequence[RunRecord], b_runs: Sequence[RunRecord]) -> Comparison:
    """The comparison with how many runs of each side converged and were trained, and which runs they are."""
    return replace(comparison, a_converged=sum(r.converged for r in a_runs), a_runs=len(a_runs),
                   b_converged=sum(r.converged for r in b_runs), b_runs=len(b_runs),
                   a_trained=sum(r.trained for r in a_runs), b_trained=sum(r.trained for r in b_runs),
                   a_keys=tuple(r.key for r in a_runs), b_keys=tuple(r.key for r in b_runs))


def compare_configs(ctx: BenchContext, a_label: str, a_group: Trained, b_label: str, b_group: Trained,
                    metrics: Sequence[str]) -> dict[str, Comparison]:
    """Paired bootstrap of A - B on each metric, keyed '<A> vs <B>: <metric>'.

    Corpus metrics are recomputed per resample (`compare_corpus`) when every seed of both captioned
    the same test videos; otherwise, and for the semantic slots, per-video scores are resampled.
    """
    a, b = a_group.evals, b_group.evals
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
            found[comparison_id(a_label, b_label, metric)] = with_convergence(comparison, a_group.records, b_group.records)
    return found


def compare_runs(ctx: BenchContext, a_label: str, a: dict[int, float], b_label: str, b: dict[int, float],
                 metric: str, a_runs: Sequence[RunRecord], b_runs: Sequence[RunRecord]) -> dict[str, Comparison]:
    """Per-run quantities ({seed: value}) of the runs `a_runs` and `b_runs`, paired by seed."""
    comparison = compare_per_seed(a_label, a, b_label, b, metric, n_resamples=ctx.profile.resamples)
    if comparison is None:
        return {}
    return {comparison_id(a_label, b_label, metric): with_convergence(comparison, a_runs, b_runs)}


def comparison_id(a: str, b: str, metric: str) -> str:
    return f"{a} vs {b}: {metric}"


def metrics_for(ctx: BenchContext, extra: Sequence[str] = ()) -> list[str]:
    """Metrics compared in every suite: the caption metrics, plus semantic slots on SynthClips."""
    metrics = ["CIDEr", "METEOR", "Bleu_4"]
    if ctx.is_synth:
        metrics += [f"sem_{s}" for s in ("exact", *extra)]
    return metrics
