"""The files of one run directory, written atomically (temp file in the same folder, then os.replace)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch


@dataclass(frozen=True)
class RunDir:
    """Paths inside RUN_DIR."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def vocab(self) -> Path:
        return self.root / "vocab.json"

    @property
    def last(self) -> Path:
        return self.root / "last.pt"

    @property
    def best(self) -> Path:
        return self.root / "best.pt"

    @property
    def log(self) -> Path:
        return self.root / "log.jsonl"

    @property
    def gradients(self) -> Path:
        return self.root / "gradients.jsonl"


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call write(file) on a temp file next to `path`, then rename it over `path`.

    No fsync: the rename already guarantees a reader never sees half a file after a crash of
    this process, and fsync costs ~0.1 s per call on a busy disk, every epoch.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(value, indent=2, allow_nan=False) + "\n").encode()))


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(row, allow_nan=False) + "\n" for row in rows)
    atomic_write(path, lambda f: f.write(text.encode()))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """Rewrite the whole (small) file with one more row, so a crash never leaves half a line."""
    write_jsonl(path, read_jsonl(path) + [row])


def save_torch(path: Path, obj: Any) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))
