"""Decode stacked clip features into caption strings, in batches: validation during training and
`vidcap evaluate` both call this, from below them both (training and pipeline import decoding)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vidcap_core.decoding.search import decode
from vidcap_core.features.clips import ClipFeatures, gather_frames
from vidcap_core.text import Vocabulary


@dataclass
class Prediction:
    caption: str
    score: float  # the best hypothesis' score: summed log-prob, length-penalised when length_penalty > 0


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def predict_captions(
    model: nn.Module,
    clips: ClipFeatures,
    vocab: Vocabulary,
    max_len: int,
    batch_size: int = 64,
    beam: int = 1,
    length_penalty: float = 0.0,
    frame_index: torch.Tensor | None = None,  # (N, T) frame order per clip; None = as stored
    no_repeat_ngram: int = 0,
) -> dict[str, str]:
    """video_id -> caption text (see `predict`)."""
    found = predict(model, clips, vocab, max_len, batch_size, beam, length_penalty, frame_index, no_repeat_ngram)
    return {video_id: prediction.caption for video_id, prediction in found.items()}


def predict(
    model: nn.Module,
    clips: ClipFeatures,
    vocab: Vocabulary,
    max_len: int,
    batch_size: int = 64,
    beam: int = 1,
    length_penalty: float = 0.0,
    frame_index: torch.Tensor | None = None,  # (N, T) frame order per clip; None = as stored
    no_repeat_ngram: int = 0,
) -> dict[str, Prediction]:
    """video_id -> the best caption of `decoding.decode` (greedy for beam 1), `batch_size` clips at a time."""
    device = model_device(model)
    out: dict[str, Prediction] = {}
    for start in range(0, len(clips), batch_size):
        rows = slice(start, start + batch_size)
        feats = clips.feats[rows]  # (B, T, F)
        if frame_index is not None:
            feats = gather_frames(feats, frame_index[rows])  # (B, T, F)
        mask = clips.mask[rows].to(device)  # (B, T)
        best = decode(model, feats.to(device), mask, beam=beam, n_best=1, length_penalty=length_penalty,
                      max_len=max_len, no_repeat_ngram=no_repeat_ngram)
        for video_id, hypotheses in zip(clips.video_ids[rows], best):
            out[video_id] = Prediction(vocab.decode(hypotheses[0].tokens), float(hypotheses[0].score))
    return out
