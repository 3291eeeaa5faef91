"""`vidcap data synth`: generate a SynthClips dataset (videos, MSR-VTT annotations, ground truth)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from vidcap_core.errors import VidcapError


class SynthPreset(str, Enum):
    tiny = "tiny"
    standard = "standard"
    long = "long"


class SynthOutput(str, Enum):
    text = "text"
    json = "json"


def synth(
    preset: Annotated[SynthPreset, typer.Option("--preset", help="tiny (tests, seconds), standard (benchmark default), long (one early event, then distractors only).")] = SynthPreset.standard,
    out: Annotated[Optional[Path], typer.Option("--out", help="Output folder; default data/synthclips-<preset>. Rerun with the same options to resume.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same preset and seed give identical clips.")] = 0,
    num_clips: Annotated[Optional[int], typer.Option("--num-clips", min=1, help="Number of clips; default: the preset's.")] = None,
    train_multiplier: Annotated[int, typer.Option("--train-multiplier", min=1, help="N times the preset's training clips, its val and test clips unchanged (same files and ids; synth.json says how the set was made).")] = 1,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Rendering processes; default min(2, CPUs). The output does not depend on it.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    format: Annotated[SynthOutput, typer.Option("--format", help="Summary as text or JSON.")] = SynthOutput.text,
) -> None:
    """Generate SynthClips: synthetic clips with time-reversible events and ordered captions."""
    from vidcap_core.synth import generate_synthclips

    folder = out if out is not None else Path("data") / f"synthclips-{preset.value}"
    try:
        summary = generate_synthclips(preset.value, folder, seed=seed, num_clips=num_clips, workers=workers,
                                      progress=progress, train_multiplier=train_multiplier)
    except VidcapError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    if format is SynthOutput.json:
        typer.echo(json.dumps(summary, indent=2))
        return
    note = f" ({summary['skipped']} already there)" if summary["skipped"] else ""
    typer.echo(f"SynthClips {summary['preset']} in {summary['out_dir']}")
    typer.echo(f"clips: {summary['clips']}{note}")
    typer.echo(f"seconds: {summary['seconds']:.2f}")
    typer.echo(f"clips/s: {summary['clips_per_s']:.1f}")
    typer.echo("splits: " + ", ".join(f"{k} {v}" for k, v in summary["splits"].items()) + f"; held-out test clips: {summary['heldout']}")
