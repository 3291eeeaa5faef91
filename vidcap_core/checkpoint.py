"""Checkpoints are data, not code: config + state_dict + vocab + preprocessing, loaded weights-only.

On disk a checkpoint is `torch.save` of one plain dict::

    {"format": "vidcap-checkpoint", "version": 1, "config": asdict(ModelConfig),
     "state_dict": {...tensors...}, "vocab": Vocabulary.to_dict(),
     "preprocessing": {"backbone", "frames", "frame_size", "feature_dim", "grid", ...},
     "extra": {...} or None}

It is written atomically (vidcap_core.files.atomic_write: temp file, then rename) and read with
`torch.load(weights_only=True)`, so a file that would run code when unpickled is refused.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidcap_core.errors import CheckpointError, ConfigError, FeatureError
from vidcap_core.files import atomic_write
from vidcap_core.models.base import CaptionModel
from vidcap_core.models.config import ModelConfig
from vidcap_core.models.registry import build_model

CHECKPOINT_FORMAT = "vidcap-checkpoint"
CHECKPOINT_VERSION = 1
_PLAIN_SCALARS = (str, int, float, bool, type(None))


@dataclass
class LoadedCheckpoint:
    model: CaptionModel  # in eval mode
    config: ModelConfig
    vocab: dict[str, Any]
    preprocessing: dict[str, Any]
    extra: dict[str, Any] | None
    path: Path


def _check_plain(value: Any, where: str, allow_tensors: bool) -> None:
    """Only data that `weights_only=True` can load back: dicts, lists, scalars (and tensors)."""
    if isinstance(value, _PLAIN_SCALARS) or (allow_tensors and isinstance(value, torch.Tensor)):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise CheckpointError(f"{where} has a key {key!r} of type {type(key).__name__}: use str keys")
            _check_plain(item, f"{where}[{key!r}]", allow_tensors)
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]", allow_tensors)
        return
    raise CheckpointError(
        f"{where} is a {type(value).__name__}, which a weights-only checkpoint cannot hold: "
        "convert it to str / int / float / bool / list / dict first"
    )


def save_checkpoint(
    path: str | Path,
    model: CaptionModel,
    vocab: dict[str, Any],
    preprocessing: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write `model` with its config, vocabulary and preprocessing facts to `path`, atomically.

    `vocab` is `Vocabulary.to_dict()` (any JSON-able dict). `extra` may also hold tensors,
    e.g. an optimizer state_dict. Returns the path written.
    """
    path = Path(path)
    config = model.config
    _check_plain(vocab, "vocab", allow_tensors=False)
    _check_plain(preprocessing, "preprocessing", allow_tensors=False)
    if extra is not None:
        _check_plain(extra, "extra", allow_tensors=True)
    input_key = "grid_dim" if preprocessing.get("grid") else "feature_dim"  # a region model reads (T, R, grid_dim)
    declared = preprocessing.get(input_key)
    if declared is not None and declared != config.feature_dim:
        raise CheckpointError(
            f"preprocessing says {input_key}={declared} but the model takes {config.feature_dim}-d features: "
            f"pass the preprocessing of the features this model was trained on"
        )
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": config.to_dict(),
        "state_dict": {name: t.detach().cpu() for name, t in model.state_dict().items()},
        "vocab": vocab,
        "preprocessing": preprocessing,
        "extra": extra,
    }
    atomic_write(path, lambda handle: torch.save(payload, handle))
    return path


def _read_payload(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: check the path (train one with `vidcap train`)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"refusing to load {path}: it holds objects other than plain data and tensors, and unpickling "
            f"them could run code ({str(exc).splitlines()[0]}). Only load checkpoints written by vidcap "
            "from sources you trust"
        ) from exc
    except Exception as exc:  # truncated zip, not a torch file at all, I/O error
        raise CheckpointError(
            f"cannot read checkpoint {path}: the file is truncated or not a torch checkpoint "
            f"({type(exc).__name__}: {exc}). Re-copy or re-train it"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(
            f"{path} is not a vidcap checkpoint (format={found!r}, expected {CHECKPOINT_FORMAT!r}): "
            "use a file written by `vidcap train`"
        )
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {payload.get('version')!r}; this vidcap reads version "
            f"{CHECKPOINT_VERSION}: use a matching vidcap release"
        )
    missing = [k for k in ("config", "state_dict", "vocab", "preprocessing") if not isinstance(payload.get(k), dict)]
    if missing:
        raise CheckpointError(f"{path} is missing or has malformed entries {missing}: the file is damaged")
    return payload


def _check_state_dict(path: Path, model: nn.Module, state_dict: dict[str, Any]) -> None:
    """Name every missing, unexpected or wrongly shaped tensor before loading."""
    expected = model.state_dict()
    problems = [f"missing {k}" for k in expected if k not in state_dict]
    problems += [f"unexpected {k}" for k in state_dict if k not in expected]
    for key, tensor in state_dict.items():
        if key in expected:
            if not isinstance(tensor, torch.Tensor):
                problems.append(f"{key} is a {type(tensor).__name__}, not a tensor")
            elif tensor.shape != expected[key].shape:
                problems.append(f"{key} has shape {tuple(tensor.shape)}, the config needs {tuple(expected[key].shape)}")
    if problems:
        shown = "; ".join(problems[:8]) + (f"; and {len(problems) - 8} more" if len(problems) > 8 else "")
        raise CheckpointError(f"weights in {path} do not match its config: {shown}. The file is damaged or was edited")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Rebuild the model from the stored config and weights; the model is returned in eval mode."""
    path = Path(path)
    payload = _read_payload(path, map_location)
    try:
        config = ModelConfig.from_dict(payload["config"])
    except ConfigError as exc:
        raise CheckpointError(f"{path} has an invalid model config: {exc}") from exc
    model = build_model(config)
    _check_state_dict(path, model, payload["state_dict"])
    model.load_state_dict(payload["state_dict"])
    model.to(map_location)
    model.eval()
    return LoadedCheckpoint(
        model=model,
        config=config,
        vocab=payload["vocab"],
        preprocessing=payload["preprocessing"],
        extra=payload.get("extra"),
        path=path,
    )


def _describe_features(meta: dict[str, Any]) -> str:
    dim = meta.get("feature_dim")
    backbone = meta.get("backbone", "unknown-backbone")
    grid = " region-grid" if meta.get("grid") else ""
    return f"{dim}-d {backbone}{grid}" if dim is not None else f"{backbone}{grid}"


def check_compatible(
    preprocessing: dict[str, Any],
    feature_meta: dict[str, Any],
    checkpoint: str | Path = "the checkpoint",
    features: str | Path = "the feature folder",
) -> None:
    """Raise FeatureError when features differ from what the checkpoint was trained on.

    Compares `backbone`, `feature_dim` and `grid` (keys missing on either side are not
    compared). Grid features also hold the global ones, so they serve a non-grid model.
    """
    mismatched = [
        key
        for key in ("backbone", "feature_dim")
        if key in preprocessing and key in feature_meta and preprocessing[key] != feature_meta[key]
    ]
    needs_grid = bool(preprocessing.get("grid")) and "grid" in feature_meta and not feature_meta["grid"]
    if not mismatched and not needs_grid:
        return
    fix = f"re-extract with --backbone {preprocessing.get('backbone', '<backbone>')}"
    if preprocessing.get("grid"):
        fix += " --grid"
    raise FeatureError(
        f"checkpoint {checkpoint} expects {_describe_features(preprocessing)} features; "
        f"features in {features} are {_describe_features(feature_meta)}: {fix}"
    )


# Preprocessing facts of a feature cache that a checkpoint must carry (STYLE rule 6).
PREPROCESSING_KEYS = ("backbone", "weights", "feature_dim", "grid_dim", "num_frames", "frame_size", "grid", "grid_size")


def preprocessing_from_meta(meta: dict[str, Any], regions: bool = False) -> dict[str, Any]:
    """The facts of features.json that decide whether a model fits other features or raw video.

    `grid` says whether the *model* reads region grids (`regions`, TrainConfig.regions), not
    whether the cache holds them: a frame-vector model is False even on a grid cache.
    """
    facts = {key: meta[key] for key in PREPROCESSING_KEYS if key in meta}
    facts["grid"] = bool(regions)
    return facts
