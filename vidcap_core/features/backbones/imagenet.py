"""ImageNet CNNs from torchvision (ResNet, VGG) as frame encoders.

For these `G == F` and the global vector is the average-pooled grid, except for VGG, whose global
vector is fc7 (4096-d, the S2VT feature) while its grid is the 512-channel conv5 map.

Weights never come from the network. torchvision models read the file torchvision itself would
have downloaded from `torch.hub.get_dir()/checkpoints/`, or a state_dict given with `weights=`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vidcap_core.errors import FeatureError
from vidcap_core.features.backbones.base import Backbone, load_state
from vidcap_core.files import file_sha256

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ResNetBackbone(Backbone):
    """ResNet up to layer4; global = average-pooled layer4 (the penultimate layer), grid = layer4."""

    def __init__(self, name: str, model: nn.Module) -> None:
        dim = model.fc.in_features
        super().__init__(name, dim, dim, (224, 224), (7, 7), IMAGENET_MEAN, IMAGENET_STD)
        self.body = nn.Sequential(
            model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2, model.layer3, model.layer4
        )

    def conv_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # (N, F, H/32, W/32)


class VGGBackbone(Backbone):
    """VGG; global = fc7 after ReLU (4096-d, penultimate layer), grid = conv5 after its max-pool."""

    def __init__(self, name: str, model: nn.Module) -> None:
        fc7_dim = model.classifier[3].out_features
        super().__init__(name, fc7_dim, 512, (224, 224), (7, 7), IMAGENET_MEAN, IMAGENET_STD)
        self.features = model.features
        self.avgpool = model.avgpool
        self.fc67 = nn.Sequential(*list(model.classifier.children())[:-1])  # drop the 1000-way fc8

    def conv_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (N, 512, H/32, W/32)

    def global_vector(self, conv: torch.Tensor) -> torch.Tensor:
        return self.fc67(self.avgpool(conv).flatten(1))  # (N, 4096)


TORCHVISION_BACKBONES: dict[str, type[Backbone]] = {
    "resnet18": ResNetBackbone,
    "resnet50": ResNetBackbone,
    "resnet152": ResNetBackbone,
    "vgg16": VGGBackbone,
    "vgg19": VGGBackbone,
}


def torchvision_weight_files(name: str) -> list[str]:
    """File names torchvision downloads for `name`, the DEFAULT one first."""
    import torchvision

    enum = torchvision.models.get_model_weights(name)
    default = Path(enum.DEFAULT.url).name
    others = [Path(w.url).name for w in enum if Path(w.url).name != default]
    return [default] + [f for f in others if f.startswith(f"{name}-")]  # skip feature-only files


def expected_torchvision_path(name: str) -> Path:
    """Where torchvision's cache keeps the DEFAULT ImageNet weights of `name`."""
    return Path(torch.hub.get_dir()) / "checkpoints" / torchvision_weight_files(name)[0]


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state_dict from a .safetensors file or a torch file loaded with weights_only=True."""
    if not path.is_file():
        raise FeatureError(f"weights file {path} does not exist: pass an existing state_dict file with --weights")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any parse failure means the same thing to the user
        raise FeatureError(f"cannot read weights file {path} ({type(exc).__name__}: {exc}); it must be a state_dict") from exc
    for key in ("state_dict", "model"):  # common checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FeatureError(f"weights file {path} is not a state_dict (a dict of tensors)")
    return state


def build_torchvision(name: str, weights: Path | None) -> Backbone:
    import torchvision

    if weights is None:
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        found = [cache / f for f in torchvision_weight_files(name) if (cache / f).is_file()]
        if not found:
            raise FeatureError(
                f"no ImageNet weights for {name}: put torchvision's file {torchvision_weight_files(name)[0]} at "
                f"{expected_torchvision_path(name)} (this machine cannot download it), or pass a state_dict "
                f"file with --weights FILE"
            )
        source, weights_id = found[0], f"torchvision:{found[0].name}"
    else:
        source, weights_id = weights, None
    state = read_state_dict(source)  # checks the file exists before it is hashed
    weights_id = weights_id or f"sha256:{file_sha256(source)}"
    model = torchvision.models.get_model(name, weights=None)
    load_state(model, state, source, name)
    backbone = TORCHVISION_BACKBONES[name](name, model)
    backbone.weights_id = weights_id
    return backbone.eval()


