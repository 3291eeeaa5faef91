"""Bootstraps: paired per-video and corpus-level, one-system CIs, seed handling, and their edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from vidcap_core.errors import ConfigError, EvaluationError
from vidcap_core.evaluation import (
    bootstrap_ci,
    combine_seeds,
    corpus_bootstrap,
    mean_std,
    paired_bootstrap,
    score_captions,
)
from vidcap_core.evaluation.bootstrap import draw_counts, resample_indices
from vidcap_core.evaluation.resampled import resampled_corpus


def scores(n: int, shift: float = 0.0, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    return {f"video{i}": float(v) for i, v in enumerate(rng.uniform(0.0, 1.0, n) + shift)}


def test_system_against_itself_has_zero_difference_and_p_one():
    a = scores(50)
    result = paired_bootstrap(a, dict(a), n_resamples=500, seed=3)
    assert (result.diff, result.ci_low, result.ci_high, result.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert result.mean_a == result.mean_b == pytest.approx(np.mean(list(a.values())))
    assert (result.n_videos, result.n_resamples) == (50, 500)


def test_clearly_better_system_has_ci_above_zero_and_small_p():
    a = scores(80, seed=1)
    b = {v: s + 0.1 + 0.02 * np.sin(i) for i, (v, s) in enumerate(a.items())}  # B = A + ~0.1 on every video
    result = paired_bootstrap(a, b, n_resamples=1000, seed=0)
    assert result.diff == pytest.approx(result.mean_b - result.mean_a) and result.diff > 0.09
    assert 0 < result.ci_low <= result.diff <= result.ci_high
    assert result.p_value < 0.05
    reverse = paired_bootstrap(b, a, n_resamples=1000, seed=0)  # diff is B - A
    assert reverse.diff == pytest.approx(-result.diff) and reverse.ci_high < 0 and reverse.p_value < 0.05


def test_noisy_equal_systems_are_not_significant():
    a, b = scores(60, seed=1), scores(60, seed=2)  # same distribution, independent noise
    result = paired_bootstrap(a, b, n_resamples=1000, seed=0)
    assert result.ci_low < 0 < result.ci_high and result.p_value > 0.05


def test_same_seed_same_result_and_dict_order_does_not_matter():
    a, b = scores(40, seed=1), scores(40, 0.05, seed=2)
    first = paired_bootstrap(a, b, n_resamples=300, seed=7)
    shuffled = dict(reversed(list(b.items())))
    assert paired_bootstrap(a, shuffled, n_resamples=300, seed=7) == first
    assert paired_bootstrap(a, b, n_resamples=300, seed=8) != first


def test_arrays_are_paired_by_position():
    a, b = np.linspace(0, 1, 30), np.linspace(0, 1, 30) + 0.2
    result = paired_bootstrap(a, b, n_resamples=200, seed=0)
    assert result.diff == pytest.approx(0.2) and result.ci_low == pytest.approx(0.2) and result.p_value == 0.0


def test_median_statistic():
    a = scores(31, seed=4)
    b = {v: s + 1.0 for v, s in a.items()}
    result = paired_bootstrap(a, b, n_resamples=200, seed=0, statistic="median")
    assert result.mean_a == pytest.approx(np.median(list(a.values())))
    assert result.ci_low == pytest.approx(1.0) and result.ci_high == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("a", "b", "error", "message"),
    [
        ({"v1": 1.0}, {"v2": 1.0}, EvaluationError, "different videos"),
        ([1.0, 2.0], [1.0], EvaluationError, "2 scores"),
        ({"v1": 1.0}, [1.0], EvaluationError, "both"),
        ({"v1": float("nan")}, {"v1": 1.0}, EvaluationError, "non-finite"),
        ({}, {}, EvaluationError, "empty"),
    ],
)
def test_bad_bootstrap_inputs(a, b, error, message):
    with pytest.raises(error, match=message):
        paired_bootstrap(a, b)


def test_bad_bootstrap_options():
    with pytest.raises(ConfigError, match="n_resamples"):
        paired_bootstrap([1.0], [2.0], n_resamples=0)
    with pytest.raises(ConfigError, match="statistic"):
        paired_bootstrap([1.0], [2.0], statistic="mode")
    with pytest.raises(ConfigError, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence=95)


def test_bootstrap_ci_of_one_system():
    values = scores(100, seed=5)
    ci = bootstrap_ci(values, n_resamples=1000, seed=0)
    mean = float(np.mean(list(values.values())))
    assert ci.estimate == pytest.approx(mean) and ci.ci_low < mean < ci.ci_high
    assert ci.ci_high - ci.ci_low < 0.2 and (ci.n_videos, ci.n_resamples) == (100, 1000)


def test_mean_std_and_combine_seeds():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_std([4.0]) == (4.0, 0.0)
    with pytest.raises(EvaluationError, match="empty"):
        mean_std([])
    combined = combine_seeds([{"v1": 1.0, "v2": 0.0}, {"v2": 1.0, "v1": 3.0}])
    assert combined == {"v1": 2.0, "v2": 0.5}
    with pytest.raises(EvaluationError, match="v3"):
        combine_seeds([{"v1": 1.0}, {"v1": 1.0, "v3": 2.0}])


def test_draw_counts_match_indices():
    indices = resample_indices(7, 50, seed=1)
    counts = draw_counts(indices, 7)
    assert counts.shape == (50, 7) and (counts.sum(axis=1) == 7).all()
    assert all((np.bincount(row, minlength=7) == c).all() for row, c in zip(indices, counts))


# --- corpus metrics on resampled corpora -------------------------------------------------------

TOKEN_REFS = [
    ["a man is playing a guitar", "a man plays the guitar on stage", "someone is strumming a guitar"],
    ["a woman is slicing tomatoes", "a cook cuts vegetables", "a lady chops a tomato in a kitchen"],
    ["a dog is running in a park", "a brown dog runs on the grass", "a puppy plays outside", "the dog runs"],
    ["two men are talking", "news anchors discuss a story"],
    ["a car is driving down a road", "a red car drives on the highway", "someone drives a car"],
    ["a cat is playing with a toy", "a kitten plays with yarn", "the cat bats at a toy", "a cat plays"],
]
TOKEN_HYPS = [
    ["a man is playing a guitar", "a woman is cutting tomatoes", "a dog runs", "a man is talking", "", "a cat plays"],
    ["a man plays", "a woman cooks", "a dog is running in the park", "men talk", "a car drives", "the the the"],
]


def duplicated(counts_row):
    """The corpus a resample stands for: video i repeated counts_row[i] times."""
    return [i for i, k in enumerate(counts_row) for _ in range(k)]


def test_resampled_bleu_cider_rouge_equal_pycocoevalcap_on_the_duplicated_corpus():
    from pycocoevalcap.bleu.bleu_scorer import BleuScorer
    from pycocoevalcap.cider.cider_scorer import CiderScorer
    from pycocoevalcap.rouge.rouge import Rouge

    n = len(TOKEN_REFS)
    counts = np.vstack([np.ones(n, dtype=np.int64), draw_counts(resample_indices(n, 4, seed=2), n)])
    ours = {m: resampled_corpus(m, TOKEN_REFS, TOKEN_HYPS, counts) for m in ("Bleu_1", "Bleu_4", "CIDEr", "ROUGE_L")}
    for s, hyps in enumerate(TOKEN_HYPS):
        for r, row in enumerate(counts):
            bleu, cider, rouge = BleuScorer(n=4), CiderScorer(n=4, sigma=6.0), []
            for i in duplicated(row):
                bleu += (hyps[i], TOKEN_REFS[i])
                cider += (hyps[i], TOKEN_REFS[i])
                rouge.append(Rouge().calc_score([hyps[i]], TOKEN_REFS[i]))
            bleu_scores, _ = bleu.compute_score(option="closest")
            assert abs(ours["Bleu_1"][s, r] - bleu_scores[0]) < 1e-12
            assert abs(ours["Bleu_4"][s, r] - bleu_scores[3]) < 1e-12
            assert abs(ours["CIDEr"][s, r] - cider.compute_score()[0]) < 1e-12
            assert abs(ours["ROUGE_L"][s, r] - np.mean(rouge)) < 1e-12


def test_a_system_of_only_empty_captions_scores_zero_on_every_resample():
    n = len(TOKEN_REFS)
    counts = np.vstack([np.ones(n, dtype=np.int64), draw_counts(resample_indices(n, 3, seed=1), n)])
    silent = [""] * n  # an untrained model that emits EOS first
    for metric in ("Bleu_4", "CIDEr", "ROUGE_L"):
        scores = resampled_corpus(metric, TOKEN_REFS, [silent, TOKEN_HYPS[0]], counts)
        assert scores.dtype == np.float64 and (scores[0] == 0).all() and (scores[1] > 0).all(), metric


def test_resampling_an_unknown_metric_is_refused():
    with pytest.raises(ConfigError, match="Bleu_1"):
        resampled_corpus("Bleu_5", TOKEN_REFS, TOKEN_HYPS, np.ones((1, len(TOKEN_REFS)), dtype=np.int64))


REFERENCES = {f"video{i}": [r.capitalize() + "." for r in refs] for i, refs in enumerate(TOKEN_REFS)}
SYSTEM_A = {f"video{i}": h for i, h in enumerate(TOKEN_HYPS[1])}
SYSTEM_B = {f"video{i}": h for i, h in enumerate(TOKEN_HYPS[0])}


def grammar_corpus(n_videos: int, n_refs: int, seed: int = 0):
    """Captions from a small grammar: references share a topic per video; A follows it, B guesses."""
    rng = np.random.default_rng(seed)
    who = ["a man", "a woman", "a dog", "two kids", "a chef", "a band"]
    does = ["is playing", "is cooking", "is holding", "is riding", "is watching", "is throwing"]
    what = ["a guitar", "some food", "a ball", "a bike", "the news", "a frisbee"]
    where = ["", "in a park", "on a stage", "in a kitchen", "outside"]

    def caption(topic=None):
        parts = [pool[topic[k]] if topic is not None and rng.random() < 0.7 else pool[rng.integers(len(pool))]
                 for k, pool in enumerate((who, does, what))]
        return " ".join(p for p in (*parts, where[rng.integers(len(where))]) if p)

    topics = [tuple(rng.integers(6, size=3)) for _ in range(n_videos)]
    references = {f"video{i:03d}": [caption(t) for _ in range(n_refs)] for i, t in enumerate(topics)}
    follows = {f"video{i:03d}": caption(t) for i, t in enumerate(topics)}
    guesses = {f"video{i:03d}": caption() for i in range(n_videos)}
    return references, follows, guesses


def test_corpus_bootstrap_bleu4_is_centred_on_the_full_set_corpus_bleu():
    references, follows, guesses = grammar_corpus(60, 5)
    full = score_captions(follows, references, metrics=("Bleu_4",)).corpus["Bleu_4"]
    result = corpus_bootstrap(guesses, follows, references, "Bleu_4", n_resamples=1000, seed=0)
    assert abs(result.mean_b - full) < 1e-12  # the full-set value is pycocoevalcap's corpus BLEU-4
    assert result.ci_low <= result.diff <= result.ci_high and result.ci_low > 0 and result.p_value < 0.05

    ids = sorted(references)  # corpus_bootstrap's resamples: same seed, same sorted ids
    counts = draw_counts(resample_indices(len(ids), 1000, seed=0), len(ids))
    resampled = resampled_corpus("Bleu_4", [references[v] for v in ids], [[follows[v] for v in ids]], counts)[0]
    assert abs(resampled.mean() - full) < 0.03 * full  # the resamples are centred on the full-set value
    assert np.percentile(resampled, 2.5) < full < np.percentile(resampled, 97.5)


def test_corpus_bootstrap_cider_full_set_value_is_pycocoevalcaps():
    full = score_captions(SYSTEM_B, REFERENCES, metrics=("CIDEr",)).corpus["CIDEr"]
    cider = corpus_bootstrap(SYSTEM_A, SYSTEM_B, REFERENCES, "CIDEr", n_resamples=200, seed=0)
    assert abs(cider.mean_b - full) < 1e-9


def test_corpus_bootstrap_against_itself_and_with_seeds():
    same = corpus_bootstrap(SYSTEM_A, SYSTEM_A, REFERENCES, "CIDEr", n_resamples=100, seed=0)
    assert (same.diff, same.ci_low, same.ci_high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    one = corpus_bootstrap(SYSTEM_A, SYSTEM_B, REFERENCES, "ROUGE_L", n_resamples=100, seed=1)
    two_seeds = corpus_bootstrap([SYSTEM_A, SYSTEM_B], [SYSTEM_B, SYSTEM_B], REFERENCES, "ROUGE_L",
                                 n_resamples=100, seed=1)
    assert two_seeds.mean_a == pytest.approx((one.mean_a + one.mean_b) / 2)  # seeds averaged per resample
    assert two_seeds.mean_b == pytest.approx(one.mean_b)
    assert two_seeds.diff == pytest.approx(one.diff / 2)


def test_corpus_bootstrap_needs_the_same_videos():
    with pytest.raises(EvaluationError, match="video5"):
        corpus_bootstrap(SYSTEM_A, {v: c for v, c in SYSTEM_B.items() if v != "video5"}, REFERENCES, "Bleu_4")
    with pytest.raises(ConfigError, match="CIDEr"):
        corpus_bootstrap(SYSTEM_A, SYSTEM_B, REFERENCES, "SPICE")
