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
from vidcap_core.features.extract import extract_features
from vidcap_core.features.jobs import parse_shard, shard_records
from vidcap_core.features.store import FeatureStore
from vidcap_core.video import read_frames

T = 4  # frames per video in these tests
G = 21  # synth-cnn per-region perception: object, shape 5, colour 7, size 2, offset 2, angle 2, x, y
F = 17 * G  # synth-cnn global vector at 64x64: frame totals, then its 4x4 regions


pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
    assert (meta["feature_dim"], meta["grid_dim"], meta["num_frames"]) == (F, G, T)
    assert (meta["frame_size"], meta["grid_size"], meta["grid"], meta["dtype"]) == ([64, 64], [4, 4], True, "float16")
    raw = np.load(out / "clip0.npy")
    assert raw.shape == (T, F) and raw.dtype == np.float16
    assert np.load(out / "clip0.grid.npy").shape == (T, 16, G)

    store = FeatureStore(out)
    assert store.video_ids() == [r.video_id for r in videos]
    assert store.has("clip3") and not store.has("clip9")
    feats = store.load("clip3")
    assert feats.dtype == np.float32 and feats.shape == (T, F)
    assert store.load_grid("clip3").shape == (T, 16, G)
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
    assert FeatureStore(out).load("clip2").shape == (T, F)

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
    assert store.load_grid("clip0").shape == (T, 36, G)
    assert store.load("clip0").shape == (T, 37 * G)  # synth-cnn's global vector: totals, then every region


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
    assert store.load_grid(store.video_ids()[0]).shape == (8, 16, G)


# ----------------------------------------------------------------------------- oracle


def test_oracle_features_hold_the_scene_of_each_sampled_frame(tiny_synth: Path, tmp_path: Path) -> None:
    from vidcap_core.data import load_dataset
    from vidcap_core.features.oracle import MAX_OBJECTS, ORACLE_DIM, SLOT_DIM, SLOT_FIELDS, decode_slot
    from vidcap_core.synth import load_ground_truth

    frames = 8
    records = load_dataset("synth", tiny_synth).records
    summary = extract_features(records, "oracle", tmp_path / "oracle", num_frames=frames, grid=True, progress=False)
    assert (summary.done, summary.failed) == (24, {})
    store = FeatureStore(tmp_path / "oracle")
    meta = store.meta
    assert (meta["backbone"], meta["feature_dim"], meta["grid_dim"], meta["grid_size"]) == ("oracle", 72, 24, [1, 3])
    assert (ORACLE_DIM, SLOT_DIM, MAX_OBJECTS, meta["slot_fields"]) == (72, 24, 3, list(SLOT_FIELDS))
    truths = load_ground_truth(tiny_synth)
    checked = 0
    for record in records:
        glob, slots = store.load(record.video_id), store.load_grid(record.video_id)  # (T, 72), (T, 3, 24)
        assert glob.shape == (frames, 72) and slots.shape == (frames, 3, 24)
        np.testing.assert_array_equal(glob, slots.reshape(frames, 72))
        truth = truths[record.video_id]
        first = [decode_slot(s) for s in slots[0]]
        for obj, seen in zip(truth.objects, first):  # before any event starts (tiny clips may start one at frame 0)
            if seen["present"] and seen["opacity"] == 1.0 and truth.events[0].start_frame > 0:
                assert (seen["shape"], seen["colour"], seen["size"]) == (obj.shape, obj.colour, obj.size)
        assert not any(s["present"] for s in first[len(truth.objects):])  # unused slots stay empty
        pixels = read_frames(record.path, frames, 64).astype(int)  # (T, 64, 64, 3): the frames backbones see
        for t in range(frames):
            for slot in slots[t]:
                seen = decode_slot(slot)
                if seen["present"] and seen["opacity"] == 1.0:  # the centre pixel has the slot's colour
                    x, y = int(seen["x"] * 64), int(seen["y"] * 64)
                    rgb = slot[SLOT_FIELDS.index("red") : SLOT_FIELDS.index("blue") + 1] * 255
                    assert np.abs(pixels[t, y, x] - rgb).max() < 60, (record.video_id, t, seen)
                    checked += 1
    assert checked > 24


def test_scene_state_is_what_frames_show(tiny_synth: Path) -> None:
    """Hidden objects are empty slots; a circle has no angle; a colour change is a blend of the two."""
    from vidcap_core.features.oracle import SLOT_FIELDS, SynthClipsPlans, scene_states
    from vidcap_core.synth.catalog import COLOURS
    from vidcap_core.synth.plan import ClipPlan, ObjectState, PlannedEvent, SpeckField

    red_circle = ObjectState(20.0, 20.0, "small", 0.3, True, "red")
    hidden_star = ObjectState(44.0, 44.0, "large", 0.2, False, "blue")
    events = (
        PlannedEvent(0, "change_colour", red_circle, ObjectState(20.0, 20.0, "small", 0.3, True, "green"), 2, 6),
        PlannedEvent(1, "appear", hidden_star, ObjectState(44.0, 44.0, "large", 0.2, True, "blue"), 8, 12),
    )
    plan = ClipPlan(64, 16, ("circle", "star"), (red_circle, hidden_star), events, SpeckField((), (), ()), 1, 0.05)
    state = scene_states(plan)  # (16, 3, 24)
    col = {name: i for i, name in enumerate(SLOT_FIELDS)}
    colours = [col[f"colour={c}"] for c in COLOURS]
    assert state.shape == (16, 3, 24)
    assert not state[:9, 1].any() and not state[:, 2].any()  # the star is hidden until frame 8 (opacity 0)
    assert state[10, 1, col["present"]] == 1 and 0 < state[10, 1, col["opacity"]] < 1
    assert state[13, 1, col["shape=star"]] == 1 and state[13, 1, col["colour=blue"]] == 1
    assert state[:, 0, col["angle_sin"]].tolist() == [0.0] * 16 and state[:, 0, col["angle_cos"]].tolist() == [0.0] * 16
    assert state[13, 1, col["angle_cos"]] == pytest.approx(np.cos(5 * 0.2), abs=1e-6)  # star: 5-fold symmetry
    np.testing.assert_allclose(state[4, 0, colours].sum(), 1.0, rtol=1e-6)
    assert state[4, 0, col["colour=red"]] == pytest.approx(0.5) and state[4, 0, col["colour=green"]] == pytest.approx(0.5)
    assert state[0, 0, col["colour=red"]] == 1 and state[15, 0, col["colour=green"]] == 1
    assert state[0, 0, col["x"]] == pytest.approx(20 / 64) and state[0, 0, col["scale"]] == pytest.approx(0.10)

    plans = SynthClipsPlans(tiny_synth)  # a folder's clips are rebuilt exactly (checked against ground_truth.json)
    assert plans.plan("video0").num_frames == 16
    with pytest.raises(FeatureError, match="video99"):
        plans.plan("video99")


def test_oracle_is_refused_on_data_that_is_not_synthclips(videos: list[VideoRecord], tmp_path: Path) -> None:
    with pytest.raises(FeatureError, match="SynthClips") as err:
        extract(videos, tmp_path / "oracle", backbone="oracle")
    assert "synth-cnn" in str(err.value) and str(videos[0].path.parent.parent) in str(err.value)
    assert not (tmp_path / "oracle" / "features.json").exists()
    root = tmp_path / "mine"
    root.mkdir()
    shutil.copy(videos[0].path, root / "a.mp4")
    (root / "captions.csv").write_text("video,caption,split\na.mp4,a square moves,train\n")
    args = ["features", "--dataset", "csv", "--root", str(root), "--out", str(tmp_path / "f"), "--backbone", "oracle",
            "--no-progress"]
    result = CliRunner().invoke(features_app(), args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "'csv'" in result.output and "oracle" in result.output and "synth-cnn" in result.output
    with pytest.raises(FeatureError, match="no weights"):
        build_backbone("oracle", tmp_path / "w.safetensors")
    with pytest.raises(FeatureError, match="ground truth, not pixels"):
        build_backbone("oracle")(torch.zeros(1, 3, 64, 64))


# ----------------------------------------------------------------------------- probes


def test_linear_probe_finds_a_linear_label_and_not_noise() -> None:
    from vidcap_core.perception.probes import ClipMatrix, probe_one

    rng = np.random.default_rng(0)

    def split(n: int, informative: bool) -> ClipMatrix:
        labels = rng.integers(0, 4, size=n)
        feats = rng.normal(size=(n, 20)).astype(np.float32)
        if informative:
            feats[np.arange(n), labels] += 4.0  # the label is a direction in feature space
        return ClipMatrix(feats, {"t": labels}, np.arange(n) % 4 == 0)

    row = probe_one(split(200, True), split(60, True), split(120, True), "t")
    assert row["test in-distribution"] > 0.9 and row["test held-out"] > 0.9
    assert row["test in-distribution clips"] == 90 and row["test held-out clips"] == 30
    noise = probe_one(split(200, False), split(60, False), split(400, False), "t")
    assert noise["test in-distribution"] < 0.45  # chance is 0.25


def test_probe_features_on_a_tiny_synthclips(tiny_synth: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner as Runner

    from vidcap_core.cli import app
    from vidcap_core.data import load_dataset
    from vidcap_core.perception.probes import POOLINGS, TARGETS, probe_features, probe_table

    records = load_dataset("synth", tiny_synth).records
    extract_features(records, "oracle", tmp_path / "oracle", num_frames=8, progress=False)
    extract_features(records, "random", tmp_path / "random", num_frames=8, progress=False)
    folders = {"oracle": tmp_path / "oracle", "random": tmp_path / "random"}
    results = probe_features(folders, tiny_synth)
    assert len(results) == 2 * len(POOLINGS) * len(TARGETS)
    for column in ("test in-distribution", "test held-out", "test in-distribution majority", "val", "train"):
        assert results[column].dropna().between(0.0, 1.0).all()
    oracle_linear = results[(results.features == "oracle") & (results.pooling == "frames") & (results.target == "num_objects")]
    assert oracle_linear["train"].item() == 1.0  # the present flags count the objects
    table = probe_table(results)
    assert "oracle (in-dist)" in table.columns and "majority (in-dist)" in table.columns
    out = Runner().invoke(app, ["probe-features", "--root", str(tiny_synth), "--features", f"oracle={tmp_path / 'oracle'}",
                                "--readout", "mean", "--csv", str(tmp_path / "p.csv")])
    assert out.exit_code == 0, out.output
    assert "first_colour" in out.stdout and (tmp_path / "p.csv").is_file()
    bad = Runner().invoke(app, ["probe-features", "--root", str(tiny_synth), "--features", "nolabel"])
    assert bad.exit_code == 2 and "LABEL=FOLDER" in bad.output
