"""The Java runtime that pycocoevalcap's METEOR 1.5 jar and Stanford PTB tokenizer run on."""

from __future__ import annotations

import functools
import shutil
import signal
import subprocess

from vidcap_core.errors import EvaluationError

INSTALL_HINT = (
    "install a JRE, e.g. `apt-get install default-jre-headless` (Debian/Ubuntu) or `brew install openjdk` "
    "(macOS), and make sure `java` is on PATH"
)
VERSION_TIMEOUT_S = 60.0  # `java -version` takes well under a second, unless the machine is very busy


def find_java() -> str:
    """Absolute path of the `java` that PATH resolves to (the one pycocoevalcap will start)."""
    path = shutil.which("java")
    if path is None:
        raise EvaluationError(f"Java was not found; METEOR and the PTB tokenizer need it: {INSTALL_HINT}.")
    return path


def check_java() -> str:
    """Return the first line of `java -version` (e.g. 'openjdk version "17.0.15" 2025-04-15').

    Raises EvaluationError with an install hint when Java is missing or does not run. A working
    answer is cached per executable path, so a later PATH change (or a fresh install) is honoured
    and a failure is retried on the next call.
    """
    return _java_version(find_java())


@functools.lru_cache(maxsize=8)
def _java_version(executable: str) -> str:
    try:
        proc = subprocess.run([executable, "-version"], capture_output=True, text=True,
                              timeout=VERSION_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise EvaluationError(f"`{executable} -version` did not answer within {VERSION_TIMEOUT_S:.0f} s; "
                              f"check that this Java runtime works, or {INSTALL_HINT}.") from exc
    except OSError as exc:
        raise EvaluationError(f"Java at {executable} cannot be run ({exc}); METEOR and the PTB tokenizer "
                              f"need it: {INSTALL_HINT}.") from exc
    # The JVM prints its version on stderr, after any "Picked up JAVA_TOOL_OPTIONS: ..." notice.
    lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines()
             if ln.strip() and not ln.startswith("Picked up")]
    if proc.returncode != 0 or not lines:
        detail = lines[-1] if lines else "no output"
        raise EvaluationError(f"`{executable} -version` failed (exit code {proc.returncode}: {detail}); "
                              f"METEOR and the PTB tokenizer need a working Java: {INSTALL_HINT}.")
    return lines[0]


def describe_exit_status(code: int) -> str:
    """'exit status 1', or 'exit status -9 (killed by SIGKILL)' for Popen's negative signal codes."""
    if code >= 0:
        return f"exit status {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"exit status {code} (killed by {name})"
