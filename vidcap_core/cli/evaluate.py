"""`vidcap evaluate`: score a run's best checkpoint (or any checkpoint) on one split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from vidcap_core.options import DatasetName, FrameOrder


def evaluate_command(
    run: Annotated[Optional[Path], typer.Option(help="Run directory from `vidcap train` (uses best.pt and its config.json).")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="A checkpoint file instead of --run (then give --features, --dataset, --root).")] = None,
    features: Annotated[Optional[Path], typer.Option(help="Feature folder (default: the run's).")] = None,
    dataset: Annotated[Optional[DatasetName], typer.Option(help="Dataset (with --checkpoint).")] = None,
    root: Annotated[Optional[Path], typer.Option(help="Dataset root (with --checkpoint).")] = None,
    annotations: Annotated[Optional[Path], typer.Option(help="Annotation file (with --checkpoint).")] = None,
    split: Annotated[Literal["train", "val", "test"], typer.Option(help="Split to evaluate.")] = "test",
    beam: Annotated[int, typer.Option(min=1, help="Beam size (1 = greedy).")] = 1,
    length_penalty: Annotated[float, typer.Option(help="GNMT length-penalty alpha for beam search (0 = none).")] = 0.0,
    frame_order: Annotated[FrameOrder, typer.Option(help="Frame order at test time (shuffled/reversed = ablations).")] = "ordered",
    out_dir: Annotated[Optional[Path], typer.Option(help="Where to write the predictions JSONL (default: next to the checkpoint).")] = None,
    metrics: Annotated[Optional[str], typer.Option(help="Comma-separated subset of Bleu_1..4, METEOR, ROUGE_L, CIDEr (default all).")] = None,
    device: Annotated[Literal["auto", "cpu", "cuda"], typer.Option(help="auto = cuda if available, else cpu.")] = "auto",
    output_format: Annotated[Literal["json", "text"], typer.Option("--format", help="json prints one object; text a table.")] = "text",
) -> None:
    """Caption every clip of a split from cached features and print BLEU-1..4, METEOR, ROUGE-L, CIDEr (and SynthClips' semantic scores)."""
    from vidcap_core.errors import ConfigError, VidcapError
    from vidcap_core.evaluation import METRICS
    from vidcap_core.pipeline import evaluate_checkpoint, evaluate_run

    try:
        wanted = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else list(METRICS)
        if (run is None) == (checkpoint is None):
            raise ConfigError("Give exactly one of --run RUN_DIR or --checkpoint FILE.")
        if run is not None:
            report = evaluate_run(run, split=split, beam=beam, length_penalty=length_penalty, frame_order=frame_order,
                                  features=features, out_dir=out_dir, device=device, metrics=wanted)
        else:
            if features is None or dataset is None or root is None:
                raise ConfigError("--checkpoint needs --features, --dataset and --root (or use --run RUN_DIR).")
            report = evaluate_checkpoint(checkpoint, features, dataset, root, annotations=annotations, split=split,
                                         beam=beam, length_penalty=length_penalty, frame_order=frame_order,
                                         out_dir=out_dir, device=device, metrics=wanted)
    except VidcapError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    if output_format == "json":
        typer.echo(json.dumps(report.to_dict(), indent=2, allow_nan=False))  # to_dict is JSON-safe: NaN -> null
        return
    typer.echo(f"{report.split}: {report.n_videos} videos, beam {report.beam}, frames {report.frame_order}")
    for name, value in {**report.metrics, **(report.semantic or {})}.items():
        typer.echo(f"  {name:<18} {value:.4f}")
    typer.echo(f"  predictions: {report.predictions_file}")
