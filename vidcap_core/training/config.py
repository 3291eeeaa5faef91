"""TrainConfig: every choice a training run makes, validated once, stored in RUN_DIR/config.json."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, get_args

from vidcap_core.data.trimming import check_max_videos
from vidcap_core.errors import ConfigError
from vidcap_core.evaluation.metrics import METRICS, check_metrics
from vidcap_core.options import ArchName, CellName, DatasetName, DeviceName, FrameOrder

# Fields that may change between the first run and a resumed one (extending training).
RESUMABLE_CHANGES = frozenset({"epochs", "torch_threads", "device"})
# Old option name -> new one. config.json files (and config files) written before the rename still
# load, so committed runs resume and evaluate: `num_workers` always meant torch threads, and
# `max_caption_len` always counted words.
RENAMED_KEYS = {"num_workers": "torch_threads", "max_caption_len": "max_caption_words"}


@dataclass
class TrainConfig:
    """One training run. Paths are strings so the config round-trips through JSON unchanged."""

    dataset: DatasetName = "synth"
    root: str = ""
    features: str = ""  # folder written by `extract_features` (FeatureStore)
    annotations: str | None = None
    max_videos: int | float | None = None  # int = count, float in (0, 1] = fraction (load_dataset)
    arch: ArchName = "attention"
    cell: CellName = "lstm"
    embed_size: int = 256
    hidden_size: int = 512
    num_layers: int = 1
    attention_size: int = 256
    dropout: float = 0.3
    epochs: int = 20
    batch_size: int = 64  # global batch: split across ranks under torchrun
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = 5.0  # max total gradient norm; None (or 0) turns clipping off
    scheduled_sampling: float = 0.0  # max probability of feeding the model its own previous token
    scheduled_sampling_ramp: int = 10  # epochs over which that probability rises linearly from 0
    min_count: int = 2  # words seen fewer times in train captions become UNK
    max_caption_words: int = 20  # words per caption (BOS/EOS excluded) in training and decoding
    captions_per_video: int | None = 1  # captions sampled per video per epoch; None (or 0) = every pair
    patience: int | None = 5  # validations without a val-CIDEr gain before stopping; None (or 0) = never
    seed: int = 0
    frame_order: FrameOrder = "ordered"  # training-time frame order (the shuffled-frames ablation)
    val_every: int = 1  # validate every N epochs (and always after the last one)
    val_metrics: list[str] = field(default_factory=lambda: list(METRICS))  # scored on val; CIDEr always included
    torch_threads: int = 0  # CPU threads for torch in this run; 0 keeps torch's default
    probe_every: int = 1  # gradient-flow probe every N epochs (plus at initialisation); 0 = init only
    probe_batch: int = 16  # clips in the fixed probe batch
    device: DeviceName = "auto"

    def __post_init__(self) -> None:
        # TOML has no null, and a CLI flag cannot say None: 0 means "off" / "all" for these.
        for name in ("grad_clip", "patience", "captions_per_video", "max_videos"):
            if getattr(self, name) in (0, False):
                setattr(self, name, None)
        if self.annotations == "":
            self.annotations = None
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid field and its allowed values."""
        for name, allowed in (
            ("dataset", get_args(DatasetName)),
            ("arch", get_args(ArchName)),
            ("cell", get_args(CellName)),
            ("frame_order", get_args(FrameOrder)),
            ("device", get_args(DeviceName)),
        ):
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"{name}={value!r} is not valid; choose one of {', '.join(allowed)}.")
        positive = ("embed_size", "hidden_size", "num_layers", "attention_size", "epochs", "batch_size",
                    "max_caption_words", "val_every", "probe_batch", "min_count")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be a positive integer.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout={self.dropout!r} must be in [0, 1).")
        if not 0.0 <= self.scheduled_sampling <= 1.0:
            raise ConfigError(f"scheduled_sampling={self.scheduled_sampling!r} must be a probability in [0, 1].")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError(f"lr={self.lr!r} must be > 0 and weight_decay={self.weight_decay!r} >= 0.")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError(f"grad_clip={self.grad_clip!r} must be > 0, or null/None to turn clipping off.")
        if self.captions_per_video is not None and self.captions_per_video < 1:
            raise ConfigError(f"captions_per_video={self.captions_per_video!r} must be >= 1, or None for every caption.")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience={self.patience!r} must be >= 1, or None to turn early stopping off.")
        check_max_videos(self.max_videos)
        wanted = [self.val_metrics] if isinstance(self.val_metrics, str) else list(self.val_metrics)
        self.val_metrics = list(check_metrics(wanted + ["CIDEr"]))  # CIDEr selects the best epoch
        if self.scheduled_sampling_ramp < 0 or self.probe_every < 0 or self.torch_threads < 0:
            raise ConfigError("scheduled_sampling_ramp, probe_every and torch_threads must be >= 0.")

    @property
    def max_tokens(self) -> int:
        """The model's decode limit: the caption's words plus EOS (the one place that +1 is made)."""
        return self.max_caption_words + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        values = upgrade_renamed_keys(values)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown option(s) {', '.join(unknown)}; valid options are {', '.join(sorted(known))}.")
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from exc


def upgrade_renamed_keys(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with the old names of RENAMED_KEYS replaced by the new ones (a new name given too wins)."""
    upgraded = dict(values)
    for old, new in RENAMED_KEYS.items():
        if old in upgraded:
            value = upgraded.pop(old)
            upgraded.setdefault(new, value)
    return upgraded


def read_config_file(path: Path) -> dict[str, Any]:
    """Options from a .json or .toml file (a flat table of TrainConfig fields)."""
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist; pass an existing .json or .toml file.")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            values = tomllib.loads(text)
        elif path.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            raise ConfigError(f"Config file {path} must end in .json or .toml.")
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"Config file {path} cannot be parsed: {exc}. Fix the syntax and rerun.") from exc
    if not isinstance(values, dict):
        raise ConfigError(f"Config file {path} must hold one table of options, not {type(values).__name__}.")
    return values


def resolve_config(config_file: Path | None, overrides: dict[str, Any]) -> TrainConfig:
    """File values, then every override that is not None (CLI flags win over the file)."""
    values = read_config_file(config_file) if config_file is not None else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    source = str(config_file) if config_file is not None else "options"
    config = TrainConfig.from_dict(values, source=source)
    for name in ("root", "features"):
        if not getattr(config, name):
            raise ConfigError(f"--{name} is required (on the command line or in the config file).")
    return config
