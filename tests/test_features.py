"""Feature extraction into the on-disk cache, FeatureStore, and `vidcap features`, on real tiny videos."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from vidcap_core.data.records import VideoRecord
from vidcap_core.errors import ConfigError, FeatureError
from vidcap_core.features.backbones import build_backbone
from vidcap_core.features.extract import extract_features, parse_shard, shard_records
from vidcap_core.features.store import FeatureStore
from vidcap_core.video import read_frames

T = 4  # frames per video in these tests


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory, make_video: Callable[..., Path]) -> list[VideoRecord]:
    """Five tiny real H.264 clips (a moving bright square on noise), written with PyAV."""
    folder = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    records = []
    for i in range(5):
        frames = rng.integers(0, 60, size=(8, 48, 64, 3), dtype=np.uint8)
        for t in range(8):
            frames[t, 10:26, 4 + 4 * t + i : 20 + 4 * t + i] = (240, 40 * i, 30)
        path = make_video(folder / f"clip{i}.mp4", frames)
        records.append(VideoRecord(f"clip{i}", path, "train" if i < 3 else "test", (f"a square moves right {i}",)))
    return records


@pytest.fixture
def corrupt(tmp_path: Path) -> VideoRecord:
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return VideoRecord("broken", path, "train", ("nothing",))


def extract(records: list[VideoRecord], out: Path, **kwargs) -> object:
    options = {"num_frames": T, "progress": False, "backbone": "random"} | kwargs  # random: independent of training
    return extract_features(records, out_dir=out, **options)


def test_extraction_writes_features_and_metadata(videos: list[VideoRecord], tmp_path: Path) -> None:
    out = tmp_path / "feats"
    summary = extract(videos, out, grid=True, backbone="synth-cnn")
    assert (summary.done, summary.skipped, summary.failed) == (5, 0, {})
    assert summary.clips_per_s > 0 and summary.frames_per_s == pytest.approx(summary.clips_per_s * T)
    meta = json.loads((out / "features.json").read_text())
    assert meta["backbone"] == "synth-cnn" and meta["weights"].startswith("committed synth-cnn sha256:")
    assert (meta["feature_dim"], meta["grid_dim"], meta["num_frames"]) == (256, 256, T)
    assert (meta["frame_size"], meta["grid_size"], meta["grid"], meta["dtype"]) == ([64, 64], [4, 4], True, "float16")
    raw = np.load(out / "clip0.npy")
    assert raw.shape == (T, 256) and raw.dtype == np.float16
    assert np.load(out / "clip0.grid.npy").shape == (T, 16, 256)

    store = FeatureStore(out)
    assert store.video_ids() == [r.video_id for r in videos]
    assert store.has("clip3") and not store.has("clip9")
    feats = store.load("clip3")
    assert feats.dtype == np.float32 and feats.shape == (T, 256)
    assert store.load_grid("clip3").shape == (T, 16, 256)
    assert not np.allclose(feats[0], feats[-1])  # the square moved: frames differ
    assert not list(out.glob("*.tmp*"))


def test_cached_features_equal_the_backbone_on_read_frames(videos: list[VideoRecord], tmp_path: Path) -> None:
    """Batching across videos changes nothing: cached features == backbone(read_frames(video))."""
    extract(videos, tmp_path / "feats", batch_size=6)  # batches straddle video boundaries
    backbone = build_backbone("random")
    store = FeatureStore(tmp_path / "feats")
    for record in videos:
        frames = torch.from_numpy(read_frames(record.path, T, (64, 64))).permute(0, 3, 1, 2).float() / 255
        with torch.inference_mode():
            expected = backbone(frames)[0].numpy()  # (T, F)
        np.testing.assert_allclose(store.load(record.video_id), expected, rtol=2e-2, atol=2e-2)


def test_resume_redoes_only_what_is_missing_and_ignores_temp_files(videos: list[VideoRecord], tmp_path: Path) -> None:
    out = tmp_path / "feats"
    extract(videos, out)
    reference = np.load(out / "clip1.npy")
    (out / "clip1.npy").unlink()
    summary = extract(videos, out)
    assert (summary.done, summary.skipped) == (1, 4)
    np.testing.assert_array_equal(np.load(out / "clip1.npy"), reference)

    # an interrupted write leaves its temp file (vidcap_core.files.atomic_write) and no clip2.npy:
    # it is neither read nor kept
    (out / "clip2.npy").rename(out / ".clip2.npy.k3x9q2ab.tmp")
    with open(out / ".clip2.npy.k3x9q2ab.tmp", "r+b") as f:
        f.truncate(40)
    assert not FeatureStore(out).has("clip2")
    assert "clip2" not in FeatureStore(out).video_ids()
    summary = extract(videos, out)
    assert (summary.done, summary.skipped) == (1, 4)
    assert not (out / ".clip2.npy.k3x9q2ab.tmp").exists()
    assert FeatureStore(out).load("clip2").shape == (T, 256)

    again = extract(videos, out)
    assert (again.done, again.skipped, again.failed) == (0, 5, {})


def test_shards_split_the_work_and_add_up_to_the_full_run(videos: list[VideoRecord], tmp_path: Path) -> None:
    full = extract(videos, tmp_path / "full")
    first = extract(videos, tmp_path / "sharded", shard=(0, 2))
    second = extract(list(reversed(videos)), tmp_path / "sharded", shard=(1, 2))
    assert (first.done, second.done, full.done) == (3, 2, 5)  # sorted ids: clip0, clip2, clip4 | clip1, clip3
    assert FeatureStore(tmp_path / "sharded").video_ids() == FeatureStore(tmp_path / "full").video_ids()
    for record in videos:
        np.testing.assert_array_equal(
            np.load(tmp_path / "sharded" / f"{record.video_id}.npy"), np.load(tmp_path / "full" / f"{record.video_id}.npy")
        )
    assert parse_shard("1/2") == (1, 2)
    for bad in ("2/2", "1", "a/b", "0/0"):
        with pytest.raises(ConfigError):
            parse_shard(bad)
    duplicated = shard_records(videos + videos[:2], (0, 1))
    assert [r.video_id for r in duplicated] == [f"clip{i}" for i in range(5)]


def test_unreadable_videos_are_reported_and_the_rest_go_on(
    videos: list[VideoRecord], corrupt: VideoRecord, tmp_path: Path
) -> None:
    missing = VideoRecord("gone", tmp_path / "gone.mp4", "train", ("x",))
    records = [corrupt, missing, *videos[:2]]
    shared = Path(__file__).resolve().parents[2] / "shared" / "videos" / "corrupted.mp4"
    if shared.is_file():
        records.append(VideoRecord("shared_corrupted", shared, "test", ("x",)))
    summary = extract(records, tmp_path / "feats")
    assert summary.done + len(summary.failed) == len(records)
    assert {"broken", "gone"} <= set(summary.failed) and {"clip0", "clip1"}.isdisjoint(summary.failed)
    assert "broken.mp4" in summary.failed["broken"] and "gone.mp4" in summary.failed["gone"]
    assert {"clip0", "clip1"} <= set(FeatureStore(tmp_path / "feats").video_ids())
    again = extract(records, tmp_path / "feats")  # failures are not cached: they are tried again
    assert (again.done, again.skipped, set(again.failed)) == (0, summary.done, set(summary.failed))


def test_other_settings_into_the_same_folder_are_refused(videos: list[VideoRecord], tmp_path: Path) -> None:
    out = tmp_path / "feats"
    extract(videos[:1], out)
    before = (out / "features.json").read_text()
    with pytest.raises(FeatureError, match="num_frames") as err:
        extract(videos[:1], out, num_frames=T + 1)
    assert str(out) in str(err.value)
    with pytest.raises(FeatureError, match="backbone"):
        extract(videos[:1], out, backbone="synth-cnn")
    with pytest.raises(FeatureError, match="grid"):
        extract(videos[:1], out, grid=True)
    assert (out / "features.json").read_text() == before
    assert not (out / "clip0.grid.npy").exists()


def test_feature_store_errors_name_the_folder_and_the_fix(videos: list[VideoRecord], tmp_path: Path) -> None:
    with pytest.raises(FeatureError, match="vidcap features") as err:
        FeatureStore(tmp_path / "nowhere")
    assert "nowhere" in str(err.value)
    out = tmp_path / "feats"
    extract(videos[:1], out)
    store = FeatureStore(out)
    with pytest.raises(FeatureError, match="clip7") as err:
        store.load("clip7")
    assert str(out) in str(err.value)
    with pytest.raises(FeatureError, match="no region grid"):
        store.load_grid("clip0")
    (out / "clip0.npy").write_bytes(b"garbage")
    with pytest.raises(FeatureError, match="corrupt"):
        store.load("clip0")
    (out / "features.json").write_text("{not json")
    with pytest.raises(FeatureError, match="unreadable"):
        FeatureStore(out)


def test_frame_size_option_changes_the_grid(videos: list[VideoRecord], tmp_path: Path) -> None:
    summary = extract(videos[:2], tmp_path / "feats", frame_size=96, grid=True)
    assert summary.done == 2
    store = FeatureStore(tmp_path / "feats")
    assert store.meta["frame_size"] == [96, 96] and store.meta["grid_size"] == [6, 6]
    assert store.load_grid("clip0").shape == (T, 36, 256)


def features_app() -> typer.Typer:
    from vidcap_core.cli.features import features, pretrain_cnn

    app = typer.Typer()
    app.command("features")(features)
    app.command("pretrain-cnn")(pretrain_cnn)
    return app


def test_cli_extracts_a_csv_dataset_split_and_resumes(videos: list[VideoRecord], tmp_path: Path) -> None:
    root = tmp_path / "mine"
    root.mkdir()
    lines = ["video,caption,split"]
    for record in videos:
        shutil.copy(record.path, root / record.path.name)
        lines.append(f"{record.path.name},{record.captions[0]},{record.split}")
    (root / "captions.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "feats"
    args = ["features", "--dataset", "csv", "--root", str(root), "--out", str(out), "--backbone", "random",
            "--frames", str(T), "--split", "train", "--no-progress", "--format", "json"]
    result = CliRunner().invoke(features_app(), args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["done"], summary["skipped"], summary["failed"]) == (3, 0, {})
    assert FeatureStore(out).video_ids() == ["clip0", "clip1", "clip2"]
    text = CliRunner().invoke(features_app(), args[:-2] + ["--shard", "1/2"])
    assert text.exit_code == 0 and "0 extracted, 1 already cached" in text.stdout

    bad = CliRunner().invoke(features_app(), args[:-2] + ["--frames", "9"])
    assert bad.exit_code == 2 and "num_frames" in bad.output
    assert "Traceback" not in bad.output
    unknown = CliRunner().invoke(features_app(), args[:-2] + ["--backbone", "alexnet"])
    assert unknown.exit_code != 0 and "synth-cnn" in unknown.output


def test_cli_on_synthclips(tmp_path: Path) -> None:
    from vidcap_core.synth import generate_synthclips

    generate_synthclips("tiny", tmp_path / "synth", seed=0, num_clips=3)
    out = tmp_path / "feats"
    args = ["features", "--dataset", "synth", "--root", str(tmp_path / "synth"), "--out", str(out),
            "--frames", "8", "--grid", "--no-progress", "--format", "json"]
    result = CliRunner().invoke(features_app(), args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["done"] == 3 and summary["failed"] == {}
    store = FeatureStore(out)
    assert len(store.video_ids()) == 3
    assert store.load_grid(store.video_ids()[0]).shape == (8, 16, 256)
