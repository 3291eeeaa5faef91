"""`vidcap-demo`: serve the captioning demo (default http://127.0.0.1:7860).

Serves every checkpoint under --results (results/best/model.pt as `best`, plus
results/checkpoints/<arch>-<cell>.pt), and --checkpoint FILE when given (then the default).
Exits with code 2 and the command that creates a checkpoint when there is none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from demo.examples import DEFAULT_EXAMPLES_DIR

NO_CHECKPOINT = (
    "No checkpoint to serve: {results}/best/model.pt and {results}/checkpoints/*.pt do not exist.\n"
    "Create them with the benchmark:   vidcap-bench run --suite cells --out {results}\n"
    "or train one model and pass it:   vidcap train --dataset synth --root DATA --features FEATURES --out runs/demo\n"
    "                                  vidcap-demo --checkpoint runs/demo/best.pt\n"
    "(the README's 'Features, training, evaluation, captioning' section has the full recipe)."
)

app = typer.Typer(add_completion=False, help="vidcap-demo: caption videos in the browser with trained checkpoints.")


def checkpoint_name(path: Path, taken: set[str]) -> str:
    """A run's best.pt is named after its run folder (runs/demo/best.pt -> demo)."""
    name = path.parent.name if path.stem in ("best", "model", "last") and path.parent.name else path.stem
    while name in taken:
        name = f"{name}'"
    return name


def serving_checkpoints(results: Path, checkpoint: Path | None) -> tuple[dict[str, Path], str | None]:
    """(name -> file of every checkpoint to serve, the default model name or None for `best`)."""
    from demo.handlers import find_checkpoints

    found = find_checkpoints(results)
    if checkpoint is None:
        return found, None
    same = [name for name, path in found.items() if path.resolve() == checkpoint.resolve()]
    if same:  # already served under its results name
        return found, same[-1]
    name = checkpoint_name(checkpoint, set(found))
    return {name: checkpoint, **found}, name


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the demo to your network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 7860,
    checkpoint: Annotated[Optional[Path], typer.Option(help="A checkpoint file (a run's best.pt) to serve as the default model.")] = None,
    results: Annotated[Path, typer.Option(help="Results folder of `vidcap-bench run` (best/model.pt, checkpoints/*.pt).")] = Path("results"),
    examples: Annotated[Path, typer.Option(help="SynthClips example clips; generated there at first start.")] = DEFAULT_EXAMPLES_DIR,
    no_examples: Annotated[bool, typer.Option("--no-examples", help="Serve without the bundled examples.")] = False,
    max_upload_mb: Annotated[float, typer.Option(min=0.001, help="Largest upload captioned, in MB.")] = 200.0,
    max_duration: Annotated[float, typer.Option(min=0.001, help="Longest video captioned, in seconds.")] = 600.0,
    max_beam: Annotated[int, typer.Option(min=1, help="Largest beam size offered.")] = 8,
    max_frames: Annotated[int, typer.Option(min=1, help="Most frames a request may sample.")] = 64,
) -> None:
    """Serve the demo until interrupted (Ctrl-C)."""
    if checkpoint is not None and not checkpoint.is_file():
        typer.echo(f"Error: --checkpoint {checkpoint} does not exist; pass a checkpoint file such as a run's best.pt.",
                   err=True)
        raise typer.Exit(code=2)
    checkpoints, default = serving_checkpoints(results, checkpoint)
    if not checkpoints:
        typer.echo(NO_CHECKPOINT.format(results=str(results).rstrip("/")), err=True)
        raise typer.Exit(code=2)

    from demo.app import build_app, launch_app
    from demo.handlers import DemoLimits
    from vidcap_core.errors import VidcapError

    examples_dir = None if no_examples else examples
    try:
        limits = DemoLimits(max_upload_mb=max_upload_mb, max_duration_s=max_duration, max_beam=max_beam,
                            max_frames=max_frames)
        if examples_dir is not None and not (examples_dir / "ground_truth.json").is_file():
            typer.echo(f"Generating the SynthClips examples once into {examples_dir} ...", err=True)
        demo = build_app(checkpoints, examples_dir, limits, default_model=default)
    except VidcapError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(f"Serving {', '.join(checkpoints)} on http://{host}:{port} (Ctrl-C stops).", err=True)
    launch_app(demo, host=host, port=port, limits=limits, examples_dir=examples_dir)


def main() -> None:
    app()
