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
    SYNTH_CNN_WEIGHTS,
    TORCHVISION_BACKBONES,
    SynthCNN,
    build_backbone,
    expected_torchvision_path,
    torchvision_weight_files,
)

TORCHVISION_NAMES = sorted(TORCHVISION_BACKBONES)


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


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
    assert first.input_size == (64, 64) and first.grid_size == (4, 4) and first.feature_dim == 256
    x = images(3, 64)
    with torch.inference_mode():
        glob, grid = first(x)
        again, _ = second(x)
    assert glob.shape == (3, 256) and grid.shape == (3, 16, 256)
    assert torch.equal(glob, again)
    record = json.loads(SYNTH_CNN_WEIGHTS.with_suffix(".json").read_text())
    assert record["image_size"] == 64 and set(record["held_out_accuracy"]) == {"shape", "colour", "size", "position"}


def test_committed_synth_cnn_recognises_fresh_stills() -> None:
    from vidcap_core.features.pretrain import evaluate_heads, render_stills

    model = build_backbone("synth-cnn")
    assert isinstance(model, SynthCNN)
    stills = render_stills(200, seed=424242, image_size=64)  # never seen in training
    accuracy = evaluate_heads(model, stills)
    chance = {"shape": 1 / 5, "colour": 1 / 7, "size": 1 / 2, "position": 1 / 9}
    assert accuracy["shape"] > 0.8, accuracy
    assert accuracy["colour"] > 0.8, accuracy
    assert accuracy["size"] > 0.8, accuracy
    assert accuracy["position"] > 0.8, accuracy
    assert all(accuracy[h] > chance[h] + 0.3 for h in chance)


def test_random_backbone_is_fixed_untrained_and_differs_from_synth_cnn() -> None:
    first, second, trained = build_backbone("random"), build_backbone("random"), build_backbone("synth-cnn")
    assert first.weights_id.startswith("random-init seed 0")
    x = images(2, 64, seed=1)
    with torch.inference_mode():
        a, grid = first(x)
        b, _ = second(x)
        c, _ = trained(x)
    assert a.shape == c.shape and grid.shape == (2, 16, 256)
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
    args = ["pretrain-cnn", "--out", str(out), "--steps", "2", "--seed", "3", "--batch-size", "4",
            "--held-out", "8", "--format", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    accuracy = json.loads(result.stdout)
    assert set(accuracy) == {"shape", "colour", "size", "position"}
    assert all(0.0 <= v <= 1.0 for v in accuracy.values())
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["seed"] == 3 and record["held_out_accuracy"] == accuracy
    assert "--steps 2 --seed 3" in record["command"]
    model = build_backbone("synth-cnn", out)
    assert model.weights_id.startswith("sha256:")
    with torch.inference_mode():
        assert model(images(1, 64))[0].shape == (1, 256)
    assert not list(tmp_path.glob("*.tmp"))


def test_pretrain_rejects_bad_sizes(tmp_path: Path) -> None:
    from vidcap_core.errors import ConfigError
    from vidcap_core.features.pretrain import pretrain_synth_cnn

    with pytest.raises(ConfigError, match="image_size 50"):
        pretrain_synth_cnn(tmp_path / "x.safetensors", steps=1, batch_size=4, seed=0, image_size=50)
    assert not (tmp_path / "x.safetensors").exists()


def test_flip_augmentation_mirrors_positions() -> None:
    from vidcap_core.features.pretrain import flip_batch

    img = torch.zeros(64, 1, 3, 3)
    position = torch.arange(64) % 9
    for k in range(64):
        img[k, 0, position[k] // 3, position[k] % 3] = 1.0  # a bright pixel in the labelled cell
    flipped, new_position = flip_batch(img, position, torch.Generator().manual_seed(0))
    found = flipped[:, 0].flatten(1).argmax(1)
    assert torch.equal(found, new_position)
    assert not torch.equal(new_position, position)  # some were flipped
    assert np.isin(new_position.numpy(), np.arange(9)).all()
