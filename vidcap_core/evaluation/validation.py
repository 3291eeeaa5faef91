"""Validation scores cheap enough to compute every few hundred steps: CIDEr-D without Java, and on
SynthClips the semantic checker.

CIDEr-D here is pycocoevalcap's own `Cider` (pure Python) fed with vidcap's PTB-consistent Python
tokenizer (`vidcap_core.text.tokenize`) instead of the Stanford PTBTokenizer, which starts a JVM per
call. Captions are sanitised exactly as `Scorer.score` does (metrics.check_inputs), so on captions
where the two tokenizers agree (every SynthClips caption; tests/test_training.py checks it) the
number is the one `vidcap evaluate` reports. References are tokenised once per run, since CIDEr-D's
document frequencies come from the references of the scored videos only, which stay the same
between validations. METEOR, BLEU and ROUGE-L are test-time metrics (`vidcap evaluate`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from vidcap_core.errors import EvaluationError
from vidcap_core.evaluation.metrics import CaptionScores, check_inputs, sanitize_caption
from vidcap_core.text import tokenize

if TYPE_CHECKING:
    from vidcap_core.synth.checker import ClipTruth


def python_tokens(caption: str) -> str:
    """A sanitised caption as the space-joined tokens pycocoevalcap's scorers expect."""
    return " ".join(tokenize(sanitize_caption(caption)))


def cider_d(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> CaptionScores:
    """CIDEr-D (corpus and per video) of one caption per video, without starting Java."""
    from pycocoevalcap.cider.cider import Cider

    ids, preds, refs = check_inputs(predictions, references)
    gts = {v: [python_tokens(r) for r in refs[v]] for v in ids}
    res = {v: [python_tokens(preds[v])] for v in ids}
    corpus, per_video = Cider().compute_score(gts, res)
    return CaptionScores(corpus={"CIDEr": float(corpus)},
                         per_video={v: {"CIDEr": float(s)} for v, s in zip(ids, per_video)})


class ValidationScorer:
    """Scores one split's predictions against references fixed for the whole run.

    `score(predictions)` -> {"CIDEr": ..., and with `truths` (SynthClips ground truth of the split)
    the semantic checker's slots: "exact", "colour", "shape", "action", ... (NaN where a slot does
    not apply)}. Every video of the split must be predicted, so scores are comparable across calls.
    """

    def __init__(self, references: Mapping[str, Sequence[str]], truths: Mapping[str, ClipTruth] | None = None):
        if not references:
            raise EvaluationError("the validation split has no references; it must hold at least one captioned video.")
        self.references = {v: list(refs) for v, refs in references.items()}
        if truths is not None:
            missing = sorted(set(self.references) - set(truths))
            if missing:
                raise EvaluationError(f"{len(missing)} validation video(s) have no SynthClips ground truth, "
                                      f"e.g. {missing[:3]}; regenerate the dataset's ground_truth.json.")
            truths = {v: truths[v] for v in self.references}
        self.truths = truths
        self._gts: dict[str, list[str]] | None = None

    def score(self, predictions: Mapping[str, str]) -> dict[str, float]:
        from pycocoevalcap.cider.cider import Cider

        if set(predictions) != set(self.references):
            raise EvaluationError(f"validation predicted {len(predictions)} videos; the split has "
                                  f"{len(self.references)}: predict every one of them.")
        ids, preds, refs = check_inputs(predictions, self.references)
        if self._gts is None:
            self._gts = {v: [python_tokens(r) for r in refs[v]] for v in ids}
        corpus, _ = Cider().compute_score({v: self._gts[v] for v in ids}, {v: [python_tokens(preds[v])] for v in ids})
        scores = {"CIDEr": float(corpus)}
        if self.truths is not None:
            from vidcap_core.synth.checker import semantic_scores

            semantic = semantic_scores(dict(predictions), self.truths)
            scores.update({k: float(v) for k, v in semantic.items() if k != "n"})
        return scores
