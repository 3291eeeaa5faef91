"""`vidcap train`: options (or a .json/.toml config file) -> TrainConfig -> `train`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from vidcap_core.options import ArchName, CellName, DatasetName, DeviceName, FrameOrder


def train_command(
    out: Annotated[Path, typer.Option("--out", help="Run directory: config.json, vocab.json, last.pt, best.pt, log.jsonl, gradients.jsonl.")],
    config: Annotated[Optional[Path], typer.Option("--config", help="A .json or .toml file of training options; flags given here override it.")] = None,
    dataset: Annotated[Optional[DatasetName], typer.Option(help="Dataset loader.")] = None,
    root: Annotated[Optional[Path], typer.Option(help="Dataset root folder.")] = None,
    annotations: Annotated[Optional[Path], typer.Option(help="Annotation file (csv datasets, or to override the default).")] = None,
    features: Annotated[Optional[Path], typer.Option(help="Feature folder written by `vidcap features`.")] = None,
    max_videos: Annotated[Optional[str], typer.Option(help="Videos per split: a count (50) or a fraction in (0, 1] (0.1); all by default.")] = None,
    arch: Annotated[Optional[ArchName], typer.Option(help="Architecture.")] = None,
    cell: Annotated[Optional[CellName], typer.Option(help="Recurrent cell.")] = None,
    embed_size: Annotated[Optional[int], typer.Option(help="Word embedding size.")] = None,
    hidden_size: Annotated[Optional[int], typer.Option(help="Recurrent hidden size.")] = None,
    num_layers: Annotated[Optional[int], typer.Option(help="Layers per recurrent stack.")] = None,
    attention_size: Annotated[Optional[int], typer.Option(help="Attention projection size (attention arch).")] = None,
    dropout: Annotated[Optional[float], typer.Option(help="Dropout probability.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Maximum epochs.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Global batch size (split across torchrun ranks).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate.")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(help="Adam weight decay.")] = None,
    grad_clip: Annotated[Optional[float], typer.Option(help="Clip the total gradient norm to this; 0 turns clipping off.")] = None,
    scheduled_sampling: Annotated[Optional[float], typer.Option(help="Maximum scheduled-sampling probability (0 = off).")] = None,
    scheduled_sampling_ramp: Annotated[Optional[int], typer.Option(help="Epochs over which that probability rises linearly from 0.")] = None,
    min_count: Annotated[Optional[int], typer.Option(help="Words rarer than this in train captions become UNK.")] = None,
    max_caption_words: Annotated[Optional[int], typer.Option(help="Maximum words per caption, EOS not counted (training and decoding).")] = None,
    captions_per_video: Annotated[Optional[int], typer.Option(help="Captions sampled per video per epoch; 0 = every caption.")] = None,
    patience: Annotated[Optional[int], typer.Option(help="Stop after this many validations without a val-CIDEr gain; 0 = never.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of initialisation, data order and dropout.")] = None,
    frame_order: Annotated[Optional[FrameOrder], typer.Option(help="Training-time frame order (shuffled = ablation).")] = None,
    val_every: Annotated[Optional[int], typer.Option(help="Validate every N epochs.")] = None,
    val_metrics: Annotated[Optional[str], typer.Option(help="Comma-separated val metrics (default all; CIDEr always).")] = None,
    torch_threads: Annotated[Optional[int], typer.Option(help="CPU threads for torch (0 = torch default).")] = None,
    probe_every: Annotated[Optional[int], typer.Option(help="Gradient-flow probe every N epochs (0 = only at initialisation).")] = None,
    device: Annotated[Optional[DeviceName], typer.Option(help="auto = cuda if available, else cpu.")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue the run in --out from last.pt if there is one.")] = True,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Train a caption model on cached features; picks the best epoch on val CIDEr. Prints the result as JSON."""
    from vidcap_core.data import parse_max_videos
    from vidcap_core.errors import VidcapError
    from vidcap_core.training import resolve_config, train

    overrides = dict(
        dataset=dataset, root=path_text(root), features=path_text(features), annotations=path_text(annotations),
        arch=arch, cell=cell, embed_size=embed_size, hidden_size=hidden_size, num_layers=num_layers,
        attention_size=attention_size, dropout=dropout, epochs=epochs, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, grad_clip=grad_clip, scheduled_sampling=scheduled_sampling,
        scheduled_sampling_ramp=scheduled_sampling_ramp, min_count=min_count, max_caption_words=max_caption_words,
        captions_per_video=captions_per_video, patience=patience, seed=seed, frame_order=frame_order,
        val_every=val_every, torch_threads=torch_threads, probe_every=probe_every, device=device,
        val_metrics=[m.strip() for m in val_metrics.split(",") if m.strip()] if val_metrics else None,
    )
    try:
        overrides["max_videos"] = parse_max_videos(max_videos)
        cfg = resolve_config(config, overrides)
        result = train(cfg, out, resume=resume, progress=progress)
    except VidcapError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    summary = {
        "run_dir": str(result.run_dir),
        "epochs_completed": result.epochs_completed,
        "best_epoch": result.best_epoch,
        "best_val": result.best_val,
        "stopped_early": result.stopped_early,
        "diverged": result.diverged,
        "final_train_loss": result.final_train_loss,
        "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
    }
    typer.echo(json.dumps(summary, indent=2))


def path_text(path: Path | None) -> str | None:
    """An absolute path string for config.json, so the run can be evaluated from any folder."""
    return str(path.resolve()) if path is not None else None
