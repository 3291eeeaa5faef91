"""Drawing SynthClips frames: a static textured background, drifting grey specks, shapes on top.

Each frame is a pure function of the plan's state at that frame (object centre, radius, angle,
opacity, colour; speck positions) and of the clip's static background. Only elementwise IEEE
operations (+, -, *, /, sqrt, min, max, abs) touch per-frame data, and per-frame trigonometry is
done in scalar Python, so a frame's pixels do not depend on where it sits in the batch: the
rendering of a reversed plan is bit-for-bit the reversed rendering.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from vidcap_core.errors import ConfigError
from vidcap_core.synth.catalog import COLOUR_RGB, COLOURS, SHAPE_EXTENT, SHAPES, SIZES
from vidcap_core.synth.plan import (
    ClipPlan,
    ObjectState,
    SpeckField,
    object_radius,
    placement_margin,
    speck_positions,
)

SPECK_HALF_WIDTH = 1.25  # pixels
SPECK_OPACITY = 0.85
CELL_INSET = 1.5  # pixels between a still's object centre and its grid cell's edges
TRACK_FIELDS = ("x", "y", "radius", "angle", "opacity", "red", "green", "blue")

# Shape outlines in units of the object radius, as outward half-plane normals and offsets.
_TRIANGLE = [((0.0, 1.0), 0.55), ((-math.sqrt(3) / 2, -0.5), 0.55), ((math.sqrt(3) / 2, -0.5), 0.55)]
_STAR_OUTER = 1.25
_STAR = [
    ((math.cos(math.radians(-18 + 72 * k)), math.sin(math.radians(-18 + 72 * k))), _STAR_OUTER * math.cos(math.radians(72)))
    for k in range(5)
]


def _state_vector(state: ObjectState, frame_size: int) -> np.ndarray:
    rgb = COLOUR_RGB[state.colour]
    return np.array(
        [state.x, state.y, object_radius(state.size, frame_size), state.angle, 1.0 if state.visible else 0.0, *rgb],
        dtype=np.float64,
    )


def interpolate_object_states(plan: ClipPlan, vector_of: Callable[[ObjectState], np.ndarray]) -> np.ndarray:
    """(O, T, D) per-object values at every frame, where `vector_of(state)` is (D,) float64.

    Each object holds its initial vector until an event of it starts; inside an event the
    vector goes linearly from the start state's to the end state's, then holds that. This is
    the renderer's own timing (object_tracks uses it), so anything computed through it (e.g.
    the oracle's colour weights) is in step with the drawn pixels.
    Inside an event, value(t) = (a * (e - t) + b * (t - s)) / (e - s): swapping a and b and
    mirroring t gives the same two products summed in the other order, so reversal is exact.
    """
    width = len(vector_of(plan.initial[0])) if plan.initial else 0
    values = np.empty((len(plan.initial), plan.num_frames, width), dtype=np.float64)  # (O, T, D)
    for index, state in enumerate(plan.initial):
        values[index] = vector_of(state)
    for event in plan.events:
        s, e = event.start_frame, event.end_frame
        a, b = vector_of(event.start), vector_of(event.end)  # (D,)
        t = np.arange(s, e + 1, dtype=np.float64)[:, None]  # (D_t, 1)
        values[event.actor, s : e + 1] = (a * (e - t) + b * (t - s)) / (e - s)  # (D_t, D)
        values[event.actor, e + 1 :] = b
    return values


def object_tracks(plan: ClipPlan) -> np.ndarray:
    """(O, T, 8) per-object state at every frame; columns are TRACK_FIELDS.

    A bounce's y follows a parabola up and back instead of the straight line:
    4 (t - s)(e - t) / (e - s)^2 is symmetric under reversal too.
    """
    tracks = interpolate_object_states(plan, lambda state: _state_vector(state, plan.frame_size))  # (O, T, 8)
    for event in plan.events:
        if event.action == "bounce":
            s, e = event.start_frame, event.end_frame
            t = np.arange(s, e + 1, dtype=np.float64)
            start_y = _state_vector(event.start, plan.frame_size)[1]
            tracks[event.actor, s : e + 1, 1] = start_y - event.bounce_height * (4.0 * (t - s) * (e - t)) / float((e - s) ** 2)
    return tracks


def background_texture(seed: int, frame_size: int, noise_level: float) -> np.ndarray:
    """(H, W, 3) float64 static texture: a grey base, soft blotches, fine pixel noise."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(55.0, 95.0) + rng.normal(0.0, 5.0, size=3)  # (3,) slightly tinted grey
    coarse = rng.normal(0.0, 14.0, size=(5, 5))  # low-frequency blotches, upsampled bilinearly
    grid = np.linspace(0.0, 4.0, frame_size)
    weights = np.maximum(0.0, 1.0 - np.abs(grid[:, None] - np.arange(5)[None, :]))  # (H, 5)
    blotches = weights @ coarse @ weights.T  # (H, W)
    noise = rng.normal(0.0, noise_level * 255.0, size=(frame_size, frame_size, 3))  # (H, W, 3)
    return base[None, None, :] + blotches[:, :, None] + noise


def _second_largest(values: list[np.ndarray]) -> np.ndarray:
    top, second = values[0], np.full_like(values[0], -np.inf)
    for value in values[1:]:
        second = np.maximum(second, np.minimum(top, value))
        top = np.maximum(top, value)
    return second


def shape_distance(shape: str, qx: np.ndarray, qy: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Approximate signed distance in pixels (negative inside) to `shape` at the origin.

    qx, qy are pixel offsets in the object's own (rotated) frame; radius broadcasts against them.
    """
    if shape == "circle":
        return np.sqrt(qx * qx + qy * qy) - 0.85 * radius
    if shape == "square":
        return np.maximum(np.abs(qx), np.abs(qy)) - 0.72 * radius
    if shape == "triangle":
        edges = [nx * qx + ny * qy - offset * radius for (nx, ny), offset in _TRIANGLE]
        return np.maximum(np.maximum(edges[0], edges[1]), edges[2])
    if shape == "star":  # inside a pentagram = on the inner side of at least 4 of its 5 lines
        return _second_largest([nx * qx + ny * qy - offset * radius for (nx, ny), offset in _STAR])
    if shape == "cross":
        ax, ay = np.abs(qx), np.abs(qy)
        bar_across = np.maximum(ax - 0.95 * radius, ay - 0.32 * radius)
        bar_down = np.maximum(ax - 0.32 * radius, ay - 0.95 * radius)
        return np.minimum(bar_across, bar_down)
    raise ValueError(f"unknown SynthClips shape {shape!r}; expected one of {SHAPES}")


def _draw_object(frames: np.ndarray, shape: str, track: np.ndarray) -> None:
    """Composite one object's (T, 8) track onto (T, H, W, 3) float32 frames, in place.

    Only the box the object sweeps over the clip is computed; pixels outside it have coverage 0.
    """
    size = frames.shape[1]
    reach = SHAPE_EXTENT * track[:, 2] + 1.5  # (T,)
    x0, x1 = _span(track[:, 0] - reach, track[:, 0] + reach, size)
    y0, y1 = _span(track[:, 1] - reach, track[:, 1] + reach, size)
    if x0 >= x1 or y0 >= y1 or not np.any(track[:, 4] > 0.0):
        return
    f32 = np.float32
    cx, cy = track[:, 0, None, None].astype(f32), track[:, 1, None, None].astype(f32)  # (T, 1, 1)
    radius = track[:, 2, None, None].astype(f32)  # (T, 1, 1)
    cos = np.array([math.cos(a) for a in track[:, 3]], dtype=f32)[:, None, None]  # scalar math: position-independent
    sin = np.array([math.sin(a) for a in track[:, 3]], dtype=f32)[:, None, None]
    dx = (np.arange(x0, x1, dtype=f32) + f32(0.5))[None, None, :] - cx  # (T, 1, w)
    dy = (np.arange(y0, y1, dtype=f32) + f32(0.5))[None, :, None] - cy  # (T, h, 1)
    qx = dx * cos + dy * sin  # (T, h, w)
    qy = dy * cos - dx * sin  # (T, h, w)
    coverage = np.clip(f32(0.5) - shape_distance(shape, qx, qy, radius), f32(0.0), f32(1.0))  # (T, h, w)
    alpha = (coverage * track[:, 4, None, None].astype(f32))[..., None]  # (T, h, w, 1)
    colour = track[:, None, None, 5:8].astype(f32)  # (T, 1, 1, 3)
    box = frames[:, y0:y1, x0:x1]  # (T, h, w, 3) view
    box *= f32(1.0) - alpha
    box += colour * alpha


def _span(low: np.ndarray, high: np.ndarray, size: int) -> tuple[int, int]:
    """Integer pixel range [start, stop) covering every frame's [low, high], clipped to the frame."""
    return max(0, int(math.floor(float(low.min())))), min(size, int(math.ceil(float(high.max()))) + 1)


def _draw_specks(frames: np.ndarray, specks: SpeckField) -> None:
    """Composite drifting grey specks (wrapping around the frame edges) in place, patch by patch."""
    frame_count, size = frames.shape[0], frames.shape[1]
    positions = speck_positions(specks, frame_count, size)  # (T, N, 2)
    f32 = np.float32
    offsets = np.arange(-2, 3)  # a speck covers at most 3 pixels per axis; 5 is safe
    frame_index = np.arange(frame_count)[:, None, None]  # (T, 1, 1)
    for n, grey in enumerate(specks.grey):
        px, py = positions[:, n, 0], positions[:, n, 1]  # (T,)
        cols = (np.floor(px).astype(np.int64)[:, None] + offsets) % size  # (T, 5)
        rows = (np.floor(py).astype(np.int64)[:, None] + offsets) % size  # (T, 5)
        wx, wy = _speck_weight(cols, px, size), _speck_weight(rows, py, size)  # (T, 5)
        alpha = (f32(SPECK_OPACITY) * wy[:, :, None] * wx[:, None, :])[..., None]  # (T, 5, 5, 1)
        where = (frame_index, rows[:, :, None], cols[:, None, :])  # indexes (T, 5, 5) pixels
        frames[where] = frames[where] * (f32(1.0) - alpha) + f32(grey) * alpha


def _speck_weight(pixels: np.ndarray, centre: np.ndarray, size: int) -> np.ndarray:
    """(T, 5) tent weights of pixel columns (or rows) around each frame's speck centre (T,)."""
    distance = np.abs(pixels.astype(np.float32) + np.float32(0.5) - centre.astype(np.float32)[:, None])
    distance = np.minimum(distance, np.float32(size) - distance)  # nearest copy on the torus
    return np.clip(np.float32(1.0) - distance / np.float32(SPECK_HALF_WIDTH), np.float32(0.0), np.float32(1.0))


def render_clip(plan: ClipPlan) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB frames of the plan."""
    size, frame_count = plan.frame_size, plan.num_frames
    background = background_texture(plan.background_seed, size, plan.noise_level).astype(np.float32)  # (H, W, 3)
    frames = np.broadcast_to(background, (frame_count, size, size, 3)).copy()  # (T, H, W, 3) float32
    _draw_specks(frames, plan.specks)
    tracks = object_tracks(plan)  # (O, T, 8)
    for shape, track in zip(plan.shapes, tracks):
        _draw_object(frames, shape, track)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def render_random_still(rng: np.random.Generator, size: int) -> tuple[np.ndarray, dict[str, int]]:
    """One random (size, size, 3) uint8 frame with one object, in the SynthClips style.

    Labels are indices into SHAPES, COLOURS, SIZES, and `position`, the cell of a 3x3 grid
    (row-major, 0 = top left) holding the object's centre.
    """
    if size < 24:
        raise ConfigError(f"render_random_still size={size} is too small; use at least 24 pixels.")
    shape_index, colour_index = int(rng.integers(len(SHAPES))), int(rng.integers(len(COLOURS)))
    size_index, cell = int(rng.integers(len(SIZES))), int(rng.integers(9))
    row, col = divmod(cell, 3)
    margin = placement_margin(size)
    x = _uniform_in_cell(rng, col, size, margin)
    y = _uniform_in_cell(rng, row, size, margin)
    state = ObjectState(x, y, SIZES[size_index], float(rng.uniform(-math.pi, math.pi)), True, COLOURS[colour_index])
    count = int(rng.integers(0, 9))
    specks = SpeckField(
        start=tuple((int(a), int(b)) for a, b in rng.integers(0, size * 16, size=(count, 2))),
        velocity=tuple((0, 0) for _ in range(count)),
        grey=tuple(int(g) for g in rng.integers(120, 200, size=count)),
    )
    plan = ClipPlan(
        frame_size=size, num_frames=1, shapes=(SHAPES[shape_index],), initial=(state,), events=(),
        specks=specks, background_seed=int(rng.integers(0, 2**31 - 1)), noise_level=float(rng.uniform(0.03, 0.09)),
    )
    frame = render_clip(plan)[0]  # (H, W, 3)
    return frame, {"shape": shape_index, "colour": colour_index, "size": size_index, "position": cell}


def _uniform_in_cell(rng: np.random.Generator, index: int, size: int, margin: float) -> float:
    """A coordinate inside grid cell `index` (of 3), kept `margin` from the frame border and
    CELL_INSET pixels from the cell's edges, so the position label is never a coin toss."""
    low = max(index * size / 3.0 + CELL_INSET, margin)
    high = min((index + 1) * size / 3.0 - CELL_INSET, size - margin)
    if high <= low:  # a tiny frame: the margin swallows the cell; use its centre
        return (index + 0.5) * size / 3.0
    return float(rng.uniform(low, high))

