"""Statistics of the benchmark: seed summaries, paired comparisons and the claim verdict rule.

A comparison here is always "A minus B" (the library's bootstraps report B - A, so A and B are
passed to them swapped). Corpus metrics (CIDEr-D, METEOR, BLEU-4) use
`vidcap_core.evaluation.corpus_bootstrap`: every resample of test videos is rescored exactly as
pycocoevalcap would score it, each seed's corpus score averaged within the resample. Per-video
quantities (the semantic checker's slots, which are means over videos) average each video's score
over the seeds first, then run `paired_bootstrap` over the test videos. Either way the CI reflects
which test videos were drawn; the seed-to-seed spread is reported next to it as mean +- std.
Per-run quantities (training seconds, gradient ratios, clip rates) are paired by seed and
bootstrapped over seeds.

The bootstraps stay hand-written (here and in vidcap_core.evaluation.bootstrap) while tables are
pandas: scipy.stats.bootstrap resamples per-observation values, and corpus CIDEr-D cannot be
recomputed from those (its document frequencies come from the whole resampled corpus), so each
resample is rescored from the captions. Seed summaries (`summarise_seeds`) are the scalar form of
benchmark.tables.seed_summary, which the tables compute with groupby().agg.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from benchmark.tables import mean_std_text
from vidcap_core.errors import ConfigError

Better = Literal["higher", "lower"]
VerdictName = Literal["supported", "not supported", "inconclusive", "not measured", "not judged (undertrained)"]
NOT_JUDGED: VerdictName = "not judged (undertrained)"

CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
MIN_SEEDS = 3  # per-run quantities get a CI only with this many paired seeds (fewer: "not measured")

VERDICT_RULE = (
    "Let E be the effect oriented so that E > 0 means the claim holds (A - B when higher is better, "
    "B - A when lower is better) and [lo, hi] its 95% bootstrap CI. **supported**: lo > 0 (the whole "
    "interval is on the claimed side of zero). Otherwise **not supported**: hi < delta, the data rule out "
    "an effect of at least delta in the claimed direction (this includes a significant effect the other "
    "way). Otherwise **inconclusive**: the interval contains zero and effects of delta or more. "
    "Before any of these: when a run of either compared configuration is undertrained (its step budget ran out "
    "while it was still improving: the training status of vidcap_core/training/convergence.py, shown per run), the "
    "claim is **not judged (undertrained)**: an undertrained model says nothing about the cell, architecture, frame "
    "order or beam it stands for. A run that converged, that its plateau schedule stopped, that reached its "
    "plateau and fell off it, or that diverged is trained and counts: a plain RNN's instability is evidence."
)

# A configuration is collapsed when it emits few distinct captions for its test clips: fewer than this
# share of the distinct reference sets (clips whose references are identical may rightly get one caption,
# so "the references themselves repeat" lowers the bar instead of flagging a model that copies them).
COLLAPSE_FRACTION = 0.5
COLLAPSE_RULE = (
    f"a run is **collapsed** when its distinct test captions are fewer than {COLLAPSE_FRACTION:.0%} of the "
    "distinct reference sets of the test clips (with every clip's references different: fewer than "
    f"{COLLAPSE_FRACTION:.0%} of the test clips); greedy decoding, beam 1"
)


def is_collapsed(distinct_captions: int, distinct_references: int) -> bool:
    """COLLAPSE_RULE for one run's test captions."""
    return distinct_references > 0 and distinct_captions < COLLAPSE_FRACTION * distinct_references


@dataclass(frozen=True)
class SeedSummary:
    """Mean and sample standard deviation over seeds (std is 0 for a single seed)."""

    mean: float
    std: float
    n: int
    values: tuple[float, ...]

    def format(self, digits: int = 3) -> str:
        return mean_std_text(self.mean, self.std, self.n, digits)


def summarise_seeds(values: Sequence[float]) -> SeedSummary:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return SeedSummary(float("nan"), float("nan"), 0, tuple())
    array = np.asarray(finite, dtype=np.float64)
    std = float(array.std(ddof=1)) if len(finite) > 1 else 0.0
    return SeedSummary(float(array.mean()), std, len(finite), tuple(finite))


@dataclass(frozen=True)
class Comparison:
    """A - B on one metric with its 95% bootstrap CI and two-sided p-value."""

    a: str
    b: str
    metric: str
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int  # paired units: test videos, or seeds
    unit: str  # "videos" or "seeds"
    n_resamples: int
    method: str  # how the CI was computed, one sentence
    # Runs of A and of B that converged, and how many runs each has (None: not recorded, e.g. a
    # comparison stored before convergence was).
    a_converged: int | None = None
    a_runs: int | None = None
    b_converged: int | None = None
    b_runs: int | None = None
    # Runs of A and of B that were trained (convergence.training_status; None: stored before it was
    # recorded, then convergence stands in for it): the verdict rule needs all of them trained.
    a_trained: int | None = None
    b_trained: int | None = None
    # The run keys behind A and B, so the report can say which runs decided the claim.
    a_keys: tuple[str, ...] | None = None
    b_keys: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        values = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        for name in ("a_keys", "b_keys"):
            if values.get(name) is not None:
                values[name] = tuple(values[name])
        return cls(**values)

    @property
    def all_converged(self) -> bool | None:
        """True when every run of A and B converged; None when convergence was not recorded."""
        counts = (self.a_converged, self.a_runs, self.b_converged, self.b_runs)
        if any(c is None for c in counts):
            return None
        return self.a_converged == self.a_runs and self.b_converged == self.b_runs

    @property
    def all_trained(self) -> bool | None:
        """True when every run of A and B was trained (not undertrained); for a comparison stored before
        training status was recorded, whether all converged (None when neither was recorded)."""
        if self.a_trained is None or self.b_trained is None or self.a_runs is None or self.b_runs is None:
            return self.all_converged
        return self.a_trained == self.a_runs and self.b_trained == self.b_runs

    @property
    def significant(self) -> bool:
        return self.ci_low > 0 or self.ci_high < 0


def seed_averaged(per_seed: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """{video_id: score} per seed -> {video_id: mean over the seeds that scored it}."""
    totals: dict[str, list[float]] = {}
    for scores in per_seed:
        for video_id, value in scores.items():
            if value is not None and math.isfinite(float(value)):
                totals.setdefault(video_id, []).append(float(value))
    return {video_id: float(np.mean(values)) for video_id, values in totals.items()}


def compare_per_video(
    a_label: str,
    a_per_seed: Sequence[Mapping[str, float]],
    b_label: str,
    b_per_seed: Sequence[Mapping[str, float]],
    metric: str,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Comparison | None:
    """Paired bootstrap over the test videos both configurations scored; None if they share none."""
    from vidcap_core.evaluation import paired_bootstrap

    a_scores, b_scores = seed_averaged(a_per_seed), seed_averaged(b_per_seed)
    shared = sorted(set(a_scores) & set(b_scores))
    if not shared:
        return None
    a_values = np.array([a_scores[v] for v in shared])  # (N,)
    b_values = np.array([b_scores[v] for v in shared])  # (N,)
    result = paired_bootstrap(b_values, a_values, n_resamples=n_resamples, seed=seed)  # its B - A = our A - B
    seeds = min(len(a_per_seed), len(b_per_seed))
    return from_library(a_label, b_label, metric, result, len(shared), "videos", n_resamples,
                        f"paired bootstrap over {len(shared)} test videos of per-video {metric} averaged over {seeds} seed(s)")


def compare_corpus(
    a_label: str,
    a_per_seed: Sequence[Mapping[str, str]],
    b_label: str,
    b_per_seed: Sequence[Mapping[str, str]],
    references: Mapping[str, Sequence[str]],
    metric: str,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    scorer: Any = None,
) -> Comparison | None:
    """Corpus metric recomputed on every paired resample of test videos ({video_id: caption} per seed).

    Needs every seed of both configurations to caption the same videos; None when they do not
    (e.g. real data trimmed per seed), and the caller falls back to `compare_per_video`.
    """
    from vidcap_core.evaluation import corpus_bootstrap

    if not a_per_seed or not b_per_seed:
        return None
    ids = set(a_per_seed[0])
    if any(set(run) != ids for run in (*a_per_seed, *b_per_seed)) or not ids:
        return None
    result = corpus_bootstrap(list(b_per_seed), list(a_per_seed), references, metric,  # its B - A = our A - B
                              n_resamples=n_resamples, seed=seed, scorer=scorer)
    seeds = min(len(a_per_seed), len(b_per_seed))
    return from_library(a_label, b_label, metric, result, len(ids), "videos", n_resamples,
                        f"paired bootstrap over {len(ids)} test videos, corpus {metric} recomputed per resample "
                        f"(mean of {seeds} seed(s))")


def from_library(a_label: str, b_label: str, metric: str, result: Any, n: int, unit: str, n_resamples: int,
                 method: str) -> Comparison:
    """A Comparison (A - B) from a BootstrapResult computed with A passed as the library's B."""
    return Comparison(
        a=a_label, b=b_label, metric=metric,
        mean_a=float(result.mean_b), mean_b=float(result.mean_a), diff=float(result.diff),
        ci_low=float(result.ci_low), ci_high=float(result.ci_high), p_value=float(result.p_value),
        n=n, unit=unit, n_resamples=n_resamples, method=method,
    )


def compare_per_seed(
    a_label: str,
    a_values: Mapping[int, float],
    b_label: str,
    b_values: Mapping[int, float],
    metric: str,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Comparison | None:
    """Per-run quantities ({seed: value}) paired by seed; None with fewer than MIN_SEEDS shared seeds
    (a bootstrap over one or two values only restates them)."""
    from vidcap_core.evaluation import paired_bootstrap

    shared = sorted(
        s for s in set(a_values) & set(b_values)
        if math.isfinite(float(a_values[s])) and math.isfinite(float(b_values[s]))
    )
    if len(shared) < MIN_SEEDS:
        return None
    a_array = np.array([float(a_values[s]) for s in shared])  # (S,)
    b_array = np.array([float(b_values[s]) for s in shared])  # (S,)
    result = paired_bootstrap(b_array, a_array, n_resamples=n_resamples, seed=seed)  # its B - A = our A - B
    return from_library(a_label, b_label, metric, result, len(shared), "seeds", n_resamples,
                        f"paired bootstrap over {len(shared)} seed(s) (runs paired by seed)")


@dataclass(frozen=True)
class Verdict:
    name: VerdictName
    effect: float  # oriented: > 0 means the claim holds
    low: float
    high: float
    delta: float


def verdict(comparison: Comparison | None, better: Better, delta: float, needs_convergence: bool = True) -> Verdict:
    """Apply VERDICT_RULE to A - B, where the claim says A is better (higher or lower).

    `needs_convergence` False: the claim is about training itself (e.g. gradients exploding without
    clipping, where divergence is the effect), so even undertrained runs are evidence.
    """
    if delta < 0:
        raise ConfigError(f"delta={delta!r}: the smallest effect of interest must be >= 0.")
    if better not in ("higher", "lower"):
        raise ConfigError(f"better={better!r} is not valid; choose 'higher' or 'lower'.")
    if comparison is None or not all(math.isfinite(x) for x in (comparison.diff, comparison.ci_low, comparison.ci_high)):
        nan = float("nan")
        return Verdict("not measured", nan, nan, nan, delta)
    if better == "higher":
        effect, low, high = comparison.diff, comparison.ci_low, comparison.ci_high
    else:
        effect, low, high = -comparison.diff, -comparison.ci_high, -comparison.ci_low
    if needs_convergence and comparison.all_trained is not True:  # unrecorded counts as undertrained
        return Verdict(NOT_JUDGED, effect, low, high, delta)
    if low > 0:
        name: VerdictName = "supported"
    elif high < delta:
        name = "not supported"
    else:
        name = "inconclusive"
    return Verdict(name, effect, low, high, delta)


def format_ci(comparison: Comparison, digits: int = 3) -> str:
    return f"[{comparison.ci_low:+.{digits}f}, {comparison.ci_high:+.{digits}f}]"


def format_p(p_value: float) -> str:
    if not math.isfinite(p_value):
        return "n/a"
    return "< 0.001" if p_value < 0.001 else f"{p_value:.3f}"


@dataclass(frozen=True)
class IndependentComparison:
    """Mean of a per-clip score on two independent clip sets, each with its CI, and A - B with a CI."""

    mean_a: float
    ci_a: tuple[float, float]
    n_a: int
    mean_b: float
    ci_b: tuple[float, float]
    n_b: int
    diff: float
    ci_diff: tuple[float, float]
    n_resamples: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def within_sampling_error(self) -> bool:
        """The CI of A - B contains 0: the two sets give the same mean within sampling error."""
        return self.ci_diff[0] <= 0.0 <= self.ci_diff[1]


def compare_independent(a_values: Sequence[float], b_values: Sequence[float], n_resamples: int = DEFAULT_RESAMPLES,
                        seed: int = BOOTSTRAP_SEED) -> IndependentComparison | None:
    """Two different sets of clips (not paired): each mean's percentile bootstrap CI, and the CI of
    A - B from resampling each set on its own (generator seeds `seed` and `seed + 1`). None when a
    set is empty."""
    from vidcap_core.evaluation.bootstrap import bootstrap_ci, resample_indices

    a, b = np.asarray(a_values, dtype=np.float64), np.asarray(b_values, dtype=np.float64)  # (Na,), (Nb,)
    if a.size == 0 or b.size == 0:
        return None
    ci_a, ci_b = bootstrap_ci(a, n_resamples, seed), bootstrap_ci(b, n_resamples, seed + 1)
    diffs = a[resample_indices(a.size, n_resamples, seed)].mean(axis=1) - b[resample_indices(b.size, n_resamples, seed + 1)].mean(axis=1)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return IndependentComparison(float(a.mean()), (ci_a.ci_low, ci_a.ci_high), int(a.size), float(b.mean()),
                                 (ci_b.ci_low, ci_b.ci_high), int(b.size), float(a.mean() - b.mean()),
                                 (float(low), float(high)), n_resamples)
