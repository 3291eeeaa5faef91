"""Caption raw video files with a trained checkpoint: frames -> backbone features -> decoder.

The checkpoint's preprocessing facts (backbone, frame count, frame size) decide how frames are
read and encoded, using the same functions feature extraction used, so a clip captioned here
sees the features its model was trained on.

`Captioner.caption` is the one corridor from a video file to a caption: `vidcap caption`, the
demo and the benchmark's end-to-end timing all call it, and its CaptionResult carries
everything they show (hypotheses, attention, the sampled frames and their indices, timings).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from vidcap_core.checkpoint import load_checkpoint
from vidcap_core.decoding import check_decode_options, decode
from vidcap_core.devices import pick_device
from vidcap_core.errors import CheckpointError, ConfigError, FeatureError
from vidcap_core.features.backbones import build_backbone
from vidcap_core.features.extract import encode_clips
from vidcap_core.ood import OodCalibration, load_ood
from vidcap_core.pipeline.scope import scope_sentence
from vidcap_core.text import Vocabulary
from vidcap_core.video import VideoInfo, probe_video, read_frames, sample_frame_indices

REQUIRED_PREPROCESSING = ("backbone", "num_frames", "frame_size")
# read_frames(path, num_frames, (H, W)) -> (T, H, W, 3) uint8; an IsolatedDecoder fits too
FrameReader = Callable[[Path, int, tuple[int, int]], np.ndarray]
# probe_video(path) -> VideoInfo (frame count, size, fps); an IsolatedDecoder's .probe fits too
FrameProber = Callable[[Path], VideoInfo]


class VideoDecoder(Protocol):
    """Where frames are decoded: `vidcap_core.video.IsolatedDecoder` (child processes) fits."""

    def read(self, path: Path, num_frames: int, size: tuple[int, int]) -> np.ndarray: ...

    def probe(self, path: Path) -> VideoInfo: ...


@dataclass
class CaptionResult:
    """One video captioned: what `vidcap caption` prints and the demo shows."""

    path: Path
    caption: str
    score: float  # the best hypothesis' score: summed log-prob, length-penalised when length_penalty > 0
    hypotheses: list[tuple[str, float]]  # up to n_best (caption, score), best first; finished sentences only,
    # unless no hypothesis ended before the length limit (then the best cut one, and `ended` is False)
    attention: np.ndarray | None  # (words, T) of the best caption for attention models, else None
    frames: np.ndarray  # (T, H, W, 3) uint8: the sampled frames the model saw
    frame_indices: list[int]  # (T,) index of each sampled frame in the source video
    timings_ms: dict[str, float]  # decode_video (probe + read), features, caption
    ood: dict[str, Any] | None = None  # out-of-distribution score (issue #12); None until that check runs
    # (words, T, R) for models that attend over frame regions (TrainConfig.regions); `attention` is its sum over R
    region_attention: np.ndarray | None = None
    ended: bool = True  # False: the caption was cut at the model's length limit (no hypothesis finished)

    def to_dict(self) -> dict[str, Any]:
        """The `vidcap caption --format json` object: path, caption, score, ended, hypotheses, [attention],
        frame_indices, timings_ms, ood (null when not computed). The frames themselves are left out."""
        out: dict[str, Any] = {"path": str(self.path), "caption": self.caption, "score": self.score,
                               "ended": self.ended,
                               "hypotheses": [{"caption": text, "score": score} for text, score in self.hypotheses]}
        if self.attention is not None:
            out["attention"] = [[round(float(a), 4) for a in row] for row in self.attention]  # (L, T)
        if self.region_attention is not None:
            out["region_attention"] = np.round(self.region_attention.astype(float), 4).tolist()  # (L, T, R)
        out.update(frame_indices=self.frame_indices, timings_ms=self.timings_ms, ood=self.ood)
        return out


class Captioner:
    """A loaded model plus the backbone its features came from; `caption(path)` per video.

    `reader` decodes the frames and `prober` counts them (for the sampled frame indices):
    `read_frames` / `probe_video` in this process by default; the CLI passes an
    `IsolatedDecoder`'s, and the demo captions through `decoding_with(decoder)`, so a decoder
    crash costs one file, not the batch or the server.
    """

    def __init__(self, model: nn.Module, vocab: Vocabulary, preprocessing: dict[str, Any], backbone: nn.Module,
                 checkpoint: Path | None = None, reader: FrameReader = read_frames,
                 prober: FrameProber = probe_video, ood: OodCalibration | None = None) -> None:
        self.model = model.eval()
        self.vocab = vocab
        self.preprocessing = preprocessing
        self.backbone = backbone.eval()
        self.checkpoint = checkpoint
        self.reader = reader
        self.prober = prober
        self.ood = ood  # scores each clip against the training features (vidcap_core/ood); None = not calibrated
        size = preprocessing["frame_size"]
        self.frame_size: tuple[int, int] = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.num_frames = int(preprocessing["num_frames"])
        self.regions = bool(preprocessing.get("grid"))  # the model reads region grids (T, R, G)

    @classmethod
    def from_checkpoint(cls, path: Path, device: str = "auto", backbone_weights: Path | None = None,
                        reader: FrameReader = read_frames, prober: FrameProber = probe_video) -> Captioner:
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
                   reader, prober, load_ood(path, preprocessing))

    def decoding_with(self, decoder: VideoDecoder) -> Captioner:
        """This captioner (same model and backbone, not copied) reading and probing through `decoder`."""
        other = copy.copy(self)
        other.reader, other.prober = decoder.read, decoder.probe
        return other

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def scope(self) -> str:
        """What this model can describe, in plain words (from its vocabulary: pipeline.scope)."""
        return scope_sentence(self.vocab.tokens)

    @property
    def is_attention(self) -> bool:
        return getattr(getattr(self.model, "config", None), "arch", None) == "attention"

    def read(self, path: Path, num_frames: int | None = None) -> np.ndarray:
        """(T, H, W, 3) uint8 frames sampled as in feature extraction (T = `num_frames`, default the
        model's own); VideoReadError if unreadable."""
        return self.reader(Path(path), self.num_frames if num_frames is None else num_frames, self.frame_size)

    def features(self, frames: np.ndarray) -> torch.Tensor:
        """(T, H, W, 3) uint8 -> (1, T, F) float32, or (1, T, R, G) for a region model, rounded through
        float16 like the feature cache."""
        ((glob, grid),) = encode_clips(self.backbone, [frames], batch_size=len(frames), grid=self.regions)  # float16
        feats = grid if self.regions else glob  # (T, R, G) or (T, F)
        return torch.from_numpy(feats.astype(np.float32)).unsqueeze(0).to(self.device)  # (1, T, [R,] F)

    def caption(self, path: Path, beam: int = 1, n_best: int = 1, length_penalty: float = 0.0,
                no_repeat_ngram: int = 0, num_frames: int | None = None,
                video_info: VideoInfo | None = None) -> CaptionResult:
        """Caption one video file: probe, read `num_frames` frames (None = as many as the model was
        trained on), encode them, decode (greedy for beam 1; `no_repeat_ngram` N > 0 forbids any
        n-gram of N words twice). Sentences cut at the length limit are left out when a finished one
        exists. `video_info` skips the probe when the caller already has it.
        Raises ConfigError for bad options, VideoReadError for an unreadable file."""
        check_decode_options(beam, n_best, length_penalty, no_repeat_ngram)
        count = self.num_frames if num_frames is None else check_num_frames(num_frames)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        info = self.prober(Path(path)) if video_info is None else video_info
        frames = self.read(path, count)  # (T, H, W, 3) uint8
        timings["decode_video"] = elapsed_ms(started)
        started = time.perf_counter()
        feats = self.features(frames)  # (1, T, [R,] F)
        timings["features"] = elapsed_ms(started)
        started = time.perf_counter()
        hypotheses, attention, ended = self.decode(feats, beam, n_best, length_penalty, no_repeat_ngram)
        timings["caption"] = elapsed_ms(started)
        caption, score = hypotheses[0]
        region_attention = None
        if self.is_attention and attention is not None and self.regions:
            region_attention = attention.reshape(len(attention), feats.shape[1], feats.shape[2])  # (L, T * R) -> (L, T, R)
            attention = region_attention.sum(axis=2)  # (L, T): how much each frame got, over its regions
        return CaptionResult(
            path=Path(path),
            caption=caption,
            score=score,
            hypotheses=hypotheses,
            attention=attention if self.is_attention else None,
            region_attention=region_attention,
            frames=frames,
            frame_indices=[int(i) for i in sample_frame_indices(info.frames, count)],
            timings_ms=timings,
            ended=ended,
            # (T, [R,] F) features, (T, H, W, 3) frames and the probe: both halves of the OOD score
            ood=None if self.ood is None else self.ood.score(feats[0].cpu().numpy(), frames, info).to_dict(),
        )

    def decode(self, feats: torch.Tensor, beam: int = 1, n_best: int = 1, length_penalty: float = 0.0,
               no_repeat_ngram: int = 0) -> tuple[list[tuple[str, float]], np.ndarray | None, bool]:
        """feats (1, T, [R,] F) -> ([(caption, score)] best first, attention (words, T [* R]) of the best or
        None, whether the best ended). Of all `beam` hypotheses, the `n_best` best that ended before the
        length limit; only when none did, the best cut one."""
        every = decode(self.model, feats, None, beam=beam, n_best=beam, length_penalty=length_penalty,
                       max_len=self.model.config.max_tokens, no_repeat_ngram=no_repeat_ngram)[0]  # best first
        shown = [h for h in every if h.ended][:n_best] or every[:1]
        return [(self.vocab.decode(h.tokens), float(h.score)) for h in shown], shown[0].attention, shown[0].ended


def check_num_frames(num_frames: int) -> int:
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise ConfigError(f"num_frames must be a positive integer (None = the model's own frame count), "
                          f"got {num_frames!r}")
    return int(num_frames)


def elapsed_ms(started: float) -> float:
    return round(1000.0 * (time.perf_counter() - started), 3)
