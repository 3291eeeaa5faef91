"""Hostile inputs and crash safety (issue #6): every input through `vidcap data probe`, `vidcap caption`
and the demo handler ends in a result or the typed error naming the file; no crash, no hang; reading
the same clip again and again does not grow memory; `vidcap-bench robustness` writes its report.

The inputs are real files through the real decoders: the generated broken files of
benchmark/robustness/cases.py (shared with the report) and the samples in ../shared/videos.
Fast subset (CI): generated files through probe and the demo handler, one `vidcap caption` child over
all of them, memory over 60 reads, the `vidcap-bench robustness` command's wiring.
Full set (`-m robustness_full`; deselected by default): the shared samples too, every input in
its own `vidcap caption` child, memory over 200 reads, `run_robustness` at 3 clients x 2 requests.
"""

from __future__ import annotations

import gc
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmark.robustness import run_robustness
from benchmark.robustness.cases import (
    GENERATED_CASE_NAMES,
    SHARED_VIDEOS,
    RobustnessCase,
    encode_clip,
    make_generated_cases,
    shared_cases,
)
from benchmark.robustness.drivers import PATHS, PathOutcome, caption_in_subprocess, demo_outcome, judge_probe_row
from test_demo import build_demo_results

FULL = pytest.mark.robustness_full  # deselected by pyproject's addopts; `-m robustness_full` runs them
SHARED_NAMES = [c.name for c in shared_cases()]  # empty when ../shared/videos is absent
CASE_PARAMS = [*GENERATED_CASE_NAMES, *(pytest.param(name, marks=FULL) for name in SHARED_NAMES)]
RSS_WARMUP_READS = 20
RSS_GROWTH_LIMIT_MB = 50.0
CAPTION_TIMEOUT_S = 120.0  # per file; a native crash or hang becomes a failed case, not a dead test run


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, RobustnessCase]:
    return {c.name: c for c in make_generated_cases(tmp_path_factory.mktemp("hostile"))}


@pytest.fixture(scope="module")
def cases(generated) -> dict[str, RobustnessCase]:
    return {**generated, **{c.name: c for c in shared_cases()}}


@pytest.fixture(scope="session")
def demo_results(tmp_path_factory) -> dict[str, Path]:
    """SynthClips tiny and three small untrained checkpoints, as test_demo builds them (results/best/model.pt)."""
    return build_demo_results(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def handlers(demo_results):
    from demo.examples import ExampleSet
    from demo.handlers import DemoHandlers, DemoLimits, ModelCache, find_checkpoints

    return DemoHandlers(ModelCache(find_checkpoints(demo_results["results"])), DemoLimits(), ExampleSet())


def assert_result_or_typed_error(outcome: PathOutcome, case: RobustnessCase) -> None:
    assert outcome.acceptable, f"{case.name} / {outcome.path}: {outcome.kind}: {outcome.detail}"
    if case.readable is not None:  # cases whose answer is known: a good clip captions, a non-video is refused
        assert (outcome.kind == "ok") == case.readable, f"{case.name} / {outcome.path}: {outcome.kind}: {outcome.detail}"


def test_generated_cases_are_the_listed_ones(generated):
    assert list(generated) == list(GENERATED_CASE_NAMES)
    assert all(c.path.is_file() and c.path.stat().st_size > 0 for c in generated.values())
    again = make_generated_cases(next(iter(generated.values())).path.parent.parent / "again")
    assert [c.path.read_bytes() for c in again if c.name.startswith("random")] == \
        [generated[c.name].path.read_bytes() for c in again if c.name.startswith("random")], "seeded, deterministic"


# ----------------------------------------------------------------------------- the three paths


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", CASE_PARAMS)
def test_probe_cli_gives_facts_or_typed_error(cases, name: str):
    from vidcap_core.cli import app

    case = cases[name]
    result = CliRunner().invoke(app, ["data", "probe", str(case.path), "--format", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    kind, detail = judge_probe_row(row, case.path)
    assert_result_or_typed_error(PathOutcome(name, "probe", kind, detail, 0.0), case)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", CASE_PARAMS)
def test_demo_handler_captions_or_fails_naming_the_file(handlers, cases, name: str):
    case = cases[name]
    outcome = demo_outcome(handlers, case, "best")
    assert_result_or_typed_error(outcome, case)
    if outcome.kind == "error":
        assert "Traceback" not in outcome.detail and str(case.path.parent) not in outcome.detail  # no server paths


@pytest.mark.timeout(600)
def test_caption_cli_in_one_child_process(generated, demo_results):
    """All generated files in one `vidcap caption --format json` child: one JSON line per file."""
    checkpoint = demo_results["results"] / "best" / "model.pt"
    outcomes = caption_in_subprocess(list(generated.values()), checkpoint, timeout_s=CAPTION_TIMEOUT_S)
    assert [o.case for o in outcomes] == list(generated)
    for outcome in outcomes:
        assert_result_or_typed_error(outcome, generated[outcome.case])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", [pytest.param(n, marks=FULL) for n in [*GENERATED_CASE_NAMES, *SHARED_NAMES]])
def test_caption_cli_each_file_in_its_own_child(cases, demo_results, name: str):
    checkpoint = demo_results["results"] / "best" / "model.pt"
    [outcome] = caption_in_subprocess([cases[name]], checkpoint, timeout_s=CAPTION_TIMEOUT_S)
    assert_result_or_typed_error(outcome, cases[name])


def test_shared_samples_present_or_skipped():
    """The shared samples join the full set when ../shared/videos exists; a plain clone skips them cleanly."""
    if not SHARED_VIDEOS.is_dir():
        pytest.skip(f"shared sample videos not found at {SHARED_VIDEOS}")
    assert {"shared-corrupted.mp4", "shared-flipping_a_pancake.mkv"} <= set(SHARED_NAMES)


# ----------------------------------------------------------------------------- memory


def rss_mb() -> float:
    """This process's resident set size now, in MB (psutil). ru_maxrss would only give the peak."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


@pytest.fixture(scope="module")
def rss_clip(tmp_path_factory) -> Path:
    return encode_clip(tmp_path_factory.mktemp("rss") / "clip.mp4", 60, size=(120, 160))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("reads", [60, pytest.param(200, marks=FULL)])
@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_rss_stays_bounded_over_repeated_reads(rss_clip: Path, backend: str, reads: int):
    from vidcap_core.video import read_frames

    for _ in range(RSS_WARMUP_READS):  # imports, codec tables, allocator pools settle first
        read_frames(rss_clip, 8, size=112, backend=backend)
    gc.collect()
    before = rss_mb()
    for _ in range(reads):
        frames = read_frames(rss_clip, 8, size=112, backend=backend)  # (8, 112, 112, 3)
    gc.collect()
    growth = rss_mb() - before
    assert frames.shape == (8, 112, 112, 3)
    assert growth < RSS_GROWTH_LIMIT_MB, f"RSS grew {growth:.1f} MB over {reads} reads with {backend}"


# ----------------------------------------------------------------------------- the report


@pytest.mark.timeout(600)
@pytest.mark.parametrize("scale", [pytest.param((3, 2), marks=FULL)], ids=["3x2"])  # ~40 s idle: too slow for CI
def test_run_robustness_writes_every_case_and_the_load_test(demo_results, tmp_path, scale: tuple[int, int]):
    clients, requests = scale
    out = tmp_path / "out"
    markdown = run_robustness(out, results=demo_results["results"], clients=clients, requests=requests)
    text = markdown.read_text()
    raw = json.loads((out / "robustness.json").read_text())
    names = [c["name"] for c in raw["cases"]]
    assert names[: len(GENERATED_CASE_NAMES)] == list(GENERATED_CASE_NAMES) and names[len(GENERATED_CASE_NAMES):] == SHARED_NAMES
    for name in names:
        for path in PATHS:
            assert re.search(rf"^\| {re.escape(name)} +\| {path} +\|", text, re.M), f"{name} / {path} missing from robustness.md"
    assert len(raw["outcomes"]) == len(names) * len(PATHS)
    assert raw["surprises"] == [], raw["surprises"]
    load = raw["load_test"]
    assert load["clients"] == clients and load["requests_per_client"] == requests and len(load["answers"]) == clients * requests
    assert load["loopback_only"] and all(a.startswith("127.0.0.1:") for a in load["listening"])
    assert load["counts"]["caption"] == clients * requests, load["answers"]
    assert 0 < load["rss_mib"]["before"] <= load["rss_mib"]["peak"] and load["rss_mib"]["after"] <= load["rss_mib"]["peak"]
    assert "p50 latency" in text and "loopback only" in text
    assert "<cases>/" in text and str(tmp_path) not in text  # temporary folders do not leak into the report


def test_bench_cli_robustness_without_checkpoints_says_how_to_make_them(tmp_path):
    from benchmark.cli import app

    result = CliRunner().invoke(app, ["robustness", "--out", str(tmp_path / "out"), "--results", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert "no checkpoint" in result.output and "vidcap-bench run --suite cells" in result.output
    assert not (tmp_path / "out" / "robustness.md").exists()
