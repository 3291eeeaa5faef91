"""vidcap-bench's CLI without a finished run: clear errors for bad options, and `run` on a real dataset format
(MSVD's AVI clips and corpus CSV, resnet18 features; marked slow)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from benchmark.cli import app


def test_cli_errors_are_clear(tmp_path):
    runner = CliRunner()
    done = runner.invoke(app, [])
    assert "run" in done.output and "report" in done.output and "perf" in done.output
    done = runner.invoke(app, ["run", "--suite", "nope", "--out", str(tmp_path)])
    assert done.exit_code == 2 and "unknown suite nope" in done.output
    done = runner.invoke(app, ["run", "--suite", "cells", "--dataset", "msvd", "--out", str(tmp_path)])
    assert done.exit_code == 2 and "needs --root" in done.output
    done = runner.invoke(app, ["report", "--results", str(tmp_path / "missing")])
    assert done.exit_code == 2 and "does not exist" in done.output
    assert not (tmp_path / "REPORT.md").exists()


# ----------------------------------------------------------------------------- real data formats


def write_msvd_fixture(root: Path, make_video) -> list[str]:
    """A tiny MSVD copy: YouTubeClips/<key>.avi (MPEG-4 in AVI, as the real archive) + the corpus CSV."""
    clips = root / "YouTubeClips"
    clips.mkdir(parents=True)
    rng = np.random.default_rng(0)
    keys, lines = [], ["VideoID,Start,End,WorkerID,Source,AnnotationTime,Language,Description"]
    words = ["a man is cooking", "a cat plays with a ball", "someone slices a tomato", "a dog runs on grass"]
    for i in range(8):
        key = f"vid{i:02d}abcdEF_{i}_{i + 5}"
        frames = rng.integers(0, 255, size=(12, 48, 64, 3), dtype=np.uint8)
        make_video(clips / f"{key}.avi", frames, codec="mpeg4", pix_fmt="yuv420p")
        keys.append(key)
        for j in range(3):
            lines.append(f'vid{i:02d}abcdEF,{i},{i + 5},{j},clean,10,English,"{words[(i + j) % 4]}, quickly"')
        lines.append(f"vid{i:02d}abcdEF,{i},{i + 5},9,clean,10,German,ein Mann kocht")
    (root / "MSR Video Description Corpus.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return keys


@pytest.mark.slow  # ~1 min: resnet18 features of real-format AVI clips, then the cells suite
def test_real_msvd_format_with_resnet18(tmp_path, make_video):
    import torchvision

    root = tmp_path / "msvd"
    write_msvd_fixture(root, make_video)
    weights = tmp_path / "resnet18-random.pt"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    out, cache = tmp_path / "results", tmp_path / "cache"
    done = CliRunner().invoke(app, ["run", "--suite", "cells", "--profile", "smoke", "--dataset", "msvd", "--root", str(root),
                                    "--backbone", "resnet18", "--weights", str(weights), "--out", str(out), "--cache", str(cache)])
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader((out / "cells.csv").open(encoding="utf-8")))
    assert len(rows) == 3 and all(r["CIDEr"] != "" for r in rows)
    assert "sem_exact" not in rows[0]  # no semantic checker outside SynthClips
    manifest = json.loads((out / "bench_run.json").read_text())["invocations"][-1]
    assert manifest["dataset"].startswith("msvd at") and "resnet18" in manifest["features"]
    features = json.loads(next((cache / "features").glob("resnet18-*/features.json")).read_text())
    assert features["weights"].startswith("sha256:") and features["frame_size"] == [224, 224]
