"""`vidcap-bench`: run the benchmark suites, write REPORT.md, measure performance.

Commands parse options, call typed functions of the `benchmark` package, print where results went.
"""

from __future__ import annotations

import shlex
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="vidcap-bench: regenerate the report's comparisons as tables, figures and claim verdicts.")


class ProfileChoice(str, Enum):
    quick = "quick"
    full = "full"
    smoke = "smoke"


class ExecutorChoice(str, Enum):
    local = "local"
    ray = "ray"


class DatasetChoice(str, Enum):
    synth = "synth"
    msvd = "msvd"
    msrvtt = "msrvtt"
    csv = "csv"


def _fail(exc: Exception) -> None:
    typer.echo(f"Error: {exc}", err=True)
    raise typer.Exit(code=2) from exc


def _print_or_write(report: str, out: Path | None) -> None:
    """A markdown report to stdout, or atomically to `out` (then say where)."""
    from vidcap_core.files import atomic_write_text

    if out is None:
        typer.echo(report)
    else:
        atomic_write_text(out, report)
        typer.echo(f"wrote {out}")


@app.command()
def run(
    suite: Annotated[list[str], typer.Option("--suite", help="Suite to run (repeatable): all, perception, cells, attention, data, temporal, gradients, backbone, length, seeds, beam.")],
    out: Annotated[Path, typer.Option("--out", help="Results folder: <suite>.csv/.md/.json, figures/, best/, checkpoints/.")] = Path("results"),
    profile: Annotated[ProfileChoice, typer.Option(help="quick (a short look, 1 seed, nothing converges), full (the committed results: standard preset, 3 seeds where a claim compares, runs to a plateau), smoke (tests only).")] = ProfileChoice.quick,
    seeds: Annotated[Optional[int], typer.Option(help="Seeds of every configuration (default: the profile's: more for those a claim compares).")] = None,
    claim_seeds: Annotated[Optional[int], typer.Option(help="Seeds of each configuration a claim compares (default: --seeds, else the profile's).")] = None,
    dataset: Annotated[Optional[DatasetChoice], typer.Option(help="Real dataset to use instead of SynthClips (needs --root and --backbone).")] = None,
    root: Annotated[Optional[Path], typer.Option(help="Root folder of the real dataset.")] = None,
    annotations: Annotated[Optional[Path], typer.Option(help="Annotation file, when not found under --root.")] = None,
    backbone: Annotated[Optional[str], typer.Option(help="Frame encoder: synth-cnn (SynthClips default), resnet18/50/152, vgg16/19, random.")] = None,
    weights: Annotated[Optional[Path], typer.Option(help="A state_dict file for --backbone (when torchvision's cache has no weights).")] = None,
    max_videos: Annotated[Optional[str], typer.Option(help="Trim the real dataset: videos per split (50) or a fraction (0.1).")] = None,
    cache: Annotated[Path, typer.Option(help="Where generated data, features and training runs are cached.")] = Path(".cache/vidcap-bench"),
    jobs: Annotated[int, typer.Option(help="Training runs at once (separate processes, one thread each).")] = 1,
    executor: Annotated[ExecutorChoice, typer.Option(help="Where runs train: local (this machine, --jobs at a time) or ray (one Ray task per run; pip install 'vidcap[ray]'; docs/ray.md).")] = ExecutorChoice.local,
    address: Annotated[Optional[str], typer.Option(help="--executor ray: the cluster, auto (the one `ray start` runs here) or HOST:PORT of its head; default: a Ray instance started for this run.")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Override the profile's step budget per run (a multiple of its val_every_steps).")] = None,
) -> None:
    """Train (or reuse) every run the suites need, evaluate, and write tables, figures and the best model."""
    from benchmark.invocation import BenchOptions, run_benchmark
    from vidcap_core.data import parse_max_videos
    from vidcap_core.errors import VidcapError

    try:
        options = BenchOptions(
            suites=suite, profile=profile.value, out=out, seeds=seeds, claim_seeds=claim_seeds,
            dataset=None if dataset is None else dataset.value, root=root, annotations=annotations, backbone=backbone,
            weights=weights, max_videos=parse_max_videos(max_videos), cache=cache, jobs=jobs, max_steps=max_steps,
            executor=executor.value, address=address,
            command=shlex.join(["vidcap-bench", *sys.argv[1:]]) if Path(sys.argv[0]).name == "vidcap-bench" else "",
        )
        options.resolved_suites()
        summary = run_benchmark(options)
    except VidcapError as exc:
        _fail(exc)
        return
    typer.echo(f"{len(summary.results)} suite(s) written to {out} in {summary.wall_seconds / 60:.1f} min "
               f"({summary.runs_trained} of {summary.runs_total} runs trained now).")
    if summary.best:
        typer.echo(f"best model (chosen on validation): {summary.best} -> {out / 'best' / 'model.pt'}")
    typer.echo(f"next: vidcap-bench report --results {out}")


@app.command()
def estimate(
    suite: Annotated[list[str], typer.Option("--suite", help="Suite to cost (repeatable), as for `run`.")] = ["all"],
    profile: Annotated[ProfileChoice, typer.Option(help="The profile to cost.")] = ProfileChoice.full,
    results: Annotated[Path, typer.Option("--results", help="A results folder whose runs (suite CSVs: steps, train_seconds) the estimate is measured on.")] = Path("results"),
    speedup: Annotated[float, typer.Option(help="How many times faster a training step is now than in --results (2: twice as fast).")] = 1.0,
    jobs: Annotated[int, typer.Option(min=1, help="Training runs at once, as `run --jobs`.")] = 2,
    seeds: Annotated[Optional[int], typer.Option(help="As `run --seeds`.")] = None,
    claim_seeds: Annotated[Optional[int], typer.Option(help="As `run --claim-seeds`.")] = None,
    runs: Annotated[bool, typer.Option("--runs/--no-runs", help="Also list every configuration's runs.")] = True,
    cache: Annotated[Optional[Path], typer.Option(help="Cost what a `run` over this cache has left: its finished runs and complete data cost nothing, an interrupted run only its steps left (default: an empty cache).")] = None,
) -> None:
    """Estimate a `run` from an empty cache (or what is left of it in --cache): every planned run costed on the measured runs of --results (nothing is trained)."""
    import tempfile

    from benchmark.cost import config_frame, estimate as estimate_cost
    from benchmark.invocation import BenchOptions
    from benchmark.tables import markdown_table
    from vidcap_core.errors import VidcapError

    try:
        with tempfile.TemporaryDirectory() as empty:
            options = BenchOptions(suites=suite, profile=profile.value, seeds=seeds, claim_seeds=claim_seeds,
                                   jobs=jobs, cache=Path(empty) if cache is None else cache)
            planned, totals = estimate_cost(options, results, speedup, resume=cache is not None)
    except VidcapError as exc:
        _fail(exc)
        return
    if runs:
        typer.echo(markdown_table(config_frame(planned).round(2)))
        typer.echo("")
    typer.echo(markdown_table(totals.round(1)))
    total = totals.iloc[-1]
    left = "" if cache is None else f", {int((planned['steps left'] > 0).sum())} of them left to train in {cache}"
    typer.echo(f"\n{profile.value}: {int(total['runs'])} runs{left}, about {total['wall minutes']:.0f} min with --jobs {jobs} "
               f"at {speedup:g} x the measured step speed (measured on {results}).")


@app.command()
def report(
    results: Annotated[Path, typer.Option("--results", help="The folder `vidcap-bench run --out` wrote.")] = Path("results"),
    readme: Annotated[Optional[Path], typer.Option(help="Also copy the claims table into this README, between its claims-table markers.")] = None,
) -> None:
    """Write REPORT.md: the claims table with verdicts, every suite's tables and figures, machine and costs."""
    from benchmark.report import update_readme, write_report
    from vidcap_core.errors import VidcapError

    try:
        path = write_report(results)
        if readme is not None:
            update_readme(readme, path.read_text(encoding="utf-8"))
    except VidcapError as exc:
        _fail(exc)
        return
    typer.echo(f"wrote {path}" + (f" and the claims table of {readme}" if readme is not None else ""))


@app.command()
def verify(
    results: Annotated[Path, typer.Option("--results", help="The results folder whose numbers to reproduce (its bench_run.json and suite CSVs).")] = Path("results"),
    runs: Annotated[int, typer.Option(min=1, help="How many of its runs to retrain: the cheapest ones (least training time).")] = 2,
    cache: Annotated[Optional[Path], typer.Option(help="Cache to train in (default: a fresh temporary folder, removed afterwards).")] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Training runs at once.")] = 1,
) -> None:
    """Retrain the cheapest committed runs from scratch and compare their numbers with the committed ones."""
    from benchmark.tables import markdown_table
    from benchmark.verify import verify_results
    from vidcap_core.errors import VidcapError

    try:
        table = verify_results(results, cache=cache, runs=runs, jobs=jobs, say=typer.echo)
    except VidcapError as exc:
        _fail(exc)
        return
    typer.echo(markdown_table(table))
    mismatches = int((~table["match"].astype(bool)).sum())
    if mismatches:
        typer.echo(f"{mismatches} number(s) differ from {results}: this code does not reproduce them.", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"all {len(table)} compared numbers of {table['run'].nunique()} run(s) reproduced.")


@app.command()
def rekey(
    results: Annotated[Path, typer.Option("--results", help="The results folder whose recorded run keys to rewrite.")] = Path("results"),
    cache: Annotated[Path, typer.Option(help="Cache folder the runs are planned against (only paths: nothing is trained).")] = Path(".cache/vidcap-bench"),
) -> None:
    """Rewrite the run keys a results folder records to the keys this code computes for the same runs."""
    from benchmark.verify import rekey_results
    from vidcap_core.errors import VidcapError

    try:
        rekey_results(results, cache, say=typer.echo)
    except VidcapError as exc:
        _fail(exc)


@app.command()
def perf(
    out: Annotated[Path, typer.Option("--out", help="Folder for perf.md and perf.json.")] = Path("results"),
    repeats: Annotated[int, typer.Option(help="Repeats per measurement (medians are reported).")] = 5,
    cache: Annotated[Path, typer.Option(help="Cache folder (the SynthClips clips and features perf reuses).")] = Path(".cache/vidcap-bench"),
) -> None:
    """Measure decoding, feature extraction, training, decoding latency, beam speedup and end-to-end captioning."""
    from benchmark.perf import PerfOptions, run_perf
    from vidcap_core.errors import VidcapError

    try:
        path = run_perf(PerfOptions(out=out, repeats=repeats, cache=cache))
    except VidcapError as exc:
        _fail(exc)
        return
    typer.echo(f"wrote {path}")


@app.command("perf-training")
def perf_training(
    base: Annotated[Optional[str], typer.Option("--base", help="A git revision to time side by side with this checkout (e.g. main, HEAD~3).")] = None,
    case: Annotated[Optional[list[str]], typer.Option("--case", help="Architecture to time (repeatable), e.g. attention-lstm-regions; default: every one the full profile trains.")] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Turns per revision and architecture.")] = 5,
    steps: Annotated[int, typer.Option(min=1, help="Timed steps per turn.")] = 2,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the report to this file (default: print it).")] = None,
) -> None:
    """Time a training step of every full-profile architecture against the machine's matmul throughput and, with --base, against another revision, side by side."""
    from benchmark.perf_training import TrainingPerfOptions, run_training_perf

    try:
        report = run_training_perf(TrainingPerfOptions(base=base, repeats=repeats, steps=steps, cases=tuple(case or ())))
    except (ValueError, RuntimeError) as exc:
        _fail(exc)
        return
    _print_or_write(report, out)


@app.command("run-time")
def run_time(
    runs: Annotated[Path, typer.Option("--runs", help="A benchmark cache's runs/ folder (e.g. .cache/vidcap-bench/runs).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the report to this file (default: print it).")] = None,
) -> None:
    """Where finished training runs spent their wall time: training steps, validation, probe and
    checkpoints, set-up; per configuration, from the runs' own logs (nothing is trained)."""
    from benchmark.perf_training import run_time_markdown

    try:
        report = run_time_markdown(runs)
    except (ValueError, OSError) as exc:
        _fail(exc)
        return
    _print_or_write(report, out)


@app.command("perf-tracking")
def perf_tracking(
    grids: Annotated[Path, typer.Option("--grids", help="A synth-cnn feature cache with grids (vidcap features --backbone synth-cnn --grid) of the SynthClips folder.")],
    synth: Annotated[Path, typer.Option("--synth", help="The SynthClips folder the grids were extracted from.")],
    base: Annotated[str, typer.Option("--base", help="A git revision whose synth-slots tracker runs beside this checkout's (e.g. main).")],
    split: Annotated[str, typer.Option(help="Which clips: train, val or test.")] = "test",
    repeats: Annotated[int, typer.Option(min=1, help="Timing turns per tracker (medians are reported).")] = 5,
    max_clips: Annotated[Optional[int], typer.Option(min=1, help="At most this many clips of the split.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the report to this file (default: print it).")] = None,
) -> None:
    """synth-slots' tracker of this checkout against --base's on the same synth-cnn grids: perception against the oracle, and ms per clip."""
    from benchmark.perf_tracking import TrackingPerfOptions, run_tracking_perf
    from vidcap_core.errors import VidcapError

    try:
        report = run_tracking_perf(TrackingPerfOptions(grids=grids, synth_root=synth, base=base, split=split,
                                                       repeats=repeats, max_clips=max_clips))
    except (VidcapError, ValueError) as exc:
        _fail(exc)
        return
    _print_or_write(report, out)


@app.command()
def robustness(
    out: Annotated[Path, typer.Option("--out", help="Folder for robustness.md and robustness.json.")] = Path("results"),
    results: Annotated[Optional[Path], typer.Option(help="Folder with the checkpoints (best/model.pt, checkpoints/*.pt); default: --out.")] = None,
    clients: Annotated[int, typer.Option(min=0, help="Concurrent demo clients in the load test (0: no load test).")] = 20,
    requests: Annotated[int, typer.Option(min=1, help="/caption requests per client.")] = 5,
    timeout: Annotated[float, typer.Option(min=1.0, help="Seconds each file (and each request) may take before it counts as a hang.")] = 120.0,
) -> None:
    """Hostile inputs through probe, caption and the demo (crash, hang or typed error?), then a demo load test."""
    from benchmark.robustness import run_robustness
    from vidcap_core.errors import VidcapError

    try:
        path = run_robustness(out, results=results, clients=clients, requests=requests, timeout_s=timeout)
    except VidcapError as exc:
        _fail(exc)
        return
    typer.echo(f"wrote {path}")


@app.command()
def ood(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="A checkpoint with its OOD calibration (<stem>.ood.npz) next to it.")] = Path("results/best/model.pt"),
    out: Annotated[Path, typer.Option("--out", help="Folder for ood.md and ood.json.")] = Path("results"),
    root: Annotated[Optional[Path], typer.Option(help="An existing SynthClips folder whose test split to score (default: the set the checkpoint's MODEL_CARD.md names, else standard seed 0, generated into --cache).")] = None,
    cache: Annotated[Path, typer.Option(help="Benchmark cache, where the SynthClips set is found or generated.")] = Path(".cache/vidcap-bench"),
    videos: Annotated[Optional[list[Path]], typer.Option("--videos", help="More real videos to score (repeatable): files or folders.")] = None,
    pattern_seconds: Annotated[int, typer.Option(min=1, help="Length of each generated pattern clip.")] = 10,
    decode_timeout: Annotated[float, typer.Option(min=1.0, help="Seconds one file may take to decode before it counts as unreadable.")] = 120.0,
) -> None:
    """Share of clips the OOD flag fires on: SynthClips test clips (aim <= 1%), ../shared/videos and generated patterns (aim 100%)."""
    from benchmark.ood import OodOptions, run_ood
    from vidcap_core.errors import VidcapError

    try:
        path = run_ood(OodOptions(
            checkpoint=checkpoint, out=out, root=root, cache=cache, videos=tuple(videos or ()),
            pattern_seconds=pattern_seconds, decode_timeout_s=decode_timeout,
            command=shlex.join(["vidcap-bench", *sys.argv[1:]]) if Path(sys.argv[0]).name == "vidcap-bench" else "",
        ), say=typer.echo)
    except VidcapError as exc:
        _fail(exc)
        return
    typer.echo(f"wrote {path} and {path.with_suffix('.json')}")


@app.command("index")
def index_command(
    results: Annotated[Path, typer.Option("--results", help="The folder `vidcap-bench run --out` wrote.")] = Path("results"),
) -> None:
    """Add titles, Compare-view columns, data and features to checkpoints/index.json from what the folder
    holds (an index written before those fields existed); trains and evaluates nothing."""
    from benchmark.checkpoint_index import refresh_index
    from vidcap_core.errors import VidcapError

    try:
        path = refresh_index(results)
    except VidcapError as exc:
        _fail(exc)
        return
    typer.echo(f"wrote {path}")


def main() -> None:
    app()
