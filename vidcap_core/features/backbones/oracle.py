"""The `oracle` as a backbone: the facts a feature cache records (name, dims, weights id) for
SynthClips' ground-truth scene state, whose features vidcap_core/features/oracle.py computes.
It has no pixels to read: calling it on images is a FeatureError."""

from __future__ import annotations

from pathlib import Path

import torch

from vidcap_core.errors import FeatureError
from vidcap_core.features.backbones.base import Backbone
from vidcap_core.features.backbones.synth_cnn import SYNTH_MEAN, SYNTH_STD
from vidcap_core.features.oracle import MAX_OBJECTS, ORACLE_DIM, ORACLE_WEIGHTS_ID, SLOT_DIM


class OracleBackbone(Backbone):
    """Stands for the `oracle` features (SynthClips ground truth, features/oracle.py) wherever a
    backbone's facts are needed (name, dims, weights id). Extraction reads each clip's plan instead
    (`features.oracle.OracleEncoder`)."""

    def __init__(self, name: str) -> None:
        super().__init__(name, ORACLE_DIM, SLOT_DIM, (64, 64), (1, MAX_OBJECTS), SYNTH_MEAN, SYNTH_STD)
        self.weights_id = ORACLE_WEIGHTS_ID

    def conv_map(self, x: torch.Tensor) -> torch.Tensor:
        raise FeatureError(
            "backbone 'oracle' reads a SynthClips clip's ground truth, not pixels: extract its features with "
            "`vidcap features --dataset synth --backbone oracle`; a model trained on oracle features cannot "
            "caption raw video (train one on synth-cnn features for that)"
        )


def build_oracle(name: str, weights: Path | None) -> Backbone:
    if weights is not None:
        raise FeatureError(f"backbone 'oracle' is SynthClips' ground truth and has no weights; drop --weights {weights}")
    return OracleBackbone(name).eval()
