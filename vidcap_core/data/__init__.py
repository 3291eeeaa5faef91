"""Dataset loaders -> CaptionDataset of VideoRecord; trimming; split statistics."""

from vidcap_core.data.generic import load_generic
from vidcap_core.data.msrvtt import load_msrvtt, load_synth
from vidcap_core.data.msvd import load_msvd
from vidcap_core.data.records import SPLITS, CaptionDataset, VideoRecord
from vidcap_core.data.registry import DATASET_LOADERS, load_dataset
from vidcap_core.data.stats import dataset_stats, format_stats_table, require_split
from vidcap_core.data.trimming import parse_max_videos, trim_dataset

__all__ = [
    "DATASET_LOADERS",
    "SPLITS",
    "CaptionDataset",
    "VideoRecord",
    "dataset_stats",
    "format_stats_table",
    "load_dataset",
    "load_generic",
    "load_msrvtt",
    "load_msvd",
    "load_synth",
    "parse_max_videos",
    "require_split",
    "trim_dataset",
]
