"""SynthClips: a synthetic diagnostic video-captioning dataset with time-reversible events.

Clips show 1-3 shapes on a textured background with drifting distractor specks; 1-3 events
happen in sequence (moves left/right/up/down, grows/shrinks, appears/disappears, spins,
bounces, changes colour) and the captions state them in order. An event played backwards is
exactly its counterpart event, so a model that ignores frame order is at chance on direction.
"""

from vidcap_core.synth.catalog import ACTIONS, COLOURS, REVERSED_PAIRS, SHAPES, SIZES
from vidcap_core.synth.checker import (
    ParsedEvent,
    load_ground_truth,
    parse_caption,
    score_caption,
    semantic_scores,
)
from vidcap_core.synth.config import PRESETS, SynthConfig
from vidcap_core.synth.generator import build_clip, generate_synthclips
from vidcap_core.synth.plan import ClipPlan, reverse_clip_plan
from vidcap_core.synth.render import render_clip, render_random_still
from vidcap_core.synth.truth import ClipTruth, EventTruth, ObjectTruth

__all__ = [
    "ACTIONS",
    "COLOURS",
    "PRESETS",
    "REVERSED_PAIRS",
    "SHAPES",
    "SIZES",
    "ClipPlan",
    "ClipTruth",
    "EventTruth",
    "ObjectTruth",
    "ParsedEvent",
    "SynthConfig",
    "build_clip",
    "generate_synthclips",
    "load_ground_truth",
    "parse_caption",
    "render_clip",
    "render_random_still",
    "reverse_clip_plan",
    "score_caption",
    "semantic_scores",
]
