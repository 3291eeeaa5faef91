"""`vidcap-bench robustness`: hostile inputs through every way a video enters vidcap, and a demo load test.

Each case (a real-world sample from ../shared/videos, or a broken file generated here: truncated,
random payload, no frames, absurd dimensions, one frame, audio only, text named .mp4) goes through
three paths:

- probe:   `vidcap data probe FILE --format json` (facts, or `{"ok": false, "error"}`);
- caption: `vidcap caption FILES --checkpoint CKPT --format json` (a caption, or `{"path", "error"}`);
- demo:    `DemoHandlers.caption_video(path, "best")` with an IsolatedDecoder, as the served app
           (Captioned, or Failed naming the file).

The only acceptable outcomes are a result or the typed refusal. The CLI paths run in child
processes with a per-file time limit, so a native crash or a hang becomes a recorded outcome
("crash", "hang") instead of killing the run. The load test serves the demo in-process on
127.0.0.1 and sends clients x requests `/caption` calls from concurrent `gradio_client` clients.

The case generators are shared with tests/test_robustness.py, so the report and the tests cover
the same files.
"""

from __future__ import annotations

import contextlib
import json
import queue
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "videos"
PATHS = ("probe", "caption", "demo")
CLIP_HW = (48, 64)  # (H, W) of the generated clips: small, so every case encodes in milliseconds
CLIP_FRAMES = 40
HUGE_SIDE = 60000  # what the patched header claims: 60000 x 60000 (10.8 GB per RGB frame if believed)
RANDOM_SEED = 6  # issue #6
HEADER_BYTES = 1024  # "random behind a header": the first KB of a real mp4 kept, the rest random
QUIET_X264 = {"x264-params": "log-level=error", "threads": "1"}  # one thread: the same bytes on every run
DEFAULT_TIMEOUT_S = 120.0  # per file, per CLI path: a hang shows up as an outcome, not a stuck run
MESSAGE_CHARS = 240  # error messages in robustness.md are cut to this length (the JSON keeps them whole)

Kind = Literal["ok", "error", "crash", "hang", "untyped"]
"""ok: facts (probe) or a caption; error: the typed refusal naming the file; crash: the process died
(signal or unexpected exit); hang: no answer within the time limit; untyped: an answer that is
neither (a traceback, an error that does not name the file, an exception other than VidcapError)."""


@dataclass(frozen=True)
class RobustnessCase:
    name: str  # unique and short: "truncated-50", "shared-corrupted.mp4"
    path: Path
    what: str  # one line for the report
    readable: bool | None = None  # True: must give a caption; False: must be refused; None: either is fine


@dataclass
class PathOutcome:
    case: str
    path: str  # which path: "probe" | "caption" | "demo"
    kind: Kind
    detail: str  # the caption, the probe facts, or the error message
    seconds: float

    @property
    def acceptable(self) -> bool:
        return self.kind in ("ok", "error")


# ----------------------------------------------------------------------------- case files


def encode_clip(path: Path, frames: int, size: tuple[int, int] = CLIP_HW, fps: int = 10,
                container_options: dict[str, str] | None = None) -> Path:
    """A real H.264 clip of `frames` frames of (H, W) = `size`; frame i is a flat colour ramped with i."""
    import av

    h, w = size
    with av.open(str(path), mode="w", options=container_options or {}) as container:
        stream = container.add_stream("libx264", rate=fps, options=QUIET_X264)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            rgb = np.empty((h, w, 3), np.uint8)  # (H, W, 3)
            rgb[...] = ((i * 37) % 256, (i * 91) % 256, (255 - i * 23) % 256)
            rgb[: h // 2, : w // 2] = 255  # a white corner, so frames are not all flat
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_zero_frame_video(path: Path) -> Path:
    """An mp4 with a video stream and no frames: the header only (`start_encoding`, no packets)."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=10, options=QUIET_X264)
        stream.width, stream.height, stream.pix_fmt = CLIP_HW[1], CLIP_HW[0], "yuv420p"
        container.start_encoding()
    return path


def write_audio_only(path: Path, seconds: float = 0.5) -> Path:
    """An mp4 holding one AAC audio stream (a sine tone) and no video stream."""
    import av

    rate, n = 44100, 1024  # AAC frames are 1024 samples
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=rate)
        for k in range(int(seconds * rate / n)):
            t = (np.arange(n) + k * n) / rate
            samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]  # (1, n) mono
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, k * n
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def claim_dimensions(data: bytes, width: int, height: int) -> bytes:
    """The mp4 `data` with its track header (tkhd) and sample entry (avc1) rewritten to claim
    width x height; the H.264 parameter sets inside still say the real size.

    tkhd (version 0) keeps width/height as 16.16 fixed point 80 bytes after its type field;
    avc1 keeps them as 16-bit integers 28 bytes after its type field.
    """
    out = bytearray(data)
    tkhd, avc1 = out.find(b"tkhd"), out.find(b"avc1")
    if tkhd < 0 or avc1 < 0 or out[tkhd + 4] != 0:
        raise ValueError("expected an H.264 mp4 with a version-0 tkhd box")
    out[tkhd + 80 : tkhd + 88] = (width << 16).to_bytes(4, "big") + (height << 16).to_bytes(4, "big")
    out[avc1 + 28 : avc1 + 32] = min(width, 0xFFFF).to_bytes(2, "big") + min(height, 0xFFFF).to_bytes(2, "big")
    return bytes(out)


def seeded_bytes(n: int, seed: int = RANDOM_SEED) -> bytes:
    """`n` pseudo-random bytes, the same on every run (os.urandom cannot be seeded)."""
    return random.Random(seed).randbytes(n)


GENERATED_CASE_NAMES = ("valid", "truncated-10", "truncated-50", "truncated-90", "random-after-header", "random-payload",
                        "zero-frames", "huge-dimensions", "one-frame", "audio-only", "text-as-mp4")  # make_generated_cases' order


def make_generated_cases(root: Path) -> list[RobustnessCase]:
    """Write the broken (and two good) inputs into `root`; deterministic, about a second in all."""
    root.mkdir(parents=True, exist_ok=True)
    valid = encode_clip(root / "valid.mp4", CLIP_FRAMES)  # moov at the end (FFmpeg's default layout)
    whole = valid.read_bytes()
    cases = [RobustnessCase("valid", valid, f"a good {CLIP_FRAMES}-frame H.264 mp4 (the reference)", True)]
    for percent in (10, 50, 90):
        cut = root / f"truncated_{percent}.mp4"
        cut.write_bytes(whole[: len(whole) * percent // 100])
        cases.append(RobustnessCase(f"truncated-{percent}", cut, f"the valid clip cut after {percent}% of its bytes", False))

    random_tail = root / "random_tail.mp4"
    random_tail.write_bytes(whole[:HEADER_BYTES] + seeded_bytes(len(whole) - HEADER_BYTES))
    cases.append(RobustnessCase("random-after-header", random_tail,
                                f"the first {HEADER_BYTES} bytes of the valid clip, then seeded random bytes", None))

    indexed = encode_clip(root / "faststart.mp4", CLIP_FRAMES, container_options={"movflags": "faststart"})
    data = indexed.read_bytes()
    payload = data.find(b"mdat") + 4  # faststart: ftyp, moov (the whole index), then mdat
    random_payload = root / "random_payload.mp4"
    random_payload.write_bytes(data[:payload] + seeded_bytes(len(data) - payload, RANDOM_SEED + 1))
    indexed.unlink()
    cases.append(RobustnessCase("random-payload", random_payload,
                                "a valid index (faststart) over seeded random frame bytes", None))

    cases.append(RobustnessCase("zero-frames", write_zero_frame_video(root / "no_frames.mp4"),
                                "an mp4 with a video stream header and no frames", False))
    small = encode_clip(root / "tiny_16.mp4", 10, size=(16, 16)).read_bytes()
    huge = root / "huge_dims.mp4"
    huge.write_bytes(claim_dimensions(small, HUGE_SIDE, HUGE_SIDE))
    (root / "tiny_16.mp4").unlink()
    cases.append(RobustnessCase("huge-dimensions", huge,
                                f"a 16x16 H.264 mp4 whose tkhd/avc1 headers claim {HUGE_SIDE}x{HUGE_SIDE}", None))
    cases.append(RobustnessCase("one-frame", encode_clip(root / "one_frame.mp4", 1), "a one-frame H.264 mp4", True))
    cases.append(RobustnessCase("audio-only", write_audio_only(root / "audio_only.mp4"),
                                "an mp4 with one AAC audio stream and no video", False))
    text = root / "notes.mp4"
    text.write_text("These are meeting notes, not a video.\n" * 40)
    cases.append(RobustnessCase("text-as-mp4", text, "a text file renamed to .mp4", False))
    return cases


SHARED_EXPECTED = {"corrupted.mp4": False, "flipping_a_pancake.mkv": True, "video_90.mov": True, "unordered.mov": True}


def shared_cases(folder: Path = SHARED_VIDEOS) -> list[RobustnessCase]:
    """Every sample in ../shared/videos (its README.md aside); empty when the folder is absent."""
    if not folder.is_dir():
        return []
    return [RobustnessCase(f"shared-{p.name}", p, f"real-world sample {p.name} (../shared/videos)", SHARED_EXPECTED.get(p.name))
            for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() != ".md"]


def all_cases(root: Path, shared: Path | None = SHARED_VIDEOS) -> list[RobustnessCase]:
    """The generated cases (written into `root`) followed by the shared samples (none when `shared` is None or absent)."""
    return make_generated_cases(root) + (shared_cases(shared) if shared is not None else [])


# ----------------------------------------------------------------------------- judging answers


def names_file(message: str, path: Path) -> bool:
    """A typed refusal must name the file it refuses (the demo shows the bare name, the CLI the path)."""
    return path.name in message


def judge_probe_row(row: dict[str, Any], path: Path) -> tuple[Kind, str]:
    """One `vidcap data probe --format json` row -> ("ok", facts) or ("error", message)."""
    if row.get("ok") is True and isinstance(row.get("frames"), int):
        return "ok", f"{row['frames']} frames, {row['height']}x{row['width']}, {row['fps']} fps, {row['duration_s']} s"
    error = row.get("error")
    if row.get("ok") is False and isinstance(error, str) and names_file(error, path):
        return "error", error
    return "untyped", f"unexpected probe row {json.dumps(row)[:MESSAGE_CHARS]}"


def judge_caption_entry(entry: dict[str, Any], path: Path) -> tuple[Kind, str]:
    """One `vidcap caption --format json` line -> ("ok", caption) or ("error", message)."""
    if entry.get("path") != str(path):
        return "untyped", f"answer for {entry.get('path')!r} where {str(path)!r} was expected"
    if isinstance(entry.get("caption"), str):
        return "ok", entry["caption"]
    error = entry.get("error")
    if isinstance(error, str) and names_file(error, path):
        return "error", error
    return "untyped", f"unexpected caption entry {json.dumps(entry)[:MESSAGE_CHARS]}"


def _tail(text: str, chars: int = MESSAGE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= chars else "..." + text[-chars:]


def _exit_reason(returncode: int) -> str:
    """'exit code 3' or 'killed by SIGSEGV' (a negative return code is the signal that ended the child)."""
    if returncode >= 0:
        return f"exit code {returncode}"
    import signal

    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


# ----------------------------------------------------------------------------- the three paths


def vidcap_command(*args: str) -> list[str]:
    """`python -m vidcap_core.cli ...` with this interpreter (the installed `vidcap` script may not be on PATH)."""
    return [sys.executable, "-m", "vidcap_core.cli", *args]


def process_startup_seconds() -> float:
    """Seconds to start Python and load the `vidcap` CLI (`--help`): part of every probe time below."""
    started = time.perf_counter()
    subprocess.run(vidcap_command("--help"), capture_output=True, timeout=DEFAULT_TIMEOUT_S, check=False)
    return time.perf_counter() - started


def probe_in_subprocess(case: RobustnessCase, timeout_s: float = DEFAULT_TIMEOUT_S) -> PathOutcome:
    """`vidcap data probe FILE --format json` in a child process, killed after `timeout_s`."""
    started = time.perf_counter()
    try:
        proc = subprocess.run(vidcap_command("data", "probe", str(case.path), "--format", "json"),
                              capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return PathOutcome(case.name, "probe", "hang", f"no answer within {timeout_s:g} s (killed)", time.perf_counter() - started)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        return PathOutcome(case.name, "probe", "crash", f"{_exit_reason(proc.returncode)}: {_tail(proc.stderr)}", seconds)
    try:
        kind, detail = judge_probe_row(json.loads(proc.stdout)[0], case.path)
    except (ValueError, IndexError, KeyError, TypeError, AttributeError):
        kind, detail = "untyped", f"unparsable output {_tail(proc.stdout)!r}"
    return PathOutcome(case.name, "probe", kind, detail, seconds)


def _line_queue(stream: Any) -> queue.Queue[tuple[float, str | None]]:
    """Lines of a child's stdout as (arrival time, line) in a queue, then (time, None) at end of file.

    A thread reads, so the caller can wait on each answer with a time limit.
    """
    lines: queue.Queue[tuple[float, str | None]] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put((time.perf_counter(), line))
        lines.put((time.perf_counter(), None))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _next_json_line(lines: queue.Queue[tuple[float, str | None]], timeout_s: float) -> tuple[float, str | None]:
    """The next line that holds a JSON object (other output is skipped), or (t, None) at end of file.

    Raises TimeoutError when none arrives within `timeout_s`."""
    deadline = time.perf_counter() + timeout_s
    while True:
        try:
            at, line = lines.get(timeout=max(0.0, deadline - time.perf_counter()))
        except queue.Empty:
            raise TimeoutError from None
        if line is None or line.lstrip().startswith("{"):
            return at, line


def _caption_batch(cases: list[RobustnessCase], checkpoint: Path, timeout_s: float,
                   startup_s: float) -> tuple[list[PathOutcome], list[RobustnessCase]]:
    """One `vidcap caption FILES --format json` child over `cases`, timing each answer as it arrives
    (click flushes every line). Stops at the first crash or hang; returns the outcomes so far and
    the cases after the culprit, which the caller runs in a fresh child."""
    outcomes: list[PathOutcome] = []
    cmd = vidcap_command("caption", *(str(c.path) for c in cases), "--checkpoint", str(checkpoint), "--format", "json")
    with tempfile.TemporaryFile(mode="w+") as stderr:  # a file, not a pipe: a chatty decoder cannot block the child
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True)
        lines = _line_queue(proc.stdout)
        last = time.perf_counter()
        try:
            for i, case in enumerate(cases):
                limit = timeout_s + (startup_s if i == 0 else 0.0)  # the first answer also waits for imports and the model
                try:
                    at, line = _next_json_line(lines, limit)
                except TimeoutError:
                    proc.kill()
                    outcomes.append(PathOutcome(case.name, "caption", "hang", f"no answer within {limit:g} s (killed)", limit))
                    return outcomes, cases[i + 1 :]
                if line is None:  # the child closed its output before answering for this case
                    try:
                        returncode = proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:  # closed stdout but lives on: end it
                        proc.kill()
                        returncode = proc.wait()
                    stderr.seek(0)
                    detail = f"{_exit_reason(returncode)} before answering: {_tail(stderr.read())}"
                    outcomes.append(PathOutcome(case.name, "caption", "crash", detail, at - last))
                    return outcomes, cases[i + 1 :]
                try:
                    kind, detail = judge_caption_entry(json.loads(line), case.path)
                except ValueError:
                    kind, detail = "untyped", f"unparsable line {_tail(line)!r}"
                outcomes.append(PathOutcome(case.name, "caption", kind, detail, at - last))
                last = at
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    return outcomes, []


def caption_in_subprocess(cases: list[RobustnessCase], checkpoint: Path, timeout_s: float = DEFAULT_TIMEOUT_S,
                          startup_s: float = DEFAULT_TIMEOUT_S) -> list[PathOutcome]:
    """Every case through `vidcap caption --format json` in as few child processes as possible: one,
    plus one more after each crash or hang. Each case's seconds run from the previous answer to its
    own, so the first case's time includes starting Python, importing torch and loading the model."""
    outcomes: list[PathOutcome] = []
    pending = list(cases)
    while pending:
        done, pending = _caption_batch(pending, checkpoint, timeout_s, startup_s)
        outcomes += done
    return outcomes


def demo_outcome(handlers: Any, case: RobustnessCase, model: str = "best") -> PathOutcome:
    """`handlers.caption_video(path, model)` in this process: a Captioned, or a Failed naming the file.

    `handlers` is a demo.handlers.DemoHandlers (typed loosely so importing this module stays light).
    """
    from demo.handlers import Captioned, Failed

    started = time.perf_counter()
    try:
        answer = handlers.caption_video(case.path, model)
    except Exception as exc:  # noqa: BLE001 - the handler promises never to raise on bad input; record it if it does
        return PathOutcome(case.name, "demo", "untyped", f"raised {type(exc).__name__}: {_tail(str(exc))}",
                           time.perf_counter() - started)
    seconds = time.perf_counter() - started
    if isinstance(answer, Captioned):
        return PathOutcome(case.name, "demo", "ok", answer.caption, seconds)
    if isinstance(answer, Failed) and names_file(answer.message, case.path):
        return PathOutcome(case.name, "demo", "error", answer.message, seconds)
    return PathOutcome(case.name, "demo", "untyped", f"unexpected answer {answer!r}"[:MESSAGE_CHARS], seconds)


# ----------------------------------------------------------------------------- demo load test

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
                "answers": [asdict(a) for a in self.answers]}


def listening_addresses(port: int) -> list[str]:
    """'address:port' of the sockets listening on TCP `port` on this machine, read from /proc/net/tcp{,6}
    (Linux; empty elsewhere). A server bound to 127.0.0.1 shows as '127.0.0.1:<port>', to all
    interfaces as '0.0.0.0:<port>' or '[::]:<port>'."""
    import ipaddress

    found: list[str] = []
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            address_hex, port_hex = fields[1].split(":")
            if fields[3] != "0A" or int(port_hex, 16) != port:  # 0A = LISTEN
                continue
            raw = bytes.fromhex(address_hex)  # little-endian 32-bit words
            address = ipaddress.ip_address(b"".join(raw[i : i + 4][::-1] for i in range(0, width, 4)))
            found.append(f"{address}:{port}" if width == 4 else f"[{address}]:{port}")
    return found


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
        return [LoadAnswer(client_id, r, "exception", f"connect: {type(exc).__name__}: {_tail(str(exc))}", 0.0) for r in range(requests)]
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
            text = f"{type(exc).__name__}: {_tail(str(exc))}"
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
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            sessions = [pool.submit(_client_session, url, clip, c, requests, model, timeout_s, start) for c in range(clients)]
            for session in sessions:
                load.answers += session.result()
        load.wall_seconds = time.perf_counter() - started
    finally:
        app.close()
    return load


# ----------------------------------------------------------------------------- the report


@dataclass
class RobustnessReport:
    cases: list[RobustnessCase]
    outcomes: list[PathOutcome]  # one per case and path
    startup: dict[str, float]  # seconds: "process" (Python + vidcap CLI), "caption_warmup" / "demo_warmup" (model load, one clip)
    load: LoadTest | None
    checkpoint: Path

    def outcome(self, case: str, path: str) -> PathOutcome:
        return next(o for o in self.outcomes if o.case == case and o.path == path)

    def surprises(self) -> list[PathOutcome]:
        """Outcomes that are not a result or a typed error, or that contradict the case's expectation."""
        expected = {c.name: c.readable for c in self.cases}
        return [o for o in self.outcomes
                if not o.acceptable or (expected[o.case] is not None and (o.kind == "ok") != expected[o.case])]


def _expectation(readable: bool | None) -> str:
    return {True: "result", False: "refusal", None: "either"}[readable]


def _cell(text: str, chars: int = MESSAGE_CHARS) -> str:
    """Text fit for one markdown table cell: one line, no pipes, cut to `chars`."""
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= chars else text[: chars - 3] + "..."


def robustness_markdown(report: RobustnessReport, machine: str) -> str:
    counts = {kind: sum(o.kind == kind for o in report.outcomes) for kind in ("ok", "error", "crash", "hang", "untyped")}
    surprises = report.surprises()
    lines = [
        "# Robustness: hostile inputs and the demo under load",
        "",
        "Generated by `vidcap-bench robustness`. Each input goes through `vidcap data probe FILE --format json` "
        "and `vidcap caption FILES --format json` (child processes with a per-file time limit, so a native crash or "
        "hang is recorded, not fatal) and through the demo's `DemoHandlers.caption_video`, which decodes in child "
        "processes (IsolatedDecoder) as the served app does. "
        "The acceptable outcomes are a result (probe facts or a caption) or the typed refusal that names the file.",
        "",
        f"Checkpoint: `{report.checkpoint.name}` ({report.checkpoint.parent.name}/). "
        f"{len(report.cases)} inputs x {len(PATHS)} paths = {len(report.outcomes)} outcomes: "
        f"{counts['ok']} results, {counts['error']} typed refusals, {counts['crash']} crashes, {counts['hang']} hangs, "
        f"{counts['untyped']} untyped answers; {len(surprises)} surprise(s) (not acceptable, or not what the case expects).",
        "",
        f"Seconds: probe times include starting a Python process with the `vidcap` CLI "
        f"({report.startup.get('process', float('nan')):.2f} s on this machine); caption times run from the previous "
        f"answer of the same `vidcap caption` process, after a warm-up clip that took "
        f"{report.startup.get('caption_warmup', float('nan')):.2f} s (imports, model load, one caption); demo times are "
        f"handler calls in this process (decoding in its child processes) after a warm-up call that loaded the model ({report.startup.get('demo_warmup', float('nan')):.2f} s).",
        "",
        "## Inputs",
        "",
        "| case | file | what it is | expected |",
        "|---|---|---|---|",
    ]
    lines += [f"| {c.name} | `{c.path.name}` | {_cell(c.what)} | {_expectation(c.readable)} |" for c in report.cases]
    lines += ["", "## Outcomes", "", "| case | path | outcome | seconds | caption, facts or error message |", "|---|---|---|---:|---|"]
    for case in report.cases:
        for path in PATHS:
            o = report.outcome(case.name, path)
            kind = {"ok": "caption" if path != "probe" else "readable", "error": "refused"}.get(o.kind, f"**{o.kind}**")
            lines.append(f"| {case.name} | {path} | {kind} | {o.seconds:.2f} | {_cell(o.detail)} |")
    if surprises:
        lines += ["", "## Surprises", ""]
        lines += [f"- {o.case} / {o.path}: {o.kind}: {_cell(o.detail)}" for o in surprises]
    if report.load is not None:
        load, counts_load = report.load, report.load.counts()
        lines += [
            "", "## Demo load test", "",
            f"The demo served in-process at {load.url}; listening sockets on its port: "
            f"{', '.join(f'`{a}`' for a in load.listening) or 'none found (no /proc/net/tcp)'} "
            f"({'loopback only' if load.loopback_only else '**not loopback only**'}). "
            f"{load.clients} concurrent clients (threads, one `gradio_client.Client` each) x {load.requests_per_client} "
            f"`/caption` requests each, greedy, the model's own frame count, the `valid` clip uploaded every time.",
            "",
            "| answers | captions | errors | queue full | timeouts | exceptions | p50 latency (s) | p95 latency (s) | wall (s) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {len(load.answers)} | {counts_load['caption']} | {counts_load['error']} | {counts_load['queue-full']} | "
            f"{counts_load['timeout']} | {counts_load['exception']} | {load.latency(0.5):.2f} | {load.latency(0.95):.2f} | "
            f"{load.wall_seconds:.1f} |",
            "",
            "Latency runs from submitting a request (upload included) to its answer. Every answer:",
            "",
            "| client | request | answer | seconds | detail |",
            "|---:|---:|---|---:|---|",
        ]
        lines += [f"| {a.client} | {a.request} | {a.kind} | {a.seconds:.2f} | {_cell(a.detail, 120)} |" for a in load.answers]
    lines += ["", "## Machine", "", machine, ""]
    return "\n".join(lines)


def robustness_json(report: RobustnessReport, machine: dict[str, Any]) -> dict[str, Any]:
    return {
        "checkpoint": str(report.checkpoint),
        "cases": [{"name": c.name, "file": c.path.name, "what": c.what, "expected": _expectation(c.readable)} for c in report.cases],
        "outcomes": [asdict(o) for o in report.outcomes],
        "surprises": [asdict(o) for o in report.surprises()],
        "startup_seconds": report.startup,
        "load_test": None if report.load is None else report.load.to_dict(),
        "machine": machine,
    }


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
    from benchmark.suites.base import write_text
    from demo.examples import ExampleSet
    from demo.app import CONCURRENCY_LIMIT
    from demo.handlers import DemoHandlers, DemoLimits, ModelCache, find_checkpoints
    from vidcap_core.training.run_files import write_json
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
    write_text(markdown, robustness_markdown(report, machine.markdown()))
    write_json(out / "robustness.json", robustness_json(report, machine.to_dict()))
    return markdown
