"""Read a feature cache written by `extract_features`: `features.json` + one `.npy` per video.

On disk features are float16 (half the space; CNN activations fit its range); `load` and
`load_grid` return float32 so models never see half precision by accident.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from vidcap_core.errors import FeatureError

META_FILE = "features.json"
FEATURES_VERSION = 1
DISK_DTYPE = np.float16


def feature_path(out_dir: Path, video_id: str) -> Path:
    return out_dir / f"{video_id}.npy"


def grid_path(out_dir: Path, video_id: str) -> Path:
    return out_dir / f"{video_id}.grid.npy"


def create_command(out_dir: Path) -> str:
    return f"vidcap features --dataset DATASET --root ROOT --backbone BACKBONE --out {out_dir}"


def read_meta(out_dir: Path) -> dict[str, Any]:
    """features.json of `out_dir`, or FeatureError saying how to create it."""
    path = Path(out_dir) / META_FILE
    if not path.is_file():
        raise FeatureError(f"no features in {out_dir} ({META_FILE} is missing): create them with `{create_command(out_dir)}`")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeatureError(f"{path} is unreadable ({exc}): delete {out_dir} and rerun `{create_command(out_dir)}`") from exc
    if not isinstance(meta, dict) or "feature_dim" not in meta or "backbone" not in meta:
        raise FeatureError(f"{path} is not vidcap feature metadata: delete it and rerun `{create_command(out_dir)}`")
    return meta


class FeatureStore:
    """Per-video frame features of one extraction run."""

    def __init__(self, directory: Path | str) -> None:
        self.dir = Path(directory)
        self.meta: dict[str, Any] = read_meta(self.dir)

    @property
    def feature_dim(self) -> int:
        return int(self.meta["feature_dim"])

    @property
    def num_frames(self) -> int:
        return int(self.meta["num_frames"])

    @property
    def has_grid(self) -> bool:
        return bool(self.meta.get("grid", False))

    def has(self, video_id: str) -> bool:
        done = feature_path(self.dir, video_id).is_file()
        return done and (not self.has_grid or grid_path(self.dir, video_id).is_file())

    def video_ids(self) -> list[str]:
        """Ids with finished features, sorted."""
        ids = (p.name[: -len(".npy")] for p in self.dir.glob("*.npy"))
        return sorted(i for i in ids if not i.endswith((".grid", ".tmp", ".grid.tmp")) and self.has(i))

    def load(self, video_id: str) -> np.ndarray:
        """(T, F) float32."""
        return self._read(feature_path(self.dir, video_id), video_id, ndim=2)

    def load_grid(self, video_id: str) -> np.ndarray:
        """(T, R, G) float32; FeatureError if this cache was extracted without --grid."""
        if not self.has_grid:
            raise FeatureError(
                f"features in {self.dir} have no region grid: rerun extraction with --grid into a new --out folder"
            )
        return self._read(grid_path(self.dir, video_id), video_id, ndim=3)

    def _read(self, path: Path, video_id: str, ndim: int) -> np.ndarray:
        if not path.is_file():
            raise FeatureError(
                f"no features for video {video_id!r} in {self.dir}: run `{create_command(self.dir)}` "
                f"(it resumes and extracts only what is missing)"
            )
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise FeatureError(f"feature file {path} is corrupt ({exc}): delete it and rerun `{create_command(self.dir)}`") from exc
        if array.ndim != ndim:
            raise FeatureError(f"feature file {path} has shape {array.shape}, expected {ndim} dimensions: delete it and rerun")
        return array.astype(np.float32)
