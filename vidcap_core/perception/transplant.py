"""Learned perception transplanted into perfect perception, one group of fields at a time.

A decoder trained on the oracle's slots reads the test clips with one group of an object's fields
(presence, opacity, shape, colour, size, position, angle) replaced by what the learned slot matched to that
object perceives (measure.match_slots), everything else left at the truth. The drop in exact
accuracy against the untouched oracle says what that group's perception errors cost the captions
of a decoder that never saw them; all groups at once is the learned perception in the oracle's
layout. The oracle's fields that synth-slots has no counterpart for (drawn RGB, continuous scale) stay
at the truth in every row, so "all" is not the learned slots themselves (and a decoder trained on the
learned slots adapts to their errors, which this one did not).

  presence   frames the learned slot does not hold the object become empty (all zeros, as the oracle
             writes an undrawn object; an object no slot follows is empty throughout)
  opacity    the slot's confidence (synth-cnn's detection probability, trained on the opacity) as the opacity
  shape, colour, size, position (x, y), angle (sin, cos)
             the slot's values of the fields both layouts name alike, in the frames both hold the object

A slot's frames without a drawn object (a spurious track, a slot lingering after a fade) are left out:
the oracle has no values to change there.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from vidcap_core.errors import FeatureError
from vidcap_core.features import slots as learned_slots
from vidcap_core.features.oracle import SLOT_FIELDS as ORACLE_FIELDS
from vidcap_core.features.jobs import save_clip
from vidcap_core.features.store import DISK_DTYPE, FeatureStore
from vidcap_core.perception.measure import match_slots, read_learned, read_oracle, split_clips

TRANSPLANT_VERSION = 2  # bump when transplant() writes other values: it names the caches and evaluations made with it
TRANSPLANT_GROUPS: dict[str, tuple[str, ...]] = {
    "presence": ("present",),
    "opacity": ("opacity",),
    "shape": tuple(f for f in learned_slots.SLOT_FIELDS if f.startswith("shape=")),
    "colour": tuple(f for f in learned_slots.SLOT_FIELDS if f.startswith("colour=")),
    "size": tuple(f for f in learned_slots.SLOT_FIELDS if f.startswith("size=")),
    "position": ("x", "y"),
    "angle": ("angle_sin", "angle_cos"),
}
_ORACLE = {name: i for i, name in enumerate(ORACLE_FIELDS)}
_LEARNED = {name: i for i, name in enumerate(learned_slots.SLOT_FIELDS)}
_CONFIDENCE = _LEARNED[learned_slots.CONFIDENCE_FIELD]


def transplant(oracle: np.ndarray, learned: np.ndarray, pairs: Mapping[int, int], groups: Sequence[str]) -> np.ndarray:
    """Oracle slots (T, O, len(ORACLE_FIELDS)) with `groups` taken from the learned slots (T, K,
    len(learned SLOT_FIELDS)) matched to each object, `pairs` {object: slot}. Returns a new array."""
    unknown = sorted(set(groups) - set(TRANSPLANT_GROUPS))
    if unknown:
        raise FeatureError(f"unknown field groups {unknown}: choose from {', '.join(TRANSPLANT_GROUPS)}")
    out = oracle.astype(np.float32, copy=True)
    drawn = out[:, :, _ORACLE["present"]] > 0  # (T, O)
    for o in range(out.shape[1]):
        k = pairs.get(o)
        if k is None:  # no slot follows the object: only presence says so
            if "presence" in groups:
                out[:, o] = 0.0
            continue
        held = learned[:, k, _CONFIDENCE] > 0  # (T,)
        both = drawn[:, o] & held  # (T,)
        for group in groups:
            if group == "opacity":
                out[both, o, _ORACLE["opacity"]] = learned[both, k, _CONFIDENCE]
            elif group != "presence":
                for name in TRANSPLANT_GROUPS[group]:
                    out[both, o, _ORACLE[name]] = learned[both, k, _LEARNED[name]]
        if "presence" in groups:  # last: it empties frames the other groups may have written
            out[drawn[:, o] & ~held, o] = 0.0
    return out


def drawn_objects(oracle: np.ndarray) -> int:
    """How many of the oracle's slots (T, O, G) hold an object in some frame: objects fill slots 0, 1, ..."""
    ever = np.flatnonzero((oracle[:, :, _ORACLE["present"]] > 0).any(0))
    return int(ever[-1]) + 1 if len(ever) else 0


def write_transplanted(oracle_dir: Path, learned_dir: Path, synth_root: Path, groups: Sequence[str], out_dir: Path,
                       split: str = "test") -> Path:
    """A feature cache of the `split` clips of the SynthClips folder: the oracle's slots (from `oracle_dir`)
    with `groups` from the learned slots of `learned_dir` (synth-slots). Written into a sibling folder and
    renamed into place, so `out_dir` is either complete or absent; an existing `out_dir` is kept as it is."""
    out_dir = Path(out_dir)
    if out_dir.is_dir():
        return out_dir
    oracle, learned = FeatureStore(oracle_dir), FeatureStore(learned_dir)
    for store, backbone in ((oracle, "oracle"), (learned, "synth-slots")):
        if store.meta.get("backbone") != backbone or not store.has_grid:
            raise FeatureError(f"{store.dir} holds {store.meta.get('backbone')!r} features"
                               f"{'' if store.has_grid else ' without slots'}; a transplant needs {backbone} slots (--grid)")
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    shutil.copy(oracle.dir / "features.json", partial / "features.json")
    for video_id in split_clips(synth_root, split):
        truth, seen = oracle.load_grid(video_id), learned.load_grid(video_id)  # (T, O, G), (T, K, S)
        pairs = match_slots(read_oracle(truth), read_learned(seen), drawn_objects(truth))
        mixed = transplant(truth, seen, pairs, groups)  # (T, O, G)
        save_clip(partial, video_id, (mixed.reshape(len(mixed), -1).astype(DISK_DTYPE), mixed.astype(DISK_DTYPE)))
    partial.rename(out_dir)
    return out_dir
