"""`ModelConfig`: the one typed description of a caption model, stored in every checkpoint."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, get_args

from vidcap_core.errors import ConfigError
from vidcap_core.options import ArchName, CellName, ConceptMode

# Special token ids, identical to vidcap_core.text.Vocabulary (PAD=0, BOS=1, EOS=2, UNK=3).
# Kept here as plain ints so models and decoding do not depend on the text package.
PAD_ID = 0
BOS_ID = 1
EOS_ID = 2
UNK_ID = 3
NUM_SPECIAL_TOKENS = 4

ARCH_NAMES: tuple[str, ...] = get_args(ArchName)
CELL_NAMES: tuple[str, ...] = get_args(CellName)
CONCEPT_MODES: tuple[str, ...] = get_args(ConceptMode)


@dataclass
class ModelConfig:
    """Everything needed to rebuild a caption model; `asdict(cfg)` goes into checkpoints.

    `num_layers` is the depth of each recurrent stack. S2VT always has the paper's two
    stacks (one reads frames, one emits words), each `num_layers` deep: the default 1
    gives the paper's two stacked layers.

    `concepts` is the concept vocabulary of the concepts arch (the names its concept head scores,
    derived from the training captions): data the checkpoint carries, empty for the other archs.
    `consistency_size` > 0 gives the attention arch a joint clip/sentence embedding of that size for
    the semantic-consistency loss (aLSTMs); 0 = no such head (decoding never uses it).

    `frame_deltas` > 0 gives every architecture motion as an input: each frame's features x_t become
    concat(x_t, frame_deltas * (x_t - x_{t-1})), with x_{-1} = x_0 and 0 for padded frames
    (`base.append_frame_deltas`), so the layers read `input_dim` = 2 F. 0 = off (checkpoints written
    before the field load with 0). `feature_dim` stays the backbone's F, what features must match.
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
    concept_mode: ConceptMode = "init"  # concepts arch: the concept vector initialises the decoder, or is an input
    concepts: list[str] = field(default_factory=list)
    consistency_size: int = 0
    frame_deltas: float = 0.0  # scale of the appended frame differences; 0 = frame features only

    @property
    def input_dim(self) -> int:
        """The feature size the layers read per frame (or region): F, or 2 F with frame deltas."""
        return 2 * self.feature_dim if self.frame_deltas > 0 else self.feature_dim

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
        deltas = self.frame_deltas
        if isinstance(deltas, bool) or not isinstance(deltas, (int, float)) or not 0.0 <= float(deltas) < math.inf:
            raise ConfigError(f"frame_deltas must be a finite number >= 0 (0 = off; the recipe uses 10), got {deltas!r}")
        self._validate_auxiliary_heads()
        return self

    def _validate_auxiliary_heads(self) -> None:
        """The concepts arch's mode and vocabulary; the attention arch's consistency head."""
        if self.concept_mode not in CONCEPT_MODES:
            raise ConfigError(f"unknown concept_mode {self.concept_mode!r}: choose one of {', '.join(CONCEPT_MODES)}")
        names = list(self.concepts)
        if not all(isinstance(name, str) and name for name in names) or len(set(names)) != len(names):
            raise ConfigError(f"concepts must be distinct non-empty strings, got {names!r}")
        if self.arch == "concepts" and not names:
            raise ConfigError("arch 'concepts' needs its concept vocabulary (ModelConfig.concepts): training derives "
                              "it from the training captions; pass the names the concept head should score")
        if self.arch != "concepts" and names:
            raise ConfigError(f"concepts are only used by arch 'concepts', not {self.arch!r}: leave the list empty")
        size = self.consistency_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ConfigError(f"consistency_size must be an integer >= 0 (0 = no joint embedding), got {size!r}")
        if size and self.arch != "attention":
            raise ConfigError(f"the semantic-consistency head (consistency_size={size}) belongs to arch 'attention', "
                              f"not {self.arch!r}: set it to 0")

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
