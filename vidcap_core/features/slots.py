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
2. track: detections are linked frame to frame by a greedy nearest-first assignment on
   position (plus a small attribute term, so two crossing objects keep their identities), up to
   GATE_DISTANCE per frame elapsed since the track was last seen (a faded object that returns
   keeps its track);
3. keep: the NUM_SLOTS tracks with the largest summed p (spurious one-frame detections lose),
   in the order they first appeared (ties: left to right), like the oracle's fixed slot order.

A slot holds, per frame, the object's perception without the region-relative offset (SLOT_FIELDS):
p, p * shape, colour and size probabilities, p * angle, p * (x, y) in the frame, and p * its
velocity (vx, vy): the displacement between the track's detections up to VELOCITY_WINDOW frames
before and after, per frame, times VELOCITY_SCALE. The velocity is there because synth-cnn places
a centre within about a pixel, as much as an object moves between two sampled frames: a decoder
given only positions and their frame-to-frame differences read moves at 0.68-0.69 (whole-frame
features: 0.88; oracle positions: 0.97). A frame where the tracked object was not detected is all
zeros, like an empty oracle slot. Slots are a pure function of the clip's region grids, in numpy,
and cost about a millisecond per clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vidcap_core.errors import FeatureError
from vidcap_core.synth.catalog import COLOURS, SHAPES, SIZES

NUM_SLOTS = 3  # SynthClips draws at most 3 objects per clip (SynthConfig.validate)
DETECT_P = 0.5  # the pretraining threshold: `detected` in the synth-cnn record is p > 0.5
DUPLICATE_DISTANCE = 0.06  # frame sides (4 px of 64): two regions that see one object's centre
GATE_DISTANCE = 0.25  # frame sides an object may move per frame elapsed and keep its track
ATTRIBUTE_WEIGHT = 0.05  # cost of an attribute mismatch, in frame sides: breaks ties between crossing objects

# synth-cnn grid channels (SynthCNN.conv_map): p, p * softmax(shape, colour, size), p * offset,
# p * angle, p * (x, y) in the frame.
_P = 0
_ATTRIBUTES = slice(1, 1 + len(SHAPES) + len(COLOURS) + len(SIZES))  # shape, colour, size
_OFFSET = slice(_ATTRIBUTES.stop, _ATTRIBUTES.stop + 2)
_ANGLE = slice(_OFFSET.stop, _OFFSET.stop + 2)
_XY = slice(_ANGLE.stop, _ANGLE.stop + 2)
GRID_DIM = _XY.stop  # 21
VELOCITY_WINDOW = 3  # frames each side over which a slot's velocity is measured
VELOCITY_SCALE = 10.0  # frame sides per frame -> feature units (a move of 0.03 per frame reads 0.3)
PERCEPTION_FIELDS: tuple[str, ...] = (
    "p",
    *(f"shape={s}" for s in SHAPES),
    *(f"colour={c}" for c in COLOURS),
    *(f"size={s}" for s in SIZES),
    "angle_sin",
    "angle_cos",
    "x",
    "y",
)
SLOT_FIELDS: tuple[str, ...] = (*PERCEPTION_FIELDS, "vx", "vy")
SLOT_DIM = len(SLOT_FIELDS)  # 21: the grid's channels without the region-relative offset, and a velocity
CONFIDENCE_FIELD = "p"  # the field that says a slot holds an object in a frame (0: empty)
SCALED_BY_CONFIDENCE = True  # every other field is stored times p
_KEEP = np.r_[_P, np.arange(_ATTRIBUTES.start, _ATTRIBUTES.stop), np.arange(_ANGLE.start, _XY.stop)]


@dataclass
class Track:
    """One object followed through the clip: its detection (grid row) per frame it was seen."""

    first_frame: int
    rows: dict[int, np.ndarray] = field(default_factory=dict)  # frame -> (GRID_DIM,) grid vector

    @property
    def last_frame(self) -> int:
        return max(self.rows)

    def position(self) -> np.ndarray:
        return position(self.rows[self.last_frame])  # (2,)

    def attributes(self) -> np.ndarray:
        return attributes(self.rows[self.last_frame])  # (14,)

    def weight(self) -> float:
        return float(sum(row[_P] for row in self.rows.values()))


def position(row: np.ndarray) -> np.ndarray:
    """(x, y) of a detection in the frame, 0..1: the grid stores p * (x, y)."""
    return row[_XY] / max(float(row[_P]), 1e-6)


def attributes(row: np.ndarray) -> np.ndarray:
    """Shape, colour and size probabilities of a detection (the grid stores them times p)."""
    return row[_ATTRIBUTES] / max(float(row[_P]), 1e-6)


def detect(frame: np.ndarray) -> list[np.ndarray]:
    """One frame's grid (R, GRID_DIM) -> its objects' grid rows, strongest first, duplicates merged."""
    order = np.argsort(-frame[:, _P], kind="stable")
    found: list[np.ndarray] = []
    for r in order:
        row = frame[r]
        if row[_P] <= DETECT_P:
            break
        if all(np.linalg.norm(position(row) - position(kept)) >= DUPLICATE_DISTANCE for kept in found):
            found.append(row)
    return found


def link(tracks: list[Track], detections: list[np.ndarray], t: int) -> list[np.ndarray]:
    """Append frame t's detections to the tracks they continue (nearest pairs first, within the
    gate); return the detections no track took."""
    pairs: list[tuple[float, int, int]] = []
    for i, track in enumerate(tracks):
        gate = GATE_DISTANCE * (t - track.last_frame)
        for j, row in enumerate(detections):
            distance = float(np.linalg.norm(position(row) - track.position()))
            if distance <= gate:
                mismatch = float(np.abs(attributes(row) - track.attributes()).sum()) / 2.0
                pairs.append((distance + ATTRIBUTE_WEIGHT * mismatch, i, j))
    taken_tracks: set[int] = set()
    taken_detections: set[int] = set()
    for _, i, j in sorted(pairs):
        if i not in taken_tracks and j not in taken_detections:
            tracks[i].rows[t] = detections[j]
            taken_tracks.add(i)
            taken_detections.add(j)
    return [row for j, row in enumerate(detections) if j not in taken_detections]


def track_objects(grid: np.ndarray) -> list[Track]:
    """A clip's region grids (T, R, GRID_DIM) -> every object track, in no particular order."""
    tracks: list[Track] = []
    for t, frame in enumerate(grid):
        for row in link(tracks, detect(frame), t):
            tracks.append(Track(first_frame=t, rows={t: row}))
    return tracks


def object_slots(grid: np.ndarray, num_slots: int = NUM_SLOTS) -> np.ndarray:
    """A clip's synth-cnn region grids (T, R, GRID_DIM) -> object slots (T, num_slots, SLOT_DIM), float32."""
    if grid.ndim != 3 or grid.shape[2] != GRID_DIM:
        raise FeatureError(f"object slots read synth-cnn region grids (T, R, {GRID_DIM}); got shape {grid.shape}")
    grid = grid.astype(np.float32)
    tracks = track_objects(grid)
    strongest = sorted(tracks, key=lambda tr: -tr.weight())[:num_slots]
    kept = sorted(strongest, key=lambda tr: (tr.first_frame, float(position(tr.rows[tr.first_frame])[0])))
    slots = np.zeros((len(grid), num_slots, SLOT_DIM), dtype=np.float32)  # (T, K, S)
    for k, track in enumerate(kept):
        velocities = track_velocities(track)
        for t, row in track.rows.items():
            slots[t, k, : len(PERCEPTION_FIELDS)] = row[_KEEP]
            slots[t, k, len(PERCEPTION_FIELDS) :] = row[_P] * velocities[t]
    return slots


def track_velocities(track: Track) -> dict[int, np.ndarray]:
    """Per frame the track was seen: (vx, vy) = displacement between its detections furthest apart
    within VELOCITY_WINDOW frames either side, per frame, times VELOCITY_SCALE; 0 when seen alone."""
    frames = sorted(track.rows)
    velocities: dict[int, np.ndarray] = {}
    for t in frames:
        near = [u for u in frames if abs(u - t) <= VELOCITY_WINDOW]
        first, last = near[0], near[-1]
        if last == first:
            velocities[t] = np.zeros(2, dtype=np.float32)
            continue
        moved = position(track.rows[last]) - position(track.rows[first])  # (2,)
        velocities[t] = (VELOCITY_SCALE * moved / (last - first)).astype(np.float32)
    return velocities
