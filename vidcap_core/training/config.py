"""TrainConfig: every choice a training run makes, validated once, stored in RUN_DIR/config.json."""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, get_args

from vidcap_core.data.trimming import check_max_videos
from vidcap_core.errors import ConfigError
from vidcap_core.options import ArchName, CellName, ConceptMode, DatasetName, DeviceName, FrameOrder

# Fields that may change between the first run and a resumed one: extending the step budget of a
# run that stopped on it continues it exactly as if it had been given the larger budget at first
# (nothing in the recipe depends on max_steps), and threads/device change nothing but speed.
RESUMABLE_CHANGES = frozenset({"max_steps", "torch_threads", "device"})
# Old option name -> new one. config.json files (and config files) written before the rename still
# load, so committed runs resume and evaluate: `num_workers` always meant torch threads, and
# `max_caption_len` always counted words.
RENAMED_KEYS = {"num_workers": "torch_threads", "max_caption_len": "max_caption_words"}
# Options added after runs were written, with the value that reproduces those runs: a config.json
# without `frame_deltas` trained on frame features alone (upgrade_stored_run_config).
ADDED_KEYS: dict[str, Any] = {"frame_deltas": 0.0, "regions": False}
# The recipe's frame_deltas (see the field): 10 is the scale measured in issue #11.
FRAME_DELTAS_DEFAULT = 10.0
# Options of the epoch-based recipe that have no one-to-one successor: a config that still sets one
# is refused with what replaced it, rather than silently training another recipe.
OBSOLETE_KEYS = {
    "epochs": "the budget is now counted in optimizer steps: set max_steps (and val_every_steps)",
    "val_every": "validation is now every val_every_steps optimizer steps",
    "captions_per_video": "every (clip, caption) pair is used in every pass over the data; set max_steps",
    "patience": "early stopping is now the plateau schedule: plateau_patience, lr_decay, max_lr_reductions",
    "val_metrics": "validation always computes CIDEr-D in Python (and the semantic checker on SynthClips); "
                   "METEOR and the other metrics run at test time (`vidcap evaluate`)",
    "scheduled_sampling_ramp": "the scheduled-sampling ramp is now counted in steps: scheduled_sampling_ramp_steps",
}


@dataclass
class TrainConfig:
    """One training run. Paths are strings so the config round-trips through JSON unchanged.

    The recipe (why each default, measured on SynthClips standard, see the report of issue #11):
    - a budget of optimizer steps, not epochs (loop.py says why), validated every `val_every_steps`;
    - Adam with a linear warmup, then the plateau schedule (convergence.py): the learning rate is cut
      by `lr_decay` after `plateau_patience` validations without progress, and the run stops after
      `max_lr_reductions` cuts that brought none;
    - the caption length limit from the data (`max_caption_words` None = the longest training caption).
    """

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
    max_steps: int = 4000  # the budget: optimizer steps at most (a run may stop earlier on a plateau)
    val_every_steps: int = 100  # validate, log and save last.pt every N steps; max_steps must be a multiple
    batch_size: int = 64  # global batch: split across ranks under torchrun
    lr: float = 1e-3  # peak Adam learning rate, reached after the warmup
    warmup_steps: int = 100  # linear warmup from lr / warmup_steps: the first Adam steps of an RNN are the wildest
    plateau_patience: int | None = 3  # validations without progress before the LR is cut; None (or 0) = never stop early
    lr_decay: float = 0.3  # factor of each LR cut
    max_lr_reductions: int = 2  # stop at the next plateau after this many cuts without progress
    # No LR cut and no stop before this step: validations before it never count as stale. 0 = from the first
    # validation. The benchmark's recipe sets it (profiles.py: S2VT-LSTM left its starting plateau at step 800
    # on a seed that LR cuts from step 600 had kept there).
    plateau_start_step: int = 0
    min_delta_exact: float = 0.01  # progress on SynthClips: val exact accuracy up by more than this (absolute) ...
    # ... or val CIDEr-D up by more than this share of its best (the only signal on real data). Relative,
    # because CIDEr-D's scale differs by dataset (~1 on SynthClips, ~0.5 on MSR-VTT), and 5% because on a
    # plateau the val CIDEr-D of attention-LSTM on SynthClips standard wanders by about +-4% between
    # validations (0.95-1.06 over 1300 steps): a smaller threshold let that wander reset the schedule.
    min_rel_delta_cider: float = 0.05
    weight_decay: float = 0.0
    grad_clip: float | None = 5.0  # max total gradient norm; None (or 0) turns clipping off
    scheduled_sampling: float = 0.0  # max probability of feeding the model its own previous token
    scheduled_sampling_ramp_steps: int = 1000  # steps over which that probability rises linearly from 0
    min_count: int = 2  # words seen fewer times in train captions become UNK
    # Words per caption (BOS/EOS excluded) in training and decoding. None = from the data: the longest
    # training caption, so no reference is truncated (SynthClips standard: 28 words, where the old fixed
    # 20 cut 14% of the captions and every third event). The run's config.json and checkpoints hold
    # the resolved number, so decoding and the demo use the limit training used.
    max_caption_words: int | None = None
    seed: int = 0
    frame_order: FrameOrder = "ordered"  # training-time frame order (the shuffled-frames ablation)
    torch_threads: int = 0  # CPU threads for torch in this run; 0 keeps torch's default
    probe_every: int = 1  # gradient-flow probe every N validations (plus at initialisation); 0 = init only
    probe_batch: int = 16  # clips in the fixed probe batch
    device: DeviceName = "auto"
    # Auxiliary losses (training/auxiliary.py). concepts arch ([1]): where the concept vector enters the
    # decoder, the weight of its multi-label loss, and on real data the size of its concept vocabulary
    # (SynthClips: every colour, shape, size and action its captions name). Attention arch ([4] aLSTMs):
    # the weight of the semantic-consistency ranking loss; 0 = off (no joint embedding, the old loss).
    concept_mode: ConceptMode = "init"
    concept_loss_weight: float = 1.0
    num_concepts: int = 100
    semantic_consistency: float = 0.0
    # Motion as an input (ModelConfig.frame_deltas): every architecture reads concat(x_t, X * (x_t - x_{t-1})).
    # Per-frame features alone did not teach the decoders SynthClips' actions (issue #11: attention-LSTM
    # on oracle features, val exact 0.12 without, 0.58 with X = 10). 0 = frame features only.
    frame_deltas: float = FRAME_DELTAS_DEFAULT
    # Attention over objects: read the backbone's region grid (T, R, G) instead of one vector per frame,
    # so attention picks a region of a frame (SA-LSTM's spatio-temporal attention). A frame vector holds
    # every object at once, and the decoders described the wrong one (issue #11: attention-LSTM on oracle
    # features named the colour of another object in 1 caption of 4). Needs features extracted with
    # --grid (the oracle's regions are its object slots) and arch 'attention'.
    regions: bool = False

    def __post_init__(self) -> None:
        # TOML has no null, and a CLI flag cannot say None: 0 means "off" / "all" / "from the data" here.
        for name in ("grad_clip", "plateau_patience", "max_videos", "max_caption_words"):
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
            ("concept_mode", get_args(ConceptMode)),
        ):
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"{name}={value!r} is not valid; choose one of {', '.join(allowed)}.")
        positive = ("embed_size", "hidden_size", "num_layers", "attention_size", "max_steps", "val_every_steps",
                    "batch_size", "warmup_steps", "probe_batch", "min_count")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be a positive integer.")
        if self.max_steps % self.val_every_steps:
            # A last, shorter interval would add a validation (and maybe an LR cut) that a run with a
            # larger budget never makes, so extending a finished run would not reproduce the longer one.
            raise ConfigError(f"max_steps={self.max_steps} must be a multiple of val_every_steps={self.val_every_steps}; "
                              f"use e.g. max_steps={-(-self.max_steps // self.val_every_steps) * self.val_every_steps}.")
        if self.max_caption_words is not None and self.max_caption_words < 1:
            raise ConfigError(f"max_caption_words={self.max_caption_words!r} must be >= 1, or None (0) for the "
                              "longest training caption.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout={self.dropout!r} must be in [0, 1).")
        if not 0.0 <= self.scheduled_sampling <= 1.0:
            raise ConfigError(f"scheduled_sampling={self.scheduled_sampling!r} must be a probability in [0, 1].")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError(f"lr={self.lr!r} must be > 0 and weight_decay={self.weight_decay!r} >= 0.")
        if not 0.0 < self.lr_decay < 1.0:
            raise ConfigError(f"lr_decay={self.lr_decay!r} must be in (0, 1): each plateau multiplies the LR by it.")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError(f"grad_clip={self.grad_clip!r} must be > 0, or null/None to turn clipping off.")
        if self.plateau_patience is not None and self.plateau_patience < 1:
            raise ConfigError(f"plateau_patience={self.plateau_patience!r} must be >= 1, or None to train to the budget.")
        if self.plateau_start_step < 0:
            raise ConfigError(f"plateau_start_step={self.plateau_start_step!r} must be >= 0 (0: the schedule starts at once).")
        if self.max_lr_reductions < 0 or self.min_delta_exact < 0 or self.min_rel_delta_cider < 0:
            raise ConfigError("max_lr_reductions, min_delta_exact and min_rel_delta_cider must be >= 0.")
        check_max_videos(self.max_videos)
        if self.concept_loss_weight < 0 or self.semantic_consistency < 0 or self.num_concepts < 1:
            raise ConfigError(f"concept_loss_weight={self.concept_loss_weight!r} and semantic_consistency="
                              f"{self.semantic_consistency!r} must be >= 0, num_concepts={self.num_concepts!r} >= 1.")
        if self.semantic_consistency > 0 and self.arch != "attention":
            raise ConfigError(f"semantic_consistency={self.semantic_consistency!r} needs arch 'attention' (aLSTMs), "
                              f"not {self.arch!r}; set it to 0 or use --arch attention.")
        if self.regions and self.arch != "attention":
            raise ConfigError(f"regions=True needs arch 'attention' (attention over frame regions), not {self.arch!r}; "
                              "drop --regions or use --arch attention.")
        if not 0.0 <= self.frame_deltas < math.inf:
            raise ConfigError(f"frame_deltas={self.frame_deltas!r} must be a finite number >= 0 (0 = off).")
        if self.scheduled_sampling_ramp_steps < 0 or self.probe_every < 0 or self.torch_threads < 0:
            raise ConfigError("scheduled_sampling_ramp_steps, probe_every and torch_threads must be >= 0.")

    @property
    def max_tokens(self) -> int:
        """The model's decode limit: the caption's words plus EOS (the one place that +1 is made)."""
        if self.max_caption_words is None:
            raise ConfigError("max_caption_words is not resolved yet: it comes from the training captions "
                              "(resolve_caption_limit) when the run loads its data.")
        return self.max_caption_words + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        values = upgrade_renamed_keys(values)
        obsolete = sorted(set(values) & set(OBSOLETE_KEYS))
        if obsolete:
            reasons = "; ".join(f"{name}: {OBSOLETE_KEYS[name]}" for name in obsolete)
            raise ConfigError(f"{source}: option(s) {', '.join(obsolete)} belong to the old epoch-based recipe ({reasons}).")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown option(s) {', '.join(unknown)}; valid options are {', '.join(sorted(known))}.")
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from exc


def upgrade_stored_run_config(values: dict[str, Any]) -> dict[str, Any]:
    """A RUN_DIR/config.json as this TrainConfig would write it: renamed keys upgraded, and the options
    added since (ADDED_KEYS) set to the value that reproduces what that run did."""
    upgraded = upgrade_renamed_keys(values)
    for name, old_behaviour in ADDED_KEYS.items():
        upgraded.setdefault(name, old_behaviour)
    return upgraded


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
