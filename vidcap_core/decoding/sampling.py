"""Multinomial sampling of captions over the models' shared `step()`: the policy that policy-gradient
fine-tuning (SCST, the LSTM-GAN generator) trains.

Unlike greedy and beam search this runs with gradients: the returned log-probs are the policy's
log pi(token | prefix, clip) for REINFORCE. The caller picks the mode (training mode samples with
dropout, as the policy that is being trained does) and passes a seeded `torch.Generator`, so the same
generator state gives the same captions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vidcap_core.decoding.common import resolve_max_len
from vidcap_core.errors import ConfigError
from vidcap_core.models.base import CaptionModel
from vidcap_core.models.config import BOS_ID, EOS_ID, PAD_ID


@dataclass
class SampledCaptions:
    """A batch of sampled captions, one row per clip, padded to the longest.

    `tokens` hold the sampled ids, EOS included where it was emitted, PAD after it (no BOS).
    `logprobs` are the log-probabilities of those ids under the sampling distribution
    (softmax(logits / temperature) without PAD and BOS), 0 where `mask` is False.
    """

    tokens: Tensor  # (B, L) long
    logprobs: Tensor  # (B, L) float32, differentiable
    mask: Tensor  # (B, L) bool: True for every emitted token (words and the EOS)

    def word_ids(self) -> list[list[int]]:
        """Each caption's word ids, without EOS and PAD (what `Vocabulary.decode` takes)."""
        out: list[list[int]] = []
        for row, keep in zip(self.tokens.tolist(), self.mask.tolist()):
            words = [t for t, k in zip(row, keep) if k]
            out.append(words[:-1] if words and words[-1] == EOS_ID else words)
        return out

    def sequence_logprobs(self) -> Tensor:
        """Summed log-probability of each caption: (B,)."""
        return self.logprobs.sum(dim=1)


def sample_captions(
    model: CaptionModel,
    feats: Tensor,
    mask: Tensor | None = None,
    *,
    generator: torch.Generator,
    max_len: int | None = None,
    temperature: float = 1.0,
    per_clip: int = 1,
) -> SampledCaptions:
    """Sample `per_clip` captions per clip, token by token, until EOS or `max_len` tokens (EOS included).

    feats (B, T, F) or (B, T, R, F), mask (B, T) bool or None. Each clip is encoded once and its memory
    expanded (`CaptionModel.expand`, as self-critical.pytorch does): rows b * per_clip ..
    b * per_clip + per_clip - 1 of the result are clip b's. Each step draws from
    softmax(logits / temperature) with PAD and BOS excluded, using `generator` only (it must live on
    the features' device). The log-probs are of that tempered distribution, so REINFORCE on them is
    unbiased for the policy that was actually sampled. Gradients flow unless the caller disables them.
    """
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ConfigError(f"sampling temperature must be a number > 0, got {temperature!r}")
    if isinstance(per_clip, bool) or not isinstance(per_clip, int) or per_clip < 1:
        raise ConfigError(f"captions per clip must be a positive integer, got {per_clip!r}")
    max_len = resolve_max_len(model, max_len)
    memory = model.encode(feats, mask)
    state = model.init_state(memory)
    if per_clip > 1:
        memory, state = model.expand(memory, state, per_clip)  # (B * per_clip, ...)
    B = memory.batch_size
    device = memory.mask.device
    banned = torch.zeros(model.config.vocab_size, dtype=torch.bool, device=device)  # (V,)
    banned[PAD_ID] = banned[BOS_ID] = True
    tokens = torch.full((B,), BOS_ID, dtype=torch.long, device=device)  # (B,)
    finished = torch.zeros(B, dtype=torch.bool, device=device)  # (B,)
    step_tokens: list[Tensor] = []
    step_logprobs: list[Tensor] = []
    step_mask: list[Tensor] = []
    for _ in range(max_len):
        logits, state, _ = model.step(tokens, state, memory)  # (B, V)
        scaled = (logits.float() / temperature).masked_fill(banned, float("-inf"))  # (B, V)
        logprobs = torch.log_softmax(scaled, dim=-1)  # (B, V)
        drawn = torch.multinomial(logprobs.detach().exp(), 1, generator=generator).squeeze(1)  # (B,)
        alive = ~finished  # (B,)
        tokens = drawn.masked_fill(finished, PAD_ID)  # (B,)
        chosen = logprobs.gather(1, drawn.unsqueeze(1)).squeeze(1)  # (B,)
        step_tokens.append(tokens)
        step_logprobs.append(chosen.masked_fill(finished, 0.0))
        step_mask.append(alive)
        finished = finished | (tokens == EOS_ID)
        if bool(finished.all()):
            break
    return SampledCaptions(  # B = clips x per_clip
        tokens=torch.stack(step_tokens, dim=1),  # (B, L)
        logprobs=torch.stack(step_logprobs, dim=1),  # (B, L)
        mask=torch.stack(step_mask, dim=1),  # (B, L)
    )
