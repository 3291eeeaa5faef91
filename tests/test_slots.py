"""Object slots (features/slots.py, backbone synth-slots): synth-cnn's per-region detections
followed through a clip, one slot per object, on hand-made grids and on real SynthClips video."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from vidcap_core.errors import FeatureError
from vidcap_core.features.slots import (
    CONFIDENCE_FIELD,
    GRID_DIM,
    SCALED_BY_CONFIDENCE,
    SLOT_DIM,
    SLOT_FIELDS,
    object_slots,
)
from vidcap_core.synth.catalog import COLOURS, SHAPES, SIZES

SIDE = 4  # synth-cnn's 4 x 4 grid at 64 x 64
COL = {name: i for i, name in enumerate(SLOT_FIELDS)}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def region_row(x: float, y: float, shape: str | dict[str, float], colour: str, size: str = "small",
               p: float = 0.97) -> np.ndarray:
    """The synth-cnn grid vector of a region that sees an object centred at (x, y) (frame sides);
    `shape` a name, or the probabilities the detector gives some shapes (a spin that confuses it)."""
    shapes = {shape: 1.0} if isinstance(shape, str) else shape
    probabilities = np.concatenate([[shapes.get(s, 0.0) for s in SHAPES], np.eye(len(COLOURS))[COLOURS.index(colour)],
                                    np.eye(len(SIZES))[SIZES.index(size)]])
    offset = np.array([(x * SIDE) % 1.0, (y * SIDE) % 1.0]) * 2.0 - 1.0
    return p * np.concatenate([[1.0], probabilities, offset, [0.0, 1.0], [x, y]])  # (GRID_DIM,)


def clip_grid(frames: list[list[tuple]]) -> np.ndarray:
    """Per frame, its objects as region_row arguments -> the clip's grid (T, 16, GRID_DIM)."""
    grid = np.zeros((len(frames), SIDE * SIDE, GRID_DIM), dtype=np.float32)
    for t, objects in enumerate(frames):
        for obj in objects:
            x, y = obj[0], obj[1]
            region = min(int(y * SIDE), SIDE - 1) * SIDE + min(int(x * SIDE), SIDE - 1)
            assert not grid[t, region].any(), "two objects in one region: move them apart"
            grid[t, region] = region_row(*obj)
    return grid


def slot_xy(slots: np.ndarray, k: int) -> np.ndarray:
    return slots[:, k, [COL["x"], COL["y"]]]  # (T, 2): a slot's fields hold their own value


def test_an_object_keeps_its_slot_across_region_boundaries_and_when_two_objects_cross() -> None:
    T = 12
    xs = np.linspace(0.1, 0.9, T)
    frames = [[(x, 0.50, "circle", "red"), (1.0 - x, 0.56, "square", "blue")] for x in xs]  # they cross mid-clip
    slots = object_slots(clip_grid(frames))
    assert slots.shape == (T, 3, SLOT_DIM) and slots.dtype == np.float32
    # both appear at frame 0: ordered left to right, so the red circle (x = 0.1) is slot 0
    assert (slots[:, 0, COL["colour=red"]] > 0.9).all() and (slots[:, 1, COL["colour=blue"]] > 0.9).all()
    np.testing.assert_allclose(slot_xy(slots, 0)[:, 0], xs, atol=1e-5)
    np.testing.assert_allclose(slot_xy(slots, 1)[:, 0], 1.0 - xs, atol=1e-5)
    assert not slots[:, 2].any()  # no third object: an empty slot is all zeros
    step = 0.8 / (T - 1)  # frame sides per frame
    np.testing.assert_allclose(slots[:, 0, COL["vx"]], 10 * step, rtol=1e-4)  # velocity x VELOCITY_SCALE
    np.testing.assert_allclose(slots[:, 1, COL["vx"]], -10 * step, rtol=1e-4)
    np.testing.assert_allclose(slots[:, :2, COL["vy"]], 0.0, atol=1e-5)


def test_two_objects_that_look_alike_keep_their_identities_where_they_cross() -> None:
    """Two red circles cross 0.04 apart, each moving 0.073 per frame: just after the crossing each is
    nearer the other's last position than its own, so greedy nearest-first linking on the last
    position swapped them (and vidcap's tracker before numerics version 2 did); the motion-predicted
    position with one global assignment keeps them."""
    xs = np.linspace(0.1, 0.9, 12)
    frames = [[(x, 0.50, "circle", "red"), (1.0 - x, 0.54, "circle", "red")] for x in xs]
    slots = object_slots(clip_grid(frames))
    np.testing.assert_allclose(slot_xy(slots, 0), np.stack([xs, np.full(12, 0.50)], 1), atol=1e-5)
    np.testing.assert_allclose(slot_xy(slots, 1), np.stack([1.0 - xs, np.full(12, 0.54)], 1), atol=1e-5)


def test_slots_hold_each_field_at_its_own_value_and_the_confidence_apart() -> None:
    assert SLOT_FIELDS[0] == CONFIDENCE_FIELD == "confidence" and not SCALED_BY_CONFIDENCE
    slots = object_slots(clip_grid([[(0.30, 0.70, "star", "yellow", "large", 0.6)]]))
    row = slots[0, 0]
    assert row[COL["confidence"]] == pytest.approx(0.6)  # a faint detection keeps its attributes
    assert row[COL["shape=star"]] == pytest.approx(1.0) and row[COL["colour=yellow"]] == pytest.approx(1.0)
    assert row[COL["size=large"]] == pytest.approx(1.0) and row[COL["angle_cos"]] == pytest.approx(1.0)
    assert (row[COL["x"]], row[COL["y"]]) == (pytest.approx(0.30), pytest.approx(0.70))
    assert (row[COL["vx"]], row[COL["vy"]]) == (0.0, 0.0)  # seen in one frame: no motion


def test_a_miss_of_one_or_two_frames_is_filled_in_and_a_longer_one_is_not() -> None:
    T = 16
    missed = {3, 7, 8, 11, 12, 13}  # a gap of 1, one of 2, one of 3 frames
    frames = [[] if t in missed else [(0.1 + 0.05 * t, 0.4, "triangle", "green", "small", 0.6 + 0.02 * t)]
              for t in range(T)]
    slots = object_slots(clip_grid(frames))
    filled = [t for t in range(T) if t not in (11, 12, 13)]
    np.testing.assert_allclose(slot_xy(slots, 0)[filled, 0], [0.1 + 0.05 * t for t in filled], atol=1e-5)
    np.testing.assert_allclose(slots[filled, 0, COL["confidence"]], [0.6 + 0.02 * t for t in filled], atol=1e-5)
    np.testing.assert_allclose(slots[filled, 0, COL["colour=green"]], 1.0, atol=1e-6)
    np.testing.assert_allclose(slots[filled, 0, COL["vx"]], 10 * 0.05, rtol=1e-4)  # one track, one motion
    assert not slots[11:14].any()  # three frames missed: the object was not there to see
    assert not slots[:, 1:].any()  # and it came back in its own slot


def test_a_spin_that_confuses_the_shape_on_a_few_frames_keeps_the_clips_shape() -> None:
    """A square the detector reads as more circle than square on 3 of 12 frames (while it spins) is a
    square in every frame of its slot; colour, which SynthClips changes, stays per frame."""
    frames = []
    for t in range(12):
        shape = {"circle": 0.6, "square": 0.4} if t in (4, 5, 6) else "square"
        frames.append([(0.4, 0.6, shape, "red" if t < 6 else "blue")])
    slots = object_slots(clip_grid(frames))
    shape = slots[:, 0, COL["shape=circle"] : COL["shape=circle"] + len(SHAPES)]  # (T, 5)
    np.testing.assert_allclose(shape, np.tile([[0.15, 0.85, 0.0, 0.0, 0.0]], (12, 1)), atol=1e-5)
    assert slots[:6, 0, COL["colour=red"]].tolist() == [1.0] * 6 and slots[6:, 0, COL["colour=blue"]].tolist() == [1.0] * 6


def test_an_object_that_fades_and_returns_keeps_its_slot_and_a_later_one_takes_the_next() -> None:
    frames: list[list[tuple]] = []
    for t in range(10):
        objects = [(0.2 + 0.02 * t, 0.3, "triangle", "green")]
        if t in (3, 4, 5):
            objects = []  # faded below the detection threshold for longer than MAX_FILL frames
        if t >= 6:
            objects.append((0.8, 0.8, "cross", "purple"))  # appears at frame 6
        frames.append(objects)
    slots = object_slots(clip_grid(frames))
    assert not slots[3:6, 0].any() and (slots[[0, 1, 2, 6, 7, 8, 9], 0, COL["colour=green"]] > 0.9).all()
    # the velocity spans the gap: frame 2 measures from frame 0 to frame 2 (frames 3-5 unseen), frame 6 from 6 to 9
    np.testing.assert_allclose(slots[[2, 6], 0, COL["vx"]], 10 * 0.02, rtol=1e-4)
    assert slots[6:, 1, COL["vx"]].tolist() == [0.0] * 4  # the cross stands still
    assert not slots[:6, 1].any() and (slots[6:, 1, COL["shape=cross"]] > 0.9).all()


def test_one_frame_blips_lose_their_slot_to_real_objects_and_duplicates_merge() -> None:
    objects = [(0.15, 0.15, "circle", "red"), (0.6, 0.2, "square", "blue"), (0.4, 0.85, "star", "orange")]
    frames = [list(objects) for _ in range(8)]
    frames[2].append((0.9, 0.6, "cross", "green"))  # a spurious detection in one frame
    grid = clip_grid(frames)
    # the red circle's centre also lights up the next region to the right, a little weaker
    grid[:, 1] = region_row(0.16, 0.15, "circle", "red", p=0.7)
    slots = object_slots(grid)
    colours = [COLOURS[int(np.argmax(slots[0, k, COL["colour=red"] : COL["colour=red"] + len(COLOURS)]))]
               for k in range(3)]
    assert sorted(colours) == ["blue", "orange", "red"]  # the blip and the duplicate took no slot
    assert (slots[:, :, COL["confidence"]] > 0.9).all()  # every object seen in every frame, by its strongest region
    np.testing.assert_allclose(slot_xy(slots, colours.index("red")), np.tile([[0.15, 0.15]], (8, 1)), atol=1e-5)


def test_slots_refuse_grids_that_are_not_synth_cnn_perception() -> None:
    with pytest.raises(FeatureError, match=r"\(T, R, 21\)"):
        object_slots(np.zeros((4, 16, 512), dtype=np.float32))


def test_synth_slots_follow_the_objects_the_oracle_knows(tiny_synth: Path, tmp_path: Path) -> None:
    """On real SynthClips mp4s, each slot stays on one ground-truth object: under the best fixed
    assignment of slots to the oracle's objects (one per clip), most frames where an object is fully
    drawn find its slot at its position."""
    from vidcap_core.data import load_dataset
    from vidcap_core.features.extract import extract_features
    from vidcap_core.features.oracle import SLOT_FIELDS as ORACLE_FIELDS
    from vidcap_core.features.store import FeatureStore

    records = load_dataset("synth", tiny_synth).records
    for backbone in ("synth-slots", "oracle"):
        summary = extract_features(records, backbone, tmp_path / backbone, num_frames=8, grid=True, progress=False)
        assert (summary.done, summary.failed) == (24, {})
    slots_store, oracle_store = FeatureStore(tmp_path / "synth-slots"), FeatureStore(tmp_path / "oracle")
    meta = slots_store.meta
    assert (meta["backbone"], meta["feature_dim"], meta["grid_dim"], meta["grid_size"]) == ("synth-slots", 63, 21, [1, 3])
    opacity, xy = ORACLE_FIELDS.index("opacity"), [ORACLE_FIELDS.index("x"), ORACLE_FIELDS.index("y")]
    found = total = 0
    for record in records:
        slots, truth = slots_store.load_grid(record.video_id), oracle_store.load_grid(record.video_id)  # (8, 3, 21), (8, 3, 24)
        np.testing.assert_array_equal(slots_store.load(record.video_id), slots.reshape(8, -1))
        drawn = truth[:, :, opacity] == 1.0  # (8, 3)
        best = 0
        for order in itertools.permutations(range(3)):
            near = [np.linalg.norm(slot_xy(slots, order[k]) - truth[:, k, xy], axis=1) < 0.06 for k in range(3)]
            seen = [slots[:, order[k], COL["confidence"]] > 0 for k in range(3)]
            best = max(best, sum(int((drawn[:, k] & near[k] & seen[k]).sum()) for k in range(3)))
        found += best
        total += int(drawn.sum())
    assert total > 100 and found / total > 0.85, (found, total)
