"""End to end: SynthClips -> synth-cnn features -> `vidcap train` -> `vidcap evaluate` -> `vidcap caption`,
plus a two-epoch smoke run of every architecture x cell on tiny cached features."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from fixtures_datasets import log_rows, toy_config
from typer.testing import CliRunner

from vidcap_core.checkpoint import load_checkpoint
from vidcap_core.cli import exit_status
from vidcap_core.cli.caption import caption_command
from vidcap_core.cli.evaluate import evaluate_command
from vidcap_core.cli.train import train_command
from vidcap_core.training import train

SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "videos"
NUM_FRAMES = 8


def cli_app() -> typer.Typer:
    app = typer.Typer()
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.command("caption")(caption_command)
    return app


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory):
    """SynthClips tiny and its synth-cnn features, region grids included."""
    from vidcap_core.data import load_dataset
    from vidcap_core.features.extract import extract_features
    from vidcap_core.synth import generate_synthclips

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("e2e")
    root, features = folder / "synth", folder / "features"
    generate_synthclips("tiny", root, seed=0, workers=1)
    records = load_dataset("synth", root).records
    summary = extract_features(records, "synth-cnn", features, num_frames=NUM_FRAMES, grid=True, progress=False)
    assert not summary.failed
    return root, features


@pytest.fixture(scope="module")
def synth_objects(synth_data):
    """The same clips read as object slots (synth-slots), what the benchmark's region models read."""
    from vidcap_core.data import load_dataset
    from vidcap_core.features.extract import extract_features

    root, features = synth_data
    objects = features.parent / "objects"
    records = load_dataset("synth", root).records
    summary = extract_features(records, "synth-slots", objects, num_frames=NUM_FRAMES, grid=True, progress=False)
    assert not summary.failed
    return root, objects


def train_through_cli(root: Path, features: Path, run: Path, *options: str) -> dict:
    """A 40-step attention-LSTM run (every caption of every training clip, so it learns enough to say
    something) made through `vidcap train`; returns its printed summary."""
    result = CliRunner().invoke(cli_app(), [
        "train", "--dataset", "synth", "--root", str(root), "--features", str(features), "--arch", "attention",
        "--cell", "lstm", "--max-steps", "40", "--val-every-steps", "20", "--warmup-steps", "2", "--hidden-size", "32",
        "--embed-size", "16", "--attention-size", "16", "--batch-size", "8", "--lr", "0.005", "--min-count", "1",
        "--seed", "1", "--out", str(run), "--no-progress", *options,
    ])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def synth_run(synth_data):
    """An attention-LSTM over whole frames."""
    root, features = synth_data
    run = features.parent / "run"
    return root, features, run, train_through_cli(root, features, run)


@pytest.fixture(scope="module")
def synth_region_run(synth_objects):
    """An attention-LSTM over the regions of each frame (--regions): synth-slots' object slots."""
    root, features = synth_objects
    run = features.parent / "region-run"
    return root, features, run, train_through_cli(root, features, run, "--regions")


def test_train_evaluate_caption_through_the_cli(synth_run):
    root, features, run, summary = synth_run
    assert summary["steps_done"] == 40 and Path(summary["best_checkpoint"]).is_file()
    assert summary["stop_reason"] == "budget" and isinstance(summary["convergence"]["converged"], bool)

    # METEOR's JVM needs a minute of CPU to start; the evaluation tests cover it
    result = CliRunner().invoke(cli_app(), ["evaluate", "--run", str(run), "--split", "test",
                                            "--metrics", "Bleu_4,ROUGE_L,CIDEr", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert list(report)[:5] == ["split", "n_videos", "metrics", "semantic", "predictions_file"]
    assert report["n_videos"] > 0 and "CIDEr" in report["metrics"] and report["semantic"]
    assert all(np.isfinite(v) for v in report["semantic"].values())

    synth_video = sorted((root / "videos").glob("*.mp4"))[0]
    videos = [synth_video]
    if SHARED_VIDEOS.is_dir():
        videos += [SHARED_VIDEOS / "corrupted.mp4", SHARED_VIDEOS / "flipping_a_pancake.mkv"]
    result = CliRunner().invoke(cli_app(), ["caption", *map(str, videos), "--checkpoint", str(run / "best.pt"),
                                            "--format", "json", "--beam", "1"])  # greedy: 40 steps, beam 3 may say nothing
    assert result.exit_code == 0, result.output  # every file judged, even the unreadable one
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"] for line in lines] == [str(v) for v in videos]
    caption, attention = lines[0]["caption"], lines[0]["attention"]
    assert caption and len(attention) == len(caption.split())  # one row of weights per word ...
    assert all(len(row) == NUM_FRAMES for row in attention)  # ... over every sampled frame
    if SHARED_VIDEOS.is_dir():
        assert set(lines[1]) == {"path", "error", "detail"} and "corrupted.mp4" in lines[1]["error"]
        assert lines[2]["caption"] and "error" not in lines[2]


def run_vidcap_process(*args: str) -> subprocess.CompletedProcess:
    """`vidcap ARGS` as a user's shell runs it: its own process, main() and its exit, output piped."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "vidcap_core.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_vidcap_process_flushes_its_output_and_keeps_its_exit_code(synth_run):
    """main() ends with os._exit (no interpreter teardown): piped output must still arrive whole, and the
    command's exit code must still be the process's."""
    root, _, run, _ = synth_run
    video = sorted((root / "videos").glob("*.mp4"))[0]
    done = run_vidcap_process("caption", str(video), "--checkpoint", str(run / "best.pt"), "--format", "json",
                              "--beam", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    [line] = done.stdout.splitlines()
    assert json.loads(line)["path"] == str(video) and json.loads(line)["caption"]

    missing = run / "no-such-checkpoint.pt"
    done = run_vidcap_process("caption", str(video), "--checkpoint", str(missing))
    assert done.returncode == 2 and done.stdout == ""
    assert str(missing) in done.stderr and "does not exist" in done.stderr


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (2, 2), ("bad input", 1)])
def test_exit_status_reads_system_exit_codes_as_python_does(code, status, capsys):
    assert exit_status(code) == status
    assert capsys.readouterr().err == ("bad input\n" if isinstance(code, str) else "")


def test_captioner_sees_the_features_it_was_trained_on(synth_run):
    from vidcap_core.features.store import FeatureStore
    from vidcap_core.pipeline import Captioner

    root, features, run, _ = synth_run
    captioner = Captioner.from_checkpoint(run / "best.pt", device="cpu")
    video = sorted((root / "videos").glob("*.mp4"))[0]
    frames = captioner.read(video)
    assert frames.shape == (NUM_FRAMES, 64, 64, 3) and frames.dtype == np.uint8
    cached = FeatureStore(features).load(video.stem)  # (T, F)
    np.testing.assert_array_equal(captioner.features(frames)[0].cpu().numpy(), cached)

    result = captioner.caption(video, beam=3, n_best=2)
    assert len(result.hypotheses) == 2 and result.caption == result.hypotheses[0][0]
    assert result.hypotheses[0][1] >= result.hypotheses[1][1]
    assert result.attention.shape == (len(result.caption.split()), NUM_FRAMES)  # one row per word
    np.testing.assert_allclose(result.attention.sum(axis=1), 1.0, rtol=1e-4)
    assert set(result.timings_ms) == {"decode_video", "features", "caption"}
    assert result.frames.shape == frames.shape


def test_a_region_model_trains_evaluates_and_captions_over_frame_regions(synth_region_run):
    """--regions: the checkpoint says the model reads grids, evaluation loads them, the captioner tracks
    the objects of raw video as extraction did, and a caption's attention is over frames x regions
    (object slots), shown per frame as its sum over the regions."""
    from vidcap_core.features.store import FeatureStore
    from vidcap_core.pipeline import Captioner

    root, features, run, summary = synth_region_run
    loaded = load_checkpoint(run / "best.pt")
    store = FeatureStore(features)
    regions, grid_dim = store.load_grid("video0").shape[1:]  # (T, R, G)
    assert loaded.preprocessing["grid"] is True and loaded.config.feature_dim == grid_dim
    assert (loaded.preprocessing["backbone"], regions) == ("synth-slots", 3)
    assert json.loads((run / "config.json").read_text())["regions"] is True

    result = CliRunner().invoke(cli_app(), ["evaluate", "--run", str(run), "--split", "test",
                                            "--metrics", "CIDEr", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_videos"] > 0

    captioner = Captioner.from_checkpoint(run / "best.pt", device="cpu")
    video = sorted((root / "videos").glob("*.mp4"))[0]
    np.testing.assert_array_equal(captioner.features(captioner.read(video))[0].cpu().numpy(),
                                  store.load_grid(video.stem))  # what training read
    caption = captioner.caption(video)
    words = len(caption.caption.split())
    assert words and caption.region_attention.shape == (words, NUM_FRAMES, regions)
    np.testing.assert_allclose(caption.region_attention.sum(axis=(1, 2)), 1.0, rtol=1e-4)
    np.testing.assert_allclose(caption.attention, caption.region_attention.sum(axis=2), rtol=1e-6)
    assert len(caption.to_dict()["region_attention"][0][0]) == regions


def test_regions_need_grid_features_and_the_attention_arch(synth_data, tmp_path):
    from vidcap_core.errors import ConfigError, FeatureError
    from vidcap_core.training import TrainConfig

    root, features = synth_data
    with pytest.raises(ConfigError, match="regions=True needs arch 'attention'"):
        TrainConfig(dataset="synth", root=str(root), features=str(features), arch="s2vt", regions=True)
    no_grid = tmp_path / "features"
    no_grid.mkdir()
    for path in features.glob("*.npy"):
        if not path.name.endswith(".grid.npy"):
            (no_grid / path.name).write_bytes(path.read_bytes())
    meta = json.loads((features / "features.json").read_text())
    (no_grid / "features.json").write_text(json.dumps({**meta, "grid": False}))
    cfg = TrainConfig(dataset="synth", root=str(root), features=str(no_grid), arch="attention", regions=True,
                      max_steps=2, val_every_steps=1, torch_threads=1)
    with pytest.raises(FeatureError, match="no region grid: rerun extraction with --grid"):
        train(cfg, tmp_path / "run", progress=False)


# ----------------------------------------------------------------------------- every arch x cell


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("arch", ["meanpool", "s2vt", "attention"])
def test_two_interval_smoke(arch, cell, tmp_path):
    """Every arch x cell learns on the toy data (the seeded loss goes down from the first validation
    interval to the second), logs one complete row per validation, and keeps as best.pt the
    validation whose val CIDEr-D is highest."""
    torch.set_num_threads(1)
    cfg = toy_config(tmp_path / "data", arch=arch, cell=cell, hidden_size=8, embed_size=8,
                     attention_size=8, probe_every=0)
    result = train(cfg, tmp_path / "run", progress=False)
    rows = log_rows(tmp_path / "run")
    assert rows == [{k: v for k, v in row.items() if not k.endswith("seconds")} for row in result.history]
    assert [row["step"] for row in rows] == [3, 6]
    assert [row["steps"] for row in rows] == [3, 3]  # validation every 3 steps (48 pairs, batches of 8)
    assert not any(row["diverged"] for row in rows)
    first, second = (row["train_loss"] for row in rows)
    assert np.isfinite(first) and second < first  # ~0.03-0.09 lower for every arch x cell at seed 3
    cider = [row["val"]["CIDEr"] for row in rows]
    best = int(np.argmax(cider))  # the first of equal scores
    assert result.best_step == rows[best]["step"]
    loaded = load_checkpoint(tmp_path / "run" / "best.pt")
    assert (loaded.config.arch, loaded.config.cell) == (arch, cell)
    assert loaded.preprocessing["backbone"] == "random"
    assert loaded.extra["step"] == result.best_step and loaded.extra["val"] == rows[best]["val"]
