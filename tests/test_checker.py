"""The SynthClips semantic checker: it reads the generator's own captions back exactly, and it
scores swapped directions, wrong order and garbage as wrong (without crashing)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vidcap_core.errors import DatasetError, EvaluationError
from vidcap_core.synth import PRESETS, build_clip, load_ground_truth, parse_caption, score_caption, semantic_scores
from vidcap_core.synth.catalog import COUNTERPART, REVERSIBLE_ACTIONS
from vidcap_core.synth.checker import SLOTS
from vidcap_core.synth.generator import assign_splits
from vidcap_core.synth.truth import ClipTruth, EventTruth, ObjectTruth


def clip(*events: EventTruth) -> ClipTruth:
    objects = tuple({e.object: ObjectTruth(e.shape, e.colour, e.size, True) for e in events}.values())
    return ClipTruth("video0", "test", 32, False, objects, tuple(events))


RED_LEFT = EventTruth(0, "move_left", 2, 9, "circle", "red", "small")
BLUE_GROWS = EventTruth(1, "grow", 12, 19, "square", "blue", "small")
GREEN_SPINS = EventTruth(0, "spin", 3, 10, "star", "green", "large")
WHITE_TURNS = EventTruth(0, "change_colour", 3, 10, "cross", "white", "large", new_colour="orange")


@pytest.mark.parametrize("preset", ["tiny", "standard", "long"])
def test_every_reference_caption_parses_back_exactly(preset: str) -> None:
    cfg = PRESETS[preset]
    count = cfg.num_clips if preset == "tiny" else 80
    roles = assign_splits(cfg, seed=0)[:count]
    checked = 0
    for index, (split, heldout) in enumerate(roles):
        spec = build_clip(cfg, 0, index, split, heldout)
        for caption in spec.captions:
            scores = score_caption(caption, spec.truth)
            assert scores["exact"] == 1.0, (caption, spec.truth.events, parse_caption(caption), scores)
            assert all(scores[s] == 1.0 for s in SLOTS if not math.isnan(scores[s])), (caption, scores)
            checked += 1
    assert checked >= count * 10


def test_parse_reads_attributes_and_order() -> None:
    parsed = parse_caption("First the little red ball slides to the left, and then a big blue box turns green")
    assert [(p.action, p.colour, p.shape, p.size) for p in parsed] == [
        ("move_left", "red", "circle", "small"),
        ("change_colour", "blue", "square", "large"),
    ]
    assert parsed[1].new_colour == "green"
    # "bounces up and down" is one action, not a bounce plus two moves
    assert [p.action for p in parse_caption("a yellow star bounces up and down")] == ["bounce"]
    # "turns around" is a spin, "turns purple" a colour change
    assert [p.action for p in parse_caption("the plus sign turns around, then it turns purple")] == ["spin", "change_colour"]


def test_left_right_swapped_scores_direction_zero() -> None:
    truth = clip(RED_LEFT)
    right = score_caption("a small red circle moves to the right", truth)
    assert right["direction"] == 0.0 and right["action"] == 0.0 and right["exact"] == 0.0
    assert right["action_family"] == 1.0 and right["colour"] == 1.0 and right["shape"] == 1.0
    left = score_caption("a small red circle moves to the left", truth)
    assert left["direction"] == 1.0 and left["exact"] == 1.0
    for action in REVERSIBLE_ACTIONS:  # every reversed counterpart is wrong on direction
        event = EventTruth(0, action, 0, 5, "square", "green", "small")
        phrase = {"move_left": "moves left", "move_right": "moves right", "move_up": "moves up",
                  "move_down": "moves down", "grow": "grows", "shrink": "shrinks", "appear": "appears",
                  "disappear": "disappears"}
        assert score_caption(f"a green square {phrase[action]}", clip(event))["direction"] == 1.0
        assert score_caption(f"a green square {phrase[COUNTERPART[action]]}", clip(event))["direction"] == 0.0


def test_direction_is_nan_without_reversible_events_and_wrong_colour_counts() -> None:
    scores = score_caption("a green star spins", clip(GREEN_SPINS))
    assert math.isnan(scores["direction"]) and math.isnan(scores["order"]) and scores["exact"] == 1.0
    wrong = score_caption("the white cross turns red", clip(WHITE_TURNS))
    assert wrong["action"] == 0.0 and wrong["colour"] == 1.0 and wrong["exact"] == 0.0
    wrong_size = score_caption("a small green star spins", clip(GREEN_SPINS))
    assert wrong_size["action"] == 1.0 and wrong_size["exact"] == 0.0  # a stated size must be right


@pytest.mark.parametrize("text", ["", "zzz qqq <unk> 123", ",,,", "the the the", "moves", "red red circle circle"])
def test_unparseable_text_scores_zero_not_crash(text: str) -> None:
    scores = score_caption(text, clip(RED_LEFT, BLUE_GROWS))
    assert set(scores) == set(SLOTS)
    assert scores["exact"] == 0.0 and scores["colour"] == 0.0 and scores["shape"] == 0.0
    assert scores["direction"] == 0.0 and scores["order"] == 0.0 and scores["count"] == 0.0


def test_order_slot() -> None:
    truth = clip(RED_LEFT, BLUE_GROWS)
    assert score_caption("a red circle moves left, then a blue square grows", truth)["order"] == 1.0
    assert score_caption("after a red circle moves left, a blue square grows", truth)["order"] == 1.0
    assert score_caption("the red circle moves left before the blue square grows", truth)["order"] == 1.0
    # surface order reversed by the connective: still the right order
    assert score_caption("the blue square grows after the red circle moves left", truth)["exact"] == 1.0
    assert score_caption("before the blue square grows, the red circle moves left", truth)["exact"] == 1.0
    swapped = score_caption("a blue square grows, then a red circle moves left", truth)
    assert swapped["order"] == 0.0 and swapped["exact"] == 0.0 and swapped["action"] == 1.0
    missing = score_caption("a red circle moves left", truth)
    assert missing["order"] == 0.0 and missing["action"] == 0.5 and missing["count"] == 0.0


def test_semantic_scores_means_ignore_nan() -> None:
    truths = {"a": clip(RED_LEFT), "b": clip(GREEN_SPINS)}
    truths = {k: ClipTruth(k, "test", v.num_frames, False, v.objects, v.events) for k, v in truths.items()}
    result = semantic_scores({"a": "a red circle moves right", "b": "a green star spins"}, truths)
    assert result["n"] == 2.0
    assert result["direction"] == 0.0  # only clip a has a reversible event
    assert result["colour"] == 1.0 and result["exact"] == 0.5 and result["action"] == 0.5
    assert math.isnan(result["order"])
    with pytest.raises(EvaluationError, match="video9"):
        semantic_scores({"video9": "a red circle"}, truths)
    with pytest.raises(EvaluationError):
        semantic_scores({}, truths)


def test_load_ground_truth_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="ground_truth.json"):
        load_ground_truth(tmp_path)
    (tmp_path / "ground_truth.json").write_text("{not json")
    with pytest.raises(DatasetError, match="malformed"):
        load_ground_truth(tmp_path)
    (tmp_path / "ground_truth.json").write_text(json.dumps({"clips": {"video0": {"split": "train"}}}))
    with pytest.raises(DatasetError, match="regenerate"):
        load_ground_truth(tmp_path)
    good = clip(RED_LEFT, BLUE_GROWS)
    (tmp_path / "ground_truth.json").write_text(json.dumps({"clips": {"video0": good.to_json()}}))
    assert load_ground_truth(tmp_path / "ground_truth.json") == {"video0": good}
