"""synth-cnn: our SynthClips CNN, which perceives a frame region by region (`synth-cnn`); the same
CNN read as tracked object slots (`synth-slots`, features/slots.py); and its untrained twin (`random`).

synth-cnn's global vector is its frame totals then its R regions' perception (F = (R + 1) * G).
synth-slots works per clip: after the frames are encoded, `clip_features` turns the clip's region
grids into object slots (T, K, S) that follow each object from frame to frame. The weights are the
committed `vidcap_core/assets/synth_cnn.safetensors` (trained by `vidcap pretrain-cnn`,
vidcap_core/perception/pretrain.py) or a file given with `weights=`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidcap_core.errors import FeatureError
from vidcap_core.features.backbones.base import Backbone, load_state
from vidcap_core.features.slots import object_slots
from vidcap_core.files import atomic_write_bytes, file_sha256
from vidcap_core.options import SYNTH_CNN_WEIGHTS

SYNTH_MEAN = (0.5, 0.5, 0.5)
SYNTH_STD = (0.5, 0.5, 0.5)
RANDOM_SEED = 0  # the `random` backbone is always this initialisation

SYNTH_CNN_FORMAT = "vidcap-synth-cnn-2"  # 2: per-region perception (grid) and its concatenation (global)


REGION_HEADS: dict[str, int] = {"object": 1, "shape": 5, "colour": 7, "size": 2, "offset": 2, "angle": 2}
# SHAPES, COLOURS and SIZES of vidcap_core.synth.catalog, in order; offset (x, y) in [-1, 1] inside the
# region; angle (sin, cos) of the shape's symmetry order x its angle.


@dataclass
class SynthCNNConfig:
    """Architecture of synth-cnn; stored in its weights file and used to rebuild it."""

    image_size: int = 64
    channels: tuple[int, ...] = (16, 32, 64, 128)  # one conv block per entry, each halves H and W
    context_layers: int = 1  # 3x3 convolutions at grid resolution: a region sees its neighbours
    region_dim: int = 32  # D: each grid region's code, read by the heads
    heads: dict[str, int] = field(default_factory=lambda: dict(REGION_HEADS))  # per-region head -> outputs

    @property
    def grid_side(self) -> int:
        return self.image_size // 2 ** len(self.channels)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SynthCNNConfig:
        raw = json.loads(text)
        return cls(
            image_size=int(raw["image_size"]),
            channels=tuple(int(c) for c in raw["channels"]),
            context_layers=int(raw["context_layers"]),
            region_dim=int(raw["region_dim"]),
            heads={str(k): int(v) for k, v in raw["heads"].items()},
        )


def conv_block(c_in: int, c_out: int, pool: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.MaxPool2d(2)) if pool else nn.Sequential(*layers)


class SynthCNN(Backbone):
    """A small CNN that perceives a SynthClips frame region by region.

    Four conv blocks take the 64x64 frame (plus two coordinate channels) to a 4x4 grid of
    R = 16 regions; a 3x3 context layer lets each region see its neighbours (an object's centre
    lies in one region, its body spills into the next); a 1x1 convolution gives each region a
    D-dim code, and a 1x1 head reads the code as REGION_HEADS, trained (perception/pretrain.py) to
    say whether an object's centre lies in the region, its shape, colour, size, exact position
    inside the region and its angle modulo the shape's symmetry.

    Features are that perception, per region (G = 21): p = sigmoid(object), then p * softmax of
    shape, colour and size, p * offset, p * angle, and p * (x, y) of the centre in the frame (0..1),
    so that motion is linear in the features; an empty region is near zero, like an empty oracle slot. The grid is (N, R, G). The global vector (N, G + R * G) is the frame's totals
    (the sum over regions: how many objects, how many of each shape, colour and size) followed
    by every region's perception in row-major order: it says what is in the frame without having
    to learn 16 region read-outs, and which object is where (so a caption model can follow moves,
    bounces, growth, fades, spins and colour changes across frames). Per-region perception beat
    the raw 32-d region codes, and the totals beat the regions alone, in `vidcap probe-features`
    (numbers in the synth-cnn pretraining record's notes and the commit that made this choice).
    """

    def __init__(self, cfg: SynthCNNConfig, name: str = "synth-cnn") -> None:
        if dict(cfg.heads) != REGION_HEADS:
            raise FeatureError(f"synth-cnn needs region heads {REGION_HEADS}; its config has {cfg.heads}: retrain it with `vidcap pretrain-cnn`")
        side, G = cfg.grid_side, sum(REGION_HEADS.values()) + 2  # + (x, y) in the frame
        super().__init__(name, (side * side + 1) * G, G, (cfg.image_size, cfg.image_size), (side, side), SYNTH_MEAN, SYNTH_STD)
        self.cfg = cfg
        widths = (5, *cfg.channels)  # RGB + (y, x) coordinates
        blocks = [conv_block(a, b) for a, b in zip(widths[:-1], widths[1:])]
        blocks += [conv_block(widths[-1], widths[-1], pool=False) for _ in range(cfg.context_layers)]
        self.blocks = nn.Sequential(*blocks)
        self.region_code = nn.Conv2d(widths[-1], cfg.region_dim, 1)
        self.heads = nn.Conv2d(cfg.region_dim, sum(REGION_HEADS.values()), 1)

    def region_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images (N, 3, H, W) -> head outputs (N, G, H/16, W/16), before any activation."""
        N, _, H, W = x.shape
        ys = torch.linspace(-1.0, 1.0, H, device=x.device, dtype=x.dtype).view(1, 1, H, 1).expand(N, 1, H, W)
        xs = torch.linspace(-1.0, 1.0, W, device=x.device, dtype=x.dtype).view(1, 1, 1, W).expand(N, 1, H, W)
        # channels_last: oneDNN runs these narrow convolutions several times faster on CPU
        x = torch.cat([x, ys, xs], dim=1).contiguous(memory_format=torch.channels_last)  # (N, 5, H, W)
        return self.heads(self.region_code(self.blocks(x)))  # (N, G, h, w)

    def conv_map(self, x: torch.Tensor) -> torch.Tensor:
        logits = dict(zip(REGION_HEADS, self.region_logits(x).split(list(REGION_HEADS.values()), dim=1)))
        seen = torch.sigmoid(logits["object"])  # (N, 1, h, w)
        parts = [seen] + [seen * logits[h].softmax(1) for h in ("shape", "colour", "size")]
        parts += [seen * logits[h] for h in ("offset", "angle")]
        parts.append(seen * self.frame_position(logits["offset"]))  # linear in the object's x, y (motion)
        return torch.cat(parts, dim=1)  # (N, G, h, w)

    @staticmethod
    def frame_position(offset: torch.Tensor) -> torch.Tensor:
        """Offsets (N, 2, h, w) in [-1, 1] inside each region -> (x, y) in the frame, 0..1."""
        _, _, h, w = offset.shape
        col = torch.arange(w, device=offset.device, dtype=offset.dtype).view(1, 1, w)
        row = torch.arange(h, device=offset.device, dtype=offset.dtype).view(1, h, 1)
        x = (col + (offset[:, 0] + 1.0) / 2.0) / w  # (N, h, w)
        y = (row + (offset[:, 1] + 1.0) / 2.0) / h  # (N, h, w)
        return torch.stack([x, y], dim=1)  # (N, 2, h, w)

    def global_vector(self, conv: torch.Tensor) -> torch.Tensor:
        totals = conv.sum(dim=(2, 3))  # (N, G): objects, and objects of each shape, colour, size, in the frame
        regions = conv.flatten(2).transpose(1, 2).flatten(1)  # (N, R * G), region-major
        return torch.cat([totals, regions], dim=1)  # (N, G + R * G)

    def region_outputs(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Head logits per region, for pretraining and tests: {head: (N, R, outputs)}."""
        out = self.region_logits(self.normalise(images)).flatten(2).transpose(1, 2)  # (N, R, G)
        return dict(zip(REGION_HEADS, out.split(list(REGION_HEADS.values()), dim=2)))


class SynthSlots(SynthCNN):
    """synth-cnn's perception regrouped by object: per frame, NUM_SLOTS object slots tracked through
    the clip (features/slots.py), so a slot is an object, as in the oracle, not a place. Same
    weights as synth-cnn; grid (T, NUM_SLOTS, SLOT_DIM), global vector the slots concatenated."""

    tracks_objects = True

    def clip_features(self, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        slots = object_slots(grid)  # (T, K, S) float32
        return slots.reshape(len(slots), -1), slots  # (T, K * S), (T, K, S)


def read_synth_cnn_file(path: Path) -> tuple[SynthCNNConfig, dict[str, torch.Tensor]]:
    from safetensors import safe_open

    retrain = f"retrain them with `vidcap pretrain-cnn --out {path}`"
    if not path.is_file():
        raise FeatureError(f"synth-cnn weights {path} are missing: reinstall vidcap, or {retrain}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {key: f.get_tensor(key) for key in f.keys()}
        if meta.get("format") != SYNTH_CNN_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, this vidcap reads {SYNTH_CNN_FORMAT!r}")
        cfg = SynthCNNConfig.from_json(meta["config"])
    except Exception as exc:  # noqa: BLE001
        raise FeatureError(f"cannot read synth-cnn weights {path} ({type(exc).__name__}: {exc}); {retrain}") from exc
    return cfg, state


def save_synth_cnn(model: SynthCNN, path: Path) -> None:
    """Write weights + config as safetensors, atomically."""
    from safetensors.torch import save

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write_bytes(path, save(state, metadata={"config": model.cfg.to_json(), "format": SYNTH_CNN_FORMAT}))
    path.chmod(0o644)


def build_synth_cnn(name: str, weights: Path | None) -> Backbone:
    path = weights if weights is not None else SYNTH_CNN_WEIGHTS
    cfg, state = read_synth_cnn_file(path)
    model = (SynthSlots if name == "synth-slots" else SynthCNN)(cfg, name)
    load_state(model, state, path, name)
    model = model.to(memory_format=torch.channels_last)
    model.weights_id = "committed synth-cnn " if weights is None else ""
    model.weights_id += f"sha256:{file_sha256(path)}"
    return model.eval()


def build_random_cnn(name: str, weights: Path | None) -> Backbone:
    """synth-cnn's architecture, untrained, initialised from seed RANDOM_SEED (an ablation)."""
    if weights is not None:
        raise FeatureError(f"backbone 'random' is untrained by definition; drop --weights {weights}")
    cfg = read_synth_cnn_file(SYNTH_CNN_WEIGHTS)[0] if SYNTH_CNN_WEIGHTS.is_file() else SynthCNNConfig()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        model = SynthCNN(cfg, name).to(memory_format=torch.channels_last)
    model.weights_id = (
        f"random-init seed {RANDOM_SEED}, channels {'-'.join(map(str, cfg.channels))}, "
        f"context {cfg.context_layers}, regions {cfg.grid_side}x{cfg.grid_side}x{cfg.region_dim}"
    )
    return model.eval()
