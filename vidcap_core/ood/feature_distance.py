"""The feature half of the OOD score: how far a clip's frame features lie from the training frames'.

Every frame feature of the training clips goes into one mean and one covariance, shrunk towards a
scaled identity (Ledoit-Wolf; frames, not clip averages, because 420 clips do not pin down a
256 x 256 covariance, while their 13,000 frames do); a clip's score is the mean over its frames of
each frame's Mahalanobis distance from it. Per-frame features with extra trailing dims (a region
grid (T, R, G)) are flattened to one vector per frame. The threshold is a high percentile of the
validation clips' scores (clips the fit never saw).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vidcap_core.errors import FeatureError

DEFAULT_PERCENTILE = 99.75  # of each score: the two together flag at most 0.5% of validation clips


def frame_vectors(feats: np.ndarray, dim: int) -> np.ndarray:
    """One clip's per-frame features (T, F), (T, R, G) or with a leading batch of 1 -> (T, dim):
    the trailing dims whose product is `dim` become each frame's vector. FeatureError when none do."""
    feats = np.asarray(feats, dtype=np.float64)
    for first in range(1, feats.ndim):
        if math.prod(feats.shape[first:]) == dim:
            return feats.reshape(-1, dim)  # (T, dim)
    raise FeatureError(f"clip features of shape {feats.shape} have no per-frame vector of {dim} dims as the OOD "
                       "calibration expects; recalibrate with `vidcap calibrate-ood`.")


@dataclass(frozen=True)
class FeatureDistance:
    """Mean and shrunk inverse covariance of the training frames' features, and the threshold."""

    mean: np.ndarray  # (F,) float64, over training frames
    precision: np.ndarray  # (F, F) float64: inverse of the shrunk covariance of training frames
    threshold: float
    percentile: float
    shrinkage: float  # 0 = sample covariance, 1 = scaled identity
    train_clips: int
    val_clips: int
    val_scores: np.ndarray  # (M,) scores of the validation clips (the threshold's evidence)

    def frame_distances(self, frames: np.ndarray) -> np.ndarray:
        """(T, F) frame features -> (T,) Mahalanobis distances from the training frames."""
        centred = np.asarray(frames, dtype=np.float64) - self.mean  # (T, F)
        return np.sqrt(np.maximum(np.einsum("tf,fg,tg->t", centred, self.precision, centred), 0.0))

    def clip_score(self, feats: np.ndarray) -> float:
        """One clip's features ((T, F), (T, R, G), or either with a leading 1) -> the mean of its frames' distances."""
        return float(self.frame_distances(frame_vectors(feats, len(self.mean))).mean())


def real_frames(feats: np.ndarray, mask: np.ndarray | None = None) -> list[np.ndarray]:
    """(N, T, ...) frame features (and an optional (N, T) mask of real frames) -> N arrays (T_i, ...)."""
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


def check_percentile(percentile: float) -> float:
    if not 50.0 <= percentile <= 100.0:
        raise FeatureError(f"OOD percentile must be in [50, 100], got {percentile}.")
    return float(percentile)


def fit_feature_distance(train_clips: Sequence[np.ndarray], val_clips: Sequence[np.ndarray],
                         percentile: float = DEFAULT_PERCENTILE) -> FeatureDistance:
    """Fit on the frame features of training clips ((T_i, F) or (T_i, R, G) each), threshold on validation clips'."""
    if len(train_clips) < 2 or len(val_clips) < 1:
        raise FeatureError(f"OOD calibration needs at least 2 training and 1 validation clips, got "
                           f"{len(train_clips)} and {len(val_clips)}.")
    check_percentile(percentile)
    frames = np.concatenate([np.asarray(c, dtype=np.float64).reshape(len(c), -1) for c in train_clips])  # (sum T_i, F)
    covariance, shrinkage = shrunk_covariance(frames)
    partial = FeatureDistance(frames.mean(axis=0), np.linalg.pinv(covariance, hermitian=True), np.inf, percentile,
                              shrinkage, len(train_clips), len(val_clips), np.zeros(0))
    val_scores = np.array([partial.clip_score(clip) for clip in val_clips])  # (M,)
    return FeatureDistance(partial.mean, partial.precision, float(np.percentile(val_scores, percentile)), percentile,
                           shrinkage, len(train_clips), len(val_clips), val_scores)
