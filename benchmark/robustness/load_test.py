"""The demo under load: the app served in this process on 127.0.0.1, concurrent `gradio_client`
clients sending `/caption` requests; every answer and its latency, the sockets the demo listens on,
and the resident memory of the serving process (psutil)."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from benchmark.robustness.drivers import DEFAULT_TIMEOUT_S, MESSAGE_CHARS, message_tail

AnswerKind = Literal["caption", "error", "queue-full", "timeout", "exception"]


@dataclass
class LoadAnswer:
    client: int
    request: int
    kind: AnswerKind
    detail: str  # the caption, the {error} message, or the client-side exception
    seconds: float  # submit to answer, upload included


@dataclass
class LoadTest:
    url: str
    listening: list[str]  # "address:port" of every listening socket on the demo's port
    clients: int
    requests_per_client: int
    wall_seconds: float
    answers: list[LoadAnswer] = field(default_factory=list)
    rss_mib: dict[str, float] = field(default_factory=dict)  # "before", "peak", "after": this process + children

    @property
    def loopback_only(self) -> bool:
        """True when the demo listens, and only on loopback (127.0.0.0/8 or ::1)."""
        return bool(self.listening) and all(a.startswith("127.") or a.startswith("[::1]") for a in self.listening)

    def latency(self, q: float) -> float:
        """Quantile `q` of the answer latencies (every answer, errors included), in seconds."""
        seconds = sorted(a.seconds for a in self.answers)
        if not seconds:
            return float("nan")
        return float(np.quantile(seconds, q)) if len(seconds) > 1 else seconds[0]

    def counts(self) -> dict[str, int]:
        return {kind: sum(a.kind == kind for a in self.answers) for kind in ("caption", "error", "queue-full", "timeout", "exception")}

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "listening": self.listening, "loopback_only": self.loopback_only, "clients": self.clients,
                "requests_per_client": self.requests_per_client, "wall_seconds": round(self.wall_seconds, 3),
                "p50_s": round(self.latency(0.5), 4), "p95_s": round(self.latency(0.95), 4), "counts": self.counts(),
                "rss_mib": self.rss_mib, "answers": [asdict(a) for a in self.answers]}


def listening_addresses(port: int) -> list[str]:
    """'address:port' of the sockets listening on TCP `port` on this machine (psutil). A server bound
    to 127.0.0.1 shows as '127.0.0.1:<port>', to all interfaces as '0.0.0.0:<port>' or '[::]:<port>'.
    Where listing every process's sockets is not allowed (macOS without root), this process's own."""
    import socket

    import psutil

    try:
        sockets = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        sockets = psutil.Process().net_connections(kind="tcp")
    found = []
    for s in sockets:
        if s.status == psutil.CONN_LISTEN and s.laddr and s.laddr.port == port:
            found.append(f"[{s.laddr.ip}]:{port}" if s.family == socket.AF_INET6 else f"{s.laddr.ip}:{port}")
    return sorted(set(found))


class MemoryWatch:
    """Resident memory (RSS) of this process and its child processes (decoders), in MiB, sampled by a
    thread every `interval_s` between `start()` and `stop()`: before, peak and after (psutil)."""

    def __init__(self, interval_s: float = 0.2) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)
        self.before_mib = self.peak_mib = self.after_mib = float("nan")

    def rss_mib(self) -> float:
        import psutil

        total = self._process.memory_info().rss
        for child in self._process.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # a child that ended between listing and reading
                total += child.memory_info().rss
        return total / 2**20

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.peak_mib = max(self.peak_mib, self.rss_mib())

    def start(self) -> None:
        self.before_mib = self.peak_mib = self.rss_mib()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.after_mib = self.rss_mib()
        self.peak_mib = max(self.peak_mib, self.after_mib)

    def to_dict(self) -> dict[str, float]:
        return {"before": round(self.before_mib, 1), "peak": round(self.peak_mib, 1), "after": round(self.after_mib, 1)}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _client_session(url: str, clip: Path, client_id: int, requests: int, model: str, timeout_s: float,
                    start: threading.Barrier) -> list[LoadAnswer]:
    """One gradio_client.Client sending `requests` `/caption` calls one after another."""
    from gradio_client import Client, handle_file

    answers: list[LoadAnswer] = []
    try:
        # httpx's 5 s default would fail uploads on a busy machine; the load test's own limit applies instead
        client = Client(url, verbose=False, httpx_kwargs={"timeout": timeout_s})
    except Exception as exc:  # noqa: BLE001 - a client that cannot connect is a recorded answer, not a crash
        with contextlib.suppress(threading.BrokenBarrierError):
            start.wait()
        return [LoadAnswer(client_id, r, "exception", f"connect: {type(exc).__name__}: {message_tail(str(exc))}", 0.0) for r in range(requests)]
    try:
        start.wait()  # every client connected: the requests start together
    except threading.BrokenBarrierError:
        pass  # another client never arrived; send anyway
    for r in range(requests):
        started = time.perf_counter()
        job = client.submit(handle_file(str(clip)), model, 1, 0, api_name="/caption")
        try:
            answer = job.result(timeout=timeout_s)
        except TimeoutError:
            job.cancel()
            answers.append(LoadAnswer(client_id, r, "timeout", f"no answer within {timeout_s:g} s", time.perf_counter() - started))
            continue
        except Exception as exc:  # noqa: BLE001 - QueueError ("Queue is full") and anything else the client raises
            text = f"{type(exc).__name__}: {message_tail(str(exc))}"
            kind: AnswerKind = "queue-full" if "queue is full" in text.lower() else "exception"
            answers.append(LoadAnswer(client_id, r, kind, text, time.perf_counter() - started))
            continue
        seconds = time.perf_counter() - started
        if isinstance(answer, dict) and isinstance(answer.get("caption"), str):
            answers.append(LoadAnswer(client_id, r, "caption", answer["caption"], seconds))
        elif isinstance(answer, dict) and isinstance(answer.get("error"), str):
            answers.append(LoadAnswer(client_id, r, "error", answer["error"], seconds))
        else:
            answers.append(LoadAnswer(client_id, r, "exception", f"unexpected answer {answer!r}"[:MESSAGE_CHARS], seconds))
    return answers


def run_load_test(results: Path, clip: Path, clients: int = 20, requests: int = 5, model: str = "best",
                  timeout_s: float = DEFAULT_TIMEOUT_S) -> LoadTest:
    """Serve the demo in this process on 127.0.0.1 (a free port), then `clients` threads, each with
    its own gradio_client.Client, send `requests` `/caption` calls for `clip` each, all at once."""
    from concurrent.futures import ThreadPoolExecutor

    from demo.app import build_app, launch_app
    from demo.handlers import DemoLimits

    limits = DemoLimits()
    app = build_app(results, examples_dir=None, limits=limits)
    port = _free_port()
    launch_app(app, host="127.0.0.1", port=port, limits=limits, examples_dir=None, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        load = LoadTest(url, listening_addresses(port), clients, requests, 0.0)
        start = threading.Barrier(clients, timeout=timeout_s)  # a client that never arrives breaks it, no deadlock
        memory = MemoryWatch()
        memory.start()
        started = time.perf_counter()
        try:
            with ThreadPoolExecutor(max_workers=clients) as pool:
                sessions = [pool.submit(_client_session, url, clip, c, requests, model, timeout_s, start) for c in range(clients)]
                for session in sessions:
                    load.answers += session.result()
            load.wall_seconds = time.perf_counter() - started
        finally:
            memory.stop()
        load.rss_mib = memory.to_dict()
    finally:
        app.close()
    return load
