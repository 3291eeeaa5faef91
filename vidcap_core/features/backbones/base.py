"""What every frame encoder is: `Backbone`, which holds the facts a feature cache records and does the
input normalisation.

Every backbone takes images `(N, 3, H, W)` float in [0, 1], normalises them itself and returns
`(global (N, F), grid (N, R, G))`: one vector per frame and the last convolutional map flattened
into `R = h * w` regions. A backbone that follows objects through a clip (`tracks_objects`,
synth-slots) turns one clip's region grids into its features after the frames are encoded
(`clip_features`); every other backbone's features are per frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidcap_core.errors import FeatureError


class Backbone(nn.Module):
    """Base class: holds the facts a feature cache records and does the input normalisation."""

    def __init__(
        self,
        name: str,
        feature_dim: int,
        grid_dim: int,
        input_size: tuple[int, int],
        grid_size: tuple[int, int],
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
    ) -> None:
        super().__init__()
        self.name = name
        self.feature_dim = feature_dim
        self.grid_dim = grid_dim
        self.input_size = input_size  # (H, W) the backbone expects
        self.grid_size = grid_size  # (h, w) of the grid at input_size; R = h * w
        self.weights_id = "unset"  # where the weights came from; recorded in features.json
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise FeatureError(f"backbone {self.name} needs images (N, 3, H, W); got shape {tuple(images.shape)}")
        return (images - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        conv = self.conv_map(self.normalise(images))  # (N, G, h, w)
        grid = conv.flatten(2).transpose(1, 2)  # (N, R, G)
        return self.global_vector(conv), grid  # (N, F), (N, R, G)

    def conv_map(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define conv_map")

    def global_vector(self, conv: torch.Tensor) -> torch.Tensor:
        return conv.mean(dim=(2, 3))  # (N, G)

    # A backbone that follows objects through a clip (synth-slots) turns one clip's per-frame region
    # grids into its features after the frames are encoded; every other backbone's features are per frame.
    tracks_objects: bool = False

    def clip_features(self, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One clip's region grids (T, R, G) -> its (global (T, F'), grid (T, R', G')); only for
        backbones with `tracks_objects`."""
        raise FeatureError(f"backbone {self.name} encodes frames one by one; it has no clip-level features")


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: Path, name: str) -> None:
    """`model.load_state_dict(state)`, strict; FeatureError naming the file when the weights do not fit."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise FeatureError(f"weights {source} do not fit backbone {name}: {' '.join(first)}") from exc
