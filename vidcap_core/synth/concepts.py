"""SynthClips' visual concepts: the colours, shapes, sizes and actions a caption names, read with the
semantic checker's parser (so "a little red ball slides to the left" names colour:red, size:small,
shape:circle and action:move_left: synonyms map to the one concept they describe)."""

from __future__ import annotations

from vidcap_core.synth.catalog import ACTIONS, COLOURS, SHAPES, SIZES
from vidcap_core.synth.checker import parse_caption

# Every concept SynthClips can show, in a fixed order: colours, shapes, sizes, actions.
SYNTH_CONCEPTS: tuple[str, ...] = (
    *(f"colour:{c}" for c in COLOURS),
    *(f"shape:{s}" for s in SHAPES),
    *(f"size:{s}" for s in SIZES),
    *(f"action:{a}" for a in ACTIONS),
)


def caption_concepts(caption: str) -> set[str]:
    """The concepts one caption names; a colour change names its new colour too."""
    named: set[str] = set()
    for event in parse_caption(caption):
        named.add(f"action:{event.action}")
        for kind, value in (("colour", event.colour), ("colour", event.new_colour), ("shape", event.shape),
                            ("size", event.size)):
            if value is not None:
                named.add(f"{kind}:{value}")
    return named
