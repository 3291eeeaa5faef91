"""FinetuneConfig: what policy-gradient fine-tuning (SCST, LSTM-GAN) adds to a TrainConfig, and how a
fine-tuning run's two configs are resolved from the MLE run it starts from.

A fine-tuning run is a training run: RUN_DIR/config.json is its TrainConfig (dataset, features, the
step budget, validation, the plateau schedule, seed), so `vidcap evaluate RUN_DIR` and the benchmark
read it like any other; RUN_DIR/finetune.json is this FinetuneConfig (method, reward, the checkpoint
it starts from and that file's sha256, the mixing weight, the discriminator's sizes).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args

from vidcap_core.errors import ConfigError
from vidcap_core.runs import RunDir
from vidcap_core.training.config import TrainConfig, read_config_file, upgrade_renamed_keys

FinetuneMethod = Literal["scst", "adversarial"]
RewardName = Literal["cider", "semantic", "discriminator"]
BaselineName = Literal["mean", "greedy"]
FINETUNE_FILE = "finetune.json"  # next to RUN_DIR/config.json
# Without an explicit --lr a fine-tune runs at a tenth of its MLE run's LR: Rennie et al. 2017 train
# SCST at 5e-5 after MLE at 5e-4; a policy-gradient step from a converged model should be a nudge.
FINETUNE_LR_FACTOR = 0.1
# TrainConfig fields that describe G's architecture: taken from the checkpoint, never from options.
MODEL_FIELDS = ("arch", "cell", "embed_size", "hidden_size", "num_layers", "attention_size", "dropout", "frame_deltas")


@dataclass
class FinetuneConfig:
    """Policy-gradient fine-tuning of a pretrained captioner G (training/finetune.py, the step in
    training/policy_gradient.py).

    loss = (1 - mle_weight) * policy-gradient loss + mle_weight * teacher-forced NLL, both mean per token.
    """

    method: FinetuneMethod
    init_from: str  # the checkpoint G starts from (a run's best.pt, or any vidcap checkpoint)
    init_sha256: str = ""  # of that file, so a resumed run refuses a different starting point
    reward: RewardName = "cider"  # scst: "cider" or "semantic" (SynthClips); adversarial: "discriminator"
    mle_weight: float = 0.3  # in [0, 1): the share of the MLE loss in the mixture (0 = pure policy gradient)
    samples: int = 5  # K captions sampled per clip each step
    # each sample's baseline: "mean" of the clip's other K - 1 samples' rewards (Luo 2020, no greedy decode;
    # needs K >= 2) or the reward of the clip's "greedy" caption (Rennie et al. 2017)
    baseline: BaselineName = "mean"
    temperature: float = 0.5  # sampling temperature of the policy
    # sample with G's dropout on (the noisy policy that MLE training sees) or off (the policy decoding deploys);
    # the MLE term keeps its dropout either way
    sample_dropout: bool = False
    d_embed_size: int = 64  # discriminator (adversarial only)
    d_filters: int = 64  # feature maps per convolution width (widths 2, 3, 4)
    d_video_size: int = 64
    d_hidden_size: int = 64
    d_dropout: float = 0.2
    d_lr: float = 1e-3  # Adam LR of D
    d_pretrain_epochs: float = 3.0  # passes over the training pairs that pretrain D before G moves
    d_steps: int = 1  # D updates per G update during adversarial training

    def validate(self, train: TrainConfig | None = None) -> FinetuneConfig:
        """Raise ConfigError naming the first invalid field; `train` checks the combination."""
        if self.method not in get_args(FinetuneMethod):
            raise ConfigError(f"fine-tuning method {self.method!r} is not valid; choose one of "
                              f"{', '.join(get_args(FinetuneMethod))} (--scst or --adversarial).")
        if self.method == "scst" and self.reward not in ("cider", "semantic"):
            raise ConfigError(f"--reward {self.reward!r} is not an SCST reward; choose cider or semantic.")
        if self.method == "adversarial" and self.reward != "discriminator":
            raise ConfigError(f"--adversarial rewards G with the discriminator's score; --reward {self.reward!r} "
                              "belongs to --scst.")
        if not 0.0 <= self.mle_weight < 1.0:
            raise ConfigError(f"mle_weight={self.mle_weight!r} must be in [0, 1): 1 would leave no policy gradient "
                              "(train with plain `vidcap train` for that).")
        if not self.temperature > 0:
            raise ConfigError(f"temperature={self.temperature!r} must be > 0.")
        if self.baseline not in get_args(BaselineName):
            raise ConfigError(f"baseline={self.baseline!r} is not valid; choose one of {', '.join(get_args(BaselineName))}.")
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or self.samples < 1:
            raise ConfigError(f"samples={self.samples!r} must be a positive integer (captions sampled per clip).")
        if self.baseline == "mean" and self.samples < 2:
            raise ConfigError(f"baseline 'mean' averages the other samples of a clip: set samples >= 2 (got "
                              f"{self.samples}), or baseline 'greedy'.")
        for name in ("d_embed_size", "d_filters", "d_video_size", "d_hidden_size", "d_steps"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be a positive integer.")
        if not 0.0 <= self.d_dropout < 1.0 or self.d_lr <= 0 or self.d_pretrain_epochs < 0:
            raise ConfigError("d_dropout must be in [0, 1), d_lr > 0 and d_pretrain_epochs >= 0.")
        if train is not None:
            if train.grad_clip is None:
                raise ConfigError("policy-gradient fine-tuning clips gradients (it is what keeps it stable): "
                                  "set --grad-clip > 0.")
            if self.reward == "semantic" and train.dataset != "synth":
                raise ConfigError(f"--reward semantic scores captions with the SynthClips checker; dataset "
                                  f"{train.dataset!r} has no ground truth: use --reward cider.")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "finetune config") -> FinetuneConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}.")
        try:
            return cls(**values).validate()
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from exc


def finetune_file(run: RunDir) -> Path:
    return run.root / FINETUNE_FILE


def read_finetune_config(run: RunDir) -> FinetuneConfig | None:
    """RUN_DIR/finetune.json, or None for an MLE run."""
    path = finetune_file(run)
    if not path.is_file():
        return None
    return FinetuneConfig.from_dict(json.loads(path.read_text(encoding="utf-8")), source=str(path))


def init_checkpoint(init_from: Path) -> Path:
    """The checkpoint a fine-tune starts from: a run folder's best.pt, or the file itself."""
    path = Path(init_from)
    if path.is_dir():
        best = RunDir(path).best
        if not best.is_file():
            raise ConfigError(f"--init-from {path} is a folder without best.pt; pass a finished `vidcap train` run "
                              "folder or a checkpoint file.")
        return best.resolve()
    if not path.is_file():
        raise ConfigError(f"--init-from {path} does not exist; pass a `vidcap train` run folder or a checkpoint file.")
    return path.resolve()


def resolve_finetune(init_from: Path, method: str, config_file: Path | None, overrides: dict[str, Any],
                     finetune_overrides: dict[str, Any]) -> tuple[TrainConfig, FinetuneConfig]:
    """The fine-tune's TrainConfig and FinetuneConfig.

    TrainConfig: the MLE run's own options (its RUN_DIR/config.json, or the checkpoint's stored
    train_config), then the config file, then every override that is not None; the LR is that run's
    times FINETUNE_LR_FACTOR unless given. G's architecture comes from the checkpoint: an option that
    contradicts it is refused.
    """
    from vidcap_core.checkpoint import load_checkpoint
    from vidcap_core.files import file_sha256

    checkpoint = init_checkpoint(init_from)
    loaded = load_checkpoint(checkpoint)
    source_dir = Path(init_from) if Path(init_from).is_dir() else None
    if source_dir is not None:
        base = RunDir(source_dir).read_config()
    else:
        base = dict((loaded.extra or {}).get("train_config") or {})
    base = upgrade_renamed_keys(base)
    given = read_config_file(config_file) if config_file is not None else {}
    given.update({k: v for k, v in overrides.items() if v is not None})
    model = loaded.config
    from_checkpoint = {name: getattr(model, name) for name in MODEL_FIELDS}
    from_checkpoint["max_caption_words"] = model.max_tokens - 1
    contradicting = sorted(k for k, v in from_checkpoint.items() if k in given and given[k] != v)
    if contradicting:
        shown = ", ".join(f"{k}={given[k]!r} (checkpoint: {from_checkpoint[k]!r})" for k in contradicting)
        raise ConfigError(f"{checkpoint} was trained with another architecture than the options ask: {shown}; "
                          "drop those options (fine-tuning keeps G's architecture).")
    values = {**base, **given, **from_checkpoint}
    if "lr" not in given and "lr" in base:
        values["lr"] = float(base["lr"]) * FINETUNE_LR_FACTOR
    train = TrainConfig.from_dict(values, source=f"fine-tune of {checkpoint}")
    for name in ("root", "features"):
        if not getattr(train, name):
            raise ConfigError(f"{checkpoint} does not say which --{name} it was trained on; pass --{name}.")
    reward = finetune_overrides.get("reward") or ("discriminator" if method == "adversarial" else "cider")
    chosen = {k: v for k, v in finetune_overrides.items() if v is not None and k != "reward"}
    finetune = FinetuneConfig(method=method, init_from=str(checkpoint), init_sha256=file_sha256(checkpoint),
                              reward=reward, **chosen)
    return train, finetune.validate(train)
