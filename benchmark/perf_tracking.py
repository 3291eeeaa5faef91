"""`vidcap-bench perf-tracking`: synth-slots' tracker (vidcap_core/features/slots.py) of this checkout
against another revision's, on the same synth-cnn region grids: what each carries of the oracle's
objects, field by field, and what it costs per clip, side by side.

- The base revision's slots.py is read out of git (`git show REV:vidcap_core/features/slots.py`) and
  imported as a module of its own beside this checkout's; it must run on this checkout's library (it
  imports vidcap_core.errors and vidcap_core.synth.catalog) and declare SLOT_FIELDS, CONFIDENCE_FIELD and
  SCALED_BY_CONFIDENCE, as every revision since the perception measure (issue #22) does.
- Both trackers read the same cached grids (`vidcap features --backbone synth-cnn --grid` of a SynthClips
  folder), so what differs is the tracking alone, not synth-cnn. Perception: each tracker's slots of every
  clip of the split are matched to the oracle's objects (vidcap_core/perception/measure.py).
- Cost: every clip's grids are loaded once; each tracker then makes the slots of all of them, in turns,
  the order reversed every other repeat, so drift and other work on the machine hit both alike. Reported:
  the median over repeats of CPU and wall milliseconds per clip, and their ratio (this / base).
"""

from __future__ import annotations

import importlib.util
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from benchmark.identity import REPO_ROOT
from vidcap_core.errors import FeatureError
from vidcap_core.features import slots as checkout_slots
from vidcap_core.features.store import FeatureStore
from vidcap_core.perception.measure import measure_slots, perception_table, read_slots, split_clips

SLOTS_PATH = "vidcap_core/features/slots.py"
THIS_CHECKOUT = "this checkout"
SHOWN = ["group", "objects", "presence", "shape", "colour", "size", "opacity", "position_px", "angle_deg",
         "position_jitter_px", "flips", "swaps per clip", "unfollowed"]


@dataclass
class TrackingPerfOptions:
    grids: Path  # a synth-cnn feature cache with --grid of the SynthClips folder
    synth_root: Path
    base: str  # a git revision whose tracker runs beside this checkout's
    split: str = "test"
    repeats: int = 5
    max_clips: int | None = None


def tracker_at(revision: str) -> ModuleType:
    """features/slots.py of git `revision` of this repository, imported as its own module."""
    shown = subprocess.run(["git", "-C", str(REPO_ROOT), "show", f"{revision}:{SLOTS_PATH}"], capture_output=True,
                           text=True, check=False)
    if shown.returncode != 0:
        raise ValueError(f"cannot read {SLOTS_PATH} at revision {revision!r}: {shown.stderr.strip()}")
    name = "vidcap_slots_at_" + re.sub(r"\W", "_", revision)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.py"
        path.write_text(shown.stdout, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is made
        spec.loader.exec_module(module)
    return module


def tracker_perception(tracker: ModuleType, grids: dict[str, np.ndarray], synth_root: Path, split: str) -> pd.DataFrame:
    """perception_table of `tracker`'s slots of each clip's grids (T, R, G)."""
    def reader(slots: np.ndarray):
        return read_slots(slots, tracker.SLOT_FIELDS, tracker.CONFIDENCE_FIELD, tracker.SCALED_BY_CONFIDENCE)

    rows = measure_slots(lambda video_id: tracker.object_slots(grids[video_id]), reader, synth_root, split,
                         max_clips=len(grids))
    return perception_table(rows)


def time_trackers(trackers: dict[str, ModuleType], grids: list[np.ndarray], repeats: int) -> pd.DataFrame:
    """Per tracker: median CPU and wall ms per clip over `repeats` turns (order reversed every other turn)."""
    cpu: dict[str, list[float]] = {name: [] for name in trackers}
    wall: dict[str, list[float]] = {name: [] for name in trackers}
    for repeat in range(repeats):
        for name in (list(trackers) if repeat % 2 == 0 else list(trackers)[::-1]):
            started_cpu, started_wall = time.process_time(), time.perf_counter()
            for grid in grids:
                trackers[name].object_slots(grid)
            cpu[name].append(1000 * (time.process_time() - started_cpu) / len(grids))
            wall[name].append(1000 * (time.perf_counter() - started_wall) / len(grids))
    return pd.DataFrame([{"tracker": name, "cpu ms/clip": statistics.median(cpu[name]),
                          "wall ms/clip": statistics.median(wall[name]), "repeats": repeats} for name in trackers])


def compare_trackers(options: TrackingPerfOptions, trackers: dict[str, ModuleType]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(perception tables of every tracker, one block per tracker in a `tracker` column; their timings)."""
    store = FeatureStore(options.grids)
    if not store.has_grid or store.meta.get("backbone") != "synth-cnn":
        raise FeatureError(f"{options.grids} is not a synth-cnn feature cache with grids: extract one with "
                           f"`vidcap features --backbone synth-cnn --grid` of {options.synth_root}")
    ids = split_clips(options.synth_root, options.split, options.max_clips)
    grids = {video_id: store.load_grid(video_id) for video_id in ids}  # (T, R, G) each, as cached
    tables = [tracker_perception(tracker, grids, options.synth_root, options.split).assign(tracker=name)
              for name, tracker in trackers.items()]
    return pd.concat(tables, ignore_index=True), time_trackers(trackers, list(grids.values()), options.repeats)


def run_tracking_perf(options: TrackingPerfOptions) -> str:
    """The markdown report: perception of the base revision's tracker and this checkout's, and their cost."""
    trackers = {f"base {options.base}": tracker_at(options.base), THIS_CHECKOUT: checkout_slots}
    tables, timings = compare_trackers(options, trackers)
    base, this = timings["cpu ms/clip"]
    lines = [f"# synth-slots tracking: {options.base} vs this checkout",
             "", f"{tables['clips'].iloc[0]} {options.split} clips of {options.synth_root}, synth-cnn grids {options.grids}.", ""]
    for name in trackers:
        shown = tables.loc[tables["tracker"] == name, SHOWN]
        lines += [f"## {name}", "", shown.to_markdown(index=False, floatfmt=".3f"), ""]
    lines += ["## cost", "", timings.to_markdown(index=False, floatfmt=".3f"), "",
              f"this / base, CPU time per clip: {this / base:.2f}", ""]
    return "\n".join(lines)

