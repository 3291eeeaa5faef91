"""Stable keys: what makes a cached dataset, feature set or training run reusable.

A key is the SHA-256 of canonical JSON (sorted keys, no whitespace variance) of what determines the
numbers: the configuration without paths, the identity of the inputs, the declared numerics version
of each stage that computes them (`vidcap_core.numerics`), and the environment that changes floats
(torch's minor version, the device with the instruction set its kernels use, torch's CPU thread count for
training). Never a hash of the
source: a refactor keeps every cached result, and a change that moves a number bumps its stage's
version (the golden-number tests in tests/golden/ say which).

The commit that produced an artefact (`describe_commit`) is recorded next to it for information only.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

from vidcap_core.numerics import versions

KEY_LENGTH = 16  # hex digits: 64 bits, far beyond the few hundred runs a cache holds
BENCH_SCHEMA = 2  # bump when the benchmark changes how it trains or evaluates a run (2: numerics-versioned keys)
# Benchmark runs always train on one torch CPU thread, whatever --jobs says: the thread count changes the
# floats of a CPU step (reduction order), so it is part of the key, and a fixed one keeps --jobs 1 and
# --jobs 2 (and any core count) on the same keys and numbers.
BENCH_TORCH_THREADS = 1
REPO_ROOT = Path(__file__).resolve().parent.parent
# The commit of the process that planned the runs, given to Ray workers, which run a copy of its code outside git
COMMIT_VARIABLE = "VIDCAP_BENCH_COMMIT"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)


def stable_hash(value: Any, length: int = KEY_LENGTH) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


def minor_version(version: str) -> str:
    """'2.14.1+cu128' -> '2.14': patch releases do not change kernels' arithmetic; minor ones may."""
    return ".".join(version.split("+")[0].split(".")[:2])


@lru_cache(maxsize=None)
def torch_version() -> str:
    import torch

    return minor_version(torch.__version__)


@lru_cache(maxsize=None)
def encoder_version() -> str:
    """PyAV's version: it bundles the FFmpeg and libx264 that write SynthClips' bytes."""
    import av

    return minor_version(av.__version__)


@lru_cache(maxsize=None)
def device_kind(preference: str | None = "auto") -> str:
    """What `preference` resolves to on this machine (vidcap_core.devices), with what decides its
    kernels' rounding: 'cpu:AVX2' / 'cpu:AVX512' (the instruction set torch's CPU kernels dispatch to)
    or 'cuda:<GPU name>'. The same run on an AVX2 and an AVX512 machine differs in the last bits of a
    step, and a recurrent run amplifies that into other numbers after a few thousand steps (measured:
    the committed S2VT-RNN runs of the length suite, trained on another CPU, end 500 steps apart here)."""
    import torch

    from vidcap_core.devices import pick_device

    device = pick_device(preference)
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"{device.type}:{torch.backends.cpu.get_cpu_capability()}"


def dataset_key_material(stages: tuple[str, ...]) -> dict[str, Any]:
    return {"numerics": versions(stages), "encoder": encoder_version()}


def compute_key_material(stages: tuple[str, ...], device: str | None = "auto") -> dict[str, Any]:
    """The numerics versions of `stages` and the environment a float computation ran in."""
    return {"numerics": versions(stages), "torch": torch_version(), "device": device_kind(device)}


@lru_cache(maxsize=None)
def describe_commit() -> str | None:
    """`git describe --always --dirty` of the checkout the benchmark runs from; None outside git.
    Recorded in spec.json and bench_run.json for information: keys never read it. A Ray worker reads the
    planning process's from COMMIT_VARIABLE."""
    if os.environ.get(COMMIT_VARIABLE):
        return os.environ[COMMIT_VARIABLE]
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None
