"""What a user waits for at the terminal: `vidcap --help` and `vidcap caption FILE` of one file, each a
fresh process (imports, checkpoint load, decoding and captioning included), as a user runs them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from benchmark.perf.timing import PerfResults, latency_row, time_it

CLI_TIMEOUT_S = 120.0


def vidcap_command() -> list[str]:
    """The installed `vidcap` script beside this interpreter (what `pip install` put on PATH), else on PATH."""
    beside = Path(sys.executable).with_name("vidcap")
    found = str(beside) if beside.is_file() else shutil.which("vidcap")
    if found is None:
        raise FileNotFoundError("the `vidcap` command is not installed beside this Python or on PATH: pip install -e .")
    return [found]


def run_command(argv: list[str]) -> None:
    """Run argv to its end; a failing command raises with the end of its stderr."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {done.returncode}: {done.stderr.strip()[-500:]}")


def time_command(argv: list[str], repeats: int) -> list[float]:
    """Wall seconds of `repeats` runs of argv, after one unmeasured run (the OS file cache warm, as for a
    user's second command)."""
    return time_it(lambda: run_command(argv), repeats)


def measure_cli(checkpoint: Path, clips: dict[str, Path], repeats: int, results: PerfResults) -> None:
    """`vidcap --help` (goal <= 1 s) and `vidcap caption CLIP --checkpoint` per clip (goal <= 2 s)."""
    vidcap = vidcap_command()
    results.latency.append(latency_row("`vidcap --help` (a fresh process)", time_command([*vidcap, "--help"], repeats),
                                       "<= 1 s"))
    for name, clip in clips.items():
        argv = [*vidcap, "caption", str(clip), "--checkpoint", str(checkpoint)]
        results.latency.append(latency_row(f"`vidcap caption` of one file, {name} (a fresh process, text output)",
                                           time_command(argv, repeats), "<= 2 s"))
