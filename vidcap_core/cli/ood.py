"""`vidcap calibrate-ood CHECKPOINT`: store the out-of-distribution calibration next to a checkpoint.

`vidcap train` writes it at the end of training; this command does the same for a checkpoint
trained before that, from the feature cache of the data it was trained on (its train and val
splits). It prints the threshold and the share of validation (and, when cached, test) clips
flagged, so the choice of percentile can be judged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from vidcap_core.options import DatasetName


def calibrate_ood_command(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint to calibrate (a run's best.pt, results/best/model.pt).")],
    features: Annotated[Path, typer.Option(help="Feature cache of the data the checkpoint was trained on (vidcap features).")],
    root: Annotated[Path, typer.Option(help="That dataset's folder (its splits say which clips are train and val).")],
    dataset: Annotated[DatasetName, typer.Option(help="Dataset format of --root.")] = "synth",
    annotations: Annotated[Optional[Path], typer.Option(help="Annotation file, when it is not at its usual place under --root.")] = None,
    percentile: Annotated[float, typer.Option(min=50.0, max=100.0, help="Threshold = this percentile of the validation clips' scores.")] = 99.5,
    output_format: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """Fit the OOD score on the training clips' features, pick its threshold on the validation clips."""
    from vidcap_core.errors import VidcapError

    try:
        summary = calibrate_checkpoint_from_dataset(checkpoint, features, dataset, root, annotations, percentile)
    except VidcapError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    if output_format == "json":
        typer.echo(json.dumps(summary))
        return
    typer.echo(f"Wrote {summary['sidecar']}: threshold {summary['threshold']:.2f} (percentile {percentile:g} of "
               f"{summary['val_clips']} validation clips; fitted on {summary['train_clips']} training clips).")
    for split in ("val", "test"):
        if summary.get(f"{split}_flagged") is not None:
            typer.echo(f"{split}: {summary[f'{split}_flagged']:.1%} of {summary[f'{split}_clips']} clips flagged")


def calibrate_checkpoint_from_dataset(checkpoint: Path, features: Path, dataset: str, root: Path,
                                      annotations: Path | None, percentile: float) -> dict[str, Any]:
    """Fit, store next to the checkpoint, and report the flagged share of each split with features."""
    from vidcap_core.checkpoint import load_checkpoint
    from vidcap_core.data import load_dataset
    from vidcap_core.errors import FeatureError
    from vidcap_core.features.ood import calibrate_from_features, save_ood
    from vidcap_core.features.store import FeatureStore

    preprocessing = dict(load_checkpoint(checkpoint).preprocessing or {})
    store = FeatureStore(features)
    ds = load_dataset(dataset, root, annotations=annotations)
    ids = {split: [r.video_id for r in ds.split(split) if store.has(r.video_id)] for split in ("train", "val", "test")}
    if not ids["train"] or not ids["val"]:
        raise FeatureError(f"{features} has no features for the train or val clips of {root}; "
                           f"extract them: `vidcap features --dataset {dataset} --root {root} --out {features}`.")
    calibration = calibrate_from_features(features, ids["train"], ids["val"], preprocessing, percentile)
    sidecar = save_ood(calibration, checkpoint)
    summary: dict[str, Any] = {"sidecar": str(sidecar), "threshold": calibration.threshold,
                               "train_clips": calibration.train_clips, "val_clips": calibration.val_clips}
    for split in ("val", "test"):
        if ids[split]:
            scores = [calibration.score(store.load(i)) for i in ids[split]]
            summary[f"{split}_clips"] = len(scores)
            summary[f"{split}_flagged"] = sum(s.flagged for s in scores) / len(scores)
    return summary
