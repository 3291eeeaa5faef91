"""generate_synthclips: render, encode and annotate a SynthClips dataset on disk.

Layout of `out_dir`:
  videos/video<i>.mp4     H.264 (libx264, yuv420p) written by synth/x264.py's write_h264_mp4
  videodatainfo.json      MSR-VTT format: info, videos (with split train/validate/test), sentences
  ground_truth.json       per video id: objects, events in order, frames, split, held-out flag
  synth.json              preset, seed, every generation parameter, version; written last

Every clip is a function of (seed, clip index) alone, so the output does not depend on the
number of worker processes.

Training sets that grow with val and test fixed (`train_multiplier` N > 1): clips 0..n-1 are the
preset's own n clips, split as the preset splits them, so every val and test clip (and its held-out
composition) is the preset's, byte for byte and under the same video id; clips n, n+1, ... are
(N - 1) x its training clips more, all training clips without a held-out combination, drawn from the
same seed's streams at their own indices. No training clip may equal a val or test clip (same plan,
hence the same frames): generation checks it. synth.json records how the set was made. Files are written to a temporary name and renamed, and synth.json
is written only once everything else is complete: an interrupted run leaves no half file that
looks valid, and running again with the same parameters resumes (skipping finished videos) or,
when the folder is complete, returns at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from vidcap_core.errors import ConfigError, DatasetError
from vidcap_core.files import atomic_write, atomic_write_text, sweep_interrupted_writes
from vidcap_core.synth.captions import reference_captions
from vidcap_core.synth.catalog import ACTION_FAMILIES, ACTION_FAMILY
from vidcap_core.synth.config import SynthConfig, resolve_config
from vidcap_core.synth.plan import ClipPlan, heldout_combinations, plan_for_split
from vidcap_core.synth.render import render_clip
from vidcap_core.synth.truth import ClipTruth, truth_from_plan
from vidcap_core.synth.x264 import deterministic_x264_options, write_h264_mp4

ANNOTATION_NAME = "videodatainfo.json"
GROUND_TRUTH_NAME = "ground_truth.json"
SYNTH_INFO_NAME = "synth.json"
PARTIAL_NAME = ".synth-partial.json"  # the parameters of a run in progress
VIDEO_DIR = "videos"
MSRVTT_SPLIT = {"train": "train", "val": "validate", "test": "test"}
MIN_CLIPS_FOR_POOL = 16  # fewer clips to render than this: render in this process


_JobResult = tuple[int, dict[str, Any], tuple[str, ...], bool, str]  # index, truth JSON, captions, rendered now, plan digest


@dataclass(frozen=True)
class ClipSpec:
    """One clip before encoding: its plan, its ground truth and its reference captions."""

    plan: ClipPlan
    truth: ClipTruth
    captions: tuple[str, ...]


@dataclass(frozen=True)
class _Job:
    cfg: SynthConfig
    seed: int
    index: int
    split: str
    want_heldout: bool
    video_path: Path


def video_id(index: int) -> str:
    return f"video{index}"


def assign_splits(cfg: SynthConfig, seed: int) -> list[tuple[str, bool]]:
    """(split, must show a held-out combination) per clip index; a seeded shuffle, exact fractions."""
    count = cfg.num_clips
    train = round(count * cfg.split_fractions[0])
    val = round(count * cfg.split_fractions[1])
    if count >= 3:  # every split non-empty when there is room
        train, val = max(1, min(train, count - 2)), max(1, val)
        val = min(val, count - train - 1)
    test = count - train - val
    heldout = int(test * cfg.heldout_fraction_of_test + 0.5)
    roles = [("train", False)] * train + [("val", False)] * val
    roles += [("test", True)] * heldout + [("test", False)] * (test - heldout)
    order = np.random.default_rng([seed, 2]).permutation(count)
    assigned: list[tuple[str, bool]] = [("train", False)] * count
    for role, index in zip(roles, order):
        assigned[int(index)] = role
    return assigned


def grown_roles(cfg: SynthConfig, seed: int, train_multiplier: int = 1) -> list[tuple[str, bool]]:
    """`assign_splits` for the preset's clips, then (train_multiplier - 1) x its training clips more,
    every one a training clip without a held-out combination (indices num_clips and up)."""
    if not isinstance(train_multiplier, int) or train_multiplier < 1:
        raise ConfigError(f"train_multiplier={train_multiplier!r} is invalid: use a whole number >= 1 "
                          "(N times the preset's training clips, val and test unchanged).")
    roles = assign_splits(cfg, seed)
    train = sum(split == "train" for split, _ in roles)
    return roles + [("train", False)] * (train * (train_multiplier - 1))


def plan_digest(plan: ClipPlan) -> str:
    """What makes two clips equal: the same plan renders the same frames."""
    return hashlib.sha256(repr(plan).encode("utf-8")).hexdigest()


def build_clip(cfg: SynthConfig, seed: int, index: int, split: str, want_heldout: bool) -> ClipSpec:
    """Plan, ground truth and captions of clip `index`; a pure function of its arguments."""
    plan = plan_for_split(np.random.default_rng([seed, 1, index]), cfg, want_heldout)
    in_events, _ = heldout_combinations(plan, cfg)
    truth = truth_from_plan(plan, video_id(index), split, in_events)
    captions = reference_captions(truth.events, cfg.captions_per_clip, np.random.default_rng([seed, 3, index]))
    return ClipSpec(plan, truth, tuple(captions))


def write_video(frames: np.ndarray, path: Path, fps: int, crf: int = 18) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames as H.264 yuv420p mp4 at `path`, atomically."""
    # deterministic_x264_options: without it about 1 encode in 200 came out as a second bitstream (issue #14).
    # One encoder thread: the worker processes already use the cores, and x264's per-clip thread start-up
    # costs more than it saves on 64x64 frames.
    options = {"crf": str(crf), "preset": "veryfast", **deterministic_x264_options()}
    atomic_write(path, lambda handle: write_h264_mp4(handle, frames, fps, options))


def _run_job(job: _Job) -> _JobResult:
    """Build one clip and encode it unless its video is already there (renamed into place = complete)."""
    spec = build_clip(job.cfg, job.seed, job.index, job.split, job.want_heldout)
    rendered = not job.video_path.is_file()
    if rendered:
        write_video(render_clip(spec.plan), job.video_path, job.cfg.fps, job.cfg.crf)
    return job.index, spec.truth.to_json(), spec.captions, rendered, plan_digest(spec.plan)


def _write_json_atomic(path: Path, data: Any, indent: int | None = None) -> None:
    atomic_write_text(path, json.dumps(data, indent=indent) + "\n")


def _params(cfg: SynthConfig, seed: int, train_multiplier: int = 1) -> dict[str, Any]:
    """The parameters that determine the output, as they read back from JSON (a preset's own set has no
    train_multiplier key, so its synth.json is what it was before growing sets existed)."""
    grown = {"train_multiplier": train_multiplier} if train_multiplier != 1 else {}
    return json.loads(json.dumps({"version": cfg.version, "preset": cfg.name, "seed": seed,
                                  "num_clips": cfg.num_clips, **grown, "config": cfg.to_json()}))


def _read_params(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        found = {key: data[key] for key in ("version", "preset", "seed", "num_clips")}
        grown = {"train_multiplier": data["train_multiplier"]} if "train_multiplier" in data else {}
        return {**found, **grown, "config": data["config"]}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{path} is not a readable SynthClips parameter file ({type(exc).__name__}: {exc}); "
            f"delete {path.parent} or choose another output folder."
        ) from exc


def _check_folder(out_dir: Path, params: dict[str, Any], clips: int) -> bool:
    """True when out_dir already holds this exact dataset, complete. Raises if it holds another."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"SynthClips output {out_dir} exists and is not a folder; choose another --out.")
    for name in (SYNTH_INFO_NAME, PARTIAL_NAME):
        found = _read_params(out_dir / name)
        if found is not None and found != params:
            differs = sorted(k for k in {*params, *found} if found.get(k) != params.get(k))
            raise ConfigError(
                f"{out_dir} holds SynthClips made with other parameters ({', '.join(differs)} differ: "
                f"found preset={found.get('preset')!r} seed={found.get('seed')!r} "
                f"num_clips={found.get('num_clips')!r} train_multiplier={found.get('train_multiplier', 1)!r}); "
                "choose another --out or delete that folder."
            )
    has_info = (out_dir / SYNTH_INFO_NAME).is_file()
    if not has_info and not (out_dir / PARTIAL_NAME).is_file() and (out_dir / ANNOTATION_NAME).is_file():
        raise ConfigError(
            f"{out_dir} already holds {ANNOTATION_NAME} that SynthClips did not write (no {SYNTH_INFO_NAME}); "
            "choose another --out so it is not overwritten."
        )
    videos = out_dir / VIDEO_DIR
    return (
        has_info
        and (out_dir / ANNOTATION_NAME).is_file()
        and (out_dir / GROUND_TRUTH_NAME).is_file()
        and all((videos / f"{video_id(i)}.mp4").is_file() for i in range(clips))
    )


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Temporary files of an interrupted run (vidcap_core.files.atomic_write's `.<name>.<random>.tmp`)."""
    for folder in (out_dir, out_dir / VIDEO_DIR):
        sweep_interrupted_writes(folder)


def _annotations(cfg: SynthConfig, seed: int, results: list[_JobResult]) -> dict[str, Any]:
    duration = cfg.num_frames / cfg.fps
    videos, sentences = [], []
    for index, truth, captions, *_ in results:
        first_family = ACTION_FAMILY[truth["events"][0]["action"]]
        videos.append({
            "category": ACTION_FAMILIES.index(first_family),
            "url": f"synthclips://{cfg.name}/{seed}/{video_id(index)}",
            "video_id": video_id(index),
            "start time": 0.0,
            "end time": duration,
            "split": MSRVTT_SPLIT[truth["split"]],
            "id": index,
        })
        for caption in captions:
            sentences.append({"caption": caption, "video_id": video_id(index), "sen_id": len(sentences)})
    info = {
        "contributor": "vidcap SynthClips",
        "description": f"SynthClips synthetic diagnostic clips, preset {cfg.name!r}, seed {seed}" + grown_words(len(results), cfg, seed),
        "version": cfg.version,
        "year": 2024,
        "data_created": "synthetic",
    }
    return {"info": info, "videos": videos, "sentences": sentences}


def _ground_truth(cfg: SynthConfig, seed: int, results: list[_JobResult]) -> dict[str, Any]:
    return {
        "version": cfg.version,
        "preset": cfg.name,
        "seed": seed,
        "frame_size": cfg.frame_size,
        "fps": cfg.fps,
        "heldout_colour_shape": [list(p) for p in cfg.heldout_colour_shape],
        "heldout_shape_action": [list(p) for p in cfg.heldout_shape_action],
        "clips": {video_id(index): truth for index, truth, *_ in results},
    }


def grown_words(clips: int, cfg: SynthConfig, seed: int) -> str:
    """", with the val and test clips of ..." for a grown set (more clips than the preset), else ""."""
    if clips == cfg.num_clips:
        return ""
    return (f", with the val and test clips of preset {cfg.name!r} seed {seed} ({cfg.num_clips} clips) and "
            f"{clips - cfg.num_clips} more training clips")


def growth_facts(cfg: SynthConfig, seed: int, roles: list[tuple[str, bool]], train_multiplier: int) -> dict[str, Any]:
    """synth.json's record of how a grown set was made (`grown_roles`)."""
    base_train = sum(split == "train" for split, _ in roles[: cfg.num_clips])
    extra = len(roles) - cfg.num_clips
    return {
        "base": {"preset": cfg.name, "seed": seed, "num_clips": cfg.num_clips, "train_clips": base_train},
        "extra_train_clips": extra,
        "extra_video_ids": [video_id(cfg.num_clips), video_id(len(roles) - 1)] if extra else [],
        "how": (f"{train_multiplier} x the training clips of SynthClips {cfg.name} seed {seed}: its {cfg.num_clips} clips "
                f"with their ids and splits (val and test clips, and their held-out compositions, byte for byte the "
                f"preset's), then {extra} more training clips without held-out combinations ({video_id(cfg.num_clips)} "
                f"on, from the same seed at their own indices), none equal to a val or test clip"),
    }


def check_train_clips_unseen(results: list[_JobResult]) -> None:
    """DatasetError when a training clip has the plan (hence the frames) of a val or test clip."""
    held = {r[4]: (r[1]["split"], video_id(r[0])) for r in results if r[1]["split"] != "train"}
    for index, truth, _, _, digest in results:
        if truth["split"] == "train" and digest in held:
            split, other = held[digest]
            raise DatasetError(f"SynthClips training clip {video_id(index)} equals {split} clip {other} (same plan); "
                               "use another seed.")


def _summary(cfg: SynthConfig, out_dir: Path, rendered: int, seconds: float, splits: Counter[str], heldout: int,
             clips: int) -> dict[str, Any]:
    return {
        "preset": cfg.name,
        "out_dir": str(out_dir),
        "clips": clips,
        "rendered": rendered,
        "skipped": clips - rendered,
        "seconds": seconds,
        "clips_per_s": clips / seconds if seconds > 0 else float("inf"),
        "splits": {name: splits.get(name, 0) for name in MSRVTT_SPLIT},
        "heldout": heldout,
    }


def generate_synthclips(
    preset: str | SynthConfig,
    out_dir: Path,
    seed: int = 0,
    num_clips: int | None = None,
    workers: int | None = None,
    progress: bool = False,
    train_multiplier: int = 1,
) -> dict[str, Any]:
    """Make (or finish, or confirm) SynthClips `preset` in `out_dir`; returns a summary dict.

    The summary has clips, rendered, skipped, seconds, clips_per_s, splits and heldout.
    `preset` is a name in PRESETS or a SynthConfig; `workers` (processes; default min(2, CPUs),
    unused below MIN_CLIPS_FOR_POOL clips) never changes the output; `progress` shows a
    progress bar on stderr. `train_multiplier` N > 1 makes N times the preset's training clips with
    its val and test clips unchanged (module docstring); 1 is the preset itself.
    """
    start = time.perf_counter()
    cfg = resolve_config(preset, num_clips)
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ConfigError(f"workers={workers} is invalid; use at least 1 worker process.")
    out_dir = Path(out_dir)
    params = _params(cfg, seed, train_multiplier)
    roles = grown_roles(cfg, seed, train_multiplier)
    if _check_folder(out_dir, params, len(roles)):
        truths = json.loads((out_dir / GROUND_TRUTH_NAME).read_text(encoding="utf-8"))["clips"].values()
        splits = Counter(t["split"] for t in truths)
        heldout = sum(bool(t["heldout"]) for t in truths)
        return _summary(cfg, out_dir, 0, time.perf_counter() - start, splits, heldout, len(roles))

    (out_dir / VIDEO_DIR).mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out_dir)
    _write_json_atomic(out_dir / PARTIAL_NAME, params, indent=2)
    jobs = [
        _Job(cfg, seed, i, split, heldout, out_dir / VIDEO_DIR / f"{video_id(i)}.mp4")
        for i, (split, heldout) in enumerate(roles)
    ]
    results = _run_jobs(jobs, workers, progress)
    check_train_clips_unseen(results)
    _write_json_atomic(out_dir / ANNOTATION_NAME, _annotations(cfg, seed, results))
    _write_json_atomic(out_dir / GROUND_TRUTH_NAME, _ground_truth(cfg, seed, results))
    splits = Counter(truth["split"] for _, truth, *_ in results)
    heldout = sum(bool(truth["heldout"]) for _, truth, *_ in results)
    info = {**params, "counts": {"clips": len(roles), "splits": dict(splits), "heldout": heldout}}
    if train_multiplier != 1:
        info["grown_from"] = growth_facts(cfg, seed, roles, train_multiplier)
    _write_json_atomic(out_dir / SYNTH_INFO_NAME, info, indent=2)  # last: marks the folder complete
    (out_dir / PARTIAL_NAME).unlink(missing_ok=True)
    rendered = sum(r[3] for r in results)
    return _summary(cfg, out_dir, rendered, time.perf_counter() - start, splits, heldout, len(roles))


def _run_jobs(jobs: list[_Job], workers: int, progress: bool) -> list[_JobResult]:
    from tqdm import tqdm

    def shown(results: Iterable[_JobResult]) -> list[_JobResult]:
        return list(tqdm(results, total=len(jobs), desc="SynthClips", unit="clip", disable=not progress))

    to_render = sum(not job.video_path.is_file() for job in jobs)
    if workers == 1 or to_render < MIN_CLIPS_FOR_POOL:  # starting processes would cost more than it saves
        return shown(map(_run_job, jobs))
    # spawn, not fork: the caller may hold threads (torch, a web server) that fork would copy mid-state.
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        chunk = max(1, min(32, len(jobs) // (workers * 8)))
        return shown(pool.map(_run_job, jobs, chunksize=chunk))  # map keeps clip order
