"""Perception measured against the oracle, field by field: what learned object slots carry of each
SynthClips object, frame by frame, next to the ground truth the oracle reads from the clip's plan.

For every clip, the learned slots (K per frame, e.g. synth-slots' tracks) are matched to the clip's
objects once for the whole clip (Hungarian assignment, `scipy.optimize.linear_sum_assignment`, on
position over the clip: the mean over frames of the distance between slot and object, MISS_COST
for a frame where only one of them is there). Then, per object and sampled frame:

  presence     the matched slot is there exactly when the object is visible (opacity >= VISIBLE), on
               frames where it is either clearly drawn or not drawn at all (not mid-way through a fade)
  shape, colour, size    argmax right, on frames where the object is visible and its slot there
                         (colour and size: the argmax of the oracle's blend during a change)
  scale        |radius error| in pixels                       (same frames; NaN: the slots carry none)
  opacity      |opacity error|, where the object is drawn or its slot is there (a missed object's
               slot reads 0); slots without an opacity field are read through their confidence
  position     centre error in pixels                         (visible and there)
  angle        turn error in degrees modulo the shape's symmetry (visible and there, not circles)

three jitters, on consecutive frames where the slot is there and the truth does not change (what a
decoder reading frame-to-frame differences takes for an event that is not there):

  position jitter px      |change of the slot's centre| while the object stands still
  angle jitter deg        |change of its turn| while the object does not turn (not circles)
  flips                   the share of such frame pairs where the argmax shape, colour or size changes

and per object: identity swaps (per frame, slots are matched to the visible objects within
SWAP_GATE by position; a swap is an object taken by another slot than in its previous matched
frame) and whether a slot follows it at all (its matched slot is there within FOLLOW_DISTANCE in
at least half of its visible frames).

Rows group object-frames by the number of objects in the clip and by what the object does in
that frame (the event kinds of EVENT_KINDS, or none), plus two conditions events cause:
mid-fade (0 < opacity < 1) and overlapping (another drawn object's centre nearer than the two
radii). `measure_perception` reads a feature cache of a SynthClips folder and returns one row per
group (`perception_table`); the benchmark's `perception` suite writes it. `measure_slots` measures
slots made on the fly (`vidcap-bench perf-tracking` runs two revisions' trackers on the same grids).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from vidcap_core.errors import FeatureError
from vidcap_core.features import slots as learned_slots
from vidcap_core.features.oracle import ROTATION_ORDER, SLOT_FIELDS as ORACLE_FIELDS, SynthClipsPlans, oracle_features
from vidcap_core.features.store import FeatureStore
from vidcap_core.synth.catalog import COLOURS, SHAPES, SIZES
from vidcap_core.synth.plan import ClipPlan
from vidcap_core.video.sampling import sample_frame_indices

VISIBLE = 0.5  # opacity from which an object counts as there to be seen (synth-cnn's detection target)
MISS_COST = 0.5  # frame sides: a frame where only the slot or only the object is there, in the clip's matching
FOLLOW_DISTANCE = 0.1  # frame sides (6.4 px of 64): a slot this near an object is on it
SWAP_GATE = 0.15  # frame sides: per-frame slot-object pairs further apart are no match
EVENT_KINDS: dict[str, str] = {  # action -> the kind of event the report groups it under
    "change_colour": "colour change", "grow": "grow/shrink", "shrink": "grow/shrink",
    "appear": "appear/disappear", "disappear": "appear/disappear", "spin": "spin",
    "move_left": "moves", "move_right": "moves", "move_up": "moves", "move_down": "moves", "bounce": "moves",
}
NO_EVENT = "no event"
FIELDS = ("presence", "shape", "colour", "size", "scale_px", "opacity", "position_px", "angle_deg",
          "position_jitter_px", "angle_jitter_deg", "flips")
STILL = 1e-4  # frame sides (or radians): a truth that changes less than this between two frames stands still


@dataclass
class SlotReading:
    """One clip's slots read as object fields, (T, K) each; NaN where the slots carry no such field."""

    present: np.ndarray  # (T, K) bool: the slot holds an object in this frame
    opacity: np.ndarray  # (T, K) float 0..1
    shape: np.ndarray  # (T, K) int index into SHAPES
    colour: np.ndarray  # (T, K) int index into COLOURS
    size: np.ndarray  # (T, K) int index into SIZES
    scale: np.ndarray  # (T, K) float radius / frame side
    xy: np.ndarray  # (T, K, 2) float centre / frame side
    turn: np.ndarray  # (T, K) float radians: the shape's symmetry order x its angle


def read_slots(slots: np.ndarray, fields: Sequence[str], confidence: str, scaled: bool) -> SlotReading:
    """Slots (T, K, S) whose S columns are `fields` -> SlotReading. `confidence`: the field saying the
    slot holds an object (there from VISIBLE on, as synth-cnn detects and the oracle draws it); `scaled`:
    every other field is stored times that confidence."""
    column = {name: i for i, name in enumerate(fields)}
    if slots.ndim != 3 or slots.shape[2] != len(fields):
        raise FeatureError(f"slots of shape {slots.shape} do not have the {len(fields)} fields {list(fields)[:4]}...")
    slots = slots.astype(np.float64)
    there = slots[..., column[confidence]]  # (T, K)
    divisor = np.where(there > 0, there, 1.0)[..., None] if scaled else 1.0
    values = slots / divisor  # (T, K, S)
    values[..., column[confidence]] = there

    def pick(prefix: str, names: Sequence[str]) -> np.ndarray:
        return values[..., [column[f"{prefix}={n}"] for n in names]].argmax(-1)  # (T, K)

    def field(name: str, fallback: str | None = None) -> np.ndarray:
        if name in column:
            return values[..., column[name]]
        if fallback is not None:
            return values[..., column[fallback]]
        return np.full(there.shape, np.nan)

    return SlotReading(
        present=there >= VISIBLE, opacity=field("opacity", fallback=confidence), shape=pick("shape", SHAPES),
        colour=pick("colour", COLOURS), size=pick("size", SIZES), scale=field("scale"),
        xy=np.stack([field("x"), field("y")], axis=-1),
        turn=np.arctan2(field("angle_sin"), field("angle_cos")) if "angle_sin" in column else np.full(there.shape, np.nan),
    )


def read_oracle(slots: np.ndarray) -> SlotReading:
    """The oracle's slots (T, MAX_OBJECTS, SLOT_DIM): the truth, object o in slot o."""
    return read_slots(slots, ORACLE_FIELDS, confidence="opacity", scaled=False)


def read_learned(slots: np.ndarray) -> SlotReading:
    """synth-slots' object slots (T, K, SLOT_DIM) in the layout of vidcap_core/features/slots.py."""
    return read_slots(slots, learned_slots.SLOT_FIELDS, confidence=learned_slots.CONFIDENCE_FIELD,
                      scaled=learned_slots.SCALED_BY_CONFIDENCE)


# ----------------------------------------------------------------------------- one clip


def match_slots(truth: SlotReading, learned: SlotReading, objects: int) -> dict[int, int]:
    """{object: slot} for the whole clip (Hungarian on position over the clip)."""
    drawn = truth.opacity[:, :objects] > 0  # (T, O)
    visible = truth.opacity[:, :objects] >= VISIBLE
    there = learned.present  # (T, K)
    gap = np.linalg.norm(learned.xy[:, :, None] - truth.xy[:, None, :objects], axis=-1)  # (T, K, O)
    both = there[:, :, None] & drawn[:, None, :]  # (T, K, O)
    alone = (there[:, :, None] & ~drawn[:, None, :]) | (~there[:, :, None] & visible[:, None, :])
    cost_sum = np.where(both, np.minimum(gap, MISS_COST), 0.0).sum(0) + MISS_COST * alone.sum(0)  # (K, O)
    counted = (both | alone).sum(0)  # (K, O)
    cost = np.where(counted > 0, cost_sum / np.maximum(counted, 1), MISS_COST)  # (K, O)
    slots, objs = linear_sum_assignment(cost)
    return {int(o): int(k) for k, o in zip(slots, objs)}


def identity_swaps(truth: SlotReading, learned: SlotReading, objects: int) -> np.ndarray:
    """(O,) swaps per object: per frame, present slots are matched to visible objects (Hungarian on
    position, pairs within SWAP_GATE); a swap is a matched frame whose slot differs from the last one."""
    T = truth.opacity.shape[0]
    last: list[int | None] = [None] * objects
    swaps = np.zeros(objects, dtype=np.int64)
    for t in range(T):
        objs = [o for o in range(objects) if truth.opacity[t, o] >= VISIBLE]
        slots = list(np.flatnonzero(learned.present[t]))
        if not objs or not slots:
            continue
        gap = np.linalg.norm(learned.xy[t, slots][:, None] - truth.xy[t, objs][None], axis=-1)  # (k, o)
        for i, j in zip(*linear_sum_assignment(gap)):
            if gap[i, j] <= SWAP_GATE:
                o, k = objs[j], int(slots[i])
                swaps[o] += last[o] is not None and last[o] != k
                last[o] = k
    return swaps


def jitters(truth: SlotReading, learned: SlotReading, o: int, k: int | None, seen: np.ndarray, order: int,
            size: float) -> dict[str, np.ndarray]:
    """Per frame t (NaN at t = 0 and where not measured): how much object o's slot k changed since t - 1
    while the truth did not: position (px), turn (degrees modulo symmetry), attribute argmax flips."""
    T = len(seen)
    out = {name: np.full(T, np.nan) for name in ("position_jitter_px", "angle_jitter_deg", "flips")}
    if k is None or T < 2:
        return out
    pair = seen[1:] & seen[:-1]  # (T - 1,)
    still = pair & (np.linalg.norm(np.diff(truth.xy[:, o], axis=0), axis=-1) < STILL)
    moved = np.linalg.norm(np.diff(learned.xy[:, k], axis=0), axis=-1) * size
    out["position_jitter_px"][1:] = np.where(still, moved, np.nan)
    if order:
        unturned = pair & (np.abs(np.angle(np.exp(1j * np.diff(truth.turn[:, o])))) < STILL)
        turned = np.degrees(np.abs(np.angle(np.exp(1j * np.diff(learned.turn[:, k]))))) / order
        out["angle_jitter_deg"][1:] = np.where(unturned, turned, np.nan)
    flips = np.zeros(T - 1, bool)
    steady = pair.copy()
    for name in ("shape", "colour", "size"):
        steady &= np.diff(getattr(truth, name)[:, o]) == 0
        flips |= np.diff(getattr(learned, name)[:, k]) != 0
    out["flips"][1:] = np.where(steady, flips.astype(float), np.nan)
    return out


def event_of_frames(plan: ClipPlan, frames: np.ndarray, objects: int) -> np.ndarray:
    """(T, O) the kind of event each object is in at each sampled clip frame (NO_EVENT between events)."""
    kinds = np.full((len(frames), objects), NO_EVENT, dtype=object)
    for event in plan.events:
        inside = (frames >= event.start_frame) & (frames <= event.end_frame)
        kinds[inside, event.actor] = EVENT_KINDS[event.action]
    return kinds


def clip_rows(video_id: str, plan: ClipPlan, truth: SlotReading, learned: SlotReading,
              frames: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(object-frame rows, object rows) of one clip; `frames` (T,) the clip frame of each sampled frame."""
    O, size = len(plan.shapes), float(plan.frame_size)
    match = match_slots(truth, learned, O)
    swaps = identity_swaps(truth, learned, O)
    kinds = event_of_frames(plan, frames, O)
    frame_rows, object_rows = [], []
    for o in range(O):
        k = match.get(o)
        op = truth.opacity[:, o]  # (T,)
        visible = op >= VISIBLE
        there = learned.present[:, k] if k is not None else np.zeros(len(op), bool)
        seen = visible & there
        gap = np.linalg.norm(learned.xy[:, k] - truth.xy[:, o], axis=-1) if k is not None else np.full(len(op), np.inf)
        order = ROTATION_ORDER[plan.shapes[o]]
        others = [u for u in range(O) if u != o]
        apart = np.stack([np.linalg.norm(truth.xy[:, u] - truth.xy[:, o], axis=-1) for u in others], 1) if others else None
        reach = np.stack([truth.scale[:, u] + truth.scale[:, o] for u in others], 1) if others else None
        overlapping = ((apart < reach) & (truth.opacity[:, others] > 0)).any(1) if others else np.zeros(len(op), bool)

        def where_seen(values: np.ndarray) -> np.ndarray:
            return np.where(seen, values, np.nan)

        k_ = k if k is not None else 0
        predicted_opacity = learned.opacity[:, k_] if k is not None else np.zeros(len(op))  # 0 where the slot is empty
        turn_error = np.abs(np.angle(np.exp(1j * (learned.turn[:, k_] - truth.turn[:, o])))) / max(order, 1)
        frame_rows.append(pd.DataFrame({
            "clip": video_id, "objects": O, "object": o, "frame": np.arange(len(op)), "event": kinds[:, o],
            "fading": (op > 0) & (op < 1), "overlapping": overlapping & (op > 0),
            "presence": np.where((op <= 0) | visible, (there == visible).astype(float), np.nan),
            "shape": where_seen(learned.shape[:, k_] == truth.shape[:, o]),
            "colour": where_seen(learned.colour[:, k_] == truth.colour[:, o]),
            "size": where_seen(learned.size[:, k_] == truth.size[:, o]),
            "scale_px": where_seen(np.abs(learned.scale[:, k_] - truth.scale[:, o]) * size),
            "opacity": np.where((op > 0) | (predicted_opacity > 0), np.abs(predicted_opacity - op), np.nan),
            "position_px": where_seen(gap * size),
            "angle_deg": where_seen(np.degrees(turn_error)) if order else np.full(len(op), np.nan),
            **jitters(truth, learned, o, k, seen, order, size),
        }))
        followed = (visible & there & (gap <= FOLLOW_DISTANCE)).sum() >= 0.5 * visible.sum() if visible.any() else True
        object_rows.append({"clip": video_id, "objects": O, "object": o, "swaps": int(swaps[o]),
                            "unfollowed": float(not followed)})
    return pd.concat(frame_rows, ignore_index=True), pd.DataFrame(object_rows)


# ----------------------------------------------------------------------------- a feature cache


@dataclass
class PerceptionRows:
    """Every test object-frame and object of a measured cache (the table is built from them)."""

    frames: pd.DataFrame  # one row per (clip, object, sampled frame): FIELDS and the grouping columns
    objects: pd.DataFrame  # one row per (clip, object): swaps, unfollowed


def measure_perception(features: Path, synth_root: Path, split: str = "test", max_clips: int | None = None) -> PerceptionRows:
    """Match the slots of a feature cache (synth-slots, or the oracle's own) of the SynthClips folder
    `synth_root` to the oracle's objects, clip by clip, for the clips of `split`."""
    store = FeatureStore(features)
    if not store.has_grid:
        raise FeatureError(f"features in {features} have no slots (no grid): extract them with --grid")
    reader = {"synth-slots": read_learned, "oracle": read_oracle}.get(store.meta["backbone"])
    if reader is None:
        raise FeatureError(f"features in {features} are {store.meta['backbone']!r}; perception is measured on object "
                           f"slots: extract --backbone synth-slots (or oracle) with --grid")
    return measure_slots(store.load_grid, reader, synth_root, split, max_clips)


def split_clips(synth_root: Path, split: str, max_clips: int | None = None) -> list[str]:
    """The video ids of `split` in the SynthClips folder, in clip order (video2 before video10)."""
    from vidcap_core.synth.checker import load_ground_truth

    truths = load_ground_truth(Path(synth_root))
    ids = sorted((v for v, t in truths.items() if t.split == split), key=lambda v: (len(v), v))[:max_clips]
    if not ids:
        raise FeatureError(f"the SynthClips folder {synth_root} has no {split} clips to measure")
    return ids


def measure_slots(clip_slots: Callable[[str], np.ndarray], reader: Callable[[np.ndarray], SlotReading],
                  synth_root: Path, split: str = "test", max_clips: int | None = None) -> PerceptionRows:
    """Match the slots `clip_slots(video_id)` (T, K, S) of each clip of `split` of the SynthClips folder,
    read by `reader`, to the oracle's objects (a cache's slots, or a tracker run on a cache's grids)."""
    ids = split_clips(synth_root, split, max_clips)
    plans = SynthClipsPlans(Path(synth_root))
    frame_parts, object_parts = [], []
    for video_id in ids:
        slots = clip_slots(video_id)  # (T, K, S)
        plan = plans.plan(video_id)
        _, truth_slots = oracle_features(plan, len(slots))  # (T, MAX_OBJECTS, G) at the same frames
        frames = sample_frame_indices(plan.num_frames, len(slots))  # (T,)
        part_frames, part_objects = clip_rows(video_id, plan, read_oracle(truth_slots), reader(slots), frames)
        frame_parts.append(part_frames)
        object_parts.append(part_objects)
    return PerceptionRows(pd.concat(frame_parts, ignore_index=True), pd.concat(object_parts, ignore_index=True))


def group_row(label: str, frames: pd.DataFrame, objects: pd.DataFrame) -> dict:
    clips = objects["clip"].nunique()
    return {"group": label, "clips": clips, "objects": len(objects), "object-frames": len(frames),
            **{name: frames[name].mean() for name in FIELDS},
            "swaps per clip": objects["swaps"].sum() / clips if clips else np.nan,
            "unfollowed": objects["unfollowed"].mean() if len(objects) else np.nan}


def perception_table(rows: PerceptionRows) -> pd.DataFrame:
    """One row per group: all, by objects in the clip, by event kind, mid-fade and overlapping.
    Accuracies (presence, shape, colour, size) are shares; scale, position in px; opacity 0..1;
    angle in degrees; swaps per clip and the share of objects no slot follows."""
    frames, objects = rows.frames, rows.objects
    out = [group_row("all", frames, objects)]
    for n in sorted(frames["objects"].unique()):
        out.append(group_row(f"{n} object{'s' if n > 1 else ''}", frames[frames["objects"] == n],
                             objects[objects["objects"] == n]))
    groups = {kind: frames["event"] == kind for kind in [*dict.fromkeys(EVENT_KINDS.values()), NO_EVENT]}
    groups.update({condition: frames[condition] for condition in ("fading", "overlapping")})
    for label, chosen in groups.items():
        if chosen.any():  # the objects with a frame in the group: their swaps and whether they are followed
            keys = frames.loc[chosen, ["clip", "object"]].drop_duplicates()
            out.append(group_row(label, frames[chosen], objects.merge(keys, on=["clip", "object"])))
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------- faults per clip

FAULT_SHARE = 0.1  # an object whose matched slot is wrong on more than this share of its judged frames has the fault
FAULT_FIELDS = ("presence", "shape", "colour", "size")  # per-frame right/wrong fields that make a fault


def clip_faults(rows: PerceptionRows) -> pd.DataFrame:
    """One row per clip (index: video id), a bool column per perception fault: `presence`, `shape`,
    `colour`, `size` (some object's slot wrong on more than FAULT_SHARE of the frames where the field is
    judged), `swap` (some object's slot swapped identity) and `unfollowed` (some object no slot follows);
    `any` when the clip has at least one. A caption model's errors can then be read against them."""
    per_object = rows.frames.groupby(["clip", "object"])[list(FAULT_FIELDS)].mean()  # share right; NaN: never judged
    wrong = (per_object < 1.0 - FAULT_SHARE).groupby(level="clip").any()  # (clips, fields)
    objects = rows.objects.groupby("clip")
    wrong["swap"] = objects["swaps"].sum() > 0
    wrong["unfollowed"] = objects["unfollowed"].sum() > 0
    wrong["any"] = wrong.any(axis=1)
    return wrong
