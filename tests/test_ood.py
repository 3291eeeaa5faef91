"""The out-of-distribution score: its two halves (feature distance, frame statistics), their storage
next to a checkpoint, the end-of-training calibration and the `vidcap calibrate-ood` command, on
hand-made features and on real SynthClips clips and encoded patterns."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vidcap_core.errors import CheckpointError, FeatureError
from vidcap_core.ood.calibration import (
    OOD_VERSION,
    OodCalibrationSkipped,
    SplitVideos,
    calibrate_checkpoint,
    decode_calibration_videos,
    fit_ood,
    load_ood,
    save_ood,
    sidecar_path,
)
from vidcap_core.ood.feature_distance import fit_feature_distance, frame_vectors, real_frames, shrunk_covariance
from vidcap_core.ood.frame_statistics import (
    STATISTIC_NAMES,
    FrameStatistics,
    Geometry,
    fit_frame_statistics,
    sample_paths,
    summarize_clip,
    summarize_videos,
)

FACTS = {"backbone": "random", "weights": "w", "feature_dim": 16, "num_frames": 16, "frame_size": [64, 64]}
SYNTH_FRAMES = 16  # the tiny preset's clips
SYNTH_SIZE = (64, 64)


def gaussian(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    scales = np.linspace(0.2, 3.0, 16)  # anisotropic: a Euclidean distance would not do
    return rng.normal(size=(n, 16)) * scales + shift


def clips(rng: np.random.Generator, n: int, shift: float = 0.0, frames: int = 4) -> list[np.ndarray]:
    """n clips of (frames, 16) frame features."""
    return list(gaussian(rng, n * frames, shift).reshape(n, frames, 16))


# ----------------------------------------------------------------------------- real SynthClips and patterns


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> dict:
    """SynthClips tiny, 200 clips (140 train, 20 val, 40 test), its videos decoded and summarised as the
    Captioner reads them, and the frame statistics fitted on them as `vidcap train` fits them."""
    from vidcap_core.data import load_dataset
    from vidcap_core.synth import generate_synthclips

    root = tmp_path_factory.mktemp("ood-synth") / "synth"
    generate_synthclips("tiny", root, seed=0, num_clips=200, workers=1)
    ds = load_dataset("synth", root)
    videos = SplitVideos([r.path for r in ds.split("train")], [r.path for r in ds.split("val")])
    train, val = decode_calibration_videos(videos, FACTS)
    test = summarize_videos([r.path for r in ds.split("test")], SYNTH_FRAMES, SYNTH_SIZE)
    return {"root": root, "videos": videos, "train": train, "val": val, "test": test.summaries,
            "statistics": fit_frame_statistics(train.summaries, val.summaries, 99.75)}


def pattern_videos(folder: Path, size: tuple[int, int], fps: int) -> dict[str, Path]:
    """The benchmark's non-SynthClips patterns (testsrc2-like bars, gradient pan, noise), encoded at (H, W) and fps."""
    from benchmark.ood import colour_bar_chart_frame, gradient_pan_frame, noise_frames
    from benchmark.robustness.cases import encode_h264

    folder.mkdir(parents=True, exist_ok=True)
    n = SYNTH_FRAMES
    return {"bars": encode_h264(folder / "bars.mp4", (colour_bar_chart_frame(i, n, size) for i in range(n)), fps),
            "gradient": encode_h264(folder / "gradient.mp4", (gradient_pan_frame(i, n, size) for i in range(n)), fps),
            "noise": encode_h264(folder / "noise.mp4", noise_frames(n, size), fps)}


def summary_of(path: Path):
    return summarize_videos([path], SYNTH_FRAMES, SYNTH_SIZE).summaries[0]


def test_synthclips_clips_stay_inside_and_patterns_of_their_own_size_and_rate_are_flagged(synth, tmp_path):
    statistics: FrameStatistics = synth["statistics"]
    assert statistics.train_clips == 140 and statistics.val_clips == 20 and statistics.threshold >= 1.0
    test_scores = [statistics.clip_score(s)[0] for s in synth["test"]]  # 40 clips the fit never saw
    assert np.mean(np.array(test_scores) > statistics.threshold) <= 0.1  # 20 validation clips set a rough threshold
    assert max(test_scores) < 3 * statistics.threshold
    # 64x64 at 8 fps like SynthClips: only the pixels can tell them apart
    for name, path in pattern_videos(tmp_path / "same-geometry", SYNTH_SIZE, 8).items():
        score, statistic = statistics.clip_score(summary_of(path))
        assert score > 10 * statistics.threshold, (name, score, statistic)
        assert statistic not in ("frame_side", "aspect", "frame_rate"), name
    # the benchmark's own 320x240 at 10 fps: the decoded size says it too
    gradient = pattern_videos(tmp_path / "benchmark-geometry", (240, 320), 10)["gradient"]
    deviations = statistics.deviations(summary_of(gradient))
    assert deviations[STATISTIC_NAMES.index("frame_side")] > 10 * statistics.threshold


def test_the_shared_real_video_is_flagged_by_its_pixels_alone(synth):
    from benchmark.robustness.cases import SHARED_VIDEOS
    from vidcap_core.video import read_frames

    pancake = SHARED_VIDEOS / "flipping_a_pancake.mkv"
    if not pancake.is_file():
        pytest.skip(f"{pancake} is absent (it exists only next to the project checkout)")
    statistics = synth["statistics"]
    frames = read_frames(pancake, SYNTH_FRAMES, SYNTH_SIZE)  # (T, 64, 64, 3) as the Captioner reads it
    score, statistic = statistics.clip_score(summarize_clip(frames, Geometry(64, 64, 8.0)))  # posing as SynthClips
    assert score > 3 * statistics.threshold, (score, statistic)


def test_statistics_by_hand():
    flat = np.full((3, 8, 8, 3), 100, np.uint8)  # (T, H, W, 3): one grey, nothing moves
    values = dict(zip(STATISTIC_NAMES, summarize_clip(flat, Geometry(240, 320, 30.0)).values))
    assert values["brightness"] == 100 and values["contrast"] == 0 and values["fine_noise"] == 0
    assert values["edge_energy"] == 0 and values["motion"] == 0 and values["background_share"] == 1.0
    assert values["saturated_share"] == 0 and values["chroma"] == 0 and np.isnan(values["rare_colour_share"])
    assert values["frame_side"] == pytest.approx(0.5 * np.log(240 * 320)) and values["aspect"] == pytest.approx(np.log(4 / 3))
    assert values["frame_rate"] == pytest.approx(np.log(30.0))
    red = flat.copy()
    red[:, :4] = (225, 45, 40)  # half the pixels a saturated red
    values = dict(zip(STATISTIC_NAMES, summarize_clip(red, Geometry(8, 8, 8.0)).values))
    assert values["saturated_share"] == 0.5 and values["edge_energy"] > 0
    assert summarize_clip(flat, Geometry(8, 8, 8.0)).colours.sum() == 3 * 8 * 8
    with pytest.raises(FeatureError, match="at least 3x3"):
        summarize_clip(np.zeros((2, 2, 2, 3), np.uint8), Geometry(2, 2, 8.0))


def test_sample_paths_is_seeded_and_keeps_order():
    paths = [Path(f"video{i}.mp4") for i in range(50)]
    sample = sample_paths(paths, 10, seed=0)
    assert len(sample) == 10 and sample == sample_paths(paths, 10, seed=0) and sample == sorted(sample, key=paths.index)
    assert sample_paths(paths, None) == paths and sample_paths(paths[:5], 10) == paths[:5]


# ----------------------------------------------------------------------------- the feature distance


def test_shrinkage_makes_a_few_clips_invertible_and_vanishes_with_many():
    rng = np.random.default_rng(0)
    few, shrink_few = shrunk_covariance(gaussian(rng, 8))  # fewer clips than dimensions
    many, shrink_many = shrunk_covariance(gaussian(rng, 20_000))
    assert 0.0 < shrink_many < shrink_few <= 1.0
    assert np.linalg.matrix_rank(few) == 16  # the sample covariance alone has rank 7
    np.testing.assert_allclose(np.diag(many), np.linspace(0.2, 3.0, 16) ** 2, rtol=0.05, atol=0.02)


def test_threshold_flags_about_the_percentile_in_distribution_and_shifted_clips_all():
    rng = np.random.default_rng(1)
    distance = fit_feature_distance(clips(rng, 500), clips(rng, 1000), percentile=99.0)
    in_distribution = [distance.clip_score(clip) > distance.threshold for clip in clips(rng, 3000)]
    assert np.mean(in_distribution) < 0.03
    assert all(distance.clip_score(clip) > distance.threshold for clip in clips(rng, 200, shift=2.0))
    assert distance.clip_score(clips(rng, 1, shift=2.0)[0][None]) > distance.threshold  # (1, T, F) as the Captioner gives


def test_region_grids_are_flattened_per_frame():
    rng = np.random.default_rng(3)
    grids = [clip.reshape(4, 4, 4) for clip in clips(rng, 60)]  # (T, R, G) with R * G = 16
    distance = fit_feature_distance(grids[:40], grids[40:])
    flat = fit_feature_distance([g.reshape(4, 16) for g in grids[:40]], [g.reshape(4, 16) for g in grids[40:]])
    np.testing.assert_allclose(distance.mean, flat.mean)
    probe = grids[0]
    assert distance.clip_score(probe) == pytest.approx(flat.clip_score(probe.reshape(4, 16)))
    assert distance.clip_score(probe[None]) == pytest.approx(distance.clip_score(probe))  # (1, T, R, G)
    assert frame_vectors(probe, 16).shape == (4, 16) and frame_vectors(probe, 4).shape == (16, 4)
    with pytest.raises(FeatureError, match="no per-frame vector of 16 dims"):
        distance.clip_score(np.zeros((4, 8)))


def test_real_frames_drop_padding():
    feats = np.zeros((2, 3, 16))
    feats[0, 2] = 100.0  # padding frame, masked out
    mask = np.array([[True, True, False], [True, True, True]])
    kept = real_frames(feats, mask)
    assert [clip.shape for clip in kept] == [(2, 16), (3, 16)] and kept[0].max() == 0.0


# ----------------------------------------------------------------------------- both halves, stored


def test_either_half_flags_and_the_score_is_in_threshold_units(synth):
    rng = np.random.default_rng(4)
    calibration = fit_ood(clips(rng, 140), clips(rng, 20), synth["train"].summaries, synth["val"].summaries, FACTS)
    feats_threshold, frames_threshold = calibration.features.threshold, calibration.frames.threshold
    familiar, shifted = clips(rng, 1)[0], clips(rng, 1, shift=3.0)[0]
    frames = synth["test"][0]
    noise = np.random.default_rng(5).integers(0, 256, size=(SYNTH_FRAMES, 64, 64, 3), dtype=np.uint8)
    foreign = summarize_clip(noise, Geometry(64, 64, 8.0))

    both_quiet = calibration.score_summary(familiar, frames)
    by_features = calibration.score_summary(shifted, frames)
    by_frames = calibration.score_summary(familiar, foreign)
    assert by_features.flagged and by_features.features.flagged and not by_features.frames.flagged
    assert by_frames.flagged and by_frames.frames.flagged and not by_frames.features.flagged
    assert by_frames.frames.statistic in STATISTIC_NAMES
    for score in (both_quiet, by_features, by_frames):
        assert score.score == pytest.approx(max(score.features.score / feats_threshold, score.frames.score / frames_threshold))
        assert score.flagged == (score.score > score.threshold == 1.0)
    answer = by_frames.to_dict()
    assert answer["flagged"] is True and answer["threshold"] == 1.0 and answer["frames"]["flagged"] is True
    assert set(answer["features"]) == {"score", "threshold", "flagged"} and "statistic" in answer["frames"]
    json.dumps(answer, allow_nan=False)  # the /caption and `vidcap caption --format json` answer
    assert calibration.score(familiar, noise, Geometry(64, 64, 8.0)).to_dict() == answer  # frames + probe in


def test_sidecar_round_trip_and_refusals(synth, tmp_path):
    rng = np.random.default_rng(2)
    checkpoint = tmp_path / "model.pt"
    assert load_ood(checkpoint, FACTS) is None  # no calibration: no score, no error
    calibration = fit_ood(clips(rng, 100), clips(rng, 50), synth["train"].summaries, synth["val"].summaries, FACTS)
    path = save_ood(calibration, checkpoint)
    assert path == sidecar_path(checkpoint) == tmp_path / "model.ood.npz"
    with np.load(path, allow_pickle=False) as data:  # plain arrays and one JSON string
        assert json.loads(str(data["meta"]))["version"] == OOD_VERSION
    loaded = load_ood(checkpoint, {**FACTS, "grid": False})  # facts that do not change features are ignored
    probe, frames = clips(rng, 1, shift=0.5)[0], synth["test"][1]
    assert loaded.score_summary(probe, frames) == calibration.score_summary(probe, frames)
    assert loaded.frames.threshold == calibration.frames.threshold and loaded.features.threshold == calibration.features.threshold
    with pytest.raises(CheckpointError, match="calibrated on other features.*vidcap calibrate-ood"):
        load_ood(checkpoint, {**FACTS, "num_frames": 8})
    path.write_bytes(b"not an npz")
    with pytest.raises(CheckpointError, match="not a readable OOD calibration"):
        load_ood(checkpoint, FACTS)


def test_a_version_1_calibration_is_refused_with_what_to_run(tmp_path):
    """The file `vidcap train` wrote before the frame statistics: features only."""
    checkpoint = tmp_path / "model.pt"
    meta = {"version": 1, "threshold": 58.5, "percentile": 99.5, "shrinkage": 0.0, "train_clips": 2, "val_clips": 1,
            "facts": FACTS}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, mean=np.zeros(16), precision=np.eye(16), val_scores=np.ones(1), meta=np.array(json.dumps(meta)))
    sidecar_path(checkpoint).write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match=r"version 1, expected 2 .*frame statistics.*`vidcap calibrate-ood "):
        load_ood(checkpoint, FACTS)


# ----------------------------------------------------------------------------- calibrating from data


def test_end_of_training_calibration_decodes_the_videos_or_warns(synth, tmp_path):
    rng = np.random.default_rng(6)
    feats = np.stack(clips(rng, 12, frames=SYNTH_FRAMES))  # (N, T, F)
    mask = np.ones(feats.shape[:2], dtype=bool)  # (N, T)
    checkpoint = tmp_path / "best.pt"
    path = calibrate_checkpoint(checkpoint, feats, mask, feats[:4], mask[:4], FACTS, synth["videos"])
    loaded = load_ood(checkpoint, FACTS)
    assert path == sidecar_path(checkpoint) and loaded.frames.train_clips == 140 and loaded.frames.unreadable == 0
    assert loaded.features.train_clips == 12

    gone = SplitVideos([tmp_path / "gone" / f"video{i}.mp4" for i in range(3)], [tmp_path / "gone" / "video9.mp4"])
    with pytest.warns(OodCalibrationSkipped, match="gets no OOD calibration.*0 training and 0 validation videos decoded"):
        assert calibrate_checkpoint(checkpoint, feats, mask, feats[:4], mask[:4], FACTS, gone) is None
    assert not sidecar_path(checkpoint).exists()  # no stale calibration left behind
    with pytest.warns(OodCalibrationSkipped, match="none were given"):  # a caller with features only
        assert calibrate_checkpoint(checkpoint, feats, mask, feats[:4], mask[:4], FACTS) is None
    with pytest.raises(FeatureError, match="not computed from pixels"):
        decode_calibration_videos(synth["videos"], {**FACTS, "frame_size": None})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one unreadable video among good ones: left out and counted, no warning
        mixed = SplitVideos(synth["videos"].train[:5] + gone.train[:1], synth["videos"].val[:2])
        calibrate_checkpoint(checkpoint, feats, mask, feats[:4], mask[:4], FACTS, mixed)
    assert load_ood(checkpoint, FACTS).frames.unreadable == 1


def test_calibrate_ood_command_on_synthclips_features(tmp_path):
    import shutil

    from test_demo import build_demo_results

    from vidcap_core.checkpoint import load_checkpoint
    from vidcap_core.cli import app
    from vidcap_core.data import load_dataset
    from vidcap_core.features.extract import extract_features

    built = build_demo_results(tmp_path / "demo")
    checkpoint = built["results"] / "checkpoints" / "s2vt-rnn.pt"
    features = tmp_path / "features"
    extract_features(load_dataset("synth", built["synth"]).records, "random", features, num_frames=8,
                     progress=False, device="cpu")
    result = CliRunner().invoke(app, ["calibrate-ood", str(checkpoint), "--features", str(features),
                                      "--root", str(built["synth"]), "--format", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["sidecar"] == str(sidecar_path(checkpoint)) and summary["percentile"] == 99.75
    assert summary["features"]["threshold"] > 0 and summary["frames"]["threshold"] >= 1.0
    assert summary["frames"]["unreadable"] == 0 and summary["seconds"] >= 0
    assert summary["val"]["clips"] >= 1 and 0 <= summary["val"]["flagged"] <= 1
    loaded = load_ood(checkpoint, load_checkpoint(checkpoint).preprocessing)
    assert loaded.features.threshold == summary["features"]["threshold"]
    assert loaded.frames.threshold == summary["frames"]["threshold"]
    text = CliRunner().invoke(app, ["calibrate-ood", str(checkpoint), "--features", str(features),
                                    "--root", str(built["synth"])])
    assert text.exit_code == 0 and "frame-statistics threshold" in text.output and "val: " in text.output
    sidecar_path(checkpoint).unlink()  # the demo fixtures are shared with other tests

    wrong = CliRunner().invoke(app, ["calibrate-ood", str(checkpoint), "--features", str(tmp_path / "none"),
                                     "--root", str(built["synth"])])
    assert wrong.exit_code == 2 and "vidcap features" in wrong.output

    # a cache of other videos (another dataset or seed): the first validation clip's features are not its
    # video's; offset, because the untrained `random` backbone gives nearly the same features for every clip
    swapped = tmp_path / "swapped"
    shutil.copytree(features, swapped)
    first_val = load_dataset("synth", built["synth"]).split("val")[0].video_id
    np.save(swapped / f"{first_val}.npy", (np.load(features / f"{first_val}.npy") + 1.0).astype(np.float16))
    mixed_up = CliRunner().invoke(app, ["calibrate-ood", str(checkpoint), "--features", str(swapped),
                                        "--root", str(built["synth"])])
    assert mixed_up.exit_code == 2 and "are not those of its video" in mixed_up.output
    assert not sidecar_path(checkpoint).exists()
