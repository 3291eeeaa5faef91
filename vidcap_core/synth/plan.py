"""Clip plans: what happens in a SynthClips clip, frame by frame, before anything is drawn.

A plan is objects (initial states), events (one object changes from a start state to an end
state over frames `start_frame..end_frame`) and drifting distractor specks. The renderer draws
every frame as a pure function of the plan's state at that frame, so `reverse_clip_plan` (end
states become start states, each action becomes its counterpart, specks drift the other way)
renders exactly the original frames backwards.

Sampling goes in two stages: content (objects and the ordered events, from a small state
machine), then timing (which frames each event spans). With probability `reverse_prob` the
content is replaced by its time reversal before timing, so the data distribution is symmetric
under reversal and "moves left" is as common, in every context, as "moves right".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from vidcap_core.synth.catalog import (
    ACTION_FAMILY,
    ACTIONS,
    COLOURS,
    COUNTERPART,
    INVISIBLE_ACTIONS,
    SHAPE_EXTENT,
    SHAPES,
    SIZE_RADIUS,
    SIZES,
)
from vidcap_core.errors import ConfigError
from vidcap_core.synth.config import SynthConfig

SPECK_UNITS = 16  # speck positions are integers in 1/16 pixel, so reversal is exact arithmetic
SPECK_MAX_SPEED = 10  # units per frame per axis (0.625 px)
MIN_MOVE_FRACTION = 0.25  # a move covers at least this fraction of the frame side
BOUNCE_FRACTION = 0.22  # bounce height as a fraction of the frame side
MAX_ATTEMPTS = 400
# A hidden object can only appear, and a lone object that vanished must reappear next: halving
# the visibility family's weight keeps it about as common as the others overall.
FAMILY_WEIGHT = {"visibility": 0.5}


@dataclass(frozen=True)
class ObjectState:
    """An object at one moment: centre in pixels, size class, angle in radians, visibility, colour."""

    x: float
    y: float
    size: str
    angle: float
    visible: bool
    colour: str


@dataclass(frozen=True)
class PlannedEvent:
    """Object `actor` goes from `start` (at start_frame) to `end` (at end_frame) by `action`."""

    actor: int
    action: str
    start: ObjectState
    end: ObjectState
    start_frame: int = 0
    end_frame: int = 0
    bounce_height: float = 0.0  # pixels; only for "bounce"


@dataclass(frozen=True)
class SpeckField:
    """Distractor specks: position(t) = (start + velocity * t) mod (frame_size * SPECK_UNITS)."""

    start: tuple[tuple[int, int], ...]  # (N, 2) x, y in 1/SPECK_UNITS pixel
    velocity: tuple[tuple[int, int], ...]  # (N, 2) units per frame
    grey: tuple[int, ...]  # (N,) brightness 0..255


@dataclass(frozen=True)
class ClipPlan:
    """Everything needed to render a clip; rendering is a pure function of it."""

    frame_size: int
    num_frames: int
    shapes: tuple[str, ...]  # (O,) one shape per object, fixed for the clip
    initial: tuple[ObjectState, ...]  # (O,)
    events: tuple[PlannedEvent, ...]
    specks: SpeckField
    background_seed: int
    noise_level: float
    content_reversed: bool = False  # sampling replaced the content by its time reversal (metadata only)


# ----------------------------------------------------------------------------- geometry helpers


def object_radius(size: str, frame_size: int) -> float:
    return SIZE_RADIUS[size] * frame_size


def placement_margin(frame_size: int) -> float:
    """Centres stay this far from the border, so a grown object never leaves the frame."""
    return object_radius("large", frame_size) * SHAPE_EXTENT + 1.0


def _choice(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _quantise(value: float) -> float:
    return round(value * 4.0) / 4.0  # quarter pixels: exact in binary floating point


def _clear_of(x: float, y: float, size: str, others: list[ObjectState], frame_size: int) -> bool:
    """True when an object of `size` at (x, y) does not overlap any of `others`."""
    reach = object_radius(size, frame_size) * SHAPE_EXTENT
    return all(
        math.hypot(x - o.x, y - o.y) >= reach + object_radius(o.size, frame_size) * SHAPE_EXTENT + 2.0
        for o in others
    )


# ----------------------------------------------------------------------------- content sampling


def _sample_objects(rng: np.random.Generator, cfg: SynthConfig) -> tuple[list[str], list[ObjectState]]:
    size_px = cfg.frame_size
    low, high = placement_margin(size_px), size_px - placement_margin(size_px)
    count = int(rng.integers(cfg.objects_per_clip[0], cfg.objects_per_clip[1] + 1))
    shapes: list[str] = []
    states: list[ObjectState] = []
    for _ in range(MAX_ATTEMPTS):
        if len(states) == count:
            break
        shape, colour = _choice(rng, SHAPES), _choice(rng, COLOURS)
        if any(s == shape and o.colour == colour for s, o in zip(shapes, states)):
            continue  # (colour, shape) names an object uniquely in captions
        size = _choice(rng, SIZES)
        x, y = _quantise(rng.uniform(low, high)), _quantise(rng.uniform(low, high))
        if not _clear_of(x, y, size, states, size_px):
            continue
        angle = round(rng.uniform(-0.35, 0.35) * 64.0) / 64.0  # a slight tilt, exact in binary
        visible = bool(rng.random() >= cfg.invisible_start_prob)
        shapes.append(shape)
        states.append(ObjectState(x, y, size, angle, visible, colour))
    return shapes, states


def _propose(
    action: str, actor: int, shapes: list[str], states: list[ObjectState], rng: np.random.Generator, frame_size: int
) -> tuple[ObjectState, float] | None:
    """The actor's end state (and bounce height) if `action` is possible now, else None."""
    state, shape = states[actor], shapes[actor]
    others = [s for i, s in enumerate(states) if i != actor]
    if action == "appear":
        return (replace(state, visible=True), 0.0) if not state.visible else None
    if not state.visible or (shape, action) in INVISIBLE_ACTIONS:
        return None
    low, high = placement_margin(frame_size), frame_size - placement_margin(frame_size)
    step = MIN_MOVE_FRACTION * frame_size
    if action in ("move_left", "move_right", "move_up", "move_down"):
        horizontal = action in ("move_left", "move_right")
        here = state.x if horizontal else state.y
        lo, hi = (low, here - step) if action in ("move_left", "move_up") else (here + step, high)
        if hi < lo:
            return None
        there = _quantise(rng.uniform(lo, hi))
        end = replace(state, x=there) if horizontal else replace(state, y=there)
        return (end, 0.0) if _clear_of(end.x, end.y, end.size, others, frame_size) else None
    if action in ("grow", "shrink"):
        wanted_from = "small" if action == "grow" else "large"
        if state.size != wanted_from:
            return None
        end = replace(state, size="large" if action == "grow" else "small")
        return (end, 0.0) if _clear_of(end.x, end.y, end.size, others, frame_size) else None
    if action == "disappear":
        return replace(state, visible=False), 0.0
    if action == "spin":
        turn = 2.0 * math.pi * (1.0 if rng.random() < 0.5 else -1.0)
        return replace(state, angle=state.angle + turn), 0.0
    if action == "bounce":
        height = _quantise(BOUNCE_FRACTION * frame_size)
        return (state, height) if state.y - height >= low else None
    if action == "change_colour":
        taken = {(s, o.colour) for i, (s, o) in enumerate(zip(shapes, states)) if i != actor}
        options = [c for c in COLOURS if c != state.colour and (shape, c) not in taken]
        return (replace(state, colour=_choice(rng, options)), 0.0) if options else None
    raise ValueError(f"unknown SynthClips action {action!r}; expected one of {ACTIONS}")


def _sample_content(rng: np.random.Generator, cfg: SynthConfig) -> tuple[list[str], list[ObjectState], list[PlannedEvent]]:
    """Objects, then events one by one: a family among those possible now (FAMILY_WEIGHT), then
    a uniform possible (object, action) within it, so that moves are as common as colour changes."""
    shapes, initial = _sample_objects(rng, cfg)
    states = list(initial)
    wanted = int(rng.integers(cfg.events_per_clip[0], cfg.events_per_clip[1] + 1))
    events: list[PlannedEvent] = []
    for _ in range(wanted):
        options: dict[str, list[PlannedEvent]] = {}
        for actor in range(len(states)):
            for action in ACTIONS:
                proposal = _propose(action, actor, shapes, states, rng, cfg.frame_size)
                if proposal is not None:
                    event = PlannedEvent(actor, action, states[actor], proposal[0], bounce_height=proposal[1])
                    options.setdefault(ACTION_FAMILY[action], []).append(event)
        if not options:
            break
        names = sorted(options)
        weights = np.array([FAMILY_WEIGHT.get(name, 1.0) for name in names])
        family = options[names[int(rng.choice(len(names), p=weights / weights.sum()))]]
        event = family[int(rng.integers(len(family)))]
        events.append(event)
        states[event.actor] = event.end
    return _drop_unseen_objects(shapes, initial, events)


def _drop_unseen_objects(
    shapes: list[str], initial: list[ObjectState], events: list[PlannedEvent]
) -> tuple[list[str], list[ObjectState], list[PlannedEvent]]:
    """Remove objects that are never visible (hidden and never appearing); renumber actors."""
    seen = [o.visible or any(e.actor == i and e.end.visible for e in events) for i, o in enumerate(initial)]
    new_index = {old: new for new, old in enumerate(i for i, keep in enumerate(seen) if keep)}
    kept_events = [replace(e, actor=new_index[e.actor]) for e in events]
    return ([s for s, keep in zip(shapes, seen) if keep], [o for o, keep in zip(initial, seen) if keep], kept_events)


def reverse_content(initial: list[ObjectState], events: list[PlannedEvent]) -> tuple[list[ObjectState], list[PlannedEvent]]:
    """The content played backwards: start from the final states, undo events last to first."""
    final = list(initial)
    for event in events:
        final[event.actor] = event.end
    backwards = [
        PlannedEvent(e.actor, COUNTERPART[e.action], e.end, e.start, bounce_height=e.bounce_height)
        for e in reversed(events)
    ]
    return final, backwards


# ----------------------------------------------------------------------------- timing and specks


def _assign_frames(rng: np.random.Generator, cfg: SynthConfig, events: list[PlannedEvent]) -> list[PlannedEvent]:
    lengths = [int(rng.integers(cfg.event_frames[0], cfg.event_frames[1] + 1)) for _ in events]
    gaps = [int(rng.integers(cfg.gap_frames[0], cfg.gap_frames[1] + 1)) for _ in events[1:]]
    slack = cfg.num_frames - sum(lengths) - sum(gaps)  # >= 0, checked by SynthConfig.validate
    latest_start = slack
    if cfg.first_event_end_fraction is not None:
        latest_start = min(slack, int(cfg.num_frames * cfg.first_event_end_fraction) - lengths[0])
    start = int(rng.integers(0, latest_start + 1))  # lead and tail are exchangeable: reversal-symmetric
    timed = []
    for i, (event, length) in enumerate(zip(events, lengths)):
        timed.append(replace(event, start_frame=start, end_frame=start + length - 1))
        start += length + (gaps[i] if i < len(gaps) else 0)
    return timed


def _sample_specks(rng: np.random.Generator, count: int, frame_size: int) -> SpeckField:
    extent = frame_size * SPECK_UNITS
    start = rng.integers(0, extent, size=(count, 2))
    velocity = rng.integers(-SPECK_MAX_SPEED, SPECK_MAX_SPEED + 1, size=(count, 2))
    grey = rng.integers(120, 200, size=count)
    return SpeckField(
        start=tuple((int(x), int(y)) for x, y in start),
        velocity=tuple((int(x), int(y)) for x, y in velocity),
        grey=tuple(int(g) for g in grey),
    )


def speck_positions(specks: SpeckField, num_frames: int, frame_size: int) -> np.ndarray:
    """(T, N, 2) speck centres in pixels, computed in exact integer arithmetic."""
    start = np.asarray(specks.start, dtype=np.int64).reshape(-1, 2)  # (N, 2)
    velocity = np.asarray(specks.velocity, dtype=np.int64).reshape(-1, 2)  # (N, 2)
    t = np.arange(num_frames, dtype=np.int64)[:, None, None]  # (T, 1, 1)
    units = (start[None] + velocity[None] * t) % (frame_size * SPECK_UNITS)  # (T, N, 2)
    return units.astype(np.float64) / SPECK_UNITS


# ----------------------------------------------------------------------------- plans


def sample_clip_plan(rng: np.random.Generator, cfg: SynthConfig) -> ClipPlan:
    """One random plan: content, maybe reversed, then timing, specks and background seed."""
    shapes, initial, events = _sample_content(rng, cfg)
    flip = bool(rng.random() < cfg.reverse_prob)
    if flip:
        initial, events = reverse_content(initial, events)
    timed = _assign_frames(rng, cfg, events)
    return ClipPlan(
        frame_size=cfg.frame_size,
        num_frames=cfg.num_frames,
        shapes=tuple(shapes),
        initial=tuple(initial),
        events=tuple(timed),
        specks=_sample_specks(rng, cfg.num_distractors, cfg.frame_size),
        background_seed=int(rng.integers(0, 2**31 - 1)),
        noise_level=cfg.noise_level,
        content_reversed=flip,
    )


def reverse_clip_plan(plan: ClipPlan) -> ClipPlan:
    """The plan whose rendering is `render_clip(plan)[::-1]`: content, timing and specks reversed."""
    last = plan.num_frames - 1
    initial, backwards = reverse_content(list(plan.initial), list(plan.events))
    timed = tuple(
        replace(new, start_frame=last - old.end_frame, end_frame=last - old.start_frame)
        for new, old in zip(backwards, reversed(plan.events))
    )
    extent = plan.frame_size * SPECK_UNITS
    specks = SpeckField(
        start=tuple(((x + vx * last) % extent, (y + vy * last) % extent)
                    for (x, y), (vx, vy) in zip(plan.specks.start, plan.specks.velocity)),
        velocity=tuple((-vx, -vy) for vx, vy in plan.specks.velocity),
        grey=plan.specks.grey,
    )
    return replace(plan, initial=tuple(initial), events=timed, specks=specks, content_reversed=not plan.content_reversed)


def colour_shape_pairs(plan: ClipPlan) -> set[tuple[str, str]]:
    """Every (colour, shape) an object has at any moment of the clip."""
    pairs = {(o.colour, s) for o, s in zip(plan.initial, plan.shapes)}
    pairs |= {(e.end.colour, plan.shapes[e.actor]) for e in plan.events}
    return pairs


def event_combinations(plan: ClipPlan) -> set[str]:
    """Combinations the captions mention: "colour_shape:red/star" and "shape_action:square/spin"."""
    found = set()
    for event in plan.events:
        shape = plan.shapes[event.actor]
        found.add(f"colour_shape:{event.start.colour}/{shape}")
        found.add(f"colour_shape:{event.end.colour}/{shape}")
        found.add(f"shape_action:{shape}/{event.action}")
    return found


def heldout_combinations(plan: ClipPlan, cfg: SynthConfig) -> tuple[set[str], set[str]]:
    """(held-out combinations mentioned by events, held-out combinations present anywhere)."""
    heldout = {f"colour_shape:{c}/{s}" for c, s in cfg.heldout_colour_shape}
    heldout |= {f"shape_action:{s}/{a}" for s, a in cfg.heldout_shape_action}
    anywhere = {f"colour_shape:{c}/{s}" for c, s in colour_shape_pairs(plan)} | event_combinations(plan)
    return event_combinations(plan) & heldout, anywhere & heldout


def plan_for_split(rng: np.random.Generator, cfg: SynthConfig, want_heldout: bool) -> ClipPlan:
    """A plan with a held-out combination in its events (want_heldout) or with none anywhere."""
    for _ in range(MAX_ATTEMPTS):
        plan = sample_clip_plan(rng, cfg)
        in_events, anywhere = heldout_combinations(plan, cfg)
        if (want_heldout and in_events) or (not want_heldout and not anywhere):
            return plan
    kind = "with" if want_heldout else "without"
    raise ConfigError(
        f"Could not sample a SynthClips plan {kind} held-out combinations in {MAX_ATTEMPTS} tries for config "
        f"{cfg.name!r}; heldout_colour_shape={cfg.heldout_colour_shape} and heldout_shape_action="
        f"{cfg.heldout_shape_action} leave too few (or no) possible clips. Hold out fewer combinations."
    )
