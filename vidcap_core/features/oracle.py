"""The `oracle` backbone: SynthClips' ground-truth scene state per frame, the decoders' ceiling.

A SynthClips folder records its preset, seed and full generation config (`synth.json`), and
every clip is a pure function of (config, seed, clip index), so the oracle rebuilds each clip's
plan and reads the renderer's own per-frame object state (the values it drew the pixels from).
The rebuilt ground truth is checked against `ground_truth.json`, so a folder made by another
version of the generator is refused instead of silently described wrongly.

Fairness: the vector holds what a perfect perception system could read off the sampled frames
and nothing else. No caption text, no action names, no event boundaries, no object that is not
drawn: an object at opacity 0 is an empty slot (all zeros), and an angle is given only modulo
the shape's rotational symmetry (a circle has none to give; a square turned by 90 degrees looks
the same). Distractor specks and the background are left out: they carry nothing a caption says.

Layout, per frame: MAX_OBJECTS slots in the plan's object order (sampled at random when the
clip was made, so it says nothing about the events, and fixed for the whole clip, as a tracker
would keep it), each SLOT_FIELDS long:

  present                 1 if the object is drawn at all (opacity > 0), else the slot is all 0
  opacity                 0..1 (appear / disappear fade it)
  shape=<name> x5         one-hot over SHAPES
  colour=<name> x7        weights over COLOURS: one-hot, a two-colour blend during change_colour
  red, green, blue        the drawn RGB / 255
  size=small, size=large  weights: one-hot, a blend while growing / shrinking
  scale                   radius / frame side
  x, y                    centre / frame side (0..1, y down), a bounce's parabola included
  angle_sin, angle_cos    sin and cos of (symmetry order x angle); 0, 0 for a circle

global vector (T, MAX_OBJECTS * len(SLOT_FIELDS)) = the slots concatenated; grid (T, R, G) with
R = MAX_OBJECTS slots and G = len(SLOT_FIELDS). Frames are sampled at the indices the video
backbones decode (`sample_frame_indices(clip frames, T)`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from vidcap_core.data.records import VideoRecord
from vidcap_core.errors import FeatureError
from vidcap_core.features.jobs import ClipResult
from vidcap_core.features.store import DISK_DTYPE, FEATURES_VERSION
from vidcap_core.synth.catalog import COLOURS, SHAPES, SIZES
from vidcap_core.synth.config import SynthConfig
from vidcap_core.synth.plan import ClipPlan, ObjectState
from vidcap_core.synth.render import interpolate_object_states, object_tracks
from vidcap_core.video.sampling import sample_frame_indices

ORACLE_BACKBONE = "oracle"
ORACLE_LAYOUT_VERSION = 1
ORACLE_WEIGHTS_ID = f"SynthClips ground truth, oracle layout {ORACLE_LAYOUT_VERSION}"
MAX_OBJECTS = 3  # SynthConfig.validate caps objects_per_clip at 3
ROTATION_ORDER: dict[str, int] = {"circle": 0, "square": 4, "triangle": 3, "star": 5, "cross": 4}
SLOT_FIELDS: tuple[str, ...] = (
    "present",
    "opacity",
    *(f"shape={s}" for s in SHAPES),
    *(f"colour={c}" for c in COLOURS),
    "red",
    "green",
    "blue",
    *(f"size={s}" for s in SIZES),
    "scale",
    "x",
    "y",
    "angle_sin",
    "angle_cos",
)
SLOT_DIM = len(SLOT_FIELDS)  # G
ORACLE_DIM = MAX_OBJECTS * SLOT_DIM  # F
_COLUMN = {name: i for i, name in enumerate(SLOT_FIELDS)}
SYNTH_INFO = "synth.json"
GROUND_TRUTH = "ground_truth.json"


def not_synthclips_error(dataset: str | None, root: Path | str) -> FeatureError:
    """The error for `--backbone oracle` on data that is not SynthClips, naming what to do instead."""
    what = f"dataset {dataset!r} at {root}" if dataset else f"the videos under {root}"
    return FeatureError(
        f"backbone 'oracle' reads SynthClips' ground-truth scene state, and {what} has none "
        f"(no {SYNTH_INFO} written by `vidcap data synth`); oracle features exist only for SynthClips: "
        f"use --backbone synth-cnn, random or a torchvision CNN (e.g. resnet152) for this dataset"
    )


# ----------------------------------------------------------------------------- rebuilding the clips


class SynthClipsPlans:
    """Every clip plan of one generated SynthClips folder, rebuilt from its recorded parameters."""

    def __init__(self, root: Path) -> None:
        from vidcap_core.synth.generator import grown_roles

        self.root = Path(root)
        info_path, truth_path = self.root / SYNTH_INFO, self.root / GROUND_TRUTH
        if not info_path.is_file() or not truth_path.is_file():
            raise not_synthclips_error(None, self.root)
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
            self.cfg = config_from_json(info["config"])
            self.seed = int(info["seed"])
            self.train_multiplier = int(info.get("train_multiplier", 1))  # a set grown with val and test fixed
            self.truths: dict[str, Any] = json.loads(truth_path.read_text(encoding="utf-8"))["clips"]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise FeatureError(
                f"cannot read SynthClips parameters in {self.root} ({type(exc).__name__}: {exc}); "
                f"regenerate the folder with `vidcap data synth --out {self.root}`"
            ) from exc
        self.roles = grown_roles(self.cfg, self.seed, self.train_multiplier)

    def plan(self, video_id: str) -> ClipPlan:
        """The plan clip `video_id` was rendered from; FeatureError if it is not this folder's clip
        or if rebuilding it does not give the recorded ground truth (another generator version)."""
        from vidcap_core.synth.generator import build_clip

        index = clip_index(video_id)
        if index is None or not 0 <= index < len(self.roles) or video_id not in self.truths:
            raise FeatureError(f"video {video_id!r} is not a clip of the SynthClips folder {self.root}")
        split, want_heldout = self.roles[index]
        spec = build_clip(self.cfg, self.seed, index, split, want_heldout)
        if spec.truth.to_json() != self.truths[video_id]:
            raise FeatureError(
                f"rebuilding {video_id} of {self.root} from {SYNTH_INFO} does not give its recorded ground truth: "
                f"the folder was made by another SynthClips version; regenerate it with `vidcap data synth`"
            )
        return spec.plan


def config_from_json(raw: dict[str, Any]) -> SynthConfig:
    """SynthConfig from `asdict` JSON: lists back to (nested) tuples."""

    def as_tuple(value: Any) -> Any:
        return tuple(as_tuple(v) for v in value) if isinstance(value, list) else value

    names = {f.name for f in fields(SynthConfig)}
    return SynthConfig(**{key: as_tuple(value) for key, value in raw.items() if key in names})


def clip_index(video_id: str) -> int | None:
    digits = video_id.removeprefix("video")
    return int(digits) if digits != video_id and digits.isdigit() else None


def synth_root_of(record: VideoRecord) -> Path:
    """The SynthClips folder of a record (its video lies in `<root>/videos/`)."""
    return Path(record.path).parent.parent


# ----------------------------------------------------------------------------- the vector


def _colour_weights(state: ObjectState) -> np.ndarray:
    return np.array([1.0 if c == state.colour else 0.0 for c in COLOURS])  # (7,)


def _size_weights(state: ObjectState) -> np.ndarray:
    return np.array([1.0 if s == state.size else 0.0 for s in SIZES])  # (2,)


def scene_states(plan: ClipPlan) -> np.ndarray:
    """(T, MAX_OBJECTS, SLOT_DIM) float32 ground-truth scene state of every frame of the clip."""
    O, T, size = len(plan.initial), plan.num_frames, float(plan.frame_size)
    if O > MAX_OBJECTS:
        raise FeatureError(f"a SynthClips plan with {O} objects does not fit the oracle's {MAX_OBJECTS} slots")
    tracks = object_tracks(plan)  # (O, T, 8): x, y, radius, angle, opacity, r, g, b
    colours = interpolate_object_states(plan, _colour_weights)  # (O, T, 7)
    sizes = interpolate_object_states(plan, _size_weights)  # (O, T, 2)
    out = np.zeros((T, MAX_OBJECTS, SLOT_DIM), dtype=np.float64)
    for o, shape in enumerate(plan.shapes):
        slot = out[:, o]  # (T, G) view
        opacity = tracks[o, :, 4]  # (T,)
        slot[:, _COLUMN["present"]] = opacity > 0.0
        slot[:, _COLUMN["opacity"]] = opacity
        slot[:, _COLUMN[f"shape={shape}"]] = 1.0
        first_colour = _COLUMN[f"colour={COLOURS[0]}"]
        slot[:, first_colour : first_colour + len(COLOURS)] = colours[o]
        slot[:, _COLUMN["red"] : _COLUMN["blue"] + 1] = tracks[o, :, 5:8] / 255.0
        first_size = _COLUMN[f"size={SIZES[0]}"]
        slot[:, first_size : first_size + len(SIZES)] = sizes[o]
        slot[:, _COLUMN["scale"]] = tracks[o, :, 2] / size
        slot[:, _COLUMN["x"]] = tracks[o, :, 0] / size
        slot[:, _COLUMN["y"]] = tracks[o, :, 1] / size
        order = ROTATION_ORDER[shape]
        if order:
            slot[:, _COLUMN["angle_sin"]] = [math.sin(order * a) for a in tracks[o, :, 3]]
            slot[:, _COLUMN["angle_cos"]] = [math.cos(order * a) for a in tracks[o, :, 3]]
        slot[opacity <= 0.0] = 0.0  # not drawn: nothing to perceive
    return out.astype(np.float32)


def oracle_features(plan: ClipPlan, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(global (T, F), slots (T, MAX_OBJECTS, SLOT_DIM)) float32 at the frames a video backbone samples."""
    indices = sample_frame_indices(plan.num_frames, num_frames)  # (T,)
    slots = scene_states(plan)[indices]  # (T, R, G)
    return slots.reshape(len(indices), ORACLE_DIM), slots


def decode_slot(vector: np.ndarray) -> dict[str, Any]:
    """A (SLOT_DIM,) slot read back as names and numbers (for tests and for reading features)."""
    if vector[_COLUMN["present"]] <= 0.0:
        return {"present": False}
    pick = lambda prefix, names: names[int(np.argmax([vector[_COLUMN[f"{prefix}={n}"]] for n in names]))]  # noqa: E731
    return {
        "present": True,
        "opacity": float(vector[_COLUMN["opacity"]]),
        "shape": pick("shape", SHAPES),
        "colour": pick("colour", COLOURS),
        "size": pick("size", SIZES),
        "x": float(vector[_COLUMN["x"]]),
        "y": float(vector[_COLUMN["y"]]),
        "scale": float(vector[_COLUMN["scale"]]),
    }


def oracle_meta(num_frames: int, frame_size: int, grid: bool) -> dict[str, Any]:
    """features.json of an oracle cache: the keys every backbone writes, plus the slot layout."""
    return {
        "backbone": ORACLE_BACKBONE,
        "weights": ORACLE_WEIGHTS_ID,
        "feature_dim": ORACLE_DIM,
        "grid_dim": SLOT_DIM,
        "num_frames": num_frames,
        "frame_size": [frame_size, frame_size],
        "grid": grid,
        "grid_size": [1, MAX_OBJECTS],
        "dtype": np.dtype(DISK_DTYPE).name,
        "version": FEATURES_VERSION,
        "slot_fields": list(SLOT_FIELDS),
    }


# ----------------------------------------------------------------------------- the cache


class OracleEncoder:
    """The job loop's `ClipEncoder` for backbone 'oracle' (features/jobs.py): the same cache layout,
    features.json and resume rules as every backbone, from each clip's ground truth instead of its
    pixels. FeatureError when a record is not a clip of a SynthClips folder of this version."""

    label = ORACLE_BACKBONE

    def __init__(self, records: Sequence[VideoRecord]) -> None:
        self.folders = {root: SynthClipsPlans(root) for root in dict.fromkeys(synth_root_of(r) for r in records)}
        frame_sizes = {plans.cfg.frame_size for plans in self.folders.values()}
        if len(frame_sizes) > 1:
            raise FeatureError(f"the records come from SynthClips folders of different frame sizes {sorted(frame_sizes)}")
        self.frame_size = frame_sizes.pop() if frame_sizes else 0

    def meta(self, num_frames: int, grid: bool) -> dict[str, Any]:
        return oracle_meta(num_frames, self.frame_size, grid)

    def encode(self, records: Sequence[VideoRecord], num_frames: int, grid: bool) -> Iterator[list[tuple[VideoRecord, ClipResult]]]:
        for record in records:
            glob, slots = oracle_features(self.folders[synth_root_of(record)].plan(record.video_id), num_frames)
            yield [(record, (glob.astype(DISK_DTYPE), slots.astype(DISK_DTYPE) if grid else None))]  # (T, F), (T, R, G)
