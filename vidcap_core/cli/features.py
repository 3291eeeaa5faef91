"""`vidcap features` (extract and cache frame features), `vidcap pretrain-cnn` (train synth-cnn) and
`vidcap probe-features` (what read-outs find in feature caches of a SynthClips folder)."""

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
    backbone: Annotated[BackboneName, typer.Option(help="Frame encoder: a torchvision ImageNet CNN, synth-cnn (pretrained on SynthClips frames), synth-slots (synth-cnn read as object slots tracked through each clip), random (untrained synth-cnn) or oracle (SynthClips only: the ground-truth scene state, the decoders' ceiling).")] = "synth-cnn",
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
    from vidcap_core.features.extract import extract_features
    from vidcap_core.features.jobs import parse_shard

    try:
        if backbone == "oracle" and dataset != "synth":
            from vidcap_core.features.oracle import not_synthclips_error

            raise not_synthclips_error(dataset, root)
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
    steps: Annotated[int, typer.Option(min=1, help="Optimiser steps.")] = 2400,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the rendered clips and of the initialisation.")] = 0,
    batch_size: Annotated[int, typer.Option(min=2, help="Frames per step.")] = 64,
    image_size: Annotated[int, typer.Option(help="Side of the square frames, and synth-cnn's input size.")] = 64,
    num_clips: Annotated[int, typer.Option(min=1, help="SynthClips clips rendered for the training pool.")] = 3000,
    frames_per_clip: Annotated[int, typer.Option(min=1, help="Random frames taken from each rendered clip.")] = 4,
    held_out: Annotated[int, typer.Option(min=1, help="Fresh clips (another seed) whose frames the final accuracies are measured on.")] = 300,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="Accuracies as text or JSON.")] = "text",
) -> None:
    """Pretrain synth-cnn on SynthClips frames (per grid region: object, shape, colour, size, position, angle) and save its weights."""
    from vidcap_core.perception.pretrain import pretrain_synth_cnn

    try:
        accuracies = pretrain_synth_cnn(
            out, steps=steps, batch_size=batch_size, seed=seed, image_size=image_size, num_clips=num_clips,
            frames_per_clip=frames_per_clip, held_out=held_out,
        )
    except VidcapError as exc:
        raise fail(exc) from exc
    if output_format == "json":
        typer.echo(json.dumps(accuracies, indent=2))
        return
    shown = ", ".join(f"{name} {acc:.3f}" for name, acc in accuracies.items())
    typer.echo(f"wrote {out}; held-out accuracy per object: {shown}")


def probe_features_command(
    root: Annotated[Path, typer.Option(help="SynthClips folder (made by `vidcap data synth`) whose clips the caches hold.")],
    features: Annotated[list[str], typer.Option("--features", help="LABEL=FOLDER of a feature cache of --root (repeatable), e.g. oracle=feats/oracle.")],
    readout: Annotated[Optional[list[str]], typer.Option("--readout", help="Read-outs: mean, frames (linear) and gru (repeatable; default all three).")] = None,
    max_train: Annotated[Optional[int], typer.Option(min=1, help="Clip probes: use only the first N train clips (by id).")] = None,
    level: Annotated[Literal["clip", "frame", "both"], typer.Option(help="clip: first event and counts per clip; frame: objects, colours, shapes and colour-shape pairs per frame; both.")] = "both",
    csv: Annotated[Optional[Path], typer.Option(help="Also write every row (val, train, majority, clip counts) to this CSV file.")] = None,
    output_format: Annotated[Literal["markdown", "json"], typer.Option("--format", help="A markdown table of test accuracies, or every row as JSON.")] = "markdown",
) -> None:
    """Probe feature caches of a SynthClips folder: per clip (first event colour/shape/action, number of events and
    objects) and per frame (number of objects, colours, shapes, colour-shape pairs); test accuracies."""
    import pandas as pd

    from vidcap_core.errors import ConfigError
    from vidcap_core.perception.probes import POOLINGS, frame_probe_table, probe_features, probe_frame_features, probe_table
    from vidcap_core.files import atomic_write_text

    try:
        folders: dict[str, Path] = {}
        for item in features:
            label, sep, folder = item.partition("=")
            if not sep or not label or not folder:
                raise ConfigError(f"--features {item!r} must look like LABEL=FOLDER, e.g. oracle=feats/oracle")
            folders[label] = Path(folder)
        clips = probe_features(folders, root, poolings=tuple(readout or POOLINGS), max_train=max_train) if level != "frame" else None
        frames = probe_frame_features(folders, root) if level != "clip" else None
    except VidcapError as exc:
        raise fail(exc) from exc
    results = pd.concat([t.assign(level=name) for name, t in (("clip", clips), ("frame", frames)) if t is not None])
    if csv is not None:
        atomic_write_text(csv, results.to_csv(index=False))
    if output_format == "json":
        typer.echo(results.to_json(orient="records", indent=2))
        return
    if clips is not None:
        typer.echo("Per clip (test accuracy):\n" + probe_table(clips).to_markdown())
    if frames is not None:
        typer.echo("Per frame (test accuracy, exact sets):\n" + frame_probe_table(frames).to_markdown())
