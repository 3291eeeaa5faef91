"""Decode in a child process, so a crash in native decoder code costs one file, not the caller.

FFmpeg and decord are C/C++; a damaged file can make them segfault or hang, and a segfault in
the process that runs `vidcap caption` over a folder, or serves the demo, would end the whole
batch or server. `IsolatedDecoder` keeps up to `workers` spawned child processes that only decode.
`read(path, num_frames, size)` and `probe(path)` hand the file to an idle child and wait:

- an answer comes back: frames / VideoInfo, or the child's VidcapError re-raised here;
- the child dies (a signal such as SIGSEGV): VideoReadError naming the file (the signal in `.detail`);
- no answer within `timeout_s`: the child is killed, VideoReadError naming the file.

`timeout_s` times a request, never a child's start: a fresh child first answers a no-op request
(importing the decoders takes seconds on a busy machine) within STARTUP_TIMEOUT_S, and only then gets
the file.

A dead or killed child is replaced before the next request, so the rest of the batch goes on.
Only a child that dies *while reading a file* blames that file: the child acknowledges each
request before it touches the file, and a child found dead before that acknowledgement (it died
while idle, e.g. killed from outside) is replaced silently and the request goes to a fresh one.
Children die with the parent *process* (vidcap_core.processes: a lifeline pipe, not
PR_SET_PDEATHSIG, which fired when the spawning thread retired), whichever thread spawned them.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from vidcap_core.errors import ConfigError, VidcapError
from vidcap_core.processes import die_with_parent, lifeline
from vidcap_core.video.checks import REENCODE, video_read_error
from vidcap_core.video.info import VideoInfo
from vidcap_core.video.reader import probe_video, read_frames

ReadFn = Callable[..., np.ndarray]  # read_frames(path, num_frames, size) -> (T, H, W, 3) uint8
ProbeFn = Callable[[Path], VideoInfo]
DEFAULT_TIMEOUT_S = 120.0  # a 10-minute 1080p clip decodes in well under this on 2 cores
# A spawned child imports Python, vidcap_core and the decoders before it answers: 2-3 s measured on a busy
# 2-core machine (load ~20), so a short `timeout_s` must not bound it.
STARTUP_TIMEOUT_S = 300.0


class IsolatedDecoder:
    """`read` / `probe` like vidcap_core.video, each call run in one of up to `workers` child
    processes (started on first use, kept for the next calls; at most `workers` calls at once)."""

    def __init__(self, workers: int = 1, timeout_s: float = DEFAULT_TIMEOUT_S,
                 read_fn: ReadFn = read_frames, probe_fn: ProbeFn = probe_video) -> None:
        if workers < 1 or timeout_s <= 0:
            raise ConfigError(f"IsolatedDecoder needs workers >= 1 and timeout_s > 0, got {workers}, {timeout_s}.")
        self.timeout_s = timeout_s
        self._functions = (read_fn, probe_fn)
        self._slots = threading.BoundedSemaphore(workers)
        self._slots_total = workers
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._closed = False

    def read(self, path: str | Path, num_frames: int, size: int | tuple[int, int] = 112) -> np.ndarray:
        """(num_frames, H, W, 3) uint8 frames, as `read_frames`; VideoReadError if the child fails."""
        return self._call(Path(path), "read", (Path(path), num_frames, size))

    def probe(self, path: str | Path) -> VideoInfo:
        """VideoInfo, as `probe_video`; VideoReadError if the child fails."""
        return self._call(Path(path), "probe", (Path(path),))

    __call__ = read  # usable wherever a read_frames-like function is expected

    @property
    def pids(self) -> list[int]:
        """Process ids of the running children (for tests and diagnostics)."""
        with self._lock:
            return [w.process.pid for w in [*self._idle, *self._busy] if w.alive()]

    def close(self) -> None:
        """Stop every child; later calls raise ConfigError."""
        with self._lock:
            self._closed = True
            workers, self._idle = [*self._idle, *self._busy], []
            self._busy = set()
        for worker in workers:
            worker.stop()

    def __enter__(self) -> IsolatedDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # children also die with the parent; this frees them earlier
        try:
            self.close()
        except Exception:  # interpreter shutdown: modules may already be gone
            pass

    def start(self, wait: bool = True) -> None:
        """Spawn every child now (a server calls this at startup, so the first request does not
        wait for a child to start). `wait` False returns at once: the children import their decoders
        while the caller does other work (`vidcap caption` loads torch meanwhile), and the first
        request waits for its child to be ready, as it would for a fresh one."""
        with self._lock:
            missing = self._slots_total - len(self._idle) - len(self._busy)
        fresh = [_Worker(*self._functions) for _ in range(max(0, missing))]
        for worker in fresh if wait else []:
            worker.wait_ready(STARTUP_TIMEOUT_S)
        with self._lock:
            if self._closed:
                extra, fresh = fresh, []
            else:
                extra = []
                self._idle += fresh
        for worker in extra:
            worker.stop()

    def _call(self, path: Path, kind: str, args: tuple[Any, ...]) -> Any:
        with self._slots:  # blocks while `workers` calls are running
            for attempt in range(2):
                worker = self._take(fresh=attempt > 0)
                try:
                    return worker.request(path, kind, args, self.timeout_s)
                except _DiedBeforeStarting:  # died while idle: not this file's fault; a fresh child takes it
                    if attempt > 0:
                        raise video_read_error(
                            path, "the video decoder process could not start (a problem of this program, not of the file)",
                            "try again, and restart the program if it persists", detail=f"decoder process: {worker.death()}",
                        ) from None
                finally:
                    self._give_back(worker)
        raise AssertionError("unreachable")

    def _take(self, fresh: bool = False) -> _Worker:
        dead: list[_Worker] = []
        with self._lock:
            if self._closed:
                raise ConfigError("this IsolatedDecoder is closed; create a new one.")
            worker = None
            while self._idle and worker is None and not fresh:
                candidate = self._idle.pop()
                if candidate.alive():
                    worker = candidate
                else:  # died while idle (killed from outside): replaced without blaming anyone
                    dead.append(candidate)
        for gone in dead:
            gone.stop()
        if worker is None:  # spawned and started outside the lock: it takes seconds
            worker = _Worker(*self._functions)
            worker.wait_ready(STARTUP_TIMEOUT_S)
        with self._lock:
            self._busy.add(worker)
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            keep = worker.alive() and not self._closed
            if keep:
                self._idle.append(worker)
        if not keep:  # crashed, timed out or closed meanwhile: the next call spawns a fresh child
            worker.stop()


class _Worker:
    """One child process and the parent's end of its pipe."""

    def __init__(self, read_fn: ReadFn, probe_fn: ProbeFn) -> None:
        # spawn, not fork: the caller may hold torch threads and locks that a fork would copy half-taken
        context = multiprocessing.get_context("spawn")
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=serve, args=(child_conn, read_fn, probe_fn, lifeline()),
                                       name="vidcap-decoder", daemon=True)
        self.process.start()
        child_conn.close()

    def alive(self) -> bool:
        return self.process.is_alive()

    def wait_ready(self, timeout_s: float) -> None:
        """Block until the child has imported its decoders and answered a no-op request. A child that does
        not answer within `timeout_s` is stopped (its late answer must not pass for a request's), and one
        that died starting stays dead: either is replaced at its first request, blaming no file."""
        try:
            self.conn.send(("ping", ()))
            if self.conn.poll(timeout_s):
                self.conn.recv()  # "started"
                if self.conn.poll(timeout_s):
                    self.conn.recv()  # ("ok", None)
                    return
        except (EOFError, OSError):
            pass
        self.stop()

    def request(self, path: Path, kind: str, args: tuple[Any, ...], timeout_s: float) -> Any:
        try:
            self.conn.send((kind, args))
            if not self.conn.poll(timeout_s) or self.conn.recv() != "started":
                self.stop()
                raise _DiedBeforeStarting
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError) as exc:
            raise _DiedBeforeStarting from exc
        try:
            if not self.conn.poll(timeout_s):
                self.stop()
                raise video_read_error(
                    path, f"decoding did not finish within {timeout_s:.0f} s and was stopped, so the file may be damaged",
                    REENCODE,
                )
            status, payload = self.conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError) as exc:
            raise video_read_error(
                path, "the video decoder crashed while reading it, so the file is probably damaged", REENCODE,
                detail=f"decoder process: {self.death()}",
            ) from exc
        if status == "error":
            raise payload
        return payload

    def death(self) -> str:
        """How the child ended, e.g. 'signal SIGSEGV' or 'exit code 1'."""
        self.process.join(timeout=5)
        code = self.process.exitcode
        if code is None:
            return "it stopped answering"
        if code < 0:
            try:
                return f"signal {signal.Signals(-code).name}"
            except ValueError:
                return f"signal {-code}"
        return f"exit code {code}"

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class _DiedBeforeStarting(Exception):
    """The child was gone before it acknowledged the request: it died idle, not on the file."""


def serve(conn: Connection, read_fn: ReadFn, probe_fn: ProbeFn, lifeline_end: Connection) -> None:
    """Child process loop: acknowledge each request ("started"), then answer ("ok", result) or
    ("error", VidcapError), until the pipe closes or the parent process ends."""
    die_with_parent(lifeline_end)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    functions: dict[str, Callable[..., Any]] = {"read": read_fn, "probe": probe_fn, "ping": lambda: None}
    warm_up_decoders()
    while True:
        try:
            kind, args = conn.recv()
            conn.send("started")
        except (EOFError, OSError):  # the parent closed the pipe or died
            return
        try:
            conn.send(("ok", functions[kind](*args)))
        except VidcapError as exc:
            conn.send(("error", exc))
        except Exception as exc:  # a decoder bug, not bad input we know: still this file's error
            conn.send(("error", video_read_error(args[0], "the decoder failed unexpectedly", REENCODE, detail=exc)))



def warm_up_decoders() -> None:
    """Import the decoder libraries at child start, not at the first file (PyAV and decord take
    a few hundred ms to import on a busy 2-core machine)."""
    import av  # noqa: F401

    try:
        import decord  # noqa: F401
    except ImportError:  # optional: PyAV alone reads everything
        pass
