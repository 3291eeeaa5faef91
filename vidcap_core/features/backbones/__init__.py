"""Frame encoders by name: `build_backbone(name, weights=None) -> Backbone`.

  base.py       Backbone: the facts a feature cache records, input normalisation, the clip-level step
  imagenet.py   torchvision ImageNet CNNs (resnet18/50/152, vgg16/19), weights from torchvision's cache
  synth_cnn.py  synth-cnn (our SynthClips CNN), synth-slots (its detections as object slots), random
  oracle.py     the oracle's facts (SynthClips ground truth; features from vidcap_core/features/oracle.py)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import get_args

from vidcap_core.errors import FeatureError
from vidcap_core.features.backbones.base import Backbone
from vidcap_core.features.backbones.imagenet import (
    TORCHVISION_BACKBONES,
    ResNetBackbone,
    VGGBackbone,
    build_torchvision,
    expected_torchvision_path,
    torchvision_weight_files,
)
from vidcap_core.features.backbones.oracle import OracleBackbone, build_oracle
from vidcap_core.features.backbones.synth_cnn import (
    REGION_HEADS,
    SynthCNN,
    SynthCNNConfig,
    SynthSlots,
    build_random_cnn,
    build_synth_cnn,
    read_synth_cnn_file,
    save_synth_cnn,
)
from vidcap_core.options import BackboneName

__all__ = [
    "BACKBONES", "REGION_HEADS", "TORCHVISION_BACKBONES", "Backbone", "OracleBackbone", "ResNetBackbone", "SynthCNN",
    "SynthCNNConfig", "SynthSlots", "VGGBackbone", "build_backbone", "expected_torchvision_path",
    "read_synth_cnn_file", "save_synth_cnn", "torchvision_weight_files",
]

BACKBONES: dict[str, Callable[[str, Path | None], Backbone]] = {
    **{name: build_torchvision for name in TORCHVISION_BACKBONES},
    "synth-cnn": build_synth_cnn,
    "synth-slots": build_synth_cnn,
    "random": build_random_cnn,
    "oracle": build_oracle,
}
if tuple(BACKBONES) != get_args(BackboneName):
    raise ImportError("BackboneName and BACKBONES must list the same names")


def build_backbone(name: str, weights: Path | None = None) -> Backbone:
    """Build backbone `name` in eval mode. `weights`: a state_dict file overriding the default weights."""
    if name not in BACKBONES:
        raise FeatureError(f"unknown backbone {name!r}: choose one of {', '.join(BACKBONES)}")
    return BACKBONES[name](name, None if weights is None else Path(weights))
