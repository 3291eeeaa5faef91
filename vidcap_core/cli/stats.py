"""`vidcap data stats`: videos, captions and missing video files per split of a dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from vidcap_core.options import DatasetName


def stats(
    dataset: Annotated[DatasetName, typer.Option(help="Dataset format: synth (SynthClips), msrvtt, msvd, or csv (your own video,caption[,split] file).")],
    root: Annotated[Path, typer.Option(help="Folder the dataset was unpacked or generated into.")],
    annotations: Annotated[Optional[Path], typer.Option(help="Annotation file, when it is not at its usual place under --root.")] = None,
    max_videos: Annotated[Optional[str], typer.Option(help="Count only a seeded subset: at most N videos per split (e.g. 50) or a fraction (e.g. 0.1).")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the --max-videos subset.")] = 0,
    output_format: Annotated[Literal["json", "table"], typer.Option("--format", help="json prints one object; table an aligned table with the loader's notes.")] = "json",
) -> None:
    """Count videos with captions, captions and missing video files in each split."""
    from vidcap_core.data import dataset_stats, format_stats_table, load_dataset, parse_max_videos
    from vidcap_core.errors import VidcapError

    try:
        ds = load_dataset(dataset, root, annotations=annotations, max_videos=parse_max_videos(max_videos), seed=seed)
    except VidcapError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    counts = dataset_stats(ds)
    typer.echo(json.dumps(counts, indent=2, ensure_ascii=False) if output_format == "json" else format_stats_table(counts))
