"""What a captioning model can describe, and why a clip was flagged as unlike its training data, in
plain words for people: `vidcap caption` prints them, the demo page shows them.

A model's scope is read from its vocabulary: a SynthClips model's words are all SynthClips caption
words (`synth.captions.caption_words`), and such a model can only tell coloured shapes on a plain
background. Pure functions of plain data (no torch; SynthClips' tables are imported on first use).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SYNTH_WORD_SHARE = 0.95  # a vocabulary this much made of SynthClips caption words is a SynthClips model's
PLURALS = {"cross": "crosses"}  # the shapes whose plural is not shape + "s"
SYNTH_SCOPE = (
    "This model describes short clips of one to three coloured shapes ({shapes}, in {colours}) on a plain "
    "background, and what they do: move left, right, up or down, grow or shrink, appear or disappear, spin, "
    "bounce or change colour. It cannot describe real-world video: on anything else it still answers with "
    "a sentence about shapes."
)
OTHER_SCOPE = ("This model describes videos like the ones it was trained on; on other kinds of video its captions "
               "are guesses.")
# The frame statistics of vidcap_core.ood.frame_statistics, as what differs from the training videos.
STATISTIC_WORDS = {
    "brightness": "brightness",
    "contrast": "contrast",
    "fine_noise": "pixel noise",
    "edge_energy": "amount of edges and texture",
    "saturated_share": "share of vivid colours",
    "chroma": "how colourful the background is",
    "background_share": "how much of each frame is plain background",
    "motion": "how much changes from frame to frame",
    "rare_colour_share": "colours the training videos hardly ever show",
    "frame_side": "frame size",
    "aspect": "frame shape (aspect ratio)",
    "frame_rate": "frame rate",
}


def is_synthclips_vocabulary(words: Iterable[str]) -> bool:
    """True when at least SYNTH_WORD_SHARE of `words` (special tokens such as <eos> left out) are
    SynthClips caption words."""
    from vidcap_core.synth.captions import caption_words

    plain = [w for w in words if not (w.startswith("<") and w.endswith(">"))]
    known = caption_words()
    return bool(plain) and sum(w in known for w in plain) >= SYNTH_WORD_SHARE * len(plain)


def scope_sentence(words: Iterable[str]) -> str:
    """What a model whose vocabulary is `words` can describe, in plain words."""
    from vidcap_core.synth.catalog import COLOURS, SHAPES

    if not is_synthclips_vocabulary(words):
        return OTHER_SCOPE
    shapes = [PLURALS.get(s, f"{s}s") for s in SHAPES]
    return SYNTH_SCOPE.format(shapes=", ".join(shapes[:-1]) + f" and {shapes[-1]}",
                              colours=", ".join(COLOURS[:-1]) + f" or {COLOURS[-1]}")


def ood_reason(ood: dict[str, Any]) -> str:
    """Why a clip was flagged, from `OodScore.to_dict()`: which of the two scores fired and, for the
    frame statistics, the one furthest outside the training videos' range."""
    reasons = []
    frames = ood.get("frames") or {}
    if frames.get("flagged"):
        what = STATISTIC_WORDS.get(frames.get("statistic") or "", "low-level look")
        reasons.append(f"its frames differ from the training videos' in {what}")
    if (ood.get("features") or {}).get("flagged"):
        reasons.append("what the model sees in its frames lies far from anything in the training videos")
    return " and ".join(reasons) or "it lies outside the training videos' range"


def ood_warning(ood: dict[str, Any] | None) -> str | None:
    """'This video looks unlike the model's training data (out-of-distribution score S, above T: REASON),
    so the caption is probably wrong.' for a flagged clip; None when not flagged or not scored."""
    if not ood or not ood.get("flagged"):
        return None
    return (f"This video looks unlike the model's training data (out-of-distribution score {ood['score']:.1f}, "
            f"above {ood['threshold']:.1f}: {ood_reason(ood)}), so the caption is probably wrong.")
