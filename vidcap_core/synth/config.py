"""SynthConfig: every knob of a SynthClips dataset, and the named presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from vidcap_core.errors import ConfigError
from vidcap_core.synth.catalog import ACTIONS, COLOURS, COUNTERPART, SHAPES

SYNTH_VERSION = "1.0"
MAX_FRAME_SIZE = 96


@dataclass(frozen=True)
class SynthConfig:
    """Difficulty knobs of one SynthClips dataset. Ranges are inclusive `(min, max)`."""

    name: str
    num_clips: int
    num_frames: int = 32
    frame_size: int = 64  # square frames; even and <= MAX_FRAME_SIZE so browsers play the H.264
    fps: int = 8
    objects_per_clip: tuple[int, int] = (1, 3)
    events_per_clip: tuple[int, int] = (1, 3)
    event_frames: tuple[int, int] = (6, 8)  # frames an event spans, first (start state) to last (end state)
    gap_frames: tuple[int, int] = (1, 3)  # still frames between consecutive events
    first_event_end_fraction: float | None = None  # the first event ends within this fraction of the clip
    noise_level: float = 0.06  # std of the static per-clip pixel noise, as a fraction of 255
    num_distractors: int = 6  # grey specks drifting across the frame
    invisible_start_prob: float = 0.1  # chance that an object starts hidden (so it can appear)
    reverse_prob: float = 0.5  # chance that a clip's events are replaced by their time reversal
    captions_per_clip: int = 12
    split_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)  # train, val, test
    heldout_fraction_of_test: float = 0.5  # test clips that must show a held-out combination
    heldout_colour_shape: tuple[tuple[str, str], ...] = (("red", "star"), ("blue", "triangle"), ("green", "cross"))
    # Reversible actions are held out together with their counterparts, so that training data
    # stays symmetric under time reversal and an order-blind model stays at chance on direction.
    heldout_shape_action: tuple[tuple[str, str], ...] = (
        ("square", "spin"),
        ("circle", "bounce"),
        ("triangle", "grow"),
        ("triangle", "shrink"),
    )
    crf: int = 18  # libx264 constant rate factor (lower = closer to the rendered frames)
    version: str = field(default=SYNTH_VERSION)

    def validate(self) -> None:
        """Raise ConfigError naming the first bad field."""
        _require(self.num_clips >= 1, "num_clips", self.num_clips, "at least 1")
        _require(self.frame_size % 2 == 0 and 32 <= self.frame_size <= MAX_FRAME_SIZE, "frame_size",
                 self.frame_size, f"an even number from 32 to {MAX_FRAME_SIZE}")
        _require(1 <= self.fps <= 60, "fps", self.fps, "1 to 60")
        for name in ("objects_per_clip", "events_per_clip", "event_frames", "gap_frames"):
            low, high = getattr(self, name)
            _require(0 <= low <= high, name, (low, high), "a (min, max) pair with 0 <= min <= max")
        _require(1 <= self.objects_per_clip[0] and self.objects_per_clip[1] <= 3, "objects_per_clip",
                 self.objects_per_clip, "within (1, 3)")
        _require(1 <= self.events_per_clip[0] and self.events_per_clip[1] <= 3, "events_per_clip",
                 self.events_per_clip, "within (1, 3)")
        _require(self.event_frames[0] >= 2, "event_frames", self.event_frames, "min >= 2 (a start and an end frame)")
        longest = self.events_per_clip[1] * self.event_frames[1] + (self.events_per_clip[1] - 1) * self.gap_frames[1]
        _require(longest <= self.num_frames, "num_frames", self.num_frames,
                 f">= {longest}, the longest possible event sequence (events x frames + gaps)")
        if self.first_event_end_fraction is not None:
            limit = int(self.num_frames * self.first_event_end_fraction)
            _require(self.event_frames[1] <= limit, "first_event_end_fraction", self.first_event_end_fraction,
                     f"large enough that a {self.event_frames[1]}-frame event fits in the first {limit} frames")
        _require(0.0 <= self.noise_level <= 0.5, "noise_level", self.noise_level, "0.0 to 0.5")
        _require(0 <= self.num_distractors <= 64, "num_distractors", self.num_distractors, "0 to 64")
        _require(0.0 <= self.invisible_start_prob < 1.0, "invisible_start_prob", self.invisible_start_prob, "in [0, 1)")
        _require(0.0 <= self.reverse_prob <= 1.0, "reverse_prob", self.reverse_prob, "in [0, 1]")
        _require(self.captions_per_clip >= 1, "captions_per_clip", self.captions_per_clip, "at least 1")
        _require(len(self.split_fractions) == 3 and all(f >= 0 for f in self.split_fractions)
                 and abs(sum(self.split_fractions) - 1.0) < 1e-6, "split_fractions", self.split_fractions,
                 "three non-negative fractions (train, val, test) summing to 1")
        _require(0.0 <= self.heldout_fraction_of_test <= 1.0, "heldout_fraction_of_test",
                 self.heldout_fraction_of_test, "in [0, 1]")
        for colour, shape in self.heldout_colour_shape:
            _require(colour in COLOURS and shape in SHAPES, "heldout_colour_shape", (colour, shape),
                     f"pairs of a colour in {COLOURS} and a shape in {SHAPES}")
        pairs = set(self.heldout_shape_action)
        for shape, action in pairs:
            _require(shape in SHAPES and action in ACTIONS, "heldout_shape_action", (shape, action),
                     f"pairs of a shape in {SHAPES} and an action in {ACTIONS}")
            _require((shape, COUNTERPART[action]) in pairs, "heldout_shape_action", (shape, action),
                     f"listed together with its time-reversed counterpart ({shape!r}, {COUNTERPART[action]!r})")
        _require(0 <= self.crf <= 51, "crf", self.crf, "0 to 51")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _require(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ConfigError(f"SynthConfig.{name} = {value!r} is invalid: expected {expected}.")


PRESETS: dict[str, SynthConfig] = {
    # Seconds to make; for tests.
    "tiny": SynthConfig(
        name="tiny", num_clips=24, num_frames=16, objects_per_clip=(1, 2), events_per_clip=(1, 2),
        event_frames=(5, 6), gap_frames=(1, 2), num_distractors=4,
    ),
    # The benchmark default.
    "standard": SynthConfig(name="standard", num_clips=3000),
    # Long-range memory: one early event, then only distractor motion for four fifths of the clip.
    "long": SynthConfig(
        name="long", num_clips=1500, num_frames=64, events_per_clip=(1, 1), first_event_end_fraction=0.2,
        num_distractors=8,
    ),
}


def resolve_config(preset: str | SynthConfig, num_clips: int | None = None) -> SynthConfig:
    """The preset's config (or `preset` itself), with `num_clips` overridden, validated."""
    if isinstance(preset, SynthConfig):
        cfg = preset
    elif preset in PRESETS:
        cfg = PRESETS[preset]
    else:
        raise ConfigError(f"Unknown SynthClips preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    if num_clips is not None:
        cfg = replace(cfg, num_clips=num_clips)
    cfg.validate()
    return cfg
