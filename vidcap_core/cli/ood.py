"""`vidcap calibrate-ood CHECKPOINT`: store the out-of-distribution calibration next to a checkpoint.

`vidcap train` writes it at the end of training; this command does the same for an existing
checkpoint, from the feature cache of the data it was trained on (its train and val splits) and
that data's videos, decoded for the frame statistics (a sample of the training videos, every
validation video). It prints both thresholds, the share of validation (and, when cached, test)
clips flagged, and how long it took, so the choice of percentile and sample can be judged.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from vidcap_core.options import DatasetName


def calibrate_ood_command(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint to calibrate (a run's best.pt, results/best/model.pt).")],
    features: Annotated[Path, typer.Option(help="Feature cache of the data the checkpoint was trained on (vidcap features).")],
    root: Annotated[Path, typer.Option(help="That dataset's folder, with its videos (its splits say which clips are train and val).")],
    dataset: Annotated[DatasetName, typer.Option(help="Dataset format of --root.")] = "synth",
    annotations: Annotated[Optional[Path], typer.Option(help="Annotation file, when it is not at its usual place under --root.")] = None,
    percentile: Annotated[float, typer.Option(min=50.0, max=100.0, help="Each score's threshold = this percentile of the validation clips' scores.")] = 99.75,
    train_sample: Annotated[int, typer.Option(min=2, help="Training videos decoded for the frame statistics (a seeded sample).")] = 400,
    output_format: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """Fit the OOD scores on the training clips (features, decoded frames), pick their thresholds on the validation clips."""
    from vidcap_core.errors import VidcapError

    try:
        summary = calibrate_checkpoint_from_dataset(checkpoint, features, dataset, root, annotations, percentile,
                                                    train_sample)
    except VidcapError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    if output_format == "json":
        typer.echo(json.dumps(summary))
        return
    feats, frames = summary["features"], summary["frames"]
    typer.echo(f"Wrote {summary['sidecar']} in {summary['seconds']:.1f} s: feature threshold {feats['threshold']:.2f} "
               f"(fitted on {feats['train_clips']} training clips), frame-statistics threshold {frames['threshold']:.2f} "
               f"(fitted on {frames['train_clips']} decoded training videos, {frames['unreadable']} unreadable); each "
               f"the {percentile:g}th percentile of {feats['val_clips']} validation clips.")
    for split in ("val", "test"):
        if split in summary:
            shares = summary[split]
            typer.echo(f"{split}: {shares['flagged']:.1%} of {shares['clips']} clips flagged (features "
                       f"{shares['features_flagged']:.1%}, frame statistics {shares['frames_flagged']:.1%})")


def calibrate_checkpoint_from_dataset(checkpoint: Path, features: Path, dataset: str, root: Path,
                                      annotations: Path | None, percentile: float,
                                      train_sample: int = 400) -> dict[str, Any]:
    """Fit, store next to the checkpoint, and report the flagged shares of each split with features."""
    from vidcap_core.checkpoint import load_checkpoint
    from vidcap_core.data import load_dataset
    from vidcap_core.errors import FeatureError
    from vidcap_core.ood import SplitVideos, calibrate_from_features, save_ood
    from vidcap_core.features.store import FeatureStore

    preprocessing = dict(load_checkpoint(checkpoint).preprocessing or {})
    store = FeatureStore(features)
    ds = load_dataset(dataset, root, annotations=annotations)
    records = {split: [r for r in ds.split(split) if store.has(r.video_id)] for split in ("train", "val", "test")}
    if not records["train"] or not records["val"]:
        raise FeatureError(f"{features} has no features for the train or val clips of {root}; "
                           f"extract them: `vidcap features --dataset {dataset} --root {root} --out {features}`.")
    check_features_match_videos(store, records["val"][0], preprocessing)
    started = time.perf_counter()
    videos = SplitVideos([r.path for r in records["train"]], [r.path for r in records["val"]])
    calibration = calibrate_from_features(features, [r.video_id for r in records["train"]],
                                          [r.video_id for r in records["val"]], preprocessing, videos, percentile,
                                          train_sample)
    sidecar = save_ood(calibration, checkpoint)
    feats, frames = calibration.features, calibration.frames
    summary: dict[str, Any] = {
        "sidecar": str(sidecar), "percentile": percentile, "seconds": round(time.perf_counter() - started, 2),
        "features": {"threshold": feats.threshold, "train_clips": feats.train_clips, "val_clips": feats.val_clips},
        "frames": {"threshold": frames.threshold, "train_clips": frames.train_clips, "val_clips": frames.val_clips,
                   "unreadable": frames.unreadable},
    }
    for split in ("val", "test"):
        if records[split]:
            summary[split] = flagged_shares(calibration, store, records[split], preprocessing)
    return summary


def flagged_shares(calibration: Any, store: Any, records: list[Any], preprocessing: dict[str, Any]) -> dict[str, Any]:
    """Score every clip of `records` that decodes: {clips, flagged, features_flagged, frames_flagged} (shares)."""
    from vidcap_core.ood.frame_statistics import frame_size_of, summarize_videos

    decoded = summarize_videos([r.path for r in records], int(preprocessing["num_frames"]), frame_size_of(preprocessing))
    unreadable = {str(path) for path, _ in decoded.unreadable}
    load = store.load_grid if preprocessing.get("grid") else store.load
    readable = [r for r in records if str(r.path) not in unreadable]
    scores = [calibration.score_summary(load(r.video_id), summary) for r, summary in zip(readable, decoded.summaries)]
    count = max(len(scores), 1)
    return {"clips": len(scores), "unreadable": len(unreadable), "flagged": sum(s.flagged for s in scores) / count,
            "features_flagged": sum(s.features.flagged for s in scores) / count,
            "frames_flagged": sum(s.frames.flagged for s in scores) / count}


def check_features_match_videos(store: Any, record: Any, preprocessing: dict[str, Any]) -> None:
    """FeatureError when the cache's features of one clip are not what the checkpoint's backbone makes of
    its video in --root (a cache of another dataset or seed): the calibration would describe other clips.
    Skipped when the backbone is not made from pixels or its weights are not the default ones."""
    import numpy as np

    from vidcap_core.errors import FeatureError, VidcapError
    from vidcap_core.features.backbones import build_backbone
    from vidcap_core.features.extract import encode_clips
    from vidcap_core.ood.frame_statistics import frame_size_of
    from vidcap_core.video import read_frames

    try:
        backbone = build_backbone(preprocessing["backbone"])
        if backbone.weights_id != preprocessing.get("weights"):
            return
        frames = read_frames(record.path, int(preprocessing["num_frames"]), frame_size_of(preprocessing))
        ((made, _),) = encode_clips(backbone, [frames], batch_size=len(frames), grid=False)  # (T, F) float16
    except VidcapError:
        return  # features not made from pixels, or the video unreadable: decoding reports it
    cached = store.load(record.video_id)  # (T, F)
    difference = float(np.abs(made.astype(np.float32) - cached).max()) if made.shape == cached.shape else float("inf")
    if difference > 0.05 * max(1.0, float(np.abs(cached).max())):
        raise FeatureError(f"the cached features of {record.video_id} in {store.dir} are not those of its video "
                           f"{record.path} (largest difference {difference:.3g}): the cache was extracted from other "
                           "videos (another dataset or seed); pass the feature cache of --root.")
