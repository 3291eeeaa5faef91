"""What a model can describe and why a clip was flagged, in plain words (vidcap_core.pipeline.scope):
the sentences `vidcap caption` prints and the demo page shows."""

from __future__ import annotations

from vidcap_core.ood.frame_statistics import STATISTIC_NAMES
from vidcap_core.pipeline.scope import (
    OTHER_SCOPE,
    STATISTIC_WORDS,
    is_synthclips_vocabulary,
    ood_reason,
    ood_warning,
    scope_sentence,
)
from vidcap_core.synth.captions import caption_words
from vidcap_core.synth.catalog import ACTIONS, COLOURS, SHAPES


def test_a_synthclips_vocabulary_gets_the_synthclips_scope():
    words = ["<pad>", "<bos>", "<eos>", "<unk>", *sorted(caption_words())]
    assert is_synthclips_vocabulary(words)
    sentence = scope_sentence(words)
    assert all(shape in sentence for shape in SHAPES) and all(colour in sentence for colour in COLOURS)
    # every action SynthClips shows is named (move_left -> "left", change_colour -> "change colour", ...)
    assert all(action.split("_")[-1].replace("colour", "change colour") in sentence for action in ACTIONS)
    assert "one to three" in sentence and "cannot describe real-world video" in sentence


def test_a_real_world_vocabulary_gets_the_general_scope():
    msrvtt_like = ["a", "man", "is", "playing", "guitar", "woman", "cooking", "red", "ball", "the", "dog", "running"]
    assert not is_synthclips_vocabulary(msrvtt_like) and scope_sentence(msrvtt_like) == OTHER_SCOPE
    assert not is_synthclips_vocabulary(["<pad>", "<eos>"])  # no words at all: nothing is known


def test_every_frame_statistic_has_plain_words_and_the_reason_names_what_fired():
    assert set(STATISTIC_WORDS) == set(STATISTIC_NAMES)
    frames = {"score": 3.0, "threshold": 1.0, "flagged": True, "statistic": "frame_rate"}
    features = {"score": 20.0, "threshold": 13.5, "flagged": True}
    quiet = {"score": 0.2, "threshold": 1.0, "flagged": False}
    assert ood_reason({"frames": frames, "features": quiet}) == "its frames differ from the training videos' in frame rate"
    both = ood_reason({"frames": frames, "features": features})
    assert both.startswith("its frames differ") and "what the model sees in its frames lies far" in both
    warning = ood_warning({"score": 3.0, "threshold": 1.0, "flagged": True, "frames": frames, "features": quiet})
    assert warning == ("This video looks unlike the model's training data (out-of-distribution score 3.0, above 1.0: "
                       "its frames differ from the training videos' in frame rate), so the caption is probably wrong.")
    assert ood_warning({"score": 0.5, "threshold": 1.0, "flagged": False}) is None and ood_warning(None) is None
