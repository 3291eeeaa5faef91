"""`vidcap data probe`: can these videos be read, and what are they (frames, size, fps, length)?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer


def probe(
    videos: Annotated[list[Path], typer.Argument(help="Video files to check.", show_default=False)],
    frames: Annotated[
        int, typer.Option("--frames", min=0, help="Also decode this many evenly spaced frames per video to prove it reads (0: metadata only).")
    ] = 16,
    output_format: Annotated[
        Literal["json", "table"], typer.Option("--format", help="table: aligned text with each error under its file; json: a list of objects.")
    ] = "table",
    backend: Annotated[
        Literal["auto", "decord", "pyav"], typer.Option("--backend", help="auto: the fastest PyAV path measured for the file's kind; pyav: the single-threaded reference path; decord.")
    ] = "auto",
) -> None:
    """Report frame count, displayed size, fps and duration of each video, or why it cannot be read.

    Exits 0 when every file was judged, readable or not; unreadable ones carry the reason.
    """
    from vidcap_core.video.report import check_video, format_reports_table

    reports = [check_video(path, num_frames=frames, backend=backend) for path in videos]
    if output_format == "json":
        typer.echo(json.dumps([r.as_json() for r in reports], indent=2))
    else:
        typer.echo(format_reports_table(reports))
