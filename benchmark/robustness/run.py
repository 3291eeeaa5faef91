"""`run_robustness`: every case through probe, caption and the demo handler, then the demo load
test; writes robustness.md and robustness.json (what `vidcap-bench robustness` calls)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmark.robustness.cases import SHARED_VIDEOS, RobustnessCase, all_cases
from benchmark.robustness.drivers import (
    DEFAULT_TIMEOUT_S,
    PathOutcome,
    caption_in_subprocess,
    demo_outcome,
    probe_in_subprocess,
    process_startup_seconds,
)
from benchmark.robustness.load_test import run_load_test
from benchmark.robustness.report import RobustnessReport, robustness_json, robustness_markdown
from vidcap_core.files import atomic_write_text, write_json


def _serving_checkpoint(results: Path) -> tuple[str, Path]:
    """The demo's default model: ("best", results/best/model.pt), else the first of results/checkpoints/."""
    from demo.handlers import CREATE_CHECKPOINTS, find_checkpoints
    from vidcap_core.errors import ConfigError

    found = find_checkpoints(results)
    if not found:
        raise ConfigError(f"no checkpoint under {results} (best/model.pt or checkpoints/*.pt); `{CREATE_CHECKPOINTS}` writes them.")
    return next(iter(found.items()))


def _hide_folder(outcomes: list[PathOutcome], folder: Path) -> None:
    """Replace the temporary case folder in messages by `<cases>`, so the report reads the same on every run."""
    for o in outcomes:
        o.detail = o.detail.replace(str(folder.resolve()), "<cases>").replace(str(folder), "<cases>")


def run_robustness(out: Path, results: Path | None = None, clients: int = 20, requests: int = 5,
                   shared: Path | None = SHARED_VIDEOS, timeout_s: float = DEFAULT_TIMEOUT_S) -> Path:
    """Run every case through probe, caption and the demo handler, then the demo load test
    (`clients` x `requests`; 0 clients skips it); write <out>/robustness.md and <out>/robustness.json.

    `results` holds the checkpoints (best/model.pt, checkpoints/*.pt; default: `out`). Returns the
    markdown's path. Raises ConfigError when there is no checkpoint.
    """
    from benchmark.machine import describe_machine
    from demo.app import CONCURRENCY_LIMIT
    from demo.examples import ExampleSet
    from demo.handlers import DemoHandlers, DemoLimits, ModelCache, find_checkpoints
    from vidcap_core.video import IsolatedDecoder

    results = Path(results or out)
    model, checkpoint = _serving_checkpoint(results)
    with tempfile.TemporaryDirectory(prefix="vidcap-robustness-") as tmp:
        folder = Path(tmp) / "cases"
        cases = all_cases(folder, shared)
        startup = {"process": process_startup_seconds()}
        outcomes = [probe_in_subprocess(c, timeout_s) for c in cases]
        warmup = RobustnessCase("warm-up", cases[0].path, "the valid clip, captioned first to load the model")
        captions = caption_in_subprocess([warmup, *cases], checkpoint, timeout_s)
        startup["caption_warmup"] = captions[0].seconds
        outcomes += [o for o in captions if o.case != "warm-up"]
        # as the served app: probing and decoding in child processes (IsolatedDecoder, CONCURRENCY_LIMIT of them)
        with IsolatedDecoder(workers=CONCURRENCY_LIMIT, timeout_s=timeout_s) as decoder:
            handlers = DemoHandlers(ModelCache(find_checkpoints(results)), DemoLimits(), ExampleSet(), decoder)
            started = time.perf_counter()
            handlers.caption_video(cases[0].path, model)  # loads the model, so the demo times below are per request
            startup["demo_warmup"] = time.perf_counter() - started
            outcomes += [demo_outcome(handlers, case, model) for case in cases]
        load = run_load_test(results, cases[0].path, clients, requests, model, timeout_s) if clients > 0 else None
        _hide_folder(outcomes, folder)
    report = RobustnessReport(cases, outcomes, startup, load, checkpoint)
    machine = describe_machine()
    out.mkdir(parents=True, exist_ok=True)
    markdown = out / "robustness.md"
    atomic_write_text(markdown, robustness_markdown(report, machine.markdown()))
    write_json(out / "robustness.json", robustness_json(report, machine.to_dict()))
    return markdown
