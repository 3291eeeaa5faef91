"""The out-of-distribution score: its statistics, its storage next to a checkpoint, and the
`vidcap calibrate-ood` command on real SynthClips features."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from vidcap_core.errors import CheckpointError, FeatureError
from vidcap_core.features.ood import (
    fit_ood,
    load_ood,
    real_frames,
    save_ood,
    shrunk_covariance,
    sidecar_path,
)

FACTS = {"backbone": "random", "weights": "w", "feature_dim": 16, "num_frames": 4, "frame_size": [64, 64]}


def gaussian(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    scales = np.linspace(0.2, 3.0, 16)  # anisotropic: a Euclidean distance would not do
    return rng.normal(size=(n, 16)) * scales + shift


def clips(rng: np.random.Generator, n: int, shift: float = 0.0, frames: int = 4) -> list[np.ndarray]:
    """n clips of (frames, 16) frame features."""
    return list(gaussian(rng, n * frames, shift).reshape(n, frames, 16))


def test_shrinkage_makes_a_few_clips_invertible_and_vanishes_with_many():
    rng = np.random.default_rng(0)
    few, shrink_few = shrunk_covariance(gaussian(rng, 8))  # fewer clips than dimensions
    many, shrink_many = shrunk_covariance(gaussian(rng, 20_000))
    assert 0.0 < shrink_many < shrink_few <= 1.0
    assert np.linalg.matrix_rank(few) == 16  # the sample covariance alone has rank 7
    np.testing.assert_allclose(np.diag(many), np.linspace(0.2, 3.0, 16) ** 2, rtol=0.05, atol=0.02)


def test_threshold_flags_about_the_percentile_in_distribution_and_shifted_clips_all():
    rng = np.random.default_rng(1)
    calibration = fit_ood(clips(rng, 500), clips(rng, 1000), FACTS, percentile=99.0)
    in_distribution = [calibration.score(clip).flagged for clip in clips(rng, 3000)]
    assert np.mean(in_distribution) < 0.03
    assert all(calibration.score(clip).flagged for clip in clips(rng, 200, shift=2.0))
    score = calibration.score(clips(rng, 1, shift=2.0)[0][None])  # (1, T, F) as Captioner.features gives
    assert score.to_dict()["flagged"] is True and score.score > score.threshold


def test_real_frames_drop_padding():
    feats = np.zeros((2, 3, 16))
    feats[0, 2] = 100.0  # padding frame, masked out
    mask = np.array([[True, True, False], [True, True, True]])
    kept = real_frames(feats, mask)
    assert [clip.shape for clip in kept] == [(2, 16), (3, 16)] and kept[0].max() == 0.0


def test_sidecar_round_trip_and_refusals(tmp_path):
    rng = np.random.default_rng(2)
    checkpoint = tmp_path / "model.pt"
    assert load_ood(checkpoint, FACTS) is None  # no calibration: no score, no error
    calibration = fit_ood(clips(rng, 100), clips(rng, 50), FACTS)
    path = save_ood(calibration, checkpoint)
    assert path == sidecar_path(checkpoint) == tmp_path / "model.ood.npz"
    loaded = load_ood(checkpoint, {**FACTS, "grid": False})  # facts that do not change features are ignored
    probe = clips(rng, 1, shift=0.5)[0]
    assert loaded.clip_score(probe) == pytest.approx(calibration.clip_score(probe))
    assert loaded.threshold == calibration.threshold
    with pytest.raises(CheckpointError, match="calibrated on other features.*vidcap calibrate-ood"):
        load_ood(checkpoint, {**FACTS, "num_frames": 8})
    path.write_bytes(b"not an npz")
    with pytest.raises(CheckpointError, match="not a readable OOD calibration"):
        load_ood(checkpoint, FACTS)
    with pytest.raises(FeatureError, match="expects 16"):
        calibration.score(np.zeros((4, 8)))


def test_calibrate_ood_command_on_synthclips_features(tmp_path):
    from test_demo import build_demo_results

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
    assert summary["sidecar"] == str(sidecar_path(checkpoint)) and summary["threshold"] > 0
    from vidcap_core.checkpoint import load_checkpoint

    assert load_ood(checkpoint, load_checkpoint(checkpoint).preprocessing).threshold == summary["threshold"]
    sidecar_path(checkpoint).unlink()  # the demo fixtures are shared with other tests

    wrong = CliRunner().invoke(app, ["calibrate-ood", str(checkpoint), "--features", str(tmp_path / "none"),
                                     "--root", str(built["synth"])])
    assert wrong.exit_code == 2 and "vidcap features" in wrong.output
