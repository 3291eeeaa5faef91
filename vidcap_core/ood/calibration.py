"""The OOD calibration of a checkpoint: both scores fitted (`fit_ood`), stored next to it and read back
checked (`save_ood` / `load_ood`: `<checkpoint stem>.ood.npz`), made at the end of training
(`calibrate_checkpoint`) or from a feature cache (`calibrate_from_features`, `vidcap calibrate-ood`).
What the two scores are and how they were measured: vidcap_core/ood/__init__.py.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from vidcap_core.errors import CheckpointError, FeatureError
from vidcap_core.ood.feature_distance import (
    DEFAULT_PERCENTILE,
    FeatureDistance,
    check_percentile,
    fit_feature_distance,
    real_frames,
)
from vidcap_core.ood.frame_statistics import (
    DEFAULT_TRAIN_SAMPLE,
    DEFAULT_VAL_SAMPLE,
    STATISTIC_NAMES,
    ClipSummary,
    DecodedSample,
    FrameProber,
    FrameReader,
    FrameStatistics,
    Geometry,
    fit_frame_statistics,
    frame_size_of,
    sample_paths,
    summarize_clip,
    summarize_videos,
)
from vidcap_core.features.store import FeatureStore
from vidcap_core.files import atomic_write_bytes
from vidcap_core.video import VideoInfo, probe_video, read_frames

OOD_VERSION = 2  # 2: the frame statistics joined the feature score
COMBINED_THRESHOLD = 1.0  # OodScore.score is in units of each part's own threshold
SIDECAR_SUFFIX = ".ood.npz"
# Preprocessing facts that decide what the features mean; a calibration is valid only for these.
FEATURE_FACTS = ("backbone", "weights", "feature_dim", "num_frames", "frame_size")


class OodCalibrationSkipped(UserWarning):
    """The end of training could not calibrate the OOD score (its videos did not decode)."""


@dataclass(frozen=True)
class PartScore:
    """One of the two scores of a clip against its threshold."""

    score: float
    threshold: float
    statistic: str | None = None  # frame statistics: the one furthest outside the training clips' range

    @property
    def flagged(self) -> bool:
        return self.score > self.threshold

    @property
    def ratio(self) -> float:
        """score / threshold: above 1.0 is flagged."""
        if self.threshold > 0:
            return self.score / self.threshold
        return math.inf if self.score > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = {"score": round(self.score, 3), "threshold": round(self.threshold, 3), "flagged": self.flagged}
        if self.statistic is not None:
            out["statistic"] = self.statistic
        return out


@dataclass(frozen=True)
class OodScore:
    """One clip's two scores; `score` is the larger of their ratios to their thresholds, flagged above 1."""

    features: PartScore
    frames: PartScore
    threshold: ClassVar[float] = COMBINED_THRESHOLD

    @property
    def score(self) -> float:
        return max(self.features.ratio, self.frames.ratio)

    @property
    def flagged(self) -> bool:
        return self.features.flagged or self.frames.flagged

    def to_dict(self) -> dict[str, Any]:
        """{score, threshold, flagged, features: {score, threshold, flagged}, frames: {..., statistic}}."""
        return {"score": round(self.score, 3), "threshold": self.threshold, "flagged": self.flagged,
                "features": self.features.to_dict(), "frames": self.frames.to_dict()}


@dataclass(frozen=True)
class OodCalibration:
    """Both scores' calibrations and the preprocessing facts their features came from."""

    features: FeatureDistance
    frames: FrameStatistics
    facts: dict[str, Any]  # the checkpoint preprocessing facts the features came from (FEATURE_FACTS)
    threshold: ClassVar[float] = COMBINED_THRESHOLD

    def score_summary(self, feats: np.ndarray, summary: ClipSummary) -> OodScore:
        """One clip's features and its frames' summary -> its OodScore."""
        statistic_score, statistic = self.frames.clip_score(summary)
        return OodScore(PartScore(self.features.clip_score(feats), self.features.threshold),
                        PartScore(statistic_score, self.frames.threshold, statistic))

    def score(self, feats: np.ndarray, frames: np.ndarray, video: VideoInfo | Geometry) -> OodScore:
        """One clip: its features ((T, F) or (T, R, G), optionally with a leading 1), its decoded frames
        (T, H, W, 3) uint8 at the model's frame size, and the video's probe (size and rate) -> OodScore."""
        geometry = video if isinstance(video, Geometry) else Geometry.of(video)
        return self.score_summary(feats, summarize_clip(frames, geometry))


def fit_ood(train_clips: Sequence[np.ndarray], val_clips: Sequence[np.ndarray], train_frames: Sequence[ClipSummary],
            val_frames: Sequence[ClipSummary], facts: dict[str, Any], percentile: float = DEFAULT_PERCENTILE,
            unreadable: int = 0) -> OodCalibration:
    """Both scores: features of training / validation clips ((T_i, F) each) and the summaries of their
    decoded frames (frame_statistics.summarize_clip; a sample of the clips is enough). `unreadable`:
    how many sampled videos did not decode (recorded, not used)."""
    check_percentile(percentile)
    return OodCalibration(fit_feature_distance(train_clips, val_clips, percentile),
                          fit_frame_statistics(train_frames, val_frames, percentile, unreadable), feature_facts(facts))


def feature_facts(preprocessing: dict[str, Any]) -> dict[str, Any]:
    return {key: preprocessing.get(key) for key in FEATURE_FACTS}


def sidecar_path(checkpoint: Path) -> Path:
    """results/best/model.pt -> results/best/model.ood.npz."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + SIDECAR_SUFFIX)


def save_ood(calibration: OodCalibration, checkpoint: Path) -> Path:
    """Write the calibration next to `checkpoint` (atomically); returns its path."""
    feats, frames = calibration.features, calibration.frames
    meta = {"version": OOD_VERSION, "facts": calibration.facts,
            "features": {"threshold": feats.threshold, "percentile": feats.percentile, "shrinkage": feats.shrinkage,
                         "train_clips": feats.train_clips, "val_clips": feats.val_clips},
            "frames": {"threshold": frames.threshold, "percentile": frames.percentile, "train_clips": frames.train_clips,
                       "val_clips": frames.val_clips, "unreadable": frames.unreadable, "statistics": list(STATISTIC_NAMES)}}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, feature_mean=feats.mean, feature_precision=feats.precision,
                        feature_val_scores=feats.val_scores, frame_median=frames.median, frame_low=frames.low,
                        frame_high=frames.high, frame_colour_share=frames.colour_share,
                        frame_val_scores=frames.val_scores, meta=np.array(json.dumps(meta)))
    path = sidecar_path(checkpoint)
    atomic_write_bytes(path, buffer.getvalue())
    return path


ARRAYS = ("feature_mean", "feature_precision", "feature_val_scores", "frame_median", "frame_low", "frame_high",
          "frame_colour_share", "frame_val_scores")


def load_ood(checkpoint: Path, preprocessing: dict[str, Any]) -> OodCalibration | None:
    """The calibration stored next to `checkpoint`, or None when it has none.

    Raises CheckpointError when the file is unreadable, was written by another version of the
    score, or was made for other features (another backbone, weights, frame count or size than
    `preprocessing`).
    """
    path = sidecar_path(checkpoint)
    if not path.is_file():
        return None
    fix = (f"recalibrate it: `vidcap calibrate-ood {checkpoint} --features DIR --dataset synth --root DATA` "
           "(DATA: the dataset folder with its videos)")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("version") != OOD_VERSION:
                raise CheckpointError(f"{path} has OOD calibration version {meta.get('version')!r}, expected "
                                      f"{OOD_VERSION} (version 2 added the frame statistics); {fix}.")
            arrays = {key: np.asarray(data[key], dtype=np.float64) for key in ARRAYS}
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not a readable OOD calibration ({exc}); {fix}.") from exc
    if meta["frames"].get("statistics") != list(STATISTIC_NAMES):
        raise CheckpointError(f"{path} holds frame statistics {meta['frames'].get('statistics')} but this vidcap "
                              f"computes {list(STATISTIC_NAMES)}; {fix}.")
    expected = json.loads(json.dumps(feature_facts(preprocessing)))  # lists vs tuples, as stored
    if meta["facts"] != expected:
        raise CheckpointError(f"{path} was calibrated on other features ({meta['facts']}) than {checkpoint} "
                              f"uses ({expected}); {fix}.")
    feats, frames = meta["features"], meta["frames"]
    return OodCalibration(
        FeatureDistance(arrays["feature_mean"], arrays["feature_precision"], float(feats["threshold"]),
                        float(feats["percentile"]), float(feats["shrinkage"]), int(feats["train_clips"]),
                        int(feats["val_clips"]), arrays["feature_val_scores"]),
        FrameStatistics(arrays["frame_median"], arrays["frame_low"], arrays["frame_high"], arrays["frame_colour_share"],
                        float(frames["threshold"]), float(frames["percentile"]), int(frames["train_clips"]),
                        int(frames["val_clips"]), arrays["frame_val_scores"], int(frames["unreadable"])),
        meta["facts"])


# ----------------------------------------------------------------------------- calibrating from data


@dataclass(frozen=True)
class SplitVideos:
    """The video files of a dataset's training and validation clips."""

    train: list[Path]
    val: list[Path]


def dataset_videos(dataset: str, root: Path, annotations: Path | str | None = None,
                   max_videos: int | float | None = None, seed: int = 0) -> SplitVideos:
    """The train and val videos of a dataset, loaded as `vidcap train` loads it (captioned clips only)."""
    from vidcap_core.data import load_dataset

    ds = load_dataset(dataset, Path(root), annotations=Path(annotations) if annotations else None,
                      max_videos=max_videos, seed=seed)
    return SplitVideos(*[[r.path for r in ds.split(split) if r.captions] for split in ("train", "val")])


def decode_calibration_videos(videos: SplitVideos, preprocessing: dict[str, Any],
                              train_sample: int | None = DEFAULT_TRAIN_SAMPLE,
                              val_sample: int | None = DEFAULT_VAL_SAMPLE, seed: int = 0,
                              reader: FrameReader = read_frames,
                              prober: FrameProber = probe_video) -> tuple[DecodedSample, DecodedSample]:
    """Decode a seeded sample of the training videos (`train_sample`, None = all) and of the validation
    videos as the Captioner reads them, summarised for the frame statistics. FeatureError when fewer
    than 2 training or 1 validation video decode; other unreadable videos are left out and counted."""
    num_frames, size = int(preprocessing["num_frames"]), frame_size_of(preprocessing)
    train = summarize_videos(sample_paths(videos.train, train_sample, seed), num_frames, size, reader, prober)
    val = summarize_videos(sample_paths(videos.val, val_sample, seed), num_frames, size, reader, prober)
    if len(train.summaries) < 2 or len(val.summaries) < 1:
        error = next((message.rstrip(".") for _, message in train.unreadable + val.unreadable), "no videos listed")
        raise FeatureError(f"the OOD frame statistics decode the training and validation videos, but only "
                           f"{len(train.summaries)} training and {len(val.summaries)} validation videos decoded "
                           f"(first failure: {error}); make the dataset's videos readable there and run "
                           f"`vidcap calibrate-ood CHECKPOINT --features DIR --root DATA`.")
    return train, val


def calibrate_from_features(features_dir: Path, train_ids: Sequence[str], val_ids: Sequence[str],
                            preprocessing: dict[str, Any], videos: SplitVideos,
                            percentile: float = DEFAULT_PERCENTILE, train_sample: int | None = DEFAULT_TRAIN_SAMPLE,
                            ) -> OodCalibration:
    """Fit from a feature cache (vidcap features), the ids of the training and validation clips, and
    their videos (decoded for the frame statistics: a sample of `train_sample` training videos)."""
    store = FeatureStore(features_dir)
    mismatched = {key: (store.meta.get(key), preprocessing.get(key)) for key in ("backbone", "feature_dim", "num_frames")
                  if store.meta.get(key) != preprocessing.get(key)}
    if mismatched:
        raise FeatureError(f"features in {features_dir} differ from the checkpoint's preprocessing "
                           f"(feature: (cache, checkpoint) = {mismatched}); extract them with the checkpoint's settings.")
    load = store.load_grid if preprocessing.get("grid") else store.load  # what the model reads: (T, R, G) or (T, F)
    train, val = decode_calibration_videos(videos, preprocessing, train_sample)
    return fit_ood([load(i) for i in train_ids], [load(i) for i in val_ids], train.summaries,
                   val.summaries, preprocessing, percentile, len(train.unreadable) + len(val.unreadable))


def calibrate_checkpoint(checkpoint: Path, train_feats: np.ndarray, train_mask: np.ndarray,
                         val_feats: np.ndarray, val_mask: np.ndarray, preprocessing: dict[str, Any],
                         videos: SplitVideos | None = None, percentile: float = DEFAULT_PERCENTILE) -> Path | None:
    """The end of training's calibration: fit on training and validation frame features ((N, T, F) or
    (N, T, R, G) with (N, T) masks, as training stacks them) and a decoded sample of their `videos`
    (`dataset_videos`), and store it next to `checkpoint`; returns the sidecar's path.

    Without videos (None, or videos that do not decode: a feature cache whose videos are gone,
    features not made from pixels), training still ends well: this warns (OodCalibrationSkipped),
    removes a stale calibration and returns None; the checkpoint then has no OOD flag until
    `vidcap calibrate-ood` makes one."""
    try:
        if videos is None:
            raise FeatureError("the frame statistics need the training and validation videos, and none were given; "
                               "run `vidcap calibrate-ood CHECKPOINT --features DIR --root DATA`.")
        train, val = decode_calibration_videos(videos, preprocessing)
    except FeatureError as exc:
        sidecar_path(checkpoint).unlink(missing_ok=True)
        warnings.warn(f"{checkpoint} gets no OOD calibration: {exc}", OodCalibrationSkipped, stacklevel=2)
        return None
    calibration = fit_ood(real_frames(train_feats, train_mask), real_frames(val_feats, val_mask), train.summaries,
                          val.summaries, preprocessing, percentile, len(train.unreadable) + len(val.unreadable))
    return save_ood(calibration, checkpoint)
