"""Decode stacked clip features into caption strings (validation, evaluation), in batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vidcap_core.decoding import beam_search, greedy_decode
from vidcap_core.features.clips import ClipFeatures, gather_frames

# Preprocessing facts of a feature cache that a checkpoint must carry (STYLE rule 6).
PREPROCESSING_KEYS = ("backbone", "weights", "feature_dim", "grid_dim", "num_frames", "frame_size", "grid", "grid_size")


@dataclass
class Prediction:
    caption: str
    score: float  # summed log-probability (greedy) or the length-penalised beam score


def preprocessing_from_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """The facts of features.json that decide whether a model fits other features or raw video.

    `grid` says whether the *model* reads region grids; models trained here read the per-frame
    vectors only, so it is False even when the cache also holds grids.
    """
    facts = {key: meta[key] for key in PREPROCESSING_KEYS if key in meta}
    facts["grid"] = False
    return facts


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def predict_captions(
    model: nn.Module,
    clips: ClipFeatures,
    vocab,
    max_len: int,
    batch_size: int = 64,
    beam: int = 1,
    length_penalty: float = 0.0,
    frame_index: torch.Tensor | None = None,  # (N, T) frame order per clip; None = as stored
) -> dict[str, str]:
    """video_id -> caption text, greedy for beam == 1, beam search otherwise."""
    found = predict(model, clips, vocab, max_len, batch_size, beam, length_penalty, frame_index)
    return {video_id: prediction.caption for video_id, prediction in found.items()}


def predict(
    model: nn.Module,
    clips: ClipFeatures,
    vocab,
    max_len: int,
    batch_size: int = 64,
    beam: int = 1,
    length_penalty: float = 0.0,
    frame_index: torch.Tensor | None = None,
) -> dict[str, Prediction]:
    device = model_device(model)
    out: dict[str, Prediction] = {}
    for start in range(0, len(clips), batch_size):
        rows = slice(start, start + batch_size)
        feats = clips.feats[rows]  # (B, T, F)
        if frame_index is not None:
            feats = gather_frames(feats, frame_index[rows])
        mask = clips.mask[rows].to(device)  # (B, T)
        ids = clips.video_ids[rows]
        if beam == 1:
            result = greedy_decode(model, feats.to(device), mask, max_len=max_len)
            pairs = zip(result.tokens, result.scores.tolist())
        else:
            best = beam_search(model, feats.to(device), mask, beam_size=beam, max_len=max_len,
                               length_penalty=length_penalty, n_best=1)
            pairs = ((hyps[0].tokens, hyps[0].score) for hyps in best)
        for video_id, (tokens, score) in zip(ids, pairs):
            out[video_id] = Prediction(vocab.decode(tokens), float(score))
    return out
