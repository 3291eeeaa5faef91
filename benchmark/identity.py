"""Stable content hashes: what makes a cached dataset, feature set or training run reusable.

A key is the SHA-256 of canonical JSON (sorted keys, no whitespace variance) of everything that can
change the result, including a digest of the library source that produced it, so results from
edited code are never mistaken for results of the current code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import vidcap_core

KEY_LENGTH = 16  # hex digits: 64 bits, far beyond the few hundred runs a cache holds
BENCH_SCHEMA = 1  # bump when the benchmark changes how it trains or evaluates a run
LIBRARY_ROOT = Path(vidcap_core.__file__).resolve().parent


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)


def stable_hash(value: Any, length: int = KEY_LENGTH) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


@lru_cache(maxsize=None)
def source_digest(packages: tuple[str, ...]) -> str:
    """SHA-256 over the .py files of these vidcap_core sub-packages (paths and contents, sorted)."""
    digest = hashlib.sha256()
    for path in sorted(_python_files(packages)):
        digest.update(str(path.relative_to(LIBRARY_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:KEY_LENGTH]


def _python_files(packages: Iterable[str]) -> list[Path]:
    files: list[Path] = []
    for package in packages:
        target = LIBRARY_ROOT / package
        if target.is_dir():
            files.extend(target.rglob("*.py"))
        elif target.with_suffix(".py").is_file():
            files.append(target.with_suffix(".py"))
    return files


# Which library code each cached artefact depends on.
SYNTH_CODE = ("synth", "video")
FEATURE_CODE = ("features", "video", "data")
TRAINING_CODE = ("data", "features", "models", "decoding", "text", "training", "evaluation", "pipeline",
                 "checkpoint", "synth")
