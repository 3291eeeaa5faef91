"""How unlike its training data a clip looks: an out-of-distribution (OOD) score per caption.

A captioner trained on SynthClips answers any video with a SynthClips sentence, so a caption of
a cooking video reads as confidently as one of a synthetic clip. The score tells them apart
from what the model itself sees, the backbone features:

- every frame feature (F,) of the training clips goes into one mean and one covariance, shrunk
  towards a scaled identity (Ledoit-Wolf; frames, not clip averages, because 420 clips do not
  pin down a 256 x 256 covariance, while their 13,000 frames do);
- a clip's score is the mean over its frames of each frame's Mahalanobis distance from it;
- the threshold is a high percentile of the validation clips' scores (clips the fit never saw),
  so about (100 - percentile)% of in-distribution clips are flagged by construction.

Measured on the committed best model (README, "What the model knows"): averaging the frames
first, then one distance per clip, flagged 1.7% of SynthClips test clips and missed more real
videos; the per-frame distance flagged none of the test clips.

The calibration is data stored next to its checkpoint (`<checkpoint stem>.ood.npz`: arrays
and one JSON string, read with `allow_pickle=False`), together with the checkpoint's
preprocessing facts; a calibration made for other features is refused when loaded. It is
written at the end of `vidcap train` and by `vidcap calibrate-ood` for existing checkpoints.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidcap_core.errors import CheckpointError, FeatureError
from vidcap_core.files import atomic_write_bytes

OOD_VERSION = 1
DEFAULT_PERCENTILE = 99.5
SIDECAR_SUFFIX = ".ood.npz"
# Preprocessing facts that decide what the features mean; a calibration is valid only for these.
FEATURE_FACTS = ("backbone", "weights", "feature_dim", "num_frames", "frame_size")


@dataclass(frozen=True)
class OodScore:
    """One clip's score against a calibration; `flagged` when it exceeds the threshold."""

    score: float
    threshold: float

    @property
    def flagged(self) -> bool:
        return self.score > self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {"score": round(self.score, 3), "threshold": round(self.threshold, 3), "flagged": self.flagged}


@dataclass(frozen=True)
class OodCalibration:
    """Mean and shrunk inverse covariance of the training clips' vectors, and the threshold."""

    mean: np.ndarray  # (F,) float64, over training frames
    precision: np.ndarray  # (F, F) float64: inverse of the shrunk covariance of training frames
    threshold: float
    percentile: float
    shrinkage: float  # 0 = sample covariance, 1 = scaled identity
    train_clips: int
    val_clips: int
    val_scores: np.ndarray  # (M,) scores of the validation clips (the threshold's evidence)
    facts: dict[str, Any]  # the checkpoint preprocessing facts the features came from (FEATURE_FACTS)

    def frame_distances(self, frames: np.ndarray) -> np.ndarray:
        """(T, F) frame features -> (T,) Mahalanobis distances from the training frames."""
        centred = np.asarray(frames, dtype=np.float64) - self.mean  # (T, F)
        return np.sqrt(np.maximum(np.einsum("tf,fg,tg->t", centred, self.precision, centred), 0.0))

    def clip_score(self, frames: np.ndarray) -> float:
        """(T, F) or (1, T, F) frame features of one clip -> the mean of its frames' distances."""
        feats = np.asarray(frames, dtype=np.float64)
        feats = feats.reshape(-1, feats.shape[-1])  # (T, F)
        if feats.shape[1] != len(self.mean):
            raise FeatureError(f"clip features have {feats.shape[1]} dims but the OOD calibration expects "
                               f"{len(self.mean)}; recalibrate with `vidcap calibrate-ood`.")
        return float(self.frame_distances(feats).mean())

    def score(self, frames: np.ndarray) -> OodScore:
        """(T, F) or (1, T, F) frame features of one clip -> its OodScore."""
        return OodScore(self.clip_score(frames), self.threshold)


def real_frames(feats: np.ndarray, mask: np.ndarray | None = None) -> list[np.ndarray]:
    """(N, T, F) frame features (and an optional (N, T) mask of real frames) -> N arrays (T_i, F)."""
    feats = np.asarray(feats)
    if mask is None:
        return list(feats)
    return [clip[np.asarray(keep, dtype=bool)] for clip, keep in zip(feats, mask)]


def shrunk_covariance(vectors: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrinkage of the sample covariance of (N, F) vectors: (covariance (F, F), shrinkage)."""
    n, f = vectors.shape
    centred = vectors - vectors.mean(axis=0)  # (N, F)
    sample = centred.T @ centred / n  # (F, F)
    scale = np.trace(sample) / f
    target_distance = float(((sample - scale * np.eye(f)) ** 2).sum()) / f
    spread = (float(((centred ** 2).sum(axis=1) ** 2).sum()) / n - float((sample ** 2).sum())) / (n * f)
    shrinkage = 1.0 if target_distance <= 0 else float(np.clip(spread / target_distance, 0.0, 1.0))
    return (1.0 - shrinkage) * sample + shrinkage * scale * np.eye(f), shrinkage


def fit_ood(train_clips: Sequence[np.ndarray], val_clips: Sequence[np.ndarray], facts: dict[str, Any],
            percentile: float = DEFAULT_PERCENTILE) -> OodCalibration:
    """Calibrate on the (T_i, F) frame features of training clips, threshold on validation clips'."""
    if len(train_clips) < 2 or len(val_clips) < 1:
        raise FeatureError(f"OOD calibration needs at least 2 training and 1 validation clips, got "
                           f"{len(train_clips)} and {len(val_clips)}.")
    if not 50.0 <= percentile <= 100.0:
        raise FeatureError(f"OOD percentile must be in [50, 100], got {percentile}.")
    frames = np.concatenate([np.asarray(c, dtype=np.float64) for c in train_clips])  # (sum T_i, F)
    covariance, shrinkage = shrunk_covariance(frames)
    partial = OodCalibration(frames.mean(axis=0), np.linalg.pinv(covariance, hermitian=True), np.inf, percentile,
                             shrinkage, len(train_clips), len(val_clips), np.zeros(0), feature_facts(facts))
    val_scores = np.array([partial.clip_score(clip) for clip in val_clips])  # (M,)
    threshold = float(np.percentile(val_scores, percentile))
    return OodCalibration(partial.mean, partial.precision, threshold, percentile, shrinkage, len(train_clips),
                          len(val_clips), val_scores, partial.facts)


def feature_facts(preprocessing: dict[str, Any]) -> dict[str, Any]:
    return {key: preprocessing.get(key) for key in FEATURE_FACTS}


def sidecar_path(checkpoint: Path) -> Path:
    """results/best/model.pt -> results/best/model.ood.npz."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + SIDECAR_SUFFIX)


def save_ood(calibration: OodCalibration, checkpoint: Path) -> Path:
    """Write the calibration next to `checkpoint` (atomically); returns its path."""
    meta = {"version": OOD_VERSION, "threshold": calibration.threshold, "percentile": calibration.percentile,
            "shrinkage": calibration.shrinkage, "train_clips": calibration.train_clips,
            "val_clips": calibration.val_clips, "facts": calibration.facts}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, mean=calibration.mean, precision=calibration.precision,
                        val_scores=calibration.val_scores, meta=np.array(json.dumps(meta)))
    path = sidecar_path(checkpoint)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_ood(checkpoint: Path, preprocessing: dict[str, Any]) -> OodCalibration | None:
    """The calibration stored next to `checkpoint`, or None when it has none.

    Raises CheckpointError when the file is unreadable or was made for other features
    (another backbone, weights, frame count or size than `preprocessing`).
    """
    path = sidecar_path(checkpoint)
    if not path.is_file():
        return None
    fix = f"recalibrate it: `vidcap calibrate-ood {checkpoint} --features DIR --dataset synth --root DATA`"
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {key: np.asarray(data[key], dtype=np.float64) for key in ("mean", "precision", "val_scores")}
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not a readable OOD calibration ({exc}); {fix}.") from exc
    if meta.get("version") != OOD_VERSION:
        raise CheckpointError(f"{path} has OOD calibration version {meta.get('version')!r}, expected {OOD_VERSION}; {fix}.")
    expected = json.loads(json.dumps(feature_facts(preprocessing)))  # lists vs tuples, as stored
    if meta["facts"] != expected:
        raise CheckpointError(f"{path} was calibrated on other features ({meta['facts']}) than {checkpoint} "
                              f"uses ({expected}); {fix}.")
    return OodCalibration(arrays["mean"], arrays["precision"], float(meta["threshold"]), float(meta["percentile"]),
                          float(meta["shrinkage"]), int(meta["train_clips"]), int(meta["val_clips"]),
                          arrays["val_scores"], meta["facts"])


def calibrate_from_features(features_dir: Path, train_ids: Sequence[str], val_ids: Sequence[str],
                            preprocessing: dict[str, Any], percentile: float = DEFAULT_PERCENTILE) -> OodCalibration:
    """Fit from a feature cache (vidcap features) and the ids of the training and validation clips."""
    from vidcap_core.features.store import FeatureStore

    store = FeatureStore(features_dir)
    mismatched = {key: (store.meta.get(key), preprocessing.get(key)) for key in ("backbone", "feature_dim", "num_frames")
                  if store.meta.get(key) != preprocessing.get(key)}
    if mismatched:
        raise FeatureError(f"features in {features_dir} differ from the checkpoint's preprocessing "
                           f"(feature: (cache, checkpoint) = {mismatched}); extract them with the checkpoint's settings.")
    return fit_ood([store.load(i) for i in train_ids], [store.load(i) for i in val_ids], preprocessing, percentile)


def calibrate_checkpoint(checkpoint: Path, train_feats: np.ndarray, train_mask: np.ndarray,
                         val_feats: np.ndarray, val_mask: np.ndarray, preprocessing: dict[str, Any],
                         percentile: float = DEFAULT_PERCENTILE) -> Path:
    """Fit on training and validation frame features ((N, T, F) with (N, T) masks, as training
    stacks them) and store the calibration next to `checkpoint`; returns the sidecar's path."""
    calibration = fit_ood(real_frames(train_feats, train_mask), real_frames(val_feats, val_mask),
                          preprocessing, percentile)
    return save_ood(calibration, checkpoint)
