"""The SynthClips caption grammar: events in their true order, with synonyms and paraphrases.

A caption is one clause per event ("a small red circle slides to the left"), joined by a
connective that keeps the true order in the surface order ("X, then Y", "after X, Y",
"X before Y", "first X and then Y", ...). Every clause names its object's colour and shape, so
the semantic checker (checker.py, which reads these same tables) can parse every reference back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vidcap_core.synth.catalog import COLOURS
from vidcap_core.synth.truth import EventTruth

SHAPE_NOUNS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "ball", "disk"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle",),
    "star": ("star",),
    "cross": ("cross", "plus sign"),
}
SIZE_ADJECTIVES: dict[str, tuple[str, ...]] = {"small": ("small", "little"), "large": ("large", "big")}
COLOUR_SLOT = "{colour}"
ACTION_PHRASES: dict[str, tuple[str, ...]] = {
    "move_left": ("moves left", "moves to the left", "slides left", "slides to the left", "goes left", "travels to the left"),
    "move_right": ("moves right", "moves to the right", "slides right", "slides to the right", "goes right", "travels to the right"),
    "move_up": ("moves up", "moves upward", "rises", "goes up", "slides up", "floats up"),
    "move_down": ("moves down", "moves downward", "falls", "goes down", "slides down", "sinks"),
    "grow": ("grows", "gets bigger", "grows larger", "becomes bigger", "expands"),
    "shrink": ("shrinks", "gets smaller", "becomes smaller", "contracts"),
    "appear": ("appears", "fades in", "shows up", "comes into view"),
    "disappear": ("disappears", "fades out", "vanishes", "fades away"),
    "spin": ("spins", "rotates", "spins around", "turns around"),
    "bounce": ("bounces", "jumps", "hops", "bounces up and down"),
    "change_colour": ("turns {colour}", "becomes {colour}", "changes color to {colour}", "changes to {colour}"),
}
# Connectives: {0}, {1}, {2} are event clauses in their true order.
CONNECTIVES: dict[int, tuple[str, ...]] = {
    1: ("{0}",),
    2: (
        "{0}, then {1}",
        "after {0}, {1}",
        "{0} before {1}",
        "first {0} and then {1}",
        "{0} and then {1}",
        "{0}, and after that {1}",
        "first {0}, then {1}",
    ),
    3: (
        "{0}, then {1}, then {2}",
        "first {0}, then {1}, and finally {2}",
        "{0}, then {1}, and after that {2}",
        "after {0}, {1} and then {2}",
        "{0} before {1}, and then {2}",
        "first {0} and then {1}, and finally {2}",
        "{0} and then {1} and then {2}",
    ),
}
MAX_EVENTS = max(CONNECTIVES)
ARTICLES = ("a", "an", "the")


def caption_words() -> frozenset[str]:
    """Every word a SynthClips caption can use (what the PTB tokenizer keeps of the tables above)."""
    phrases = [*ARTICLES, *COLOURS, *(w for words in (*SHAPE_NOUNS.values(), *SIZE_ADJECTIVES.values(),
                                                       *ACTION_PHRASES.values(), *CONNECTIVES.values()) for w in words)]
    text = " ".join(phrases).replace(COLOUR_SLOT, " ").replace(",", " ")
    return frozenset(word for word in text.split() if not (word.startswith("{") and word.endswith("}")))


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def describe_subject(event: EventTruth, first_mention: bool, rng: np.random.Generator) -> str:
    """A noun phrase for the event's actor: "a little red ball", "the orange square"."""
    words = [_pick(rng, SIZE_ADJECTIVES[event.size])] if rng.random() < 0.5 else []
    words += [event.colour, _pick(rng, SHAPE_NOUNS[event.shape])]
    article = _pick(rng, ("a", "the")) if first_mention else "the"
    if article == "a" and words[0][0] in "aeiou":
        article = "an"
    return " ".join([article, *words])


def describe_event(event: EventTruth, first_mention: bool, rng: np.random.Generator) -> str:
    """One clause: subject then verb phrase."""
    phrase = _pick(rng, ACTION_PHRASES[event.action])
    if COLOUR_SLOT in phrase:
        phrase = phrase.replace(COLOUR_SLOT, event.new_colour or "")
    return f"{describe_subject(event, first_mention, rng)} {phrase}"


def sample_caption(events: Sequence[EventTruth], rng: np.random.Generator) -> str:
    """One random reference caption stating the events in order."""
    if not 1 <= len(events) <= MAX_EVENTS:
        raise ValueError(f"SynthClips captions describe 1 to {MAX_EVENTS} events, got {len(events)}")
    mentioned: set[int] = set()
    clauses = []
    for event in events:
        clauses.append(describe_event(event, event.object not in mentioned, rng))
        mentioned.add(event.object)
    return _pick(rng, CONNECTIVES[len(events)]).format(*clauses)


def reference_captions(events: Sequence[EventTruth], count: int, rng: np.random.Generator) -> list[str]:
    """`count` distinct captions of the same events (fewer only if the grammar has fewer)."""
    captions: dict[str, None] = {}
    for _ in range(count * 50):
        if len(captions) == count:
            break
        captions[sample_caption(events, rng)] = None
    return list(captions)
