"""`vidcap features` (extract and cache frame features) and `vidcap pretrain-cnn` (train synth-cnn)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from vidcap_core.errors import VidcapError
from vidcap_core.options import SYNTH_CNN_WEIGHTS, BackboneName, DatasetName

SplitName = Literal["train", "val", "test"]
OutputFormat = Literal["text", "json"]


def fail(exc: VidcapError) -> typer.Exit:
    typer.echo(f"Error: {exc}", err=True)
    return typer.Exit(code=2)


def features(
    dataset: Annotated[DatasetName, typer.Option(help="Dataset format: synth (SynthClips), msrvtt, msvd, or csv (your own video,caption[,split] file).")],
    root: Annotated[Path, typer.Option(help="Folder the dataset was unpacked or generated into.")],
    out: Annotated[Path, typer.Option(help="Feature cache folder; rerun with the same settings to resume.")],
    backbone: Annotated[BackboneName, typer.Option(help="Frame encoder: a torchvision ImageNet CNN, synth-cnn (pretrained on SynthClips stills) or random (untrained).")] = "synth-cnn",
    annotations: Annotated[Optional[Path], typer.Option(help="Annotation file, when it is not at its usual place under --root.")] = None,
    frames: Annotated[int, typer.Option(min=1, help="Frames sampled per video (T).")] = 32,
    frame_size: Annotated[Optional[int], typer.Option(help="Frame side in pixels; default: the backbone's input size.")] = None,
    grid: Annotated[bool, typer.Option("--grid/--no-grid", help="Also cache the region grid (T, R, G) of every frame.")] = False,
    weights: Annotated[Optional[Path], typer.Option(help="A state_dict file to use instead of the backbone's default weights.")] = None,
    shard: Annotated[str, typer.Option(help="'i/n': process only the videos whose index (sorted by id) % n == i.")] = "0/1",
    max_videos: Annotated[Optional[str], typer.Option(help="A seeded subset: at most N videos per split (e.g. 50) or a fraction (e.g. 0.1).")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the --max-videos subset.")] = 0,
    split: Annotated[Optional[SplitName], typer.Option(help="Only this split (default: all).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Frames per forward pass, batched across videos.")] = 64,
    device: Annotated[Optional[str], typer.Option(help="torch device, e.g. cpu or cuda (default: cuda when available).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar with clips/s.")] = True,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="Summary as text or JSON.")] = "text",
) -> None:
    """Extract frame features of a dataset's videos into a resumable on-disk cache."""
    from vidcap_core.data import load_dataset, parse_max_videos
    from vidcap_core.errors import FeatureError
    from vidcap_core.features.extract import extract_features, parse_shard

    try:
        shard_ids = parse_shard(shard)
        ds = load_dataset(dataset, root, annotations=annotations, max_videos=parse_max_videos(max_videos), seed=seed)
        records = ds.split(split) if split is not None else ds.records
        if not records:
            where = f" in split {split}" if split is not None else ""
            raise FeatureError(f"dataset {root} has no videos{where}: check --root and --split")
        summary = extract_features(
            records, backbone, out, num_frames=frames, frame_size=frame_size, grid=grid, weights=weights,
            batch_size=batch_size, shard=shard_ids, progress=progress, device=device,
        )
    except VidcapError as exc:
        raise fail(exc) from exc
    if output_format == "json":
        typer.echo(json.dumps(summary.to_dict(), indent=2))
        return
    typer.echo(
        f"{out}: {summary.done} extracted, {summary.skipped} already cached, {len(summary.failed)} failed "
        f"in {summary.seconds:.1f} s ({summary.clips_per_s:.2f} clips/s, {summary.frames_per_s:.1f} frames/s)"
    )
    for video_id, message in sorted(summary.failed.items()):
        typer.echo(f"  failed {video_id}: {message}", err=True)


def pretrain_cnn(
    out: Annotated[Path, typer.Option(help="Weights file to write (.safetensors); a .json record is written beside it.")] = SYNTH_CNN_WEIGHTS,
    steps: Annotated[int, typer.Option(min=1, help="Optimiser steps.")] = 800,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the stills and of the initialisation.")] = 0,
    batch_size: Annotated[int, typer.Option(min=2, help="Stills per step.")] = 32,
    image_size: Annotated[int, typer.Option(help="Side of the square stills, and synth-cnn's input size.")] = 64,
    num_stills: Annotated[Optional[int], typer.Option(min=1, help="Training pool size (default: min(steps x batch, 8000)).")] = None,
    held_out: Annotated[int, typer.Option(min=1, help="Fresh stills the final accuracies are measured on.")] = 500,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="Accuracies as text or JSON.")] = "text",
) -> None:
    """Pretrain synth-cnn on SynthClips stills (shape, colour, size, position) and save its weights."""
    from vidcap_core.features.pretrain import pretrain_synth_cnn

    try:
        accuracies = pretrain_synth_cnn(
            out, steps=steps, batch_size=batch_size, seed=seed, image_size=image_size, num_stills=num_stills, held_out=held_out
        )
    except VidcapError as exc:
        raise fail(exc) from exc
    if output_format == "json":
        typer.echo(json.dumps(accuracies, indent=2))
        return
    shown = ", ".join(f"{head} {acc:.3f}" for head, acc in accuracies.items())
    typer.echo(f"wrote {out}; held-out accuracy: {shown}")
