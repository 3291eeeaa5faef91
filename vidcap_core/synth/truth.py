"""Structured ground truth of a SynthClips clip: its objects and its events in order.

This is what `ground_truth.json` holds per video id and what the semantic checker scores
captions against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vidcap_core.synth.plan import ClipPlan


@dataclass(frozen=True)
class ObjectTruth:
    """An object as the clip starts: shape, colour, size class, and whether it is visible yet."""

    shape: str
    colour: str
    size: str
    visible: bool


@dataclass(frozen=True)
class EventTruth:
    """One event; shape/colour/size describe the actor when the event starts."""

    object: int
    action: str
    start_frame: int
    end_frame: int
    shape: str
    colour: str
    size: str
    new_colour: str | None = None  # only for change_colour: the colour it turns


@dataclass(frozen=True)
class ClipTruth:
    """Everything a caption of this clip should say, plus where the clip is used."""

    video_id: str
    split: str  # train / val / test
    num_frames: int
    heldout: bool  # shows a combination held out of train and val
    objects: tuple[ObjectTruth, ...]
    events: tuple[EventTruth, ...]
    heldout_combinations: tuple[str, ...] = ()  # e.g. "colour_shape:red/star", "shape_action:square/spin"
    reversed: bool = False  # whether sampling replaced the content by its time reversal

    def to_json(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "num_frames": self.num_frames,
            "heldout": self.heldout,
            "heldout_combinations": list(self.heldout_combinations),
            "reversed": self.reversed,
            "objects": [vars(o) for o in self.objects],
            "events": [vars(e) for e in self.events],
        }

    @classmethod
    def from_json(cls, video_id: str, data: dict[str, Any]) -> ClipTruth:
        """Inverse of to_json; raises KeyError/TypeError on malformed data (callers wrap it)."""
        return cls(
            video_id=video_id,
            split=str(data["split"]),
            num_frames=int(data["num_frames"]),
            heldout=bool(data["heldout"]),
            objects=tuple(ObjectTruth(**o) for o in data["objects"]),
            events=tuple(EventTruth(**e) for e in data["events"]),
            heldout_combinations=tuple(data.get("heldout_combinations", ())),
            reversed=bool(data.get("reversed", False)),
        )


def truth_from_plan(plan: ClipPlan, video_id: str, split: str, heldout_combinations: set[str]) -> ClipTruth:
    objects = tuple(ObjectTruth(s, o.colour, o.size, o.visible) for s, o in zip(plan.shapes, plan.initial))
    events = tuple(
        EventTruth(
            object=e.actor,
            action=e.action,
            start_frame=e.start_frame,
            end_frame=e.end_frame,
            shape=plan.shapes[e.actor],
            colour=e.start.colour,
            size=e.start.size,
            new_colour=e.end.colour if e.action == "change_colour" else None,
        )
        for e in plan.events
    )
    return ClipTruth(
        video_id=video_id,
        split=split,
        num_frames=plan.num_frames,
        heldout=bool(heldout_combinations),
        objects=objects,
        events=events,
        heldout_combinations=tuple(sorted(heldout_combinations)),
        reversed=plan.content_reversed,
    )
