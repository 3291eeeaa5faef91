"""The LSTM-GAN's sentence discriminator D [2]: is this caption a reference of this clip, or generated?

A CNN over word embeddings (Kim-style sentence classifier): 1D convolutions of widths 2..4, max
pooling over time, projected to `video_size`; the clip's mean frame feature, layer-normalised and
projected to the same size; then an MLP over [caption, clip, caption * clip] gives a real/fake logit.
The clip is what makes D multimodal (a fluent caption of another clip must still look fake), and the
product is what lets it match the two: with the caption and the clip only concatenated, and mean
synth-cnn features as small as they are (|x| ~ 0.06), D pretrained for 3 passes on SynthClips stayed
at P(real) = 1/3 for references, samples and other clips' references alike (its loss's constant
optimum; issue #13); with the normalised product it ranks a reference's own clip above another
clip's for 96% of validation references after one pass (tests/test_policy_gradient.py has a toy case).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from vidcap_core.errors import ConfigError
from vidcap_core.models.config import NUM_SPECIAL_TOKENS, PAD_ID


@dataclass
class DiscriminatorConfig:
    """Everything needed to rebuild D; `to_dict()` goes into the fine-tuning run's last.pt."""

    vocab_size: int
    feature_dim: int
    embed_size: int = 64
    filters: int = 64  # feature maps per convolution width
    widths: tuple[int, ...] = (2, 3, 4)  # n-gram widths of the convolutions
    video_size: int = 64  # size of the caption's and the clip's projections (their product is D's matching term)
    hidden_size: int = 64
    dropout: float = 0.2

    def validate(self) -> DiscriminatorConfig:
        for name in ("feature_dim", "embed_size", "filters", "video_size", "hidden_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"discriminator {name} must be a positive integer, got {value!r}")
        if not isinstance(self.vocab_size, int) or self.vocab_size < NUM_SPECIAL_TOKENS:
            raise ConfigError(f"discriminator vocab_size must be >= {NUM_SPECIAL_TOKENS}, got {self.vocab_size!r}")
        if not self.widths or any(not isinstance(w, int) or w < 1 for w in self.widths):
            raise ConfigError(f"discriminator widths must be positive integers, got {self.widths!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"discriminator dropout must be in [0, 1), got {self.dropout!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["widths"] = list(self.widths)
        return values

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiscriminatorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown discriminator config keys {unknown}: valid keys are {sorted(known)}")
        values = dict(data)
        if "widths" in values:
            values["widths"] = tuple(int(w) for w in values["widths"])
        return cls(**values).validate()


def mean_frame_feature(feats: Tensor, mask: Tensor) -> Tensor:
    """The clip vector D sees: the mean of its real frames. feats (B, T, F) or (B, T, R, F) -> (B, F)."""
    if feats.dim() == 4:
        feats = feats.mean(2)  # (B, T, R, F) -> (B, T, F)
    weights = mask.to(feats.dtype).unsqueeze(-1)  # (B, T, 1)
    return (feats * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, F)


class CaptionDiscriminator(nn.Module):
    """forward(tokens (B, L) long, video (B, F)) -> real/fake logits (B,); sigmoid = P(real).

    `tokens` are a caption's words and its EOS, PAD after (no BOS): reference rows without their
    BOS and sampled rows look the same. A convolution window counts only where it starts on a real
    token (or at position 0), and every such window exists, so the logits do not depend on how much
    trailing padding the batch has.
    """

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = config.validate()
        E, C = config.embed_size, config.filters
        self.embed = nn.Embedding(config.vocab_size, E, padding_idx=PAD_ID)
        self.convs = nn.ModuleList(nn.Conv1d(E, C, kernel_size=w) for w in config.widths)
        self.video_norm = nn.LayerNorm(config.feature_dim)
        self.video_proj = nn.Linear(config.feature_dim, config.video_size)
        self.sentence_proj = nn.Linear(C * len(config.widths), config.video_size)
        self.dropout = nn.Dropout(config.dropout)
        self.hidden = nn.Linear(3 * config.video_size, config.hidden_size)
        self.out = nn.Linear(config.hidden_size, 1)

    def forward(self, tokens: Tensor, video: Tensor) -> Tensor:
        B, L = tokens.shape
        # Every window that starts on a real token exists, whatever the batch's padding: (B, L + widest - 1).
        tokens = torch.cat([tokens, tokens.new_full((B, max(self.config.widths) - 1), PAD_ID)], dim=1)
        real = tokens != PAD_ID  # (B, L')
        real[:, 0] = True  # an all-PAD row still pools its first window instead of -inf
        x = self.embed(tokens).transpose(1, 2)  # (B, E, L')
        pooled = []
        for conv in self.convs:
            maps = torch.relu(conv(x))  # (B, C, L' - w + 1)
            starts = real[:, : maps.size(2)].unsqueeze(1)  # (B, 1, L' - w + 1)
            pooled.append(maps.masked_fill(~starts, float("-inf")).amax(dim=2))  # (B, C)
        words = self.sentence_proj(torch.cat(pooled, dim=1))  # (B, video_size)
        clip = self.video_proj(self.video_norm(video))  # (B, video_size)
        joint = self.dropout(torch.cat([words, clip, words * clip], dim=1))  # (B, 3 * video_size)
        return self.out(self.dropout(torch.relu(self.hidden(joint)))).squeeze(1)  # (B,)
