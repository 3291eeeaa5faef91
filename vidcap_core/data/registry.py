"""`load_dataset(name, root, ...)`: one lookup from a dataset name to its loader, then trimming."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vidcap_core.data.generic import load_generic
from vidcap_core.data.msrvtt import load_msrvtt, load_synth
from vidcap_core.data.msvd import load_msvd
from vidcap_core.data.records import CaptionDataset
from vidcap_core.data.trimming import trim_dataset
from vidcap_core.errors import ConfigError

DatasetLoader = Callable[[Path, Path | None], CaptionDataset]

DATASET_LOADERS: dict[str, DatasetLoader] = {
    "synth": load_synth,
    "msrvtt": load_msrvtt,
    "msvd": load_msvd,
    "csv": load_generic,
}


def load_dataset(
    name: str,
    root: Path,
    annotations: Path | None = None,
    max_videos: int | float | None = None,
    seed: int = 0,
) -> CaptionDataset:
    """Records of dataset `name` under `root`, trimmed to `max_videos` per split (see trim_dataset).

    Raises ConfigError for an unknown name or a bad max_videos/seed, DatasetError for a missing
    root or annotation file or malformed annotations. Missing video files are counted, not fatal.
    """
    loader = DATASET_LOADERS.get(name)
    if loader is None:
        raise ConfigError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASET_LOADERS)}.")
    dataset = loader(Path(root), None if annotations is None else Path(annotations))
    return trim_dataset(dataset, max_videos, seed)
