"""kill -9 in the middle of long work, then the same command again: it resumes, reads no corrupt
file, and ends with what an uninterrupted run produces.

Each test runs the real CLI in its own process group, waits until the work is visibly under way
(some feature files written; an epoch logged; a benchmark run half-trained), SIGKILLs the whole
group (workers included), runs the same command to the end and compares with a run that was
never interrupted. The data is SynthClips tiny (24 clips).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from vidcap_core.features.store import FeatureStore

pytestmark = pytest.mark.timeout(600)
BIN = Path(sys.executable).parent
VIDCAP = [sys.executable, "-m", "vidcap_core.cli"]
BENCH = [str(BIN / "vidcap-bench")]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from vidcap_core.synth import generate_synthclips

    root = tmp_path_factory.mktemp("interrupted") / "synth"
    generate_synthclips("tiny", root, seed=0, workers=1)
    return root


def run_to_end(command: list[str]) -> None:
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def kill_when(command: list[str], ready: Callable[[], bool], timeout_s: float = 300) -> None:
    """Start `command`, SIGKILL its process group as soon as `ready()`; fail if it ended first."""
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + timeout_s
    try:
        while not ready():
            assert process.poll() is None, f"{command[2:4]} finished (code {process.returncode}) before it could be killed"
            assert time.monotonic() < deadline, "the work never got under way"
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def test_feature_extraction_killed_then_rerun(tiny, tmp_path):
    def extract(out: Path) -> list[str]:
        return [*VIDCAP, "features", "--dataset", "synth", "--root", str(tiny), "--out", str(out),
                "--backbone", "synth-cnn", "--frames", "16", "--no-progress"]

    run_to_end(extract(tmp_path / "straight"))
    killed = tmp_path / "killed"
    kill_when(extract(killed), lambda: len(list(killed.glob("*.npy"))) >= 4)
    left = FeatureStore(killed)
    assert 0 < len(left.video_ids()) < 24  # cut short: what is there is complete, the rest missing
    for video_id in left.video_ids():  # no half-written file passes for a feature
        assert left.load(video_id).shape == (16, left.feature_dim)
    run_to_end(extract(killed))
    straight, resumed = FeatureStore(tmp_path / "straight"), FeatureStore(killed)
    assert resumed.video_ids() == straight.video_ids() and len(straight.video_ids()) == 24
    for video_id in straight.video_ids():
        np.testing.assert_array_equal(resumed.load(video_id), straight.load(video_id))
    assert not list(killed.glob("*.tmp*"))


def test_training_killed_then_rerun(tiny, tmp_path):
    features = tmp_path / "features"
    run_to_end([*VIDCAP, "features", "--dataset", "synth", "--root", str(tiny), "--out", str(features),
                "--backbone", "synth-cnn", "--frames", "8", "--no-progress"])

    def train(out: Path) -> list[str]:
        return [*VIDCAP, "train", "--dataset", "synth", "--root", str(tiny), "--features", str(features),
                "--arch", "attention", "--cell", "lstm", "--max-steps", "16", "--val-every-steps", "4", "--hidden-size", "32",
                "--embed-size", "16", "--attention-size", "16", "--batch-size", "16", "--min-count", "1",
                "--plateau-patience", "1", "--max-lr-reductions", "5", "--seed", "3", "--out", str(out), "--no-progress"]

    run_to_end(train(tmp_path / "straight"))
    killed = tmp_path / "killed"
    kill_when(train(killed), lambda: epochs_logged(killed) >= 2)
    run_to_end(train(killed))
    assert without_timings(killed) == without_timings(tmp_path / "straight")
    for name, key in (("last.pt", "model"), ("best.pt", "state_dict")):  # resume state; inference checkpoint
        a = torch.load(tmp_path / "straight" / name, weights_only=True)[key]
        b = torch.load(killed / name, weights_only=True)[key]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert not list(killed.glob("*.tmp"))


@pytest.mark.slow  # ~3 min (three benchmark processes, each starting METEOR's JVM): `make test-all` runs it
def test_benchmark_killed_then_rerun(tmp_path):
    def bench(out: Path) -> list[str]:
        return [*BENCH, "run", "--suite", "cells", "--profile", "smoke", "--max-steps", "30", "--out", str(out),
                "--cache", str(out / "cache")]

    run_to_end(bench(tmp_path / "straight"))
    killed = tmp_path / "killed"
    # killed while training: at least one run of the suite has logged an epoch and not finished
    kill_when(bench(killed), lambda: any(epochs_logged(d) >= 1 and not (d.parent / "result.json").is_file()
                                         for d in (killed / "cache" / "runs").glob("*/train")))
    run_to_end(bench(killed))
    assert metric_rows(killed / "cells.csv") == metric_rows(tmp_path / "straight" / "cells.csv")
    assert not [p for p in (killed / "cache" / "runs").rglob("*.tmp")]


def epochs_logged(run: Path) -> int:
    try:
        return sum(1 for line in (run / "log.jsonl").read_text().splitlines() if line.strip())
    except FileNotFoundError:
        return 0


def without_timings(run: Path) -> list[dict]:
    """log.jsonl rows minus the wall-clock fields, which differ between any two runs."""
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    return [{k: v for k, v in row.items() if "seconds" not in k and not k.endswith("_s")} for row in rows]


def metric_rows(table: Path) -> list[dict[str, str]]:
    """The suite table without its timing columns."""
    timing = ("inference_ms_per_clip", "train_s_per_epoch", "train_seconds", "s_to_95pct_val_CIDEr")
    with open(table, newline="") as handle:
        return [{k: v for k, v in row.items() if k not in timing} for row in csv.DictReader(handle)]


def test_sweep_removes_only_the_temp_files_of_interrupted_writes(tmp_path, monkeypatch):
    from vidcap_core.files import sweep_interrupted_writes, write_json

    write_json(tmp_path / "config.json", {"seed": 1})
    left = [tmp_path / ".last.pt.k3j2x9q1.tmp", tmp_path / ".log.jsonl.abcdefgh.tmp"]
    for path in left:
        path.write_bytes(b"half a checkpoint")
    keep = [tmp_path / "config.json", tmp_path / "notes.tmp", tmp_path / "last.pt"]
    keep[1].write_text("not ours: no leading dot")
    keep[2].write_bytes(b"a real checkpoint")
    monkeypatch.setenv("RANK", "1")
    assert sweep_interrupted_writes(tmp_path) == []  # not rank 0 under torchrun: leave it to rank 0
    monkeypatch.delenv("RANK")
    assert sorted(sweep_interrupted_writes(tmp_path)) == sorted(left)
    assert all(p.is_file() for p in keep) and not any(p.exists() for p in left)
    assert sweep_interrupted_writes(tmp_path / "missing") == []
