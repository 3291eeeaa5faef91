"""Caption rewards of policy-gradient fine-tuning (training/policy_gradient.py), text side
(SCST's reward source, training/scst.py).

- `CiderDReward`: CIDEr-D of one caption against its clip's references (Rennie et al. 2017's SCST
  reward). The document frequencies come from the *training* references, computed once per run, as in
  ruotianluo/self-critical.pytorch's "corpus" mode: a caption's reward does not depend on which
  other clips happen to share its batch. Captions and references go through the same Python
  tokenisation as validation (`evaluation.validation.python_tokens`), and the arithmetic is
  pycocoevalcap's `CiderScorer` (sigma 6, n-grams 1..4, x10, its length quirk included), so with
  the same document frequencies the numbers are pycocoevalcap's (tests/test_policy_gradient.py).
- `SemanticReward`: on SynthClips, the semantic checker's exact score (1.0 when the caption states
  every event, its colour, shape, size and order right; else 0.0).

The discriminator's reward (the LSTM-GAN) needs tensors, not text, and lives in training/adversarial.py.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from vidcap_core.errors import EvaluationError
from vidcap_core.evaluation.validation import python_tokens

if TYPE_CHECKING:
    from vidcap_core.synth.checker import ClipTruth

CIDER_N = 4
CIDER_SIGMA = 6.0

NGramCounts = Counter  # n-gram (tuple of words) -> count


class TextReward(Protocol):
    """reward(captions, video_ids) -> (B,) float64: one score per caption of its clip."""

    def __call__(self, captions: Sequence[str], video_ids: Sequence[str]) -> np.ndarray: ...


def ngram_counts(tokens: str, n: int = CIDER_N) -> NGramCounts:
    """Counts of every 1..n-gram of a space-joined token string (pycocoevalcap's `precook`)."""
    words = tokens.split()
    return Counter(tuple(words[i:i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


class _TfIdf:
    """One caption as pycocoevalcap's `counts2vec` sees it: tf-idf per n-gram order, norms, length."""

    __slots__ = ("vec", "norm", "length")

    def __init__(self, counts: NGramCounts, idf: Mapping[tuple[str, ...], float], log_docs: float, n: int):
        self.vec: list[dict[tuple[str, ...], float]] = [{} for _ in range(n)]
        squares = [0.0] * n
        self.length = 0
        for ngram, term_freq in counts.items():
            order = len(ngram) - 1
            weight = float(term_freq) * (log_docs - idf.get(ngram, 0.0))
            self.vec[order][ngram] = weight
            squares[order] += weight * weight
            if order == 1:  # pycocoevalcap counts the length in bigrams (words - 1); kept for equal numbers
                self.length += term_freq
        self.norm = [math.sqrt(s) for s in squares]


class CiderDReward:
    """CIDEr-D of a caption against its clip's references, document frequencies fixed by `references`.

    `references`: video_id -> reference captions of every clip that may be scored (the training
    split). Call with captions and their video ids; returns (B,) rewards.
    """

    def __init__(self, references: Mapping[str, Sequence[str]], n: int = CIDER_N, sigma: float = CIDER_SIGMA):
        if not references or any(not refs for refs in references.values()):
            raise EvaluationError("CIDEr-D reward needs at least one reference caption for every clip; "
                                  "drop uncaptioned clips from the training split.")
        self.n, self.sigma = n, sigma
        cooked = {v: [ngram_counts(python_tokens(r), n) for r in refs] for v, refs in references.items()}
        frequency: Counter = Counter()
        for refs in cooked.values():  # a document is a clip: its references together
            frequency.update({ngram for ref in refs for ngram in ref})
        self.idf = {ngram: math.log(max(1.0, df)) for ngram, df in frequency.items()}
        self.log_docs = math.log(float(len(cooked)))
        self.refs = {v: [_TfIdf(c, self.idf, self.log_docs, n) for c in refs] for v, refs in cooked.items()}

    def __call__(self, captions: Sequence[str], video_ids: Sequence[str]) -> np.ndarray:
        if len(captions) != len(video_ids):
            raise EvaluationError(f"{len(captions)} captions for {len(video_ids)} video ids: pass one id per caption.")
        return np.array([self.score(c, v) for c, v in zip(captions, video_ids)], dtype=np.float64)

    def score(self, caption: str, video_id: str) -> float:
        refs = self.refs.get(video_id)
        if refs is None:
            raise EvaluationError(f"video {video_id!r} has no references in the CIDEr-D reward's corpus; "
                                  "score clips of the split the reward was built from.")
        hyp = _TfIdf(ngram_counts(python_tokens(caption), self.n), self.idf, self.log_docs, self.n)
        total = np.zeros(self.n)
        for ref in refs:
            total += self._similarity(hyp, ref)
        return float(np.mean(total) / len(refs) * 10.0)

    def _similarity(self, hyp: _TfIdf, ref: _TfIdf) -> np.ndarray:
        """Clipped cosine similarity per n-gram order with the Gaussian length penalty: (n,)."""
        delta = float(hyp.length - ref.length)
        penalty = math.exp(-(delta ** 2) / (2 * self.sigma ** 2))
        val = np.zeros(self.n)
        for order in range(self.n):
            ref_vec = ref.vec[order]
            total = sum(min(w, ref_vec.get(g, 0.0)) * ref_vec.get(g, 0.0) for g, w in hyp.vec[order].items())
            if hyp.norm[order] != 0 and ref.norm[order] != 0:
                total /= hyp.norm[order] * ref.norm[order]
            val[order] = total * penalty
        return val


class SemanticReward:
    """The SynthClips semantic checker's exact score of each caption against its clip's ground truth."""

    def __init__(self, truths: Mapping[str, ClipTruth]):
        self.truths = dict(truths)

    def __call__(self, captions: Sequence[str], video_ids: Sequence[str]) -> np.ndarray:
        from vidcap_core.synth.checker import score_caption

        missing = sorted({v for v in video_ids if v not in self.truths})
        if missing:
            raise EvaluationError(f"{len(missing)} clip(s) have no SynthClips ground truth, e.g. {missing[:3]}; "
                                  "the semantic reward works on SynthClips only (use --reward cider elsewhere).")
        return np.array([score_caption(c, self.truths[v])["exact"] for c, v in zip(captions, video_ids)],
                        dtype=np.float64)
