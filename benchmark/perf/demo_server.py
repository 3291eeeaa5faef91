"""The demo's latency for `vidcap-bench perf`: start the real `vidcap-demo` in a subprocess, time its
`/caption` requests through gradio_client, and read the click-to-caption times a real browser measured
(tests/test_demo_browser.py)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchmark.perf.cpu import OwnWork
from benchmark.perf.timing import PerfResults, latency_row, time_it
from vidcap_core.options import READABLE

BROWSER_RESULT = "perf_browser.json"  # written by tests/test_demo_browser.py when VIDCAP_PERF_BROWSER names it
DEMO_START_TIMEOUT_S = 600.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(url: str, process: subprocess.Popen, timeout_s: float) -> float:
    """Seconds until `url` answers HTTP 200 (the demo warms up before it serves, so serving = ready)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"vidcap-demo exited with status {process.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return time.perf_counter() - started
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"vidcap-demo did not serve {url} within {timeout_s:.0f} s")


def measure_first_request(results_dir: Path, examples: Path, clip: Path, repeats: int, results: PerfResults,
                          own: OwnWork | None = None, page_clips: dict[str, Path] | None = None) -> None:
    """Start the real demo (`vidcap-demo` in a subprocess on 127.0.0.1), wait until it serves, then
    time its first `/caption` request through gradio_client, and `repeats` more after it; then
    `repeats` requests (after one untimed) at the page's beam size for each of `page_clips` (label ->
    file). `own` counts the demo's decoder children, which its stop orphans, as this run's work."""
    from gradio_client import Client, handle_file

    port = free_port()
    demo = Path(sys.executable).with_name("vidcap-demo")
    command = [str(demo)] if demo.is_file() else [sys.executable, "-c", "from demo.cli import main; main()"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--results", str(results_dir), "--examples", str(examples)]
    url = f"http://127.0.0.1:{port}/"
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as process:
        try:
            start_s = wait_until_serving(url, process, DEMO_START_TIMEOUT_S)
            client = Client(url, verbose=False)

            def caption(path: Path, beam: int = 1) -> None:
                answer = client.predict(handle_file(str(path)), "best", beam, 0, api_name="/caption")
                if "error" in answer:
                    raise RuntimeError(f"the demo answered an error on {path.name}: {answer['error']}")

            first = time_it(lambda: caption(clip), 1, warmup=0)
            later = time_it(lambda: caption(clip), repeats, warmup=0)
            # the page's beam size (its first call untimed: a new file's first upload, the model's beam-3 path)
            per_clip = {label: time_it(lambda: caption(path, READABLE.beam), repeats)
                        for label, path in (page_clips or {}).items()}
        except Exception as exc:
            process.terminate()
            _, stderr = process.communicate(timeout=30)
            raise RuntimeError(f"{exc}; vidcap-demo stderr tail: {(stderr or '')[-2000:]}") from exc
        if own is not None:
            own.before_stopping(process.pid)
        process.kill()  # not terminate: a demo that reaped its children on the way out would count them twice
        process.communicate(timeout=30)
    results.latency.append(latency_row("first `/caption` request after the demo started (gradio_client, "
                                       "the 10 s clip, upload included)", first, "<= 1 s"))
    results.latency.append(latency_row("later `/caption` requests (same)", later, "as fast as the first"))
    for label, seconds in per_clip.items():
        results.latency.append(latency_row(f"`/caption` at the page's beam {READABLE.beam}, {label} (gradio_client, "
                                           "upload included)", seconds, "<= 1 s"))
    results.notes.append(f"The demo took {start_s:.1f} s from start to serving (models loaded, decoder children "
                         "started and one example captioned before it serves).")


def serving_folder(model: Path, folder: Path) -> Path:
    """A results folder the demo serves `model` from, as its best model."""
    (folder / "best").mkdir(parents=True, exist_ok=True)
    (folder / "best" / "model.pt").write_bytes(model.read_bytes())
    return folder


def read_browser_measurement(out: Path, results: PerfResults) -> None:
    """Click to caption in Chromium, per clip, as tests/test_demo_browser.py measured it (not asserted
    there). A file from before the per-clip times ({"clip", "click_to_caption_s"}) is one clip."""
    path = out / BROWSER_RESULT
    if not path.is_file():
        results.notes.append(f"Click to caption in a real browser: not measured; run `VIDCAP_PERF_BROWSER={path} "
                             "pytest tests/test_demo_browser.py` (needs `make browser`), then this command again.")
        return
    measured = json.loads(path.read_text())
    for clip in measured.get("clips") or [measured]:
        results.latency.append(latency_row(f"click to caption in Chromium ({clip['clip']}; measured by "
                                           f"tests/test_demo_browser.py at {measured['measured_at']})",
                                           clip["click_to_caption_s"], "<= 1 s"))
