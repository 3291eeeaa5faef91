"""Semantic checker: parse a caption into events and score it slot by slot against the truth.

BLEU and CIDEr reward n-gram overlap; they hardly notice "moves left" for "moves right". The
checker reads a caption with the generator's own grammar tables (captions.py) and reports
per-slot accuracy: colour, shape, action, action_family, direction (for time-reversible events:
the right member of the pair), order (multi-event clips: events in the right order), count and
exact. Slots that do not apply to a clip are NaN and are left out of means.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vidcap_core.errors import DatasetError, EvaluationError
from vidcap_core.synth.captions import ACTION_PHRASES, COLOUR_SLOT, SHAPE_NOUNS, SIZE_ADJECTIVES
from vidcap_core.synth.catalog import ACTION_FAMILY, COLOURS, REVERSIBLE_ACTIONS
from vidcap_core.synth.truth import ClipTruth, EventTruth

GROUND_TRUTH_NAME = "ground_truth.json"
SLOTS = ("colour", "shape", "action", "action_family", "direction", "order", "count", "exact")
MAX_PARSED_EVENTS = 6  # a runaway caption is cut here before alignment (which is combinatorial)

_COLOURS = {c: c for c in COLOURS}
_SIZES = {word: size for size, words in SIZE_ADJECTIVES.items() for word in words} | {"tiny": "small"}
_SHAPES: dict[tuple[str, ...], str] = {
    tuple(noun.split()): shape for shape, nouns in SHAPE_NOUNS.items() for noun in nouns
} | {("disc",): "circle", ("plus",): "cross"}
_SHAPES_LONGEST_FIRST = sorted(_SHAPES.items(), key=lambda item: -len(item[0]))
_PHRASES_LONGEST_FIRST: list[tuple[tuple[str, ...], str]] = sorted(
    ((tuple(phrase.split()), action) for action, phrases in ACTION_PHRASES.items() for phrase in phrases),
    key=lambda item: -len(item[0]),
)
_SEQUENCE_WORDS = frozenset({"that", "this", "which", "then"})  # "after that": a plain connective
_TOKEN = re.compile(r"[a-z]+|[,.;:!?]")


@dataclass(frozen=True)
class ParsedEvent:
    """One event read from a caption; attributes the caption does not state are None."""

    action: str
    colour: str | None = None
    shape: str | None = None
    size: str | None = None
    new_colour: str | None = None


@dataclass
class _Subject:
    colour: str | None = None
    shape: str | None = None
    size: str | None = None

    @property
    def empty(self) -> bool:
        return self.colour is None and self.shape is None and self.size is None


@dataclass
class _ParseState:
    events: list[ParsedEvent] = field(default_factory=list)
    subject: _Subject = field(default_factory=_Subject)
    insert_at: int | None = None  # "Y after X": X goes before Y
    swap_after_next: bool = False  # "before X, Y": Y goes before X
    after_action: bool = False  # the previous token ended a verb phrase


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower().replace("colour", "color"))


def _match_action(tokens: Sequence[str], i: int) -> tuple[str, str | None, int] | None:
    """(action, new colour, tokens consumed) for the longest verb phrase starting at i."""
    for phrase, action in _PHRASES_LONGEST_FIRST:
        if i + len(phrase) > len(tokens):
            continue
        new_colour = None
        for expected, token in zip(phrase, tokens[i : i + len(phrase)]):
            if expected == COLOUR_SLOT and token in _COLOURS:
                new_colour = token
            elif expected != token:
                break
        else:
            return action, new_colour, len(phrase)
    return None


def _match_shape(tokens: Sequence[str], i: int) -> tuple[str, int] | None:
    for words, shape in _SHAPES_LONGEST_FIRST:
        if tuple(tokens[i : i + len(words)]) == words:
            return shape, len(words)
    return None


def _add_event(state: _ParseState, action: str, new_colour: str | None) -> None:
    subject = state.subject
    if subject.empty and state.events:  # "X moves left and then moves right": same subject
        last = state.events[-1]
        subject = _Subject(last.new_colour or last.colour, last.shape, last.size)
    event = ParsedEvent(action, subject.colour, subject.shape, subject.size, new_colour)
    if state.insert_at is not None:
        state.events.insert(state.insert_at, event)
        index, state.insert_at = state.insert_at, None
    else:
        state.events.append(event)
        index = len(state.events) - 1
    if state.swap_after_next:
        state.insert_at, state.swap_after_next = index, False
    state.subject = _Subject()


def _set_attribute(state: _ParseState, name: str, value: str) -> None:
    if state.subject.shape is not None:  # an adjective after a noun starts a new noun phrase
        state.subject = _Subject()
    setattr(state.subject, name, value)


def parse_caption(text: str) -> list[ParsedEvent]:
    """The events a caption states, in the order it says they happen. Never raises on odd text."""
    tokens = _tokens(text)
    state = _ParseState()
    i = 0
    while i < len(tokens):
        action = _match_action(tokens, i)
        if action is not None:
            _add_event(state, action[0], action[1])
            i += action[2]
            state.after_action = True
            continue
        token, shape = tokens[i], _match_shape(tokens, i)
        step = 1
        if shape is not None:
            _set_attribute(state, "shape", shape[0])
            step = shape[1]
        elif token in _COLOURS:
            _set_attribute(state, "colour", token)
        elif token in _SIZES:
            _set_attribute(state, "size", _SIZES[token])
        elif token == "it" and state.events:
            last = state.events[-1]
            state.subject = _Subject(last.new_colour or last.colour, last.shape, last.size)
        elif token == "after" and state.after_action and state.events:
            following = tokens[i + 1] if i + 1 < len(tokens) else ""
            if following not in _SEQUENCE_WORDS:
                state.insert_at = len(state.events) - 1
        elif token == "before" and not state.events:
            state.swap_after_next = True
        state.after_action = False
        i += step
    return state.events


# ----------------------------------------------------------------------------- scoring


def _action_ok(parsed: ParsedEvent, truth: EventTruth) -> bool:
    if parsed.action != truth.action:
        return False
    return truth.action != "change_colour" or parsed.new_colour == truth.new_colour


def _agreement(parsed: ParsedEvent, truth: EventTruth) -> float:
    return (
        (parsed.colour == truth.colour)
        + (parsed.shape == truth.shape)
        + 2.0 * _action_ok(parsed, truth)
        + (ACTION_FAMILY.get(parsed.action) == ACTION_FAMILY[truth.action])
    )


def _align(parsed: Sequence[ParsedEvent], truth: Sequence[EventTruth]) -> tuple[int | None, ...]:
    """For each truth event, the index of the parsed event describing it (or None).

    Best total agreement wins; ties go to order-preserving alignments, then to the closest.
    """
    slots: list[int | None] = list(range(len(parsed))) + [None] * len(truth)
    candidates = sorted(set(itertools.permutations(slots, len(truth))),
                        key=lambda c: tuple(len(slots) if p is None else p for p in c))
    best: tuple[float, int, float] | None = None
    chosen: tuple[int | None, ...] = tuple(None for _ in truth)
    for candidate in candidates:  # sorted, and only a strictly better key replaces: deterministic
        total = sum(_agreement(parsed[p], t) for p, t in zip(candidate, truth) if p is not None)
        matched = [p for p in candidate if p is not None]
        monotone = int(matched == sorted(matched))
        closeness = -sum(abs(p - j) for j, p in enumerate(candidate) if p is not None)
        key = (total, monotone, closeness)
        if best is None or key > best:
            best, chosen = key, candidate
    return chosen


def score_caption(caption: str, truth: ClipTruth) -> dict[str, float]:
    """Per-slot accuracy of one caption for one clip (NaN where a slot does not apply)."""
    parsed = parse_caption(caption)[:MAX_PARSED_EVENTS]
    events = truth.events
    alignment = _align(parsed, events)
    matches = [(parsed[p] if p is not None else None, t) for p, t in zip(alignment, events)]
    colour = [m is not None and m.colour == t.colour for m, t in matches]
    shape = [m is not None and m.shape == t.shape for m, t in matches]
    action = [m is not None and _action_ok(m, t) for m, t in matches]
    family = [m is not None and ACTION_FAMILY.get(m.action) == ACTION_FAMILY[t.action] for m, t in matches]
    size = [m is not None and m.size in (None, t.size) for m, t in matches]
    direction = [ok for ok, t in zip(action, events) if t.action in REVERSIBLE_ACTIONS]
    matched = [p for p in alignment if p is not None]
    in_order = len(matched) == len(events) and matched == sorted(matched)
    count = len(parsed) == len(events)
    exact = count and in_order and all(colour) and all(shape) and all(action) and all(size)
    return {
        "colour": _mean(colour),
        "shape": _mean(shape),
        "action": _mean(action),
        "action_family": _mean(family),
        "direction": _mean(direction),
        "order": float(in_order) if len(events) > 1 else math.nan,
        "count": float(count),
        "exact": float(exact),
    }


def _mean(values: Sequence[bool | float]) -> float:
    return sum(float(v) for v in values) / len(values) if values else math.nan


def semantic_scores(predictions: Mapping[str, str], truths: Mapping[str, ClipTruth]) -> dict[str, float]:
    """Mean of each slot over the predicted clips, ignoring NaN; `n` is the number of clips scored."""
    if not predictions:
        raise EvaluationError("semantic_scores got no predictions; caption at least one SynthClips video first.")
    unknown = [video_id for video_id in predictions if video_id not in truths]
    if unknown:
        raise EvaluationError(
            f"{len(unknown)} predicted video id(s) have no SynthClips ground truth (e.g. {unknown[0]!r}); "
            "score predictions against the ground_truth.json of the dataset they were made on."
        )
    per_clip = [score_caption(caption, truths[video_id]) for video_id, caption in predictions.items()]
    result = {}
    for slot in SLOTS:
        values = [scores[slot] for scores in per_clip if not math.isnan(scores[slot])]
        result[slot] = _mean(values)
    result["n"] = float(len(per_clip))
    return result


def load_ground_truth(root: Path) -> dict[str, ClipTruth]:
    """Read `root/ground_truth.json` (or `root` itself when it is that file) into ClipTruth records."""
    path = Path(root)
    if path.is_dir():
        path = path / GROUND_TRUTH_NAME
    if not path.is_file():
        raise DatasetError(
            f"SynthClips ground truth {path} does not exist; it is written by `vidcap data synth --out DIR` "
            "next to videodatainfo.json. Point at a SynthClips folder or regenerate it."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        clips = data["clips"]
        return {video_id: ClipTruth.from_json(video_id, entry) for video_id, entry in clips.items()}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DatasetError(
            f"SynthClips ground truth {path} is unreadable or malformed ({type(exc).__name__}: {exc}); "
            "regenerate it with `vidcap data synth`."
        ) from exc
