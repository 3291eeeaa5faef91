"""How unlike its training data a clip looks: an out-of-distribution (OOD) score per caption.

A captioner trained on SynthClips answers any video with a SynthClips sentence, so a caption of
a cooking video reads as confidently as one of a synthetic clip. Two independent scores tell them
apart, and a clip is flagged when either exceeds its own threshold:

1. Features (`feature_distance.FeatureDistance`), what the model itself sees: every frame feature of the training
   clips goes into one mean and one covariance, shrunk towards a scaled identity (Ledoit-Wolf;
   frames, not clip averages, because 420 clips do not pin down a 256 x 256 covariance, while
   their 13,000 frames do); a clip's score is the mean over its frames of each frame's
   Mahalanobis distance from it. Per-frame features with extra trailing dims (a region grid
   (T, R, G)) are flattened to one vector per frame.
2. Frames (`frame_statistics.FrameStatistics`), what the decoder delivered: low-level statistics
   of the decoded frames (noise, edges, colours, motion) and the video's size and frame rate,
   each measured against the training clips' range. A backbone trained on SynthClips maps images
   it never saw into codes it knows (seeded noise scored 2.16 on the feature score, below the
   SynthClips median of 11); the pixels of SynthClips are pinned down far more tightly.

Each threshold is the DEFAULT_PERCENTILE (99.75th) percentile of the validation clips' scores
(clips the fit never saw), so each flags about 0.25% of in-distribution clips and the two
together at most 0.5% (a union bound), inside the 1% budget of issue #12. The score reported is
the larger of the two scores, each divided by its own threshold, so above 1.0 is flagged.

Measured with `vidcap-bench ood` on the best model of results/ (SynthClips standard): the feature
score alone (99.5th percentile) flagged 1 of 3 readable real videos in ../shared/videos, 1 of 4
generated patterns and 1.0% of the 600 test clips; both scores at the 99.75th percentile flag 3 of
3, 4 of 4 and 0.8% (5 clips: 4 by the features, all of them held-out compositions, 1 by the frames).

The calibration is data stored next to its checkpoint (`<checkpoint stem>.ood.npz`: arrays
and one JSON string, read with `allow_pickle=False`), together with the checkpoint's
preprocessing facts; a calibration made for other features, or by an older version, is refused
when loaded. It is written at the end of `vidcap train` (which decodes a sample of the training
and validation videos for the frame statistics) and by `vidcap calibrate-ood`.

Modules: feature_distance.py (the feature score), frame_statistics.py (the frame score),
calibration.py (OodCalibration: fitting, the sidecar file, calibrating a checkpoint).
"""

from __future__ import annotations

from vidcap_core.ood.calibration import (
    OOD_VERSION,
    OodCalibration,
    OodCalibrationSkipped,
    OodScore,
    PartScore,
    SplitVideos,
    calibrate_checkpoint,
    calibrate_from_features,
    dataset_videos,
    decode_calibration_videos,
    fit_ood,
    load_ood,
    save_ood,
    sidecar_path,
)
from vidcap_core.ood.feature_distance import DEFAULT_PERCENTILE, FeatureDistance

__all__ = [
    "DEFAULT_PERCENTILE", "OOD_VERSION", "FeatureDistance", "OodCalibration", "OodCalibrationSkipped", "OodScore",
    "PartScore", "SplitVideos", "calibrate_checkpoint", "calibrate_from_features", "dataset_videos",
    "decode_calibration_videos", "fit_ood", "load_ood", "save_ood", "sidecar_path",
]
