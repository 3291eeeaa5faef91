"""`ModelConfig`: the one typed description of a caption model, stored in every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, get_args

from vidcap_core.errors import ConfigError
from vidcap_core.options import ArchName, CellName

# Special token ids, identical to vidcap_core.text.Vocabulary (PAD=0, BOS=1, EOS=2, UNK=3).
# Kept here as plain ints so models and decoding do not depend on the text package.
PAD_ID = 0
BOS_ID = 1
EOS_ID = 2
UNK_ID = 3
NUM_SPECIAL_TOKENS = 4

ARCH_NAMES: tuple[str, ...] = get_args(ArchName)
CELL_NAMES: tuple[str, ...] = get_args(CellName)


@dataclass
class ModelConfig:
    """Everything needed to rebuild a caption model; `asdict(cfg)` goes into checkpoints.

    `num_layers` is the depth of each recurrent stack. S2VT always has the paper's two
    stacks (one reads frames, one emits words), each `num_layers` deep: the default 1
    gives the paper's two stacked layers.
    """

    arch: ArchName
    cell: CellName
    feature_dim: int
    vocab_size: int
    embed_size: int = 256
    hidden_size: int = 256
    num_layers: int = 1
    dropout: float = 0.3
    max_tokens: int = 20  # decode limit in generated tokens, EOS included (TrainConfig: max_caption_words + 1)
    attention_size: int = 128

    def validate(self) -> ModelConfig:
        """Raise ConfigError naming the bad field and the valid values; return self."""
        if self.arch not in ARCH_NAMES:
            raise ConfigError(f"unknown architecture {self.arch!r}: choose one of {', '.join(ARCH_NAMES)}")
        if self.cell not in CELL_NAMES:
            raise ConfigError(f"unknown cell {self.cell!r}: choose one of {', '.join(CELL_NAMES)}")
        for name in ("feature_dim", "embed_size", "hidden_size", "num_layers", "max_tokens", "attention_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.vocab_size, bool) or not isinstance(self.vocab_size, int):
            raise ConfigError(f"vocab_size must be an integer, got {self.vocab_size!r}")
        if self.vocab_size < NUM_SPECIAL_TOKENS:
            raise ConfigError(
                f"vocab_size {self.vocab_size} is smaller than the {NUM_SPECIAL_TOKENS} special tokens "
                "(PAD, BOS, EOS, UNK): build the vocabulary from captions first"
            )
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild from `asdict` output; unknown or missing keys raise ConfigError.

        Checkpoints written before the rename (results/best/model.pt, results/checkpoints/*.pt)
        call the decode limit `max_len`; it meant the same thing (tokens, EOS included).
        """
        if "max_len" in data and "max_tokens" not in data:
            data = {("max_tokens" if key == "max_len" else key): value for key, value in data.items()}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown model config keys {unknown}: valid keys are {sorted(known)}")
        try:
            config = cls(**data)
        except TypeError as exc:  # a required field is missing
            raise ConfigError(f"incomplete model config {data!r}: {exc}") from exc
        return config.validate()
