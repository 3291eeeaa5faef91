"""Corpus metrics of resampled test sets, recomputed exactly as pycocoevalcap would on each resample.

A resample is given as counts: `counts[r, i]` is how many times video i was drawn in resample r
(each row sums to N). Its metric is what pycocoevalcap returns for a corpus holding video i
`counts[r, i]` times. Inputs are PTB-tokenised captions (tokenise once, resample many times).

  * Bleu_k: per-video sufficient statistics (hypothesis length, closest reference length, n-gram
    guesses and clipped matches) from pycocoevalcap's `cook_refs` / `cook_test`, pooled with the
    counts, then pycocoevalcap's corpus formula (1e-15 / 1e-9 smoothing, brevity penalty).
  * CIDEr (CIDEr-D): document frequencies are recomputed per resample from the references of the
    drawn videos (a video drawn twice counts twice, as it would in pycocoevalcap's CiderScorer), so
    the idf weights and thus every video's score change with the resample. Vectorised with numpy
    over flat (row, n-gram) entry lists: one bincount per quantity per resample.
  * METEOR: the jar's own aggregate (`EVAL`) over the drawn videos' statistics.
  * ROUGE_L: the mean of pycocoevalcap's per-video ROUGE-L (exact: ROUGE_L is such a mean).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vidcap_core.errors import ConfigError, EvaluationError
from vidcap_core.evaluation.meteor import MeteorProcess

BLEU_N = 4
CIDER_N = 4
CIDER_SIGMA = 6.0
BLEU_TINY, BLEU_SMALL = 1e-15, 1e-9  # pycocoevalcap's smoothing constants


def bleu_stats(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """(N, 2 + 2n) per-video BLEU statistics: testlen, closest reflen, guess_1..n, correct_1..n."""
    from pycocoevalcap.bleu.bleu_scorer import cook_refs, cook_test

    rows = []
    for hyp, refs in zip(hypotheses, references):
        comps = cook_test(hyp, cook_refs(refs, n=BLEU_N), eff="closest", n=BLEU_N)
        rows.append([comps["testlen"], comps["reflen"], *comps["guess"], *comps["correct"]])
    return np.asarray(rows, dtype=np.float64)


def bleu_from_totals(totals: np.ndarray) -> np.ndarray:
    """pycocoevalcap's corpus BLEU_1..n from pooled statistics (R, 2 + 2n) -> (R, n)."""
    testlen, reflen = totals[:, 0], totals[:, 1]
    guess, correct = totals[:, 2:2 + BLEU_N], totals[:, 2 + BLEU_N:]
    precision = (correct + BLEU_TINY) / (guess + BLEU_SMALL)  # (R, n)
    bleus = np.cumprod(precision, axis=1) ** (1.0 / np.arange(1, BLEU_N + 1))  # (R, n)
    ratio = (testlen + BLEU_TINY) / (reflen + BLEU_SMALL)  # (R,)
    brevity = np.where(ratio < 1, np.exp(1 - 1 / np.minimum(ratio, 1.0)), 1.0)  # (R,)
    return bleus * brevity[:, None]


@dataclass
class _Entries:
    """A sparse (rows x n-gram orders) table of values weighted by idf^2 at resample time.

    `slot` says which idf an entry uses: n-grams found in the references of two or more videos
    have their own slot; an n-gram found in the references of one video i only has df = (copies
    of i drawn), so all of them share slot S + i and are summed into one entry per (row, order);
    n-grams absent from every reference (df = 0) share the last slot.
    """

    cell: np.ndarray  # (E,) int64, row * CIDER_N + (n-gram length - 1)
    slot: np.ndarray  # (E,) int64, index into the resample's idf vector
    value: np.ndarray  # (E,) float64
    n_rows: int


class CiderResampler:
    """CIDEr-D of many systems on resampled corpora, sharing the reference-side work.

    Matches pycocoevalcap's CiderScorer: idf = log(N) - log(max(1, df)), tf-idf vectors per n-gram
    order, clipped cosine similarity min(h, r) * r / (|h| |r|), Gaussian penalty on the difference
    of the bigram counts (pycocoevalcap's `length`), averaged over orders and references, x10.
    Since idf >= 0, min(h idf, r idf) r idf = min(h, r) r idf^2, so every quantity is a sum of a
    fixed value times idf^2 per (row, order): one gather and one bincount per quantity and resample.
    """

    def __init__(self, references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]]):
        from pycocoevalcap.cider.cider_scorer import precook

        self.n_videos = len(references)
        ref_counts = [[precook(r, CIDER_N) for r in refs] for refs in references]
        self.ref_video = np.repeat(np.arange(self.n_videos), [len(r) for r in ref_counts])  # (J,)
        self.n_refs = np.asarray([len(r) for r in ref_counts], dtype=np.float64)  # (N,)
        flat_refs = [c for counts in ref_counts for c in counts]
        self.ref_len = np.asarray([_bigram_count(c) for c in flat_refs], dtype=np.float64)  # (J,)

        videos_of: dict[tuple[str, ...], set[int]] = {}
        for i, counts in enumerate(ref_counts):
            for g in {g for c in counts for g in c}:
                videos_of.setdefault(g, set()).add(i)
        shared = [g for g, vs in videos_of.items() if len(vs) >= 2]
        self.n_shared = len(shared)
        self._slot = {g: k for k, g in enumerate(shared)}
        self._slot.update({g: self.n_shared + next(iter(vs)) for g, vs in videos_of.items() if len(vs) == 1})
        self._absent_slot = self.n_shared + self.n_videos
        df_pairs = [(self._slot[g], i) for g, vs in videos_of.items() if len(vs) >= 2 for i in vs]
        self.df_slot = np.asarray([s for s, _ in df_pairs], dtype=np.int64)  # (D,)
        self.df_video = np.asarray([i for _, i in df_pairs], dtype=np.int64)  # (D,)

        self.ref_sq = self._entries([{g: float(t) ** 2 for g, t in c.items()} for c in flat_refs])
        self.systems = [self._system(hyps, flat_refs, precook) for hyps in hypotheses]

    def _system(self, hyps: Sequence[str], flat_refs: list[dict], precook: Callable
                ) -> tuple[_Entries, _Entries, np.ndarray]:
        if len(hyps) != self.n_videos:
            raise EvaluationError(f"{len(hyps)} hypotheses for {self.n_videos} videos.")
        hyp_counts = [precook(h, CIDER_N) for h in hyps]
        hyp_sq = self._entries([{g: float(t) ** 2 for g, t in c.items()} for c in hyp_counts])
        cross = self._entries([
            {g: float(min(t, ref[g])) * ref[g] for g, t in hyp_counts[self.ref_video[j]].items() if g in ref}
            for j, ref in enumerate(flat_refs)
        ])
        hyp_len = np.asarray([_bigram_count(c) for c in hyp_counts], dtype=np.float64)[self.ref_video]  # (J,)
        penalty = np.exp(-((hyp_len - self.ref_len) ** 2) / (2 * CIDER_SIGMA**2))  # (J,)
        return hyp_sq, cross, penalty

    def _entries(self, rows: Sequence[dict[tuple[str, ...], float]]) -> _Entries:
        summed: dict[tuple[int, int], float] = {}
        for i, counts in enumerate(rows):
            for g, v in counts.items():
                key = (i * CIDER_N + len(g) - 1, self._slot.get(g, self._absent_slot))
                summed[key] = summed.get(key, 0.0) + v
        keys = np.asarray(list(summed), dtype=np.int64).reshape(-1, 2)
        return _Entries(keys[:, 0], keys[:, 1], np.fromiter(summed.values(), np.float64, len(summed)), len(rows))

    def corpus(self, counts: np.ndarray) -> np.ndarray:
        """(R, N) draw counts -> (S, R) corpus CIDEr of each system on each resample.

        One resample at a time, through buffers allocated once: the work is a few gathers and
        bincounts over the entry lists, and large fresh temporaries cost more than the arithmetic.
        """
        weights = counts.astype(np.float64)
        out = np.empty((len(self.systems), weights.shape[0]))
        buffers = {id(e): np.empty(e.value.size) for e in (self.ref_sq, *(x for sys in self.systems for x in sys[:2]))}
        df_weights = np.empty(self.df_video.size)
        for r, w in enumerate(weights):
            out[:, r] = self._one_resample(w, buffers, df_weights)
        return out

    def _one_resample(self, weights: np.ndarray, buffers: dict[int, np.ndarray], df_weights: np.ndarray) -> np.ndarray:
        """(N,) draw counts -> (S,) corpus CIDEr."""
        total = float(weights.sum())
        np.take(weights, self.df_video, out=df_weights, mode="clip")  # "clip": no buffered copy
        df = np.bincount(self.df_slot, weights=df_weights, minlength=self.n_shared)  # (S,)
        idf = np.log(total) - np.log(np.maximum(1.0, np.concatenate([df, weights, [0.0]])))  # (S + N + 1,)
        idf2 = idf**2  # the last slot: n-grams in no reference, df = 0
        ref_norm = np.sqrt(_per_order(self.ref_sq, idf2, buffers))  # (J, n)
        scores = np.empty(len(self.systems))
        for s, (hyp_sq, cross, penalty) in enumerate(self.systems):
            hyp_norm = np.sqrt(_per_order(hyp_sq, idf2, buffers))[self.ref_video]  # (J, n)
            dot = _per_order(cross, idf2, buffers)  # (J, n)
            denom = hyp_norm * ref_norm
            cosine = np.divide(dot, denom, out=dot, where=denom != 0)  # (J, n); 0 / 0 stays 0
            per_ref = cosine.mean(axis=1) * penalty  # (J,)
            per_video = 10.0 * np.bincount(self.ref_video, weights=per_ref, minlength=self.n_videos) / self.n_refs
            scores[s] = float(weights @ per_video) / total
        return scores


def _per_order(entries: _Entries, idf2: np.ndarray, buffers: dict[int, np.ndarray]) -> np.ndarray:
    """Sum of value * idf^2 per (row, n-gram order) -> (rows, n)."""
    weighted = np.take(idf2, entries.slot, out=buffers[id(entries)], mode="clip")
    weighted *= entries.value
    summed = np.bincount(entries.cell, weights=weighted, minlength=entries.n_rows * CIDER_N)
    # bincount returns int64 when there are no entries at all (every caption empty): keep float
    return summed.astype(np.float64, copy=False).reshape(-1, CIDER_N)


def _bigram_count(counts: dict[tuple[str, ...], int]) -> int:
    """pycocoevalcap's CIDEr `length`: it adds term frequencies where `n == 1`, i.e. of bigrams."""
    return sum(t for g, t in counts.items() if len(g) == 2)


def resampled_corpus(
    metric: str,
    references: Sequence[Sequence[str]],
    hypotheses: Sequence[Sequence[str]],
    counts: np.ndarray,
    meteor: Callable[[], MeteorProcess] | None = None,
) -> np.ndarray:
    """(S, R) corpus `metric` of S systems (token strings per video) on R resamples (counts (R, N))."""
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != len(references):
        raise EvaluationError(f"counts has shape {counts.shape}; expected (resamples, {len(references)}).")
    if metric.startswith("Bleu_") and metric[5:].isdigit() and 1 <= int(metric[5:]) <= BLEU_N:
        k = int(metric[5:]) - 1
        pooled = [counts.astype(np.float64) @ bleu_stats(h, references) for h in hypotheses]  # S x (R, 2 + 2n)
        return np.stack([bleu_from_totals(p)[:, k] for p in pooled])
    if metric == "CIDEr":
        return CiderResampler(references, hypotheses).corpus(counts)
    if metric == "ROUGE_L":
        from pycocoevalcap.rouge.rouge import Rouge

        rouge = Rouge()
        per_video = np.asarray([[rouge.calc_score([h], list(r)) for h, r in zip(hyps, references)]
                                for hyps in hypotheses])  # (S, N)
        return per_video @ counts.T.astype(np.float64) / counts.sum(axis=1)
    if metric == "METEOR":
        if meteor is None:
            raise EvaluationError("METEOR resampling needs a running METEOR process (pass a Scorer).")
        process = meteor()
        stats = [process.stats(list(hyps), [list(r) for r in references]) for hyps in hypotheses]
        return np.asarray([[process.evaluate(np.repeat(np.asarray(s, dtype=object), row).tolist())[0]
                            for row in counts] for s in stats])
    raise ConfigError(f"metric {metric!r} cannot be resampled; choose Bleu_1..Bleu_{BLEU_N}, METEOR, ROUGE_L or CIDEr.")
