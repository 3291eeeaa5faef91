"""`vidcap caption VIDEO...`: caption video files with a trained checkpoint.

Decodes with the READABLE preset (`vidcap_core.options`: beam 3, no repeated 3-gram), as the demo
page does, unless --beam / --no-repeat-ngram say otherwise. The text format warns under a caption
when the clip looks unlike the model's training data (its out-of-distribution score, why, and what
the model can describe); `--format json` carries the same in `ood`.

Exit code 0 when every file was judged: a file that cannot be read gets {"path", "error"} (and
"detail", the decoder's own words, when there are any) and the others still get captions. Exit code 2 only when the checkpoint or options are unusable.
Videos are decoded in a child process (IsolatedDecoder): a decoder that crashes or hangs on one
file gives that file an error entry, and the batch goes on. The child starts before torch is
imported, so it gets ready on the other core while this process loads the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Optional

import typer

from vidcap_core.options import READABLE

if TYPE_CHECKING:  # torch-heavy: imported inside the command
    from vidcap_core.pipeline import Captioner, CaptionResult

PRESET = f"the '{READABLE.name}' preset: {READABLE.describe()}, as the demo page"


def caption_command(
    videos: Annotated[list[Path], typer.Argument(help="Video files to caption.")],
    checkpoint: Annotated[Path, typer.Option(help="Checkpoint (a run's best.pt).")],
    beam: Annotated[Optional[int], typer.Option(min=1, help=f"Beam size (1 = greedy). Default {READABLE.beam}, from {PRESET}.", show_default=False)] = None,
    n_best: Annotated[int, typer.Option(min=1, help="Captions per video (<= beam); text format lists them all.")] = 1,
    length_penalty: Annotated[float, typer.Option(help="GNMT length-penalty alpha for beam search (0 = none).")] = READABLE.length_penalty,
    no_repeat_ngram: Annotated[Optional[int], typer.Option(min=0, help=f"Never repeat an n-gram of this many words in a caption (0 = off). Default {READABLE.no_repeat_ngram}, from {PRESET}.", show_default=False)] = None,
    backbone_weights: Annotated[Optional[Path], typer.Option(help="Backbone weights file, if features were extracted with --weights.")] = None,
    device: Annotated[Literal["auto", "cpu", "cuda"], typer.Option(help="auto = cuda if available, else cpu.")] = "auto",
    output_format: Annotated[Literal["json", "text"], typer.Option("--format", help="json: one JSON object per line per video.")] = "text",
    decode_timeout: Annotated[float, typer.Option(min=1, help="Seconds one file may take to decode before it is given up.")] = 120.0,
) -> None:
    """Caption each video (decoding: beam 3, no repeated 3-gram unless told otherwise); an unreadable
    file gets an error entry and the rest go on; a video unlike the training data gets a warning."""
    from vidcap_core.video import IsolatedDecoder

    beam = READABLE.beam if beam is None else beam
    no_repeat_ngram = READABLE.no_repeat_ngram if no_repeat_ngram is None else no_repeat_ngram
    if n_best > beam:
        typer.echo(f"Error: --n-best {n_best} needs --beam of at least {n_best}.", err=True)
        raise typer.Exit(code=2)
    with IsolatedDecoder(workers=1, timeout_s=decode_timeout) as decoder:  # children stop on every way out
        decoder.start(wait=False)  # the child imports its decoders while torch loads here
        from vidcap_core.errors import VidcapError
        from vidcap_core.pipeline import Captioner

        try:
            captioner = Captioner.from_checkpoint(checkpoint, device=device, backbone_weights=backbone_weights,
                                                  reader=decoder.read, prober=decoder.probe)
        except VidcapError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(code=2) from exc
        caption_each(captioner, videos, beam, n_best, length_penalty, output_format, no_repeat_ngram)


def caption_each(captioner: Captioner, videos: list[Path], beam: int, n_best: int, length_penalty: float,
                 output_format: str, no_repeat_ngram: int = 0) -> None:
    """Print one line (json) or n_best lines (text, then a warning for a clip unlike the training
    data) per video; an unreadable one gets its error."""
    from vidcap_core.errors import VidcapError

    for video in videos:
        try:
            result = captioner.caption(video, beam=beam, n_best=n_best, length_penalty=length_penalty,
                                       no_repeat_ngram=no_repeat_ngram)
        except VidcapError as exc:
            entry = {"path": str(video), "error": str(exc)}
            if getattr(exc, "detail", None):  # VideoReadError: FFmpeg's error, a decoder's signal
                entry["detail"] = exc.detail
            typer.echo(json.dumps(entry) if output_format == "json" else f"{video}: ERROR {exc}")
            continue
        if output_format == "json":
            typer.echo(json.dumps(result.to_dict()))
        else:
            typer.echo("\n".join(text_lines(result, captioner.scope)))


def text_lines(result: CaptionResult, scope: str) -> list[str]:
    """`VIDEO: caption  (score)` per hypothesis, then, for a clip unlike the training data, an indented
    `warning:` line saying so, why, and what the model can describe."""
    from vidcap_core.pipeline.scope import ood_warning

    lines = [f"{result.path}: {caption}  ({score:.3f})" for caption, score in result.hypotheses]
    if not result.ended:
        lines[0] += "  [cut at the model's length limit: no hypothesis finished its sentence]"
    warning = ood_warning(result.ood)
    if warning is not None:
        lines.append(f"  warning: {warning} {scope}")
    return lines
