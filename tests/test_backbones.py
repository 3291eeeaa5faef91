"""Backbones: output shapes for every name, offline weight handling, the committed synth-cnn."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from vidcap_core.errors import FeatureError
from vidcap_core.features.backbones import (
    BACKBONES,
    TORCHVISION_BACKBONES,
    SynthCNN,
    build_backbone,
    expected_torchvision_path,
    torchvision_weight_files,
)
from vidcap_core.options import SYNTH_CNN_WEIGHTS

TORCHVISION_NAMES = sorted(TORCHVISION_BACKBONES)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def empty_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def resnet18_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init resnet18 state_dict file (stands in for ImageNet weights; nothing is downloaded)."""
    import torchvision

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18-random.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))  # (N, 3, S, S) in [0, 1]


def test_unknown_backbone_lists_the_valid_names() -> None:
    with pytest.raises(FeatureError) as err:
        build_backbone("resnet17")
    assert "resnet17" in str(err.value)
    for name in BACKBONES:
        assert name in str(err.value)


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_torchvision_backbone_offline_without_weights_names_the_file(name: str, empty_torch_home: Path) -> None:
    expected = empty_torch_home / "hub" / "checkpoints" / torchvision_weight_files(name)[0]
    assert expected_torchvision_path(name) == expected
    with pytest.raises(FeatureError) as err:
        build_backbone(name)
    assert str(expected) in str(err.value)
    assert "--weights" in str(err.value)


def test_resnet18_with_a_weights_file(resnet18_weights: Path, empty_torch_home: Path) -> None:
    backbone = build_backbone("resnet18", resnet18_weights)
    assert (backbone.feature_dim, backbone.grid_dim, backbone.input_size, backbone.grid_size) == (512, 512, (224, 224), (7, 7))
    assert not backbone.training
    assert backbone.weights_id.startswith("sha256:")
    with torch.inference_mode():
        glob, grid = backbone(images(2, 224))
    assert glob.shape == (2, 512)
    assert grid.shape == (2, 49, 512)
    # the global vector is the average-pooled grid (ResNet's penultimate layer)
    torch.testing.assert_close(glob, grid.mean(1), rtol=1e-4, atol=1e-5)
    assert torch.isfinite(glob).all()


def test_resnet18_from_the_torchvision_cache(resnet18_weights: Path, empty_torch_home: Path) -> None:
    cached = expected_torchvision_path("resnet18")
    cached.parent.mkdir(parents=True)
    shutil.copy(resnet18_weights, cached)
    backbone = build_backbone("resnet18")
    assert backbone.weights_id == f"torchvision:{cached.name}"
    with torch.inference_mode():
        glob, grid = backbone(images(1, 64))
    assert glob.shape == (1, 512) and grid.shape == (1, 4, 512)  # 64 / 32 = 2x2 regions


def test_resnet50_shapes(tmp_path: Path) -> None:
    import torchvision

    path = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    backbone = build_backbone("resnet50", path)
    with torch.inference_mode():
        glob, grid = backbone(images(2, 64))
    assert glob.shape == (2, 2048) and grid.shape == (2, 4, 2048)


@pytest.mark.slow
def test_vgg16_shapes(tmp_path: Path) -> None:
    import torchvision

    path = tmp_path / "vgg16.pth"
    torch.save(torchvision.models.vgg16(weights=None).state_dict(), path)
    backbone = build_backbone("vgg16", path)
    assert (backbone.feature_dim, backbone.grid_dim) == (4096, 512)
    with torch.inference_mode():
        glob, grid = backbone(images(1, 224))
    assert glob.shape == (1, 4096) and grid.shape == (1, 49, 512)


def test_weights_that_do_not_fit_or_are_not_a_state_dict(resnet18_weights: Path, tmp_path: Path) -> None:
    state = torch.load(resnet18_weights, weights_only=True)
    del state["fc.weight"]
    partial = tmp_path / "partial.pth"
    torch.save(state, partial)
    with pytest.raises(FeatureError, match="do not fit"):
        build_backbone("resnet18", partial)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(FeatureError, match="garbage.pth"):
        build_backbone("resnet18", garbage)
    with pytest.raises(FeatureError, match="does not exist"):
        build_backbone("resnet18", tmp_path / "missing.pth")


def test_synth_cnn_loads_committed_weights_and_is_deterministic() -> None:
    assert SYNTH_CNN_WEIGHTS.is_file()
    first, second = build_backbone("synth-cnn"), build_backbone("synth-cnn")
    assert first.weights_id.startswith("committed synth-cnn sha256:")
    assert first.input_size == (64, 64) and first.grid_size == (4, 4)
    assert (first.feature_dim, first.grid_dim) == (17 * 21, 21)
    x = images(3, 64)
    with torch.inference_mode():
        glob, grid = first(x)
        again, _ = second(x)
    assert glob.shape == (3, 357) and grid.shape == (3, 16, 21)
    torch.testing.assert_close(glob[:, :21], grid.sum(1))  # the frame's totals, then every region in order
    assert torch.equal(glob[:, 21:], grid.flatten(1))
    seen = grid[..., 0]  # (3, 16) sigmoid(object); the other fields are scaled by it
    assert ((seen >= 0) & (seen <= 1)).all()
    torch.testing.assert_close(grid[..., 1:6].sum(-1), seen)  # p * softmax(shape) sums to p
    assert torch.equal(glob, again)
    record = json.loads(SYNTH_CNN_WEIGHTS.with_suffix(".json").read_text())
    assert record["image_size"] == 64 and record["seed"] == 0 and record["command"].startswith("vidcap pretrain-cnn")
    assert {"detected", "shape", "colour", "size", "all", "position"} <= set(record["held_out_accuracy_per_object"])


def test_committed_synth_cnn_reads_every_object_of_fresh_multi_object_frames() -> None:
    from vidcap_core.perception.pretrain import evaluate_regions, render_scene_frames

    model = build_backbone("synth-cnn")
    assert isinstance(model, SynthCNN)
    frames = render_scene_frames(60, 4, seed=424242, image_size=64, grid_side=4)  # never seen in training
    accuracy = evaluate_regions(model, frames)
    assert accuracy["detected"] > 0.9, accuracy
    assert accuracy["colour"] > 0.9 and accuracy["size"] > 0.9, accuracy
    assert accuracy["shape"] > 0.7, accuracy  # chance 0.2
    assert accuracy["position"] > 0.7, accuracy
    assert accuracy["false_positive"] < 0.05, accuracy
    untrained = evaluate_regions(SynthCNN(model.cfg), frames)  # the same check fails without pretraining
    assert untrained["all"] < 0.2


def test_region_targets_follow_the_objects() -> None:
    from vidcap_core.perception.pretrain import region_targets
    from vidcap_core.synth.plan import ClipPlan, ObjectState, PlannedEvent, SpeckField

    start = ObjectState(20.0, 40.0, "small", 0.0, True, "red")  # region row 2, column 1 of a 4x4 grid
    moved = ObjectState(52.0, 40.0, "small", 0.0, True, "red")  # row 2, column 3
    plan = ClipPlan(64, 8, ("square",), (start,), (PlannedEvent(0, "move_right", start, moved, 2, 6),),
                    SpeckField((), (), ()), 1, 0.05)
    targets = region_targets(plan, np.array([0, 7]), grid_side=4)
    assert targets["opacity"][0].nonzero()[0].tolist() == [9] and targets["opacity"][1].nonzero()[0].tolist() == [11]
    assert targets["shape"][0, 9] == 1 and targets["colour"][0, 9].argmax() == 0 and targets["size"][0, 9, 0] == 1
    np.testing.assert_allclose(targets["offset"][0, 9], [2 * 4 / 16 - 1, 2 * 8 / 16 - 1])  # (20-16)/16, (40-32)/16
    np.testing.assert_allclose(targets["angle"][0, 9], [0.0, 1.0], atol=1e-7)
    assert targets["has_angle"][0, 9] and not targets["has_angle"][0, 10] and targets["shape"][0, 10] == -1


def test_random_backbone_is_fixed_untrained_and_has_synth_cnns_architecture() -> None:
    first, second, trained = build_backbone("random"), build_backbone("random"), build_backbone("synth-cnn")
    assert first.weights_id.startswith("random-init seed 0")
    assert first.cfg == trained.cfg
    assert {k: v.shape for k, v in first.state_dict().items()} == {k: v.shape for k, v in trained.state_dict().items()}
    x = images(2, 64, seed=1)
    with torch.inference_mode():
        a, grid = first(x)
        b, _ = second(x)
        c, trained_grid = trained(x)
    assert a.shape == c.shape == (2, 357) and grid.shape == trained_grid.shape == (2, 16, 21)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    with pytest.raises(FeatureError, match="untrained"):
        build_backbone("random", SYNTH_CNN_WEIGHTS)


def test_bad_input_shape_is_a_feature_error() -> None:
    with pytest.raises(FeatureError, match=r"\(N, 3, H, W\)"):
        build_backbone("random")(torch.zeros(2, 64, 64, 3))


def test_pretrain_cli_writes_loadable_weights_and_record(tmp_path: Path) -> None:
    from vidcap_core.cli.features import pretrain_cnn

    app = typer.Typer()
    app.command("pretrain-cnn")(pretrain_cnn)
    app.command("unused")(lambda: None)  # two commands keep the subcommand name in argv
    out = tmp_path / "cnn.safetensors"
    args = ["pretrain-cnn", "--out", str(out), "--steps", "2", "--seed", "3", "--batch-size", "4", "--num-clips", "3",
            "--frames-per-clip", "2", "--held-out", "4", "--format", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    accuracy = json.loads(result.stdout)
    assert {"detected", "shape", "colour", "size", "all", "position", "angle", "count", "false_positive"} == set(accuracy)
    assert all(0.0 <= v <= 1.0 for v in accuracy.values() if v == v)  # NaN: nothing of that kind was held out
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["seed"] == 3 and record["train_frames"] == 6 and record["held_out_frames"] == 8
    assert "--steps 2 --seed 3" in record["command"] and "--num-clips 3" in record["command"]
    model = build_backbone("synth-cnn", out)
    assert model.weights_id.startswith("sha256:")
    with torch.inference_mode():
        assert model(images(1, 64))[0].shape == (1, 357)
    assert not list(tmp_path.glob("*.tmp"))
    stale = tmp_path / "old-format.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(stale), metadata={"format": "vidcap-synth-cnn-1", "config": "{}"})
    with pytest.raises(FeatureError, match="vidcap pretrain-cnn"):
        build_backbone("synth-cnn", stale)


def test_pretrain_rejects_bad_sizes(tmp_path: Path) -> None:
    from vidcap_core.errors import ConfigError
    from vidcap_core.perception.pretrain import pretrain_synth_cnn

    with pytest.raises(ConfigError, match="image_size 50"):
        pretrain_synth_cnn(tmp_path / "x.safetensors", steps=1, batch_size=4, seed=0, image_size=50)
    assert not (tmp_path / "x.safetensors").exists()


def test_frame_position_turns_region_offsets_into_frame_coordinates() -> None:
    offset = torch.zeros(1, 2, 4, 4)  # every centre in the middle of its region
    offset[0, :, 2, 1] = torch.tensor([-1.0, 1.0])  # region row 2, column 1: its left edge, bottom edge
    xy = SynthCNN.frame_position(offset)  # (1, 2, 4, 4)
    assert xy[0, 0, 0, 0].item() == pytest.approx(0.125) and xy[0, 1, 3, 3].item() == pytest.approx(0.875)
    assert xy[0, 0, 2, 1].item() == pytest.approx(0.25) and xy[0, 1, 2, 1].item() == pytest.approx(0.75)
