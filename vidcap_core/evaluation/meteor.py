"""pycocoevalcap's METEOR 1.5 process, spoken to with timeouts instead of blocking reads.

pycocoevalcap's `Meteor()` starts `java -jar -Xmx2G meteor-1.5.jar - - -stdio -l en -norm` and
talks to it line by line: one `SCORE ||| ref_1 ||| ... ||| ref_n ||| hypothesis` line per video
answers that video's sufficient statistics, then one `EVAL ||| stats_1 ||| ... ||| stats_N` line
answers N per-video scores and the corpus score. Its `compute_score` can hang or wedge the process
for good: the reads have no timeout, a failed read leaves its thread lock held (so the next call,
and `__del__` at exit, block forever), and the JVM's stderr is piped but never read.

`MeteorProcess` keeps pycocoevalcap's own `Meteor()` (its jar, flags, working directory) and sends
the same lines, byte for byte, but writes and reads through `select`, drains stderr, and turns
every failure (a dead JVM, a hang, an unparsable answer) into an EvaluationError that quotes the
JVM's last stderr lines. A failed process is killed; the caller starts a fresh one.

A JVM that dies is noticed in one of three places, depending only on when it died: already gone
before the request, a broken stdin during the write, or end-of-file on stdout before the answer.
All three go through `_exited`, which waits for the exit status and for the stderr reader to reach
end-of-file before raising, so the caller gets one JavaExitedError whose message always carries the
exit status and the JVM's last stderr lines, whichever of those moments it was.

Hang detection: loading the paraphrase table costs about a minute of CPU, and far longer in wall
time on a busy machine, so silence alone says little. The JVM counts as hung when it has not
answered for `stall_s` seconds *and* used less than STALL_CPU_SHARE of a core in that time (read from
/proc; where /proc is missing, silence after the first answer is enough), or when it has not
answered for `max_wait_s` seconds whatever it was doing.

The corpus METEOR score is the jar's aggregate over the pooled statistics of all videos, not the
mean of the per-video scores; `evaluate` on a resampled list of statistics is therefore the exact
METEOR of a resampled corpus (what `corpus_bootstrap` needs).
"""

from __future__ import annotations

import collections
import os
import selectors
import subprocess
import threading
import time
import weakref
from collections.abc import Sequence
from typing import IO, NoReturn

from vidcap_core.errors import EvaluationError, JavaExitedError
from vidcap_core.evaluation.java import INSTALL_HINT, check_java, describe_exit_status

STALL_S = 120.0  # silence after which a JVM that is not computing counts as hung
MAX_WAIT_S = 3600.0  # silence after which the JVM counts as hung whatever it is doing
STALL_CPU_SHARE = 0.01  # a working JVM gets more than 1% of a core even on a crowded machine; an idle one ~0
EXIT_WAIT_S = 60.0  # a JVM whose pipes closed exits (and its stderr reaches EOF) within this, even on a busy machine
MEMORY_HINT = ("METEOR needs Java and about 2 GB of memory (-Xmx2G); the process was stopped and the next "
               "METEOR request starts a fresh one.")


def score_line(hypothesis: str, references: Sequence[str]) -> str:
    """The SCORE request for one video, exactly as pycocoevalcap's `Meteor._stat` builds it."""
    hypothesis = hypothesis.replace("|||", "").replace("  ", " ")
    return " ||| ".join(("SCORE", " ||| ".join(references), hypothesis))


class MeteorProcess:
    """One METEOR JVM (started by pycocoevalcap's `Meteor()`), used by one thread at a time."""

    def __init__(self, stall_s: float = STALL_S, max_wait_s: float = MAX_WAIT_S):
        from pycocoevalcap.meteor.meteor import Meteor

        check_java()
        try:
            self.meteor = Meteor()  # spawns the JVM; nothing is read until the first request
        except OSError as exc:
            raise EvaluationError(f"METEOR's Java process could not start ({exc}): {INSTALL_HINT}.") from exc
        self.stall_s = stall_s
        self.max_wait_s = max_wait_s
        self._proc: subprocess.Popen = self.meteor.meteor_p
        self._pending = bytearray()  # bytes read past the last complete line (empty between requests)
        self._answered = False  # becomes True with the first line the JVM answers
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._lock = threading.Lock()
        self._stderr_reader = threading.Thread(target=_drain, args=(self._proc.stderr, self._stderr), daemon=True,
                                               name="meteor-stderr")
        self._stderr_reader.start()
        self._finalizer = weakref.finalize(self, _terminate, self._proc, self._stderr_reader)

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def stats(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> list[str]:
        """METEOR's sufficient statistics of each (hypothesis, references) pair, one string each."""
        if len(hypotheses) != len(references):
            raise EvaluationError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists.")
        lines = [score_line(h, r) for h, r in zip(hypotheses, references)]
        return self._exchange(lines, len(lines))

    def evaluate(self, stats: Sequence[str]) -> tuple[float, list[float]]:
        """(corpus score, per-item scores) of a list of statistics; repeated items count repeatedly."""
        if not stats:
            raise EvaluationError("METEOR was asked to evaluate an empty list of statistics.")
        answer = self._exchange(["EVAL" + "".join(f" ||| {s}" for s in stats)], len(stats) + 1)
        try:
            values = [float(a) for a in answer]
        except ValueError as exc:
            self._fail(f"METEOR answered something that is not a score ({exc})")
        return values[-1], values[:-1]

    def compute_score(self, gts: dict, res: dict) -> tuple[float, list[float]]:
        """pycocoevalcap's `Meteor.compute_score(gts, res)` protocol, with timeouts."""
        if gts.keys() != res.keys():
            raise EvaluationError("METEOR needs the same video ids in references and predictions.")
        ids = list(gts)
        return self.evaluate(self.stats([res[i][0] for i in ids], [gts[i] for i in ids]))

    def close(self) -> None:
        """Stop the JVM (idempotent)."""
        self._finalizer()

    def _exchange(self, lines: Sequence[str], n_answers: int) -> list[str]:
        """Write `lines` and read `n_answers` lines, interleaved so neither pipe can fill up."""
        payload = "".join(f"{line}\n" for line in lines).encode()
        if payload.count(b"\n") != len(lines):
            raise EvaluationError("a METEOR request contains a newline; captions must be sanitised first.")
        with self._lock:
            if not self.alive:
                self._exited()
            return self._talk(payload, n_answers)

    def _talk(self, payload: bytes, n_answers: int) -> list[str]:
        stdin, stdout = self._proc.stdin.fileno(), self._proc.stdout.fileno()
        answers: list[str] = []
        sent = 0
        os.set_blocking(stdin, False)
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(stdout, selectors.EVENT_READ)
                selector.register(stdin, selectors.EVENT_WRITE)
                silence = _Silence(self._proc.pid, self.stall_s, self.max_wait_s, self._answered)
                while len(answers) < n_answers:
                    hung = silence.hung()
                    if hung:
                        self._fail(hung)
                    for key, _ in selector.select(timeout=min(5.0, self.stall_s, self.max_wait_s)):
                        if key.fd == stdin:
                            sent += self._write(stdin, payload[sent:])
                            if sent == len(payload):
                                selector.unregister(stdin)
                        else:
                            answers.extend(self._read(stdout))
                            self._answered = self._answered or bool(answers)
                        silence.reset()
        finally:
            if self.alive:
                os.set_blocking(stdin, True)
        if len(answers) != n_answers:
            self._fail(f"METEOR answered {len(answers)} lines where {n_answers} were due")
        return answers

    def _write(self, fd: int, data: bytes) -> int:
        try:
            return os.write(fd, data[:65536])
        except BlockingIOError:
            return 0
        except BrokenPipeError:  # the JVM closed stdin: it is exiting
            self._exited()

    def _read(self, fd: int) -> list[str]:
        chunk = os.read(fd, 1 << 16)
        if not chunk:  # end-of-file: the JVM is exiting
            self._exited()
        self._pending += chunk
        *complete, rest = bytes(self._pending).split(b"\n")
        self._pending = bytearray(rest)
        return [line.decode().strip() for line in complete]

    def _exited(self) -> NoReturn:
        """Raise JavaExitedError for a JVM that is gone or going (not running, broken stdin, EOF on stdout).

        Its pipes close a moment before its exit status is ready, so wait for the status, then for
        the stderr reader to reach end-of-file: the message never depends on which was seen first.
        """
        try:
            code = self._proc.wait(timeout=EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            self._fail(f"METEOR's Java process closed its pipes but did not exit within {EXIT_WAIT_S:g} s")
        self._stderr_reader.join(timeout=EXIT_WAIT_S)
        self._finalizer()  # closes the pipes; the process is already reaped
        tail = self._stderr_tail()
        raise JavaExitedError(f"METEOR's Java process exited with {describe_exit_status(code)} (stderr: {tail}). "
                              f"{MEMORY_HINT}", exit_code=code, stderr=tail)

    def _fail(self, reason: str) -> NoReturn:
        """Kill a JVM that misbehaves (hung, unparsable answer) and raise; one that already exited goes to `_exited`."""
        if not self.alive:
            self._exited()
        self._finalizer()  # also waits for the stderr reader, so the JVM's last words are in the tail
        raise EvaluationError(f"{reason} (it was still running, and was killed; stderr: {self._stderr_tail()}). "
                              f"{MEMORY_HINT}")

    def _stderr_tail(self) -> str:
        return " | ".join(list(self._stderr)[-5:]) or "nothing on stderr"

    def __enter__(self) -> MeteorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Silence:
    """How long the JVM has not answered, and whether it kept computing meanwhile."""

    def __init__(self, pid: int, stall_s: float, max_wait_s: float, answered_before: bool):
        self.pid, self.stall_s, self.max_wait_s = pid, stall_s, max_wait_s
        self.answered_before = answered_before
        self.reset()

    def reset(self) -> None:
        self.start = self.window_start = time.monotonic()
        self.window_cpu = _cpu_seconds(self.pid)

    def hung(self) -> str | None:
        """Why the JVM counts as hung now, or None."""
        now = time.monotonic()
        silent = now - self.start
        if silent > self.max_wait_s:
            return f"METEOR gave no answer for {silent:.0f} s (max_wait_s={self.max_wait_s:g})"
        if now - self.window_start < self.stall_s:
            return None
        cpu = _cpu_seconds(self.pid)
        if cpu is None or self.window_cpu is None:
            if self.answered_before:  # no CPU accounting: only a warm JVM's silence is conclusive
                return f"METEOR gave no answer for {silent:.0f} s (stall_s={self.stall_s:g})"
        elif cpu - self.window_cpu < STALL_CPU_SHARE * (now - self.window_start):
            return (f"METEOR gave no answer for {silent:.0f} s and used {cpu - self.window_cpu:.2f} s of CPU "
                    f"in the last {now - self.window_start:.0f} s: it is stuck")
        self.window_start, self.window_cpu = now, cpu
        return None


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads), from /proc; None where unavailable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _drain(stream: IO[bytes], tail: collections.deque[str]) -> None:
    """Read the JVM's stderr until it closes, keeping the last lines for error messages."""
    for raw in iter(stream.readline, b""):
        tail.append(raw.decode(errors="replace").rstrip())


def _terminate(proc: subprocess.Popen, stderr_reader: threading.Thread) -> None:
    """Close stdin, kill and reap the JVM, then close its pipes; runs once (finalizer)."""
    if proc.stdin is not None and not proc.stdin.closed:
        try:
            proc.stdin.close()
        except OSError:
            pass
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        return  # could not be reaped: leave its pipes to the garbage collector
    stderr_reader.join(timeout=5.0)  # reads to EOF now that the JVM is gone
    for stream in (proc.stdout, proc.stderr if not stderr_reader.is_alive() else None):
        if stream is not None:
            stream.close()
