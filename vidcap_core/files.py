"""Writing and hashing files: the one helper per mechanism that every layer uses.

Atomic writes. Every file vidcap writes for later reading (checkpoints, logs, configs, feature
arrays, generated clips, benchmark tables) is written to a temp file `.NAME.XXXXXXXX.tmp` in the
target's folder and renamed over the target with `os.replace`, so a reader never sees half a
file and a killed writer leaves only a temp file, which `sweep_interrupted_writes` removes before
a resume.

fsync policy: none. The failure we defend against is the writing process being killed (Ctrl-C,
kill -9, a crash), and the rename alone already covers it: the kernel has the complete data
before the rename is visible. A power cut can still lose the newest file; every file here can be
regenerated, and fsync costs about 0.1 s per call on a busy disk, every epoch and every clip.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

TEMP_SUFFIX = ".tmp"
TEMP_PATTERN = f".*{TEMP_SUFFIX}"  # what atomic_write leaves behind when killed mid-write


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call `write(file)` on a temp file next to `path`, then rename it over `path` (no fsync: see
    the module docstring). On any exception the temp file is removed and the target is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float replaced by None (JSON has no NaN: a metric that does
    not apply is NaN in memory and null on disk), recursively through dicts, lists and tuples."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path: Path, value: Any) -> None:
    """Strict JSON (a NaN raises ValueError: pass json_safe(value) where NaN means 'not applicable')."""
    atomic_write_text(path, json.dumps(value, indent=2, allow_nan=False) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(row, allow_nan=False) + "\n" for row in rows))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file; [] when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """Rewrite the whole (small) file with one more row, so a crash never leaves half a line."""
    write_jsonl(path, [*read_jsonl(path), row])


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def sweep_interrupted_writes_of(path: Path) -> list[Path]:
    """Delete the temp files that killed `atomic_write(path)` calls left next to `path`; returns them.

    Safe while other processes write *other* files in the same folder (feature-extraction shards):
    call it only where no other process writes `path` itself.
    """
    path = Path(path)
    removed = [tmp for tmp in path.parent.glob(f".{glob.escape(path.name)}.*{TEMP_SUFFIX}") if tmp.is_file()]
    for tmp in removed:
        tmp.unlink(missing_ok=True)
    return removed


def sweep_interrupted_writes(folder: Path) -> list[Path]:
    """Delete the temp files that a killed `atomic_write` left directly in `folder`; returns them.

    Only call it where no other process is writing into `folder` (before a run starts or resumes).
    Under torchrun only rank 0 sweeps: the others start at the same time and never write there.
    """
    if int(os.environ.get("RANK", "0")) != 0 or not Path(folder).is_dir():
        return []
    removed = []
    for path in Path(folder).glob(TEMP_PATTERN):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
