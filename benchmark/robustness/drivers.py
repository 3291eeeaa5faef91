"""The three paths a robustness case goes through, and how their answers are judged.

- probe:   `vidcap data probe FILE --format json` in a child process (facts, or `{"ok": false, "error"}`);
- caption: `vidcap caption FILES --checkpoint CKPT --format json` in as few child processes as possible
           (a caption, or `{"path", "error"}`);
- demo:    `DemoHandlers.caption_video(path, model)` in this process, decoding in child processes
           (Captioned, or Failed naming the file).

The child processes run with a per-file time limit, so a native crash or a hang becomes a recorded
outcome ("crash", "hang") instead of killing the run.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from benchmark.robustness.cases import RobustnessCase

PATHS = ("probe", "caption", "demo")
DEFAULT_TIMEOUT_S = 120.0  # per file, per CLI path: a hang shows up as an outcome, not a stuck run
MESSAGE_CHARS = 240  # error messages in robustness.md are cut to this length (the JSON keeps them whole)

Kind = Literal["ok", "error", "crash", "hang", "untyped"]
"""ok: facts (probe) or a caption; error: the typed refusal naming the file; crash: the process died
(signal or unexpected exit); hang: no answer within the time limit; untyped: an answer that is
neither (a traceback, an error that does not name the file, an exception other than VidcapError)."""


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


def message_tail(text: str, chars: int = MESSAGE_CHARS) -> str:
    """The last `chars` characters of `text` on one line (where a child's stderr says what killed it)."""
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
        return PathOutcome(case.name, "probe", "crash", f"{_exit_reason(proc.returncode)}: {message_tail(proc.stderr)}", seconds)
    try:
        kind, detail = judge_probe_row(json.loads(proc.stdout)[0], case.path)
    except (ValueError, IndexError, KeyError, TypeError, AttributeError):
        kind, detail = "untyped", f"unparsable output {message_tail(proc.stdout)!r}"
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
                    detail = f"{_exit_reason(returncode)} before answering: {message_tail(stderr.read())}"
                    outcomes.append(PathOutcome(case.name, "caption", "crash", detail, at - last))
                    return outcomes, cases[i + 1 :]
                try:
                    kind, detail = judge_caption_entry(json.loads(line), case.path)
                except ValueError:
                    kind, detail = "untyped", f"unparsable line {message_tail(line)!r}"
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
        return PathOutcome(case.name, "demo", "untyped", f"raised {type(exc).__name__}: {message_tail(str(exc))}",
                           time.perf_counter() - started)
    seconds = time.perf_counter() - started
    if isinstance(answer, Captioned):
        return PathOutcome(case.name, "demo", "ok", answer.caption, seconds)
    if isinstance(answer, Failed) and names_file(answer.message, case.path):
        return PathOutcome(case.name, "demo", "error", answer.message, seconds)
    return PathOutcome(case.name, "demo", "untyped", f"unexpected answer {answer!r}"[:MESSAGE_CHARS], seconds)

