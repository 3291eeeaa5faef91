"""Datasets and feature caches the suites train on: made once, reused from the cache folder.

With no `--dataset`, SynthClips presets are generated into `<cache>/synth/<preset>-<key>/` and
their features extracted into `<cache>/features/<key>/`. A folder counts as finished only once its
`bench_complete.json` marker exists; generation writes into a temp folder renamed at the end, and
feature extraction is resumable by itself, so an interrupted preparation is simply redone/resumed.

Sets grown from one preset and seed (`train_multiplier`) share their clips: clip i of each is the same
file (`generate_synthclips`), so a finished sibling's videos and per-clip features are hard-linked in
(`link_shared_clips`) and only the clips it lacks are rendered and extracted: the data suite's 8 x set
costs its 8400 new clips, not 17700.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.identity import compute_key_material, dataset_key_material, stable_hash
from vidcap_core.errors import DatasetError, FeatureError
from vidcap_core.files import atomic_write_text, file_sha256
from vidcap_core.numerics import DATASET_STAGES, FEATURE_STAGES, backbone_stages

COMPLETE_MARKER = "bench_complete.json"
ORACLE_BACKBONE = "oracle"  # SynthClips' ground-truth scene state (vidcap_core/features/oracle.py): the ceiling
DEFAULT_CACHE = Path(".cache/vidcap-bench")


@dataclass(frozen=True)
class DatasetSource:
    """A dataset a run reads: its loader name, root, and what makes it this dataset."""

    name: str  # synth | msvd | msrvtt | csv
    root: Path
    annotations: Path | None = None
    max_videos: int | float | None = None
    synth_preset: str | None = None  # set when the benchmark generates the data itself
    synth_clips: int | None = None
    synth_seed: int = 0
    synth_train_multiplier: int = 1  # N x the preset's training clips, val and test fixed (generate_synthclips)

    @property
    def is_synth(self) -> bool:
        return self.name == "synth"

    @property
    def label(self) -> str:
        if self.synth_preset is not None:
            clips = f", {self.synth_clips} clips" if self.synth_clips else ""
            grown = (f", {self.synth_train_multiplier} x its training clips (val and test unchanged)"
                     if self.synth_train_multiplier != 1 else "")
            return f"SynthClips {self.synth_preset}{clips}{grown} (seed {self.synth_seed})"
        return f"{self.name} at {self.root}"

    def identity(self) -> dict[str, Any]:
        if self.synth_preset is not None:
            # a preset's own set keeps the identity (and every key) it had before sets could grow
            grown = {"train_multiplier": self.synth_train_multiplier} if self.synth_train_multiplier != 1 else {}
            return {"dataset": "synth", "preset": self.synth_preset, "clips": self.synth_clips,
                    "seed": self.synth_seed, **grown, **dataset_key_material(DATASET_STAGES)}
        annotations = self.annotations
        return {
            "dataset": self.name,
            "root": str(self.root.resolve()),
            "annotations": None if annotations is None else str(annotations.resolve()),
            "annotations_sha": file_sha256(annotations) if annotations is not None and annotations.is_file() else None,
            "max_videos": self.max_videos,
        }


@dataclass(frozen=True)
class FeatureSource:
    """Features of one dataset under one backbone, frame count and frame size.

    The cache holds each frame's region grid next to its vector (`vidcap features --grid`): the
    attention suite's region models read it, and it is what lets any run's best model serve raw
    video either way. On SynthClips' backbones it costs little (synth-cnn: 16 x 21 per frame).
    """

    dataset: DatasetSource
    backbone: str
    num_frames: int
    dir: Path
    weights: Path | None = None
    frame_size: int | None = None
    weights_id: str = ""
    grid: bool = True

    @property
    def label(self) -> str:
        return f"{self.backbone}, {self.num_frames} frames"

    def identity(self) -> dict[str, Any]:
        # extraction runs on the default device (extract_features(device=None))
        stages = (*FEATURE_STAGES, *backbone_stages(self.backbone))
        return {"dataset": self.dataset.identity(), "backbone": self.backbone, "weights": self.weights_id,
                "frames": self.num_frames, "frame_size": self.frame_size, "grid": self.grid,
                **compute_key_material(stages)}


@dataclass
class PrepLog:
    """Seconds spent generating and extracting, by folder: part of each suite's wall time."""

    seconds: dict[str, float] = field(default_factory=dict)


def synth_source(cache: Path, preset: str, clips: int | None, seed: int = 0, train_multiplier: int = 1) -> DatasetSource:
    """A SynthClips set the benchmark generates into `cache`: `preset` (resized to `clips`), `seed`, and
    `train_multiplier` x its training clips with its val and test clips unchanged."""
    probe = DatasetSource("synth", Path("."), synth_preset=preset, synth_clips=clips, synth_seed=seed,
                          synth_train_multiplier=train_multiplier)
    key = stable_hash(probe.identity())
    grown = f"-x{train_multiplier}" if train_multiplier != 1 else ""
    return DatasetSource("synth", cache / "synth" / f"{preset}{grown}-{key}", synth_preset=preset, synth_clips=clips,
                         synth_seed=seed, synth_train_multiplier=train_multiplier)


def backbone_weights_id(backbone: str, weights: Path | None) -> str:
    """The weights a backbone would use (a file digest or a fixed init), without extracting anything."""
    from vidcap_core.features.backbones import build_backbone

    return build_backbone(backbone, weights).weights_id


def feature_source(cache: Path, dataset: DatasetSource, backbone: str, num_frames: int,
                   weights: Path | None = None, frame_size: int | None = None) -> FeatureSource:
    weights_id = backbone_weights_id(backbone, weights)
    probe = FeatureSource(dataset, backbone, num_frames, Path("."), weights, frame_size, weights_id)
    key = stable_hash(probe.identity())
    return FeatureSource(dataset, backbone, num_frames, cache / "features" / f"{backbone}-{num_frames}f-{key}",
                         weights, frame_size, weights_id)


def is_complete(directory: Path) -> bool:
    return (directory / COMPLETE_MARKER).is_file()


def mark_complete(directory: Path, info: dict[str, Any]) -> None:
    atomic_write_text(directory / COMPLETE_MARKER, json.dumps(info, indent=2, default=str) + "\n")


def features_cover(source: FeatureSource, seeds: tuple[int, ...]) -> bool:
    """True when the cache is finished for every clip the runs of `seeds` read."""
    if not is_complete(source.dir):
        return False
    covered = json.loads((source.dir / COMPLETE_MARKER).read_text()).get("seeds", [])
    return covered == "all" or set(seeds) <= set(covered)


def records_to_extract(data: DatasetSource, seeds: tuple[int, ...]) -> list:
    """Captioned records on disk that some run with one of `seeds` reads, each once."""
    from vidcap_core.data import load_dataset

    chosen: dict[str, Any] = {}
    for seed in (seeds if data.max_videos is not None else (0,)):
        dataset = load_dataset(data.name, data.root, annotations=data.annotations, max_videos=data.max_videos, seed=seed)
        chosen.update({r.video_id: r for r in dataset.records if r.captions and r.exists})
    if not chosen:
        raise DatasetError(f"{data.label} has no captioned videos on disk: check --root {data.root}")
    return [chosen[k] for k in sorted(chosen)]


def synth_clip_count(root: Path) -> int:
    """How many clips a finished SynthClips folder holds (its synth.json)."""
    return int(json.loads((root / "synth.json").read_text(encoding="utf-8"))["counts"]["clips"])


def without_multiplier(identity: dict[str, Any]) -> dict[str, Any]:
    """A dataset's or a feature cache's identity with the SynthClips train_multiplier set aside."""
    if isinstance(identity.get("dataset"), dict):  # a feature cache: its dataset's identity inside
        return {**identity, "dataset": without_multiplier(identity["dataset"])}
    return {k: v for k, v in identity.items() if k != "train_multiplier"}


def grown_siblings(folder: Path, identity: dict[str, Any]) -> list[Path]:
    """Finished folders next to `folder` (same parent) whose recorded identity equals `identity` but for the
    SynthClips train_multiplier: the same preset, seed, backbone... grown to another size."""
    def base(found: dict[str, Any]) -> str:
        return json.dumps(without_multiplier(found), sort_keys=True, default=str)

    wanted = base(json.loads(json.dumps(identity, default=str)))
    siblings = []
    for other in sorted(folder.parent.glob("*")) if folder.parent.is_dir() else []:
        if other == folder or not is_complete(other):
            continue
        recorded = json.loads((other / COMPLETE_MARKER).read_text(encoding="utf-8")).get("identity")
        if isinstance(recorded, dict) and base(recorded) == wanted:
            siblings.append(other)
    return siblings


def link_shared_clips(files: list[tuple[Path, Path]]) -> int:
    """Hard-link each (existing source, missing target) pair (a copy across file systems); returns how many."""
    linked = 0
    for source, target in files:
        if target.exists() or not source.is_file():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        linked += 1
    return linked


def shared_videos(source: DatasetSource, folder: Path) -> list[tuple[Path, Path]]:
    """(sibling's video, this set's video) for every clip a finished grown sibling of `source` shares with it."""
    if source.synth_preset is None:
        return []
    from vidcap_core.synth.config import resolve_config
    from vidcap_core.synth.generator import grown_roles, video_id

    clips = len(grown_roles(resolve_config(source.synth_preset, source.synth_clips), source.synth_seed,
                            source.synth_train_multiplier))
    pairs = []
    for sibling in grown_siblings(source.root, source.identity()):
        shared = min(clips, synth_clip_count(sibling))
        pairs += [(sibling / "videos" / f"{video_id(i)}.mp4", folder / "videos" / f"{video_id(i)}.mp4") for i in range(shared)]
    return pairs


def shared_features(source: FeatureSource, records: list) -> dict[str, list[tuple[Path, Path]]]:
    """{video id: [(sibling's file, this cache's file)]} for every clip of `records` whose feature files (the
    vector, and the grid when the cache keeps grids) a finished cache of a grown sibling dataset (same backbone,
    weights, frames, size) holds: the same clip in both sets, so the bytes that sibling's extraction wrote."""
    if source.dataset.synth_preset is None:
        return {}
    from vidcap_core.features.store import feature_path, grid_path

    found: dict[str, list[tuple[Path, Path]]] = {}
    for sibling in grown_siblings(source.dir, source.identity()):
        for video in (r.video_id for r in records if r.video_id not in found):
            pairs = [(feature_path(sibling, video), feature_path(source.dir, video))]
            if source.grid:
                pairs.append((grid_path(sibling, video), grid_path(source.dir, video)))
            if all(theirs.is_file() for theirs, _ in pairs):
                found[video] = pairs
    return found


def ensure_dataset(source: DatasetSource, log: PrepLog | None = None, say=print) -> None:
    """Generate a benchmark SynthClips set if it is not cached; check a user dataset's root exists."""
    if source.synth_preset is None:
        if not source.root.is_dir():
            raise DatasetError(f"dataset root {source.root} does not exist: pass --root with the folder of your {source.name} copy")
        return
    if is_complete(source.root):
        return
    from vidcap_core.synth import generate_synthclips

    started = time.perf_counter()
    say(f"generating {source.label} into {source.root} ...")
    partial = source.root.with_name(source.root.name + f".partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    linked = link_shared_clips(shared_videos(source, partial))
    if linked:
        say(f"linked {linked} clips shared with a finished set grown from the same preset and seed")
    summary = generate_synthclips(source.synth_preset, partial, seed=source.synth_seed, num_clips=source.synth_clips,
                                  train_multiplier=source.synth_train_multiplier)
    mark_complete(partial, {"identity": source.identity(), "summary": summary})
    if source.root.exists():  # an unfinished folder from an older layout: replace it
        shutil.rmtree(source.root)
    os.replace(partial, source.root)
    seconds = time.perf_counter() - started
    say(f"generated {source.label} in {seconds:.0f} s")
    if log is not None:
        log.seconds[str(source.root)] = seconds


def ensure_features(source: FeatureSource, seeds: tuple[int, ...] = (0,), log: PrepLog | None = None, say=print,
                    progress: bool = False) -> None:
    """Extract (or finish extracting) the features of every clip a run with one of `seeds` reads.

    Training trims a dataset (`max_videos`) with the run's own seed, so with trimming the union of
    the subsets of all `seeds` is extracted; without trimming, every clip.
    """
    if features_cover(source, seeds):
        return
    ensure_dataset(source.dataset, log, say)
    from vidcap_core.features.extract import extract_features

    data = source.dataset
    records = records_to_extract(data, seeds)
    started = time.perf_counter()
    shared = shared_features(source, records)
    own = [r for r in records if r.video_id not in shared]
    say(f"extracting {source.label} features of {len(own)} clips of {data.label}"
        + (f" ({len(shared)} more shared with a finished set grown from the same preset and seed: linked)" if shared else "")
        + " ...")
    # The shared clips are linked after the extraction: it sweeps each clip's interrupted writes with a listing
    # of the folder, which a folder already holding thousands of linked files makes quadratic.
    summary = extract_features(own or records[:1], source.backbone, source.dir, num_frames=source.num_frames,
                               frame_size=source.frame_size, weights=source.weights, grid=source.grid,
                               progress=progress)
    link_shared_clips([pair for pairs in shared.values() for pair in pairs])
    if summary.failed:
        first = next(iter(summary.failed.items()))
        say(f"warning: {len(summary.failed)} clip(s) could not be read and have no features (e.g. {first[0]}: {first[1]})")
        if len(summary.failed) == len(records):
            raise FeatureError(f"no clip of {data.label} could be read; first error: {first[1]}")
    covered: str | list[int] = "all" if source.dataset.max_videos is None else sorted(seeds)
    mark_complete(source.dir, {"identity": source.identity(), "seeds": covered, "summary": summary.to_dict()})
    seconds = time.perf_counter() - started
    say(f"extracted {source.label} features in {seconds:.0f} s ({summary.frames_per_s:.0f} frames/s)")
    if log is not None:
        log.seconds[str(source.dir)] = seconds
