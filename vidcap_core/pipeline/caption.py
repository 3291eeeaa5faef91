"""Caption raw video files with a trained checkpoint: frames -> backbone features -> decoder.

The checkpoint's preprocessing facts (backbone, frame count, frame size) decide how frames are
read and encoded, using the same functions feature extraction used, so a clip captioned here
sees the features its model was trained on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidcap_core.checkpoint import load_checkpoint
from vidcap_core.decoding import beam_search, greedy_decode
from vidcap_core.devices import pick_device
from vidcap_core.errors import CheckpointError, ConfigError, FeatureError
from vidcap_core.features.backbones import build_backbone
from vidcap_core.features.extract import encode_frames
from vidcap_core.text import Vocabulary
from vidcap_core.video import read_frames

REQUIRED_PREPROCESSING = ("backbone", "num_frames", "frame_size")
# read_frames(path, num_frames, (H, W)) -> (T, H, W, 3) uint8; an IsolatedDecoder fits too
FrameReader = Callable[[Path, int, tuple[int, int]], np.ndarray]


@dataclass
class CaptionResult:
    path: Path
    caption: str
    score: float  # greedy: summed log-prob; beam: the length-penalised hypothesis score
    attention: np.ndarray | None  # (words, frames) for attention models, else None
    hypotheses: list[tuple[str, float]]  # n_best (caption, score), best first
    frames: np.ndarray  # (T, H, W, 3) uint8: the sampled frames the model saw
    timings_ms: dict[str, float] = field(default_factory=dict)  # decode_video, features, caption

    def to_dict(self) -> dict[str, Any]:
        """The `vidcap caption --format json` object: path, caption, score, [attention]."""
        out: dict[str, Any] = {"path": str(self.path), "caption": self.caption, "score": self.score}
        if self.attention is not None:
            out["attention"] = [[round(float(a), 4) for a in row] for row in self.attention]  # (L, T)
        return out


class Captioner:
    """A loaded model plus the backbone its features came from; `caption(path)` per video.

    `reader` decodes the frames: `read_frames` in this process by default; the CLI and the demo
    pass a `vidcap_core.video.IsolatedDecoder` so a decoder crash costs one file, not the batch.
    """

    def __init__(self, model: nn.Module, vocab, preprocessing: dict[str, Any], backbone: nn.Module,
                 checkpoint: Path | None = None, reader: FrameReader = read_frames) -> None:
        self.model = model.eval()
        self.vocab = vocab
        self.preprocessing = preprocessing
        self.backbone = backbone.eval()
        self.checkpoint = checkpoint
        self.reader = reader
        size = preprocessing["frame_size"]
        self.frame_size: tuple[int, int] = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.num_frames = int(preprocessing["num_frames"])

    @classmethod
    def from_checkpoint(cls, path: Path, device: str = "auto", backbone_weights: Path | None = None,
                        reader: FrameReader = read_frames) -> Captioner:
        """Load the model and build the backbone named in its preprocessing facts (default weights,
        e.g. the committed synth-cnn asset, unless `backbone_weights` names a state_dict file)."""
        path = Path(path)
        loaded = load_checkpoint(path)
        preprocessing = dict(loaded.preprocessing or {})
        missing = [key for key in REQUIRED_PREPROCESSING if key not in preprocessing]
        if missing:
            raise CheckpointError(f"{path} lacks preprocessing facts {missing}; it cannot caption raw video. "
                                  "Use a best.pt written by `vidcap train`.")
        target = pick_device(device)
        backbone = build_backbone(preprocessing["backbone"], backbone_weights).to(target)
        trained_with = preprocessing.get("weights")
        if trained_with and backbone.weights_id != trained_with:
            raise FeatureError(
                f"{path} was trained on {preprocessing['backbone']} features from weights {trained_with!r}, "
                f"but this backbone has {backbone.weights_id!r}; pass the matching file with --backbone-weights."
            )
        return cls(loaded.model.to(target), Vocabulary.from_dict(loaded.vocab, source=str(path)), preprocessing, backbone, path,
                   reader)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def is_attention(self) -> bool:
        return getattr(getattr(self.model, "config", None), "arch", None) == "attention"

    def read(self, path: Path) -> np.ndarray:
        """(T, H, W, 3) uint8 frames sampled as in feature extraction; VideoReadError if unreadable."""
        return self.reader(Path(path), self.num_frames, self.frame_size)

    def features(self, frames: np.ndarray) -> torch.Tensor:
        """(T, H, W, 3) uint8 -> (1, T, F) float32, rounded through float16 like the feature cache."""
        glob, _ = encode_frames(self.backbone, frames, batch_size=len(frames), grid=False)  # (T, F) float16
        return torch.from_numpy(glob.astype(np.float32)).unsqueeze(0).to(self.device)  # (1, T, F)

    def caption(self, path: Path, beam: int = 1, n_best: int = 1, length_penalty: float = 0.0) -> CaptionResult:
        if beam < 1 or n_best < 1 or n_best > beam:
            raise ConfigError(f"need beam >= n_best >= 1, got beam={beam}, n_best={n_best}.")
        timings: dict[str, float] = {}
        started = time.perf_counter()
        frames = self.read(path)
        timings["decode_video"] = elapsed_ms(started)
        started = time.perf_counter()
        feats = self.features(frames)  # (1, T, F)
        timings["features"] = elapsed_ms(started)
        started = time.perf_counter()
        hypotheses, attention = self.decode(feats, beam, n_best, length_penalty)
        timings["caption"] = elapsed_ms(started)
        caption, score = hypotheses[0]
        return CaptionResult(Path(path), caption, score, attention if self.is_attention else None,
                             hypotheses, frames, timings)

    def decode(self, feats: torch.Tensor, beam: int, n_best: int,
               length_penalty: float) -> tuple[list[tuple[str, float]], np.ndarray | None]:
        """feats (1, T, F) -> ([(caption, score)] best first, attention (words, T) of the best or None)."""
        max_len = self.model.config.max_tokens
        if beam == 1:
            result = greedy_decode(self.model, feats, None, max_len=max_len)
            attention = result.attention[0] if result.attention is not None else None
            return [(self.vocab.decode(result.tokens[0]), float(result.scores[0]))], attention
        hyps = beam_search(self.model, feats, None, beam_size=beam, max_len=max_len,
                           length_penalty=length_penalty, n_best=n_best)[0]
        return [(self.vocab.decode(h.tokens), float(h.score)) for h in hyps], hyps[0].attention


def elapsed_ms(started: float) -> float:
    return round(1000.0 * (time.perf_counter() - started), 3)
