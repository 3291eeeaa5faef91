"""Caption metrics with pycocoevalcap, following the coco-caption protocol.

Every caption is PTB-tokenised by pycocoevalcap's `PTBTokenizer` (Stanford CoreNLP 3.4.1,
lower-cased, punctuation removed), then scored by pycocoevalcap's `Bleu(4)`, METEOR 1.5 (its jar,
through `MeteorProcess`), `Rouge()` (ROUGE-L) and `Cider()`. pycocoevalcap's `Cider` is CIDEr-D:
clipped n-gram counts and a Gaussian length penalty (sigma 6), x10, with document frequencies from
the references of the evaluated videos only, so a video's CIDEr depends on the other videos scored.

How the corpus numbers relate to the per-video numbers (as pycocoevalcap computes them):
  * ROUGE_L, CIDEr: corpus = mean of the per-video scores (exactly).
  * Bleu_1..4: corpus BLEU pools n-gram matches and lengths over all videos; the per-video values
    are sentence BLEU (with pycocoevalcap's 1e-15 / 1e-9 smoothing) and do not average to it.
  * METEOR: the jar aggregates the pooled statistics (matches, chunks, lengths) of all videos;
    the corpus score is not the mean of the per-video scores.

Sanitising (documented difference from feeding raw strings to pycocoevalcap): every caption has
runs of whitespace, including newlines, carriage returns and Unicode line separators, collapsed to
one space, and METEOR's field separator `|||` replaced by a space. Raw newlines or `\r` make the
PTB tokenizer emit extra lines, which silently shifts every later caption onto the wrong video, and
a `|||` in a reference splits it into two references for METEOR. Empty predictions are kept empty
(not replaced by a placeholder token, which could match a reference word): every metric scores them
0 and nothing crashes or hangs. Empty references are dropped; a video left with none is an error.
The scored set is the predicted videos: references of other videos are ignored (they would change
CIDEr's document frequencies), while a predicted video without references is an error.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from vidcap_core.errors import ConfigError, EvaluationError
from vidcap_core.evaluation.java import check_java
from vidcap_core.evaluation.meteor import MAX_WAIT_S, STALL_S, MeteorProcess

METRICS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")
BLEU_METRICS = METRICS[:4]
SPICE_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")

K = TypeVar("K", bound=Hashable)


@dataclass
class CaptionScores:
    """Corpus scores, per-video scores ({video_id: {metric: value}}) and why SPICE is absent."""

    corpus: dict[str, float]
    per_video: dict[str, dict[str, float]] = field(default_factory=dict)
    spice: str = ""


def sanitize_caption(text: str) -> str:
    """Collapse all whitespace (newlines included) to single spaces and drop METEOR's `|||`."""
    return " ".join(text.replace("|||", " ").split())


def check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    """The requested metric names, validated against METRICS (order and duplicates normalised)."""
    if isinstance(metrics, str):
        metrics = (metrics,)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ConfigError(f"unknown metric(s) {unknown or '(none given)'}; choose from {', '.join(METRICS)}.")
    return tuple(m for m in METRICS if m in metrics)


def spice_status() -> str:
    """Why SPICE is not reported. Looks for its CoreNLP jars without triggering their download."""
    lib = _pycocoevalcap_dir() / "spice" / "lib"
    missing = [jar for jar in SPICE_JARS if not (lib / jar).is_file()]
    if missing:
        return (f"unavailable (jars missing): SPICE needs {' and '.join(missing)} in {lib}, which pycocoevalcap "
                "downloads from nlp.stanford.edu on first use; vidcap never downloads them.")
    return f"not computed: the SPICE jars are present in {lib}, but SPICE is not one of vidcap's metrics."


def check_inputs(
    predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]
) -> tuple[list[str], dict[str, str], dict[str, list[str]]]:
    """Validate and sanitise: (video ids in prediction order, predictions, non-empty references)."""
    if not predictions:
        raise EvaluationError("there are no predictions to score (the mapping is empty); "
                              "caption at least one video before evaluating.")
    if not references:
        raise EvaluationError("there are no references to score against (the mapping is empty); "
                              "load the split's annotations and pass {video_id: [captions]}.")
    ids = list(predictions)
    unknown = [v for v in ids if v not in references]
    if unknown:
        raise EvaluationError(f"{len(unknown)} predicted video id(s) have no references, e.g. {unknown[:5]}; "
                              "score only videos of the split the references come from.")
    bad_types = [v for v in ids if not isinstance(predictions[v], str)]
    if bad_types:
        raise EvaluationError(f"predictions for {bad_types[:5]} are not strings "
                              f"(e.g. {type(predictions[bad_types[0]]).__name__}); pass one caption per video.")
    refs: dict[str, list[str]] = {}
    for vid in ids:
        captions = references[vid]
        if isinstance(captions, str):
            raise EvaluationError(f"references[{vid!r}] is one string; pass a list of reference captions.")
        refs[vid] = [c for c in (sanitize_caption(str(c)) for c in captions) if c]
    empty = [v for v in ids if not refs[v]]
    if empty:
        raise EvaluationError(f"{len(empty)} video(s) have no non-empty reference caption, e.g. {empty[:5]}; "
                              "fix their annotations or leave them out of the predictions.")
    return ids, {v: sanitize_caption(predictions[v]) for v in ids}, refs


class Scorer:
    """pycocoevalcap scorers kept alive across calls (the METEOR JVM starts once, on first use).

    Use as a context manager or call `close()`. `score` calls are serialised. METEOR's JVM counts
    as hung after `meteor_stall_s` seconds without an answer in which it did not compute, or after
    `meteor_max_wait_s` seconds without an answer (see `meteor.py`); it is then killed and the call
    raises EvaluationError. Its start loads a 60 MB paraphrase table: one to a few minutes of CPU.
    """

    def __init__(
        self,
        metrics: Sequence[str] = METRICS,
        meteor_stall_s: float = STALL_S,
        meteor_max_wait_s: float = MAX_WAIT_S,
    ):
        self.metrics = check_metrics(metrics)
        self.java_version = check_java()
        self.meteor_stall_s = meteor_stall_s
        self.meteor_max_wait_s = meteor_max_wait_s
        self._meteor: MeteorProcess | None = None
        self._lock = threading.Lock()
        self._closed = False

    def meteor(self) -> MeteorProcess:
        """The running METEOR process, started (or restarted after a failure) on demand."""
        if self._closed:
            raise EvaluationError("this Scorer is closed; create a new one.")
        if self._meteor is None or not self._meteor.alive:
            self._meteor = MeteorProcess(self.meteor_stall_s, self.meteor_max_wait_s)
        return self._meteor

    def tokenize(self, captions: Mapping[K, Sequence[str]]) -> dict[K, list[str]]:
        """PTB-tokenise already sanitised captions with pycocoevalcap's PTBTokenizer (one JVM run)."""
        return tokenize(captions)

    def score(
        self,
        predictions: Mapping[str, str],
        references: Mapping[str, Sequence[str]],
        metrics: Sequence[str] | None = None,
        per_video: bool = True,
    ) -> CaptionScores:
        """Score one caption per video against its references (see the module docstring)."""
        wanted = self.metrics if metrics is None else check_metrics(metrics)
        ids, preds, refs = check_inputs(predictions, references)
        with self._lock:
            tokens = self.tokenize({**{("ref", v): refs[v] for v in ids}, **{("pred", v): [preds[v]] for v in ids}})
            gts = {v: tokens[("ref", v)] for v in ids}
            res = {v: tokens[("pred", v)] for v in ids}
            corpus, table = self._run_scorers(wanted, gts, res)
        videos = {v: {m: float(table[m][i]) for m in wanted} for i, v in enumerate(ids)} if per_video else {}
        return CaptionScores(corpus={m: float(corpus[m]) for m in wanted}, per_video=videos, spice=spice_status())

    def _run_scorers(self, wanted: Sequence[str], gts: dict[str, list[str]], res: dict[str, list[str]]
                     ) -> tuple[dict[str, float], dict[str, Sequence[float]]]:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge

        corpus: dict[str, float] = {}
        table: dict[str, Sequence[float]] = {}  # metric -> per-video values in gts order
        if any(m in BLEU_METRICS for m in wanted):
            bleu, bleu_per_video = Bleu(4).compute_score(gts, res, verbose=0)
            for k, name in enumerate(BLEU_METRICS):
                corpus[name], table[name] = bleu[k], bleu_per_video[k]
        if "METEOR" in wanted:
            corpus["METEOR"], table["METEOR"] = self.meteor().compute_score(gts, res)
        if "ROUGE_L" in wanted:
            corpus["ROUGE_L"], table["ROUGE_L"] = Rouge().compute_score(gts, res)
        if "CIDEr" in wanted:
            corpus["CIDEr"], table["CIDEr"] = Cider().compute_score(gts, res)
        return corpus, table

    def close(self) -> None:
        """Stop the METEOR JVM; the Scorer cannot be used afterwards."""
        self._closed = True
        if self._meteor is not None:
            self._meteor.close()
            self._meteor = None

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def score_captions(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    metrics: Sequence[str] = METRICS,
    per_video: bool = True,
) -> CaptionScores:
    """Score with a short-lived Scorer (Java is checked first; METEOR's JVM is stopped afterwards)."""
    with Scorer(metrics) as scorer:
        return scorer.score(predictions, references, per_video=per_video)


def tokenize(captions: Mapping[K, Sequence[str]]) -> dict[K, list[str]]:
    """pycocoevalcap's PTBTokenizer on {key: [caption, ...]}; checks that every caption came back.

    The captions must be sanitised (no line breaks), since the tokenizer pairs output lines with
    captions by position.
    """
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    check_java()
    broken = [k for k, caps in captions.items() for c in caps if c != sanitize_caption(c)]
    if broken:
        raise EvaluationError(f"captions of {broken[:3]} contain line breaks or '|||'; pass them through "
                              "sanitize_caption first.")
    wanted = {k: len(caps) for k, caps in captions.items() if caps}
    try:
        tokens = PTBTokenizer().tokenize({k: [{"caption": c} for c in caps] for k, caps in captions.items() if caps})
    except OSError as exc:  # it writes a temporary file next to its jar, inside site-packages
        raise EvaluationError(f"pycocoevalcap's PTB tokenizer could not run ({exc}); it needs Java and a "
                              f"writable {_pycocoevalcap_dir() / 'tokenizer'}.") from exc
    lost = [k for k, n in wanted.items() if len(tokens.get(k, ())) != n]
    if lost:
        raise EvaluationError(f"the PTB tokenizer returned no tokens for {len(lost)} key(s), e.g. {lost[:3]}; "
                              "its Java process failed (see the messages above) or ran out of memory.")
    return {k: tokens.get(k, []) for k in captions}


def _pycocoevalcap_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None or not spec.submodule_search_locations:
        raise EvaluationError("pycocoevalcap is not installed; run `pip install pycocoevalcap`.")
    return Path(list(spec.submodule_search_locations)[0])
