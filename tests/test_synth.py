"""SynthClips: exact time reversal, determinism, MSR-VTT output, held-out splits, real decoding, CLI."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import av
import decord
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from vidcap_core.errors import ConfigError
from vidcap_core.synth import (
    COLOURS,
    PRESETS,
    SHAPES,
    SIZES,
    build_clip,
    generate_synthclips,
    load_ground_truth,
    render_clip,
    render_random_still,
    reverse_clip_plan,
    score_caption,
)
from vidcap_core.synth.catalog import COLOUR_RGB, COUNTERPART, REVERSED_PAIRS
from vidcap_core.synth.config import SynthConfig, resolve_config
from vidcap_core.synth.generator import MIN_CLIPS_FOR_POOL
from vidcap_core.synth.plan import ClipPlan, ObjectState, PlannedEvent, SpeckField, sample_clip_plan

REPO = Path(__file__).resolve().parents[1]
TINY = PRESETS["tiny"]


# ----------------------------------------------------------------------------- time reversal


def one_event_plan(action: str, shape: str = "square") -> ClipPlan:
    """A 20-frame plan where one object does `action` over frames 4..13, with drifting specks."""
    start = ObjectState(x=40.0, y=40.0, size="small", angle=0.1, visible=True, colour="green")
    end, height = {
        "move_left": (replace(start, x=20.0), 0.0),
        "move_right": (replace(start, x=52.0), 0.0),
        "move_up": (replace(start, y=18.5), 0.0),
        "move_down": (replace(start, y=50.25), 0.0),
        "grow": (replace(start, size="large"), 0.0),
        "shrink": (replace(start, size="small"), 0.0),
        "appear": (replace(start, visible=True), 0.0),
        "disappear": (replace(start, visible=False), 0.0),
        "spin": (replace(start, angle=0.1 + 2 * math.pi), 0.0),
        "bounce": (start, 14.0),
        "change_colour": (replace(start, colour="purple"), 0.0),
    }[action]
    if action == "shrink":
        start = replace(start, size="large")
    if action == "appear":
        start = replace(start, visible=False)
    specks = SpeckField(start=((5, 900), (1000, 30), (500, 500)), velocity=((7, -3), (-10, 10), (0, 4)), grey=(150, 190, 120))
    return ClipPlan(
        frame_size=64, num_frames=20, shapes=(shape, "circle"),
        initial=(start, ObjectState(14.0, 14.0, "small", 0.0, True, "yellow")),
        events=(PlannedEvent(0, action, start, end, 4, 13, height),),
        specks=specks, background_seed=7, noise_level=0.06,
    )


@pytest.mark.parametrize("pair", REVERSED_PAIRS, ids=lambda p: f"{p[0]}-{p[1]}")
def test_event_reversed_is_exactly_its_counterpart(pair: tuple[str, str]) -> None:
    for action in pair:
        plan = one_event_plan(action)
        frames = render_clip(plan)  # (T, H, W, 3)
        assert frames.shape == (20, 64, 64, 3) and frames.dtype == np.uint8
        assert not np.array_equal(frames[0], frames[-1])  # the event does show
        counterpart = reverse_clip_plan(plan)
        assert counterpart.events[0].action == COUNTERPART[action]
        assert np.array_equal(render_clip(counterpart), frames[::-1])


@pytest.mark.parametrize("action", ["spin", "bounce", "change_colour"])
def test_self_counterpart_actions_reverse_exactly(action: str) -> None:
    plan = one_event_plan(action, shape="star")
    frames = render_clip(plan)
    assert not np.array_equal(frames[4], frames[8])  # something moves mid-event
    assert np.array_equal(render_clip(reverse_clip_plan(plan)), frames[::-1])


def test_sampled_plans_reverse_exactly() -> None:
    cfg = PRESETS["standard"]
    for index in range(12):
        plan = sample_clip_plan(np.random.default_rng([5, index]), cfg)
        backwards = reverse_clip_plan(plan)
        assert reverse_clip_plan(backwards) == plan
        assert np.array_equal(render_clip(backwards), render_clip(plan)[::-1])


# ----------------------------------------------------------------------------- a generated tiny set


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "tiny"
    summary = generate_synthclips("tiny", out, seed=0, workers=1)
    assert summary["clips"] == TINY.num_clips and summary["rendered"] == TINY.num_clips
    assert summary["clips_per_s"] > 0
    return out


def test_msrvtt_json_shape(tiny_dir: Path) -> None:
    data = json.loads((tiny_dir / "videodatainfo.json").read_text())
    assert set(data) == {"info", "videos", "sentences"}
    assert len(data["videos"]) == TINY.num_clips
    for i, video in enumerate(data["videos"]):
        assert set(video) == {"id", "video_id", "category", "url", "start time", "end time", "split"}
        assert video["video_id"] == f"video{i}" and video["id"] == i
        assert video["split"] in {"train", "validate", "test"}
        assert video["end time"] == pytest.approx(TINY.num_frames / TINY.fps)
        assert isinstance(video["category"], int)
    assert {v["split"] for v in data["videos"]} == {"train", "validate", "test"}
    counts = {s: sum(v["split"] == s for v in data["videos"]) for s in ("train", "validate", "test")}
    assert counts == {"train": 17, "validate": 2, "test": 5}
    for sentence in data["sentences"]:
        assert set(sentence) == {"sen_id", "video_id", "caption"}
    assert len({s["sen_id"] for s in data["sentences"]}) == len(data["sentences"])
    info = json.loads((tiny_dir / "synth.json").read_text())
    assert info["preset"] == "tiny" and info["seed"] == 0 and info["config"]["num_frames"] == TINY.num_frames
    assert not (tiny_dir / ".synth-partial.json").exists()
    assert not list(tiny_dir.rglob("*.tmp"))


def test_captions_are_varied_and_score_exactly(tiny_dir: Path) -> None:
    data = json.loads((tiny_dir / "videodatainfo.json").read_text())
    truths = load_ground_truth(tiny_dir)
    assert set(truths) == {f"video{i}" for i in range(TINY.num_clips)}
    by_video: dict[str, list[str]] = {}
    for sentence in data["sentences"]:
        by_video.setdefault(sentence["video_id"], []).append(sentence["caption"])
    for video_id, captions in by_video.items():
        assert len(set(captions)) >= 10
        for caption in captions:
            assert score_caption(caption, truths[video_id])["exact"] == 1.0, caption
    vocabulary = {w for captions in by_video.values() for c in captions for w in c.replace(",", " ").split()}
    assert len(vocabulary) < 300


def test_ground_truth_events_and_heldout_split(tiny_dir: Path) -> None:
    truths = load_ground_truth(tiny_dir)
    splits = {t.video_id: t.split for t in truths.values()}
    data = json.loads((tiny_dir / "videodatainfo.json").read_text())
    assert {v["video_id"]: v["split"].replace("validate", "val") for v in data["videos"]} == splits
    held_pairs = {tuple(p) for p in TINY.heldout_colour_shape}
    held_actions = {tuple(p) for p in TINY.heldout_shape_action}
    heldout_clips = [t for t in truths.values() if t.heldout]
    assert heldout_clips and all(t.split == "test" and t.heldout_combinations for t in heldout_clips)
    for truth in truths.values():
        assert 1 <= len(truth.events) <= TINY.events_per_clip[1]
        last_end = -1
        for event in truth.events:
            assert last_end < event.start_frame < event.end_frame < truth.num_frames
            last_end = event.end_frame
        if truth.heldout:
            continue
        colour_shapes = {(o.colour, o.shape) for o in truth.objects}
        colour_shapes |= {(e.colour, e.shape) for e in truth.events} | {(e.new_colour, e.shape) for e in truth.events}
        assert not colour_shapes & held_pairs, truth
        assert not {(e.shape, e.action) for e in truth.events} & held_actions, truth


def test_videos_decode_with_decord_and_match_the_renderer(tiny_dir: Path) -> None:
    truths = load_ground_truth(tiny_dir)
    errors, wrong_clip_errors = [], []
    for index in range(6):
        truth = truths[f"video{index}"]
        reader = decord.VideoReader(str(tiny_dir / "videos" / f"video{index}.mp4"))
        assert len(reader) == TINY.num_frames
        decoded = reader.get_batch(list(range(len(reader)))).asnumpy()  # (T, H, W, 3)
        assert decoded.shape == (TINY.num_frames, TINY.frame_size, TINY.frame_size, 3)
        rendered = render_clip(build_clip(TINY, 0, index, truth.split, truth.heldout).plan)
        other = render_clip(build_clip(TINY, 0, index + 1, truth.split, truth.heldout).plan)
        errors.append(np.abs(decoded.astype(np.int16) - rendered).mean())
        wrong_clip_errors.append(np.abs(decoded.astype(np.int16) - other).mean())
    assert max(errors) < 13.0  # codec loss, mostly on the fine background noise
    assert min(wrong_clip_errors) > max(errors)
    with av.open(str(tiny_dir / "videos" / "video0.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"


def decoded_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_same_seed_same_dataset_whatever_the_workers(tiny_dir: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert TINY.num_clips >= MIN_CLIPS_FOR_POOL  # so two worker processes really render it
    generate_synthclips("tiny", again, seed=0, workers=2)
    for name in ("videodatainfo.json", "ground_truth.json", "synth.json"):
        assert json.loads((again / name).read_text()) == json.loads((tiny_dir / name).read_text()), name
    for index in range(TINY.num_clips):
        name = f"videos/video{index}.mp4"
        assert np.array_equal(decoded_frames(again / name), decoded_frames(tiny_dir / name)), name
    other = tmp_path / "other"
    generate_synthclips("tiny", other, seed=1, num_clips=3, workers=1)
    assert load_ground_truth(other)["video0"] != load_ground_truth(tiny_dir)["video0"]
    assert not np.array_equal(decoded_frames(other / "videos/video0.mp4"), decoded_frames(tiny_dir / "videos/video0.mp4"))


def test_rerun_is_fast_resumes_and_refuses_other_params(tiny_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dir, copy)
    before = {p.name: p.read_bytes() for p in (copy / "videos").iterdir()}
    assert generate_synthclips("tiny", copy, seed=0)["rendered"] == 0
    # an interrupted run: no synth.json yet, a video missing, a temporary left behind
    (copy / "synth.json").unlink()
    (copy / "videos" / "video3.mp4").unlink()
    (copy / "videos" / ".video3.mp4.123.tmp").write_bytes(b"half")
    (copy / ".synth-partial.json").write_text((tiny_dir / "synth.json").read_text())
    summary = generate_synthclips("tiny", copy, seed=0, workers=1)
    assert summary["rendered"] == 1 and summary["skipped"] == TINY.num_clips - 1
    assert {p.name: p.read_bytes() for p in (copy / "videos").iterdir()} == before
    assert (copy / "synth.json").is_file() and not (copy / ".synth-partial.json").exists()
    with pytest.raises(ConfigError, match="other parameters"):
        generate_synthclips("tiny", copy, seed=1)
    with pytest.raises(ConfigError, match="other parameters"):
        generate_synthclips("tiny", copy, seed=0, num_clips=5)
    foreign = tmp_path / "msrvtt"
    foreign.mkdir()
    (foreign / "videodatainfo.json").write_text("{}")
    with pytest.raises(ConfigError, match="did not write"):
        generate_synthclips("tiny", foreign, num_clips=2)


def test_loader_reads_synthclips(tiny_dir: Path) -> None:
    try:
        from vidcap_core.data import load_dataset
    except ImportError as exc:  # the data package is another engineer's; skip until it imports
        pytest.skip(f"vidcap_core.data.load_dataset not importable: {exc}")
    ds = load_dataset("synth", tiny_dir)
    assert len(ds) == TINY.num_clips and not ds.missing()
    assert {r.split for r in ds} == {"train", "val", "test"}
    assert all(len(r.captions) == TINY.captions_per_clip for r in ds)


# ----------------------------------------------------------------------------- presets, config, stills


def test_presets_validate_and_long_has_one_early_event() -> None:
    for cfg in PRESETS.values():
        cfg.validate()
        assert cfg.frame_size <= 96 and cfg.frame_size % 2 == 0
    assert PRESETS["standard"].num_clips >= 2000 and PRESETS["long"].num_frames >= 64
    long = PRESETS["long"]
    for index in range(20):
        spec = build_clip(long, 0, index, "train", False)
        assert len(spec.truth.events) == 1
        assert spec.truth.events[0].end_frame < long.num_frames // 5


def test_bad_configs_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="tiny, standard, long"):
        resolve_config("huge")
    with pytest.raises(ConfigError, match="counterpart"):
        replace(TINY, heldout_shape_action=(("circle", "grow"),)).validate()
    with pytest.raises(ConfigError, match="num_frames"):
        replace(TINY, num_frames=8).validate()
    with pytest.raises(ConfigError, match="frame_size"):
        replace(TINY, frame_size=97).validate()
    with pytest.raises(ConfigError, match="workers"):
        generate_synthclips("tiny", Path("/nonexistent/never"), workers=0)
    assert isinstance(resolve_config("tiny", num_clips=3), SynthConfig)


def test_render_random_still_labels_match_pixels() -> None:
    rng = np.random.default_rng(0)
    seen_shapes = set()
    for _ in range(40):
        frame, labels = render_random_still(rng, 64)
        assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
        assert set(labels) == {"shape", "colour", "size", "position"}
        assert 0 <= labels["shape"] < len(SHAPES) and 0 <= labels["colour"] < len(COLOURS)
        assert 0 <= labels["size"] < len(SIZES) and 0 <= labels["position"] < 9
        seen_shapes.add(labels["shape"])
        target = np.array(COLOUR_RGB[COLOURS[labels["colour"]]], dtype=np.float64)
        ys, xs = np.nonzero(np.linalg.norm(frame.astype(np.float64) - target, axis=-1) < 40.0)
        assert len(xs) >= 5
        cell = int(ys.mean() // (64 / 3)) * 3 + int(xs.mean() // (64 / 3))
        assert cell == labels["position"]
    assert len(seen_shapes) == len(SHAPES)
    first, _ = render_random_still(np.random.default_rng(3), 48)
    second, _ = render_random_still(np.random.default_rng(3), 48)
    assert first.shape == (48, 48, 3) and np.array_equal(first, second)


# ----------------------------------------------------------------------------- CLI


def synth_cli() -> tuple[typer.Typer, list[str]]:
    """The real `vidcap` app and its `data synth` prefix, or (until every module that
    vidcap_core.cli.data registers exists) an app around cli/synth.py alone."""
    try:
        from vidcap_core.cli import app
    except ImportError:
        spec = importlib.util.spec_from_file_location("vidcap_synth_command", REPO / "vidcap_core" / "cli" / "synth.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        solo = typer.Typer()
        solo.command()(module.synth)
        return solo, []
    return app, ["data", "synth"]


def test_cli_generates_and_reports(tmp_path: Path) -> None:
    app, prefix = synth_cli()
    runner = CliRunner()
    out = tmp_path / "cli"
    args = [*prefix, "--preset", "tiny", "--out", str(out), "--num-clips", "4", "--workers", "1", "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "clips: 4" in result.stdout and "clips/s:" in result.stdout and "seconds:" in result.stdout
    assert sorted(p.name for p in (out / "videos").iterdir()) == [f"video{i}.mp4" for i in range(4)]
    again = runner.invoke(app, [*args, "--format", "json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["rendered"] == 0
    clash = runner.invoke(app, [*prefix, "--preset", "tiny", "--out", str(out), "--seed", "9", "--no-progress"])
    assert clash.exit_code == 2 and "other parameters" in clash.output
    bad = runner.invoke(app, [*prefix, "--preset", "huge", "--out", str(out)])
    assert bad.exit_code == 2
