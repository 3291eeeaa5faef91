"""Object slots from synth-cnn's region perception: one slot per object, tracked through the clip.

synth-cnn perceives a frame as a 4x4 grid of regions (features/backbones/synth_cnn.py): each region says
whether an object's centre lies in it and, if so, its shape, colour, size, angle and (x, y) in the
frame. A grid region is a place, not an object: an object that crosses a region boundary moves
its description into another region, so a decoder attending over regions loses the object's
identity and the motion that lives in it (issue #11: attention over synth-cnn's grid read actions
at 0.49 against 0.81 over whole frames, while attention over the oracle's per-object slots
reached 0.735 test exact). This module gives the learned backbone what the oracle has:

1. detect: the regions whose object probability p exceeds DETECT_P are the frame's objects;
   two detections closer than DUPLICATE_DISTANCE are one object seen by two regions (the
   stronger one is kept);
2. track: each frame's detections are assigned to the tracks so far by one global (Hungarian)
   assignment, features/assignment.py's min_cost_assignment, on the distance to where the track's motion puts it
   (its last position plus its last velocity times the frames elapsed) plus a small attribute term
   (shape, colour, size), within GATE_DISTANCE per frame elapsed since the track was last seen (a
   faded object that returns keeps its track); a detection no track takes starts a track. (Greedy
   nearest-first linking on the last position swapped two crossing objects whenever each came
   nearer the other's last position than its own.)
3. keep: the NUM_SLOTS tracks with the largest summed p (spurious one-frame detections lose),
   in the order they first appeared (ties: left to right), like the oracle's fixed slot order;
4. mend: a track missing for at most MAX_FILL frames between two detections (a colour blend or an
   overlap the detector missed) is filled in by linear interpolation; its shape, which no SynthClips
   object ever changes, is the track's confidence-weighted mean over the clip, so a spin or an overlap
   that confuses a few frames does not flip the slot's shape.

A slot holds, per frame (SLOT_FIELDS), the detection's confidence p as its own field and every other
field at its own value, not multiplied by p (an object that fades or is half hidden keeps its
attributes): shape, colour and size probabilities, angle (sin, cos), (x, y) in the frame, and the
velocity (vx, vy): the displacement between the track's positions up to VELOCITY_WINDOW frames before
and after, per frame, times VELOCITY_SCALE. The velocity is there because synth-cnn places a centre
within about a pixel, as much as an object moves between two sampled frames: a decoder given only
positions and their frame-to-frame differences read moves at 0.68-0.69 (whole-frame features: 0.88;
oracle positions: 0.97). A frame where the tracked object was not seen is all zeros, like an empty
oracle slot. Slots are a pure function of the clip's region grids, in numpy (detection vectorised over
the clip, one small assignment per frame), and cost a few milliseconds per clip at most. What this tracker
changed against the greedy one, measured against the oracle, and its cost: docs/TRACKING.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vidcap_core.errors import FeatureError
from vidcap_core.features.assignment import min_cost_assignment
from vidcap_core.synth.catalog import COLOURS, SHAPES, SIZES

NUM_SLOTS = 3  # SynthClips draws at most 3 objects per clip (SynthConfig.validate)
DETECT_P = 0.5  # the pretraining threshold: `detected` in the synth-cnn record is p > 0.5
DUPLICATE_DISTANCE = 0.06  # frame sides (4 px of 64): two regions that see one object's centre
GATE_DISTANCE = 0.25  # frame sides an object may move per frame elapsed and keep its track
ATTRIBUTE_WEIGHT = 0.05  # cost of an attribute mismatch, in frame sides: breaks ties between crossing objects
MAX_FILL = 2  # frames a track may miss between two detections and be filled in
UNASSIGNED = 1e6  # the assignment cost of a track-detection pair outside the gate
VELOCITY_WINDOW = 3  # frames each side over which a slot's velocity is measured
VELOCITY_SCALE = 10.0  # frame sides per frame -> feature units (a move of 0.03 per frame reads 0.3)

# synth-cnn grid channels (SynthCNN.conv_map): p, p * softmax(shape, colour, size), p * offset,
# p * angle, p * (x, y) in the frame.
_P = 0
_ATTRIBUTES = slice(1, 1 + len(SHAPES) + len(COLOURS) + len(SIZES))  # shape, colour, size
_OFFSET = slice(_ATTRIBUTES.stop, _ATTRIBUTES.stop + 2)
_ANGLE = slice(_OFFSET.stop, _OFFSET.stop + 2)
_XY = slice(_ANGLE.stop, _ANGLE.stop + 2)
GRID_DIM = _XY.stop  # 21

SLOT_FIELDS: tuple[str, ...] = (
    "confidence",
    *(f"shape={s}" for s in SHAPES),
    *(f"colour={c}" for c in COLOURS),
    *(f"size={s}" for s in SIZES),
    "angle_sin",
    "angle_cos",
    "x",
    "y",
    "vx",
    "vy",
)
SLOT_DIM = len(SLOT_FIELDS)  # 21: the grid's channels without the region-relative offset, and a velocity
CONFIDENCE_FIELD = "confidence"  # the field that says a slot holds an object in a frame (0: empty)
SCALED_BY_CONFIDENCE = False  # every other field keeps its own value

# A detection's values (V = 18): the grid columns from shape to y without the offset, divided by p, in
# SLOT_FIELDS order; a slot holds confidence, values, velocity.
_VALUE_COLUMNS = np.r_[np.arange(_ATTRIBUTES.start, _ATTRIBUTES.stop), np.arange(_ANGLE.start, _XY.stop)]
_V_ATTRIBUTES = slice(0, _ATTRIBUTES.stop - _ATTRIBUTES.start)  # (14,) shape, colour, size
_V_XY = slice(len(_VALUE_COLUMNS) - 2, len(_VALUE_COLUMNS))
_SLOT_VALUES = slice(1, 1 + len(_VALUE_COLUMNS))
_SLOT_SHAPE = slice(1, 1 + len(SHAPES))
_SLOT_VELOCITY = slice(_SLOT_VALUES.stop, SLOT_DIM)


@dataclass
class Track:
    """One object followed through the clip: per frame it was seen (ascending), its p and values."""

    frames: list[int] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)  # (V,) each, not scaled by p

    def weight(self) -> float:
        return float(sum(self.confidence))


@dataclass
class TrackHeads:
    """Where each track stands after the frames so far, one row per track (n): what linking compares."""

    xy: np.ndarray  # (n, 2) the last position seen
    velocity: np.ndarray  # (n, 2) per frame, between the last two detections (0 after the first)
    frame: np.ndarray  # (n,) the last frame seen
    attributes: np.ndarray  # (n, 14) the last shape, colour and size probabilities

    @classmethod
    def empty(cls) -> TrackHeads:
        return cls(np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32), np.zeros(0, np.int64),
                   np.zeros((0, _V_ATTRIBUTES.stop), np.float32))

    def predicted(self, t: int) -> np.ndarray:
        """Where each track's last motion puts it at frame t: last position + velocity x frames elapsed, (n, 2)."""
        return self.xy + self.velocity * (t - self.frame)[:, None]

    def move(self, tracks: np.ndarray, values: np.ndarray, t: int) -> None:
        """Tracks (k,) seen at frame t with values (k, V)."""
        xy = values[:, _V_XY]  # (k, 2)
        self.velocity[tracks] = (xy - self.xy[tracks]) / (t - self.frame[tracks])[:, None]
        self.xy[tracks], self.frame[tracks], self.attributes[tracks] = xy, t, values[:, _V_ATTRIBUTES]

    def start(self, values: np.ndarray, t: int) -> None:
        """New tracks first seen at frame t with values (k, V)."""
        self.xy = np.concatenate([self.xy, values[:, _V_XY]])
        self.velocity = np.concatenate([self.velocity, np.zeros((len(values), 2), np.float32)])
        self.frame = np.concatenate([self.frame, np.full(len(values), t)])
        self.attributes = np.concatenate([self.attributes, values[:, _V_ATTRIBUTES]])


def detect(p: np.ndarray, xy: np.ndarray) -> list[np.ndarray]:
    """A clip's region p (T, R) and positions (T, R, 2) -> per frame, the regions that see its objects
    (m,), strongest first, duplicates merged (of two closer than DUPLICATE_DISTANCE, the stronger is kept)."""
    R = p.shape[1]
    order = np.argsort(-p, axis=1, kind="stable")  # (T, R) strongest first
    count = (p > DETECT_P).sum(1)  # (T,)
    xy = np.take_along_axis(xy, order[:, :, None], axis=1)  # (T, R, 2) in that order
    near = np.hypot(*(xy[:, :, None] - xy[:, None]).transpose(3, 0, 1, 2)) < DUPLICATE_DISTANCE  # (T, R, R)
    candidate = np.arange(R)[None] < count[:, None]  # (T, R)
    duplicated = np.triu(near & candidate[:, :, None] & candidate[:, None], 1).any((1, 2))  # (T,)
    found = []
    for t, n in enumerate(count.tolist()):
        kept = list(range(n))
        if duplicated[t]:
            kept = []
            for i in range(n):
                if not near[t, i, kept].any():
                    kept.append(i)
        found.append(order[t, kept])
    return found


def link(heads: TrackHeads, values: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame t's detections (m, V) against the tracks so far: one global assignment on the distance to
    each track's predicted position plus the attribute mismatch, within the gate. Returns the pairs
    (tracks (k,), detections (k,)) it links."""
    none = np.zeros(0, np.int64)
    if not len(heads.frame) or not len(values):
        return none, none
    gate = GATE_DISTANCE * (t - heads.frame)  # (n,)
    gap = values[None, :, _V_XY] - heads.predicted(t)[:, None]  # (n, m, 2)
    distance = np.hypot(gap[..., 0], gap[..., 1])  # (n, m)
    mismatch = np.abs(values[None, :, _V_ATTRIBUTES] - heads.attributes[:, None]).sum(-1) / 2.0  # (n, m)
    cost = np.where(distance <= gate[:, None], distance + ATTRIBUTE_WEIGHT * mismatch, UNASSIGNED)  # (n, m)
    tracks, detections = min_cost_assignment(cost)
    inside = cost[tracks, detections] < UNASSIGNED
    return tracks[inside], detections[inside]


def track_objects(grid: np.ndarray) -> list[Track]:
    """A clip's region grids (T, R, GRID_DIM) -> every object track, in no particular order."""
    p = grid[:, :, _P]  # (T, R)
    values = grid[:, :, _VALUE_COLUMNS] / np.maximum(p, 1e-6)[:, :, None]  # (T, R, V), no longer times p
    tracks: list[Track] = []
    heads = TrackHeads.empty()
    for t, regions in enumerate(detect(p, values[:, :, _V_XY])):  # (m,) each
        seen = values[t, regions]  # (m, V)
        linked, detections = link(heads, seen, t)
        for i, j in zip(linked.tolist(), detections.tolist()):
            tracks[i].frames.append(t)
            tracks[i].confidence.append(float(p[t, regions[j]]))
            tracks[i].values.append(seen[j])
        if len(linked):
            heads.move(linked, seen[detections], t)
        born = sorted(set(range(len(regions))) - set(detections.tolist()))  # strongest first
        if born:
            tracks.extend(Track([t], [float(p[t, regions[j]])], [seen[j]]) for j in born)
            heads.start(seen[born], t)
    return tracks


def fill_gaps(frames: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A track's frames (n,) and rows (n, C) -> with every gap of at most MAX_FILL frames between two
    detections filled by linear interpolation of the rows, (n',) and (n', C), frames ascending."""
    gap = np.diff(frames)  # (n - 1,)
    short = np.flatnonzero((gap > 1) & (gap <= MAX_FILL + 1))  # detections followed by a short gap
    if not len(short):
        return frames, rows
    inside = np.concatenate([np.arange(frames[i] + 1, frames[i + 1]) for i in short])  # (g,)
    before = np.searchsorted(frames, inside) - 1  # (g,) the detection before each missing frame
    w = ((inside - frames[before]) / (frames[before + 1] - frames[before]))[:, None]  # (g, 1)
    filled = (1 - w) * rows[before] + w * rows[before + 1]  # (g, C)
    order = np.argsort(np.concatenate([frames, inside]), kind="stable")
    return np.concatenate([frames, inside])[order], np.concatenate([rows, filled])[order].astype(rows.dtype)


def track_velocities(frames: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Positions (n, 2) at frames (n,) ascending -> velocities (n, 2): the displacement between the
    track's positions furthest apart within VELOCITY_WINDOW frames either side, per frame, times
    VELOCITY_SCALE; 0 when seen alone."""
    first = np.searchsorted(frames, frames - VELOCITY_WINDOW, side="left")  # (n,)
    last = np.searchsorted(frames, frames + VELOCITY_WINDOW, side="right") - 1  # (n,)
    span = (frames[last] - frames[first]).astype(np.float32)[:, None]  # (n, 1)
    moved = positions[last] - positions[first]  # (n, 2)
    return np.where(span > 0, VELOCITY_SCALE * moved / np.maximum(span, 1.0), 0.0).astype(np.float32)


def object_slots(grid: np.ndarray, num_slots: int = NUM_SLOTS) -> np.ndarray:
    """A clip's synth-cnn region grids (T, R, GRID_DIM) -> object slots (T, num_slots, SLOT_DIM), float32."""
    if grid.ndim != 3 or grid.shape[2] != GRID_DIM:
        raise FeatureError(f"object slots read synth-cnn region grids (T, R, {GRID_DIM}); got shape {grid.shape}")
    grid = grid.astype(np.float32)
    tracks = track_objects(grid)
    strongest = sorted(tracks, key=lambda tr: -tr.weight())[:num_slots]
    kept = sorted(strongest, key=lambda tr: (tr.frames[0], float(tr.values[0][_V_XY][0])))
    slots = np.zeros((len(grid), num_slots, SLOT_DIM), dtype=np.float32)  # (T, K, S)
    for k, track in enumerate(kept):
        seen = np.column_stack([track.confidence, np.stack(track.values)]).astype(np.float32)  # (n, 1 + V)
        frames, rows = fill_gaps(np.asarray(track.frames), seen)  # (n',), (n', 1 + V)
        slots[frames, k, : _SLOT_VALUES.stop] = rows
        evidence = rows[:, 0] @ slots[frames, k, _SLOT_SHAPE]  # (5,) the clip's shape, weighted by confidence
        slots[frames, k, _SLOT_SHAPE] = evidence / max(float(evidence.sum()), 1e-6)
        slots[frames, k, _SLOT_VELOCITY] = track_velocities(frames, rows[:, 1:][:, _V_XY])
    return slots
