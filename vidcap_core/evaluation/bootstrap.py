"""Bootstrap statistics over test videos: one system's CI, and paired comparisons of two systems.

Definitions used throughout:
  * Resamples draw N videos with replacement from the N test videos (numpy `default_rng(seed)`);
    both systems are always evaluated on the same draws (paired). Video ids are sorted before
    drawing, so the result does not depend on dict order.
  * `diff` = B - A on the full test set. The 95% CI is the percentile interval (2.5th and 97.5th
    percentiles, numpy's linear interpolation) of the resampled differences.
  * Two-sided p-value = min(1, 2 * fraction of resamples whose difference has the opposite sign
    to the observed one or is zero); p = 1 when the observed difference is exactly 0. With R
    resamples its resolution is 2 / R: p = 0 means "below 2 / R", not "impossible".
  * Several seeds of one system: `combine_seeds` averages each video's score over the seeds
    before the per-video bootstrap (the expected score of that configuration on that video), so
    the CI reflects the choice of test videos, not the seed-to-seed spread (report that with
    `mean_std`). `corpus_bootstrap` takes one prediction mapping per seed and averages the seeds'
    corpus metrics within each resample.

Which bootstrap is exact for which metric (see `metrics` for the relations):
  * ROUGE_L: corpus = mean of per-video scores, so `paired_bootstrap` on per-video ROUGE_L is exact.
  * CIDEr: corpus = mean of per-video scores with document frequencies from the full test set;
    `paired_bootstrap` on per-video CIDEr keeps those df fixed (an approximation), while
    `corpus_bootstrap(..., "CIDEr")` recomputes df on every resample (what pycocoevalcap would do).
  * Bleu_k and METEOR: the corpus score pools statistics and is not a mean of per-video scores;
    use `corpus_bootstrap`, which re-pools them on every resample.

Why this is not `scipy.stats.bootstrap` (nor a pandas groupby): scipy resamples arrays of
per-observation values and applies a statistic to each resample, which fits `paired_bootstrap`
but not the corpus metrics. Corpus CIDEr-D is not a function of per-video scores: its document
frequencies, like BLEU's pooled n-gram counts and brevity penalty, come from the whole resampled
corpus, so every resample is rescored from the captions (`resampled_corpus`), several seeds'
corpus scores are averaged within each resample, and the p-value (which scipy does not give) uses
the same draws. Keep this code; it is checked against pycocoevalcap on duplicated corpora.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from vidcap_core.errors import ConfigError, EvaluationError
from vidcap_core.evaluation.metrics import METRICS, Scorer, check_inputs
from vidcap_core.evaluation.resampled import resampled_corpus

Statistic = Literal["mean", "median"]
Scores = Mapping[str, float] | Sequence[float] | np.ndarray
Predictions = Mapping[str, str] | Sequence[Mapping[str, str]]


@dataclass(frozen=True)
class BootstrapResult:
    """B - A on the same videos: full-set values, CI of the difference and two-sided p-value."""

    mean_a: float
    mean_b: float
    diff: float  # mean_b - mean_a
    ci_low: float
    ci_high: float
    p_value: float
    n_videos: int
    n_resamples: int


@dataclass(frozen=True)
class BootstrapCI:
    """One system: full-set value and the percentile CI of the resampled statistic."""

    estimate: float
    ci_low: float
    ci_high: float
    n_videos: int
    n_resamples: int


def resample_indices(n_items: int, n_resamples: int, seed: int) -> np.ndarray:
    """(R, N) indices of N draws with replacement per resample."""
    if n_resamples < 1:
        raise ConfigError(f"n_resamples={n_resamples} must be >= 1 (1000 is usual).")
    if n_items < 1:
        raise EvaluationError("there are no videos to resample.")
    return np.random.default_rng(seed).integers(0, n_items, size=(n_resamples, n_items))


def draw_counts(indices: np.ndarray, n_items: int) -> np.ndarray:
    """(R, N) indices -> (R, N) how many times each item was drawn in each resample."""
    n_resamples = indices.shape[0]
    offsets = np.arange(n_resamples)[:, None] * n_items  # (R, 1)
    return np.bincount((indices + offsets).ravel(), minlength=n_resamples * n_items).reshape(n_resamples, n_items)


def mean_std(values: Scores) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value)."""
    array = _as_array(values, "values")
    std = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return float(array.mean()), std


def combine_seeds(per_seed: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """[{video_id: score} per seed] -> {video_id: mean over seeds}; every seed must score the same videos."""
    if not per_seed:
        raise EvaluationError("combine_seeds got no runs; pass one {video_id: score} mapping per seed.")
    ids = set(per_seed[0])
    for i, run in enumerate(per_seed[1:], start=1):
        if set(run) != ids:
            differ = sorted(ids.symmetric_difference(run))
            raise EvaluationError(f"seed run {i} scores different videos than run 0 (e.g. {differ[:5]}); "
                                  "evaluate every seed on the same test videos.")
    return {v: float(np.mean([float(run[v]) for run in per_seed])) for v in sorted(ids)}


def bootstrap_ci(
    values: Scores,
    n_resamples: int = 1000,
    seed: int = 0,
    statistic: Statistic = "mean",
    confidence: float = 0.95,
) -> BootstrapCI:
    """Percentile bootstrap CI of one system's mean (or median) per-video score."""
    array = _as_array(values, "values")
    indices = resample_indices(array.size, n_resamples, seed)
    low, high = _percentiles(_statistic(array, indices, statistic), confidence)
    return BootstrapCI(float(_statistic(array, None, statistic)), low, high, array.size, n_resamples)


def paired_bootstrap(
    per_video_a: Scores,
    per_video_b: Scores,
    n_resamples: int = 1000,
    seed: int = 0,
    statistic: Statistic = "mean",
    confidence: float = 0.95,
) -> BootstrapResult:
    """Paired bootstrap of B - A over per-video scores.

    Pass two {video_id: score} mappings over the same videos, or two equally long arrays paired by
    position. With `statistic="median"` the difference is median(B) - median(A) per resample.
    """
    a, b = _paired_arrays(per_video_a, per_video_b)
    indices = resample_indices(a.size, n_resamples, seed)
    mean_a, mean_b = _statistic(a, None, statistic), _statistic(b, None, statistic)
    diffs = _statistic(b, indices, statistic) - _statistic(a, indices, statistic)  # (R,)
    return _result(mean_a, mean_b, diffs, a.size, confidence)


def corpus_bootstrap(
    preds_a: Predictions,
    preds_b: Predictions,
    references: Mapping[str, Sequence[str]],
    metric: str,
    n_resamples: int = 1000,
    seed: int = 0,
    scorer: Scorer | None = None,
    confidence: float = 0.95,
) -> BootstrapResult:
    """Paired bootstrap of B - A on a corpus metric, recomputed on every resample.

    `preds_a` / `preds_b` are {video_id: caption}, or a list of them (one per seed: each resample's
    value is the mean of the seeds' corpus metrics). All runs must caption the same videos. Captions
    are PTB-tokenised once. METEOR uses `scorer`'s METEOR process (a short-lived one if None).
    """
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}.")
    runs_a, runs_b = _runs(preds_a, "preds_a"), _runs(preds_b, "preds_b")
    ids = sorted(runs_a[0])
    for name, run in [*(("preds_a", r) for r in runs_a), *(("preds_b", r) for r in runs_b)]:
        if set(run) != set(ids):
            differ = sorted(set(ids).symmetric_difference(run))
            raise EvaluationError(f"{name} captions different videos than preds_a (e.g. {differ[:5]}); "
                                  "both systems (and every seed) must caption the same test videos.")
    checked = [check_inputs({v: run[v] for v in ids}, references) for run in (*runs_a, *runs_b)]
    refs = checked[0][2]
    owned = scorer is None
    scorer = Scorer((metric,)) if scorer is None else scorer
    try:
        tokens = scorer.tokenize({**{("ref", v): refs[v] for v in ids},
                                  **{(s, v): [preds[v]] for s, (_, preds, _) in enumerate(checked) for v in ids}})
        references_tok = [tokens[("ref", v)] for v in ids]
        hypotheses_tok = [[tokens[(s, v)][0] for v in ids] for s in range(len(checked))]
        counts = draw_counts(resample_indices(len(ids), n_resamples, seed), len(ids))
        full = np.ones((1, len(ids)), dtype=np.int64)
        values = resampled_corpus(metric, references_tok, hypotheses_tok, np.concatenate([full, counts]),
                                  meteor=scorer.meteor)  # (S, 1 + R)
    finally:
        if owned:
            scorer.close()
    per_system_a = values[: len(runs_a)].mean(axis=0)  # (1 + R,)
    per_system_b = values[len(runs_a):].mean(axis=0)  # (1 + R,)
    diffs = per_system_b[1:] - per_system_a[1:]
    return _result(float(per_system_a[0]), float(per_system_b[0]), diffs, len(ids), confidence)


def _runs(preds: Predictions, name: str) -> list[Mapping[str, str]]:
    runs = [preds] if isinstance(preds, Mapping) else list(preds)
    if not runs or not all(isinstance(r, Mapping) for r in runs):
        raise EvaluationError(f"{name} must be {{video_id: caption}} or a non-empty list of them (one per seed).")
    return runs


def _result(mean_a: float, mean_b: float, diffs: np.ndarray, n_videos: int, confidence: float) -> BootstrapResult:
    diff = mean_b - mean_a
    if diff > 0:
        flips = np.count_nonzero(diffs <= 0)
    elif diff < 0:
        flips = np.count_nonzero(diffs >= 0)
    else:
        flips = diffs.size  # no observed difference: p = 1
    p_value = min(1.0, 2.0 * flips / diffs.size)
    low, high = _percentiles(diffs, confidence)
    return BootstrapResult(float(mean_a), float(mean_b), float(diff), low, high, p_value, n_videos, diffs.size)


def _percentiles(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence={confidence} must be between 0 and 1 (e.g. 0.95).")
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def _statistic(values: np.ndarray, indices: np.ndarray | None, statistic: Statistic) -> np.ndarray | float:
    """The statistic of the full set (indices None) or of each resample (indices (R, N) -> (R,))."""
    if statistic == "mean":
        if indices is None:
            return float(values.mean())
        return draw_counts(indices, values.size) @ values / values.size
    if statistic == "median":
        return float(np.median(values)) if indices is None else np.median(values[indices], axis=1)
    raise ConfigError(f"statistic={statistic!r} is not supported; choose 'mean' or 'median'.")


def _paired_arrays(a: Scores, b: Scores) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(a, Mapping) != isinstance(b, Mapping):
        raise EvaluationError("pass both systems' scores as {video_id: score} mappings, or both as arrays.")
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if set(a) != set(b):
            differ = sorted(set(a).symmetric_difference(b))
            raise EvaluationError(f"systems A and B were scored on different videos (e.g. {differ[:5]}); "
                                  "a paired bootstrap needs the same test videos for both.")
        ids = sorted(a)
        return _as_array([a[v] for v in ids], "per_video_a"), _as_array([b[v] for v in ids], "per_video_b")
    array_a, array_b = _as_array(a, "per_video_a"), _as_array(b, "per_video_b")
    if array_a.shape != array_b.shape:
        raise EvaluationError(f"per_video_a has {array_a.size} scores and per_video_b {array_b.size}; "
                              "a paired bootstrap needs one score per video for both systems.")
    return array_a, array_b


def _as_array(values: Scores, name: str) -> np.ndarray:
    raw = list(values.values()) if isinstance(values, Mapping) else values
    array = np.asarray(raw, dtype=np.float64).reshape(-1)  # (N,)
    if array.size == 0:
        raise EvaluationError(f"{name} is empty; score at least one video first.")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise EvaluationError(f"{name} has {bad.size} non-finite score(s) (first at position {bad[0]}); "
                              "drop or fix those videos before bootstrapping.")
    return array
