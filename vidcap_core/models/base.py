"""`CaptionModel`: the encode / init_state / step contract shared by training and decoding."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor, nn

from vidcap_core.errors import FeatureError
from vidcap_core.models.cells import State, select_state
from vidcap_core.models.config import PAD_ID, ModelConfig


@dataclass
class Memory:
    """What `encode()` computes once per clip and every `step()` reads.

    Tensors are batch-first, except `initial_state` whose tensors are (layers, B, H).
    `N` is the number of memory slots: T frames, or T * R frame regions.
    """

    mask: Tensor  # (B, N) bool, True = a real frame / region
    video: Tensor | None = None  # (B, E) clip vector fed at every step (meanpool; concepts in "input" mode)
    concept_logits: Tensor | None = None  # (B, C) the concept head's clip scores (concepts)
    slots: Tensor | None = None  # (B, N, H) what attention reads (attention)
    slots_proj: Tensor | None = None  # (B, N, A) slots projected for attention once per sequence
    initial_state: State | None = None  # the encoder's final state (s2vt, attention)

    @property
    def batch_size(self) -> int:
        return self.mask.size(0)

    def select(self, index: Tensor) -> Memory:
        """Rows `index` (long, (B',)) of the batch: reorders, repeats or drops clips."""
        changes: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "initial_state":
                changes[f.name] = select_state(value, index)
            else:
                changes[f.name] = value.index_select(0, index)
        return replace(self, **changes)


def repeat_each(values: Tensor, times: int) -> Tensor:
    """Each row `times` times in a row: (B, ...) -> (B * times, ...); row b * times + j is copy j of row b.
    The one way clips are repeated: `CaptionModel.expand` (beams, samples) and what sits beside them."""
    return values if times == 1 else values.repeat_interleave(times, dim=0)


def check_frame_mask(mask: Tensor, batch_size: int, num_frames: int) -> None:
    """A frame mask is (B, T) bool, valid frames first, at least one per clip."""
    if mask.dtype != torch.bool or tuple(mask.shape) != (batch_size, num_frames):
        raise FeatureError(
            f"frame mask must be a bool tensor of shape ({batch_size}, {num_frames}), "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )
    empty = (~mask.any(1)).nonzero().flatten().tolist()
    if empty:
        raise FeatureError(f"clips at batch positions {empty} have no valid frame: drop them or fix the mask")
    if bool((mask[:, 1:] & ~mask[:, :-1]).any()):
        raise FeatureError("frame mask must mark valid frames first and padding last (a prefix mask)")


class CaptionModel(nn.Module, ABC):
    """Base of every architecture: embedding, classifier and the teacher-forced loop over `step()`."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config.validate()
        self.embed = nn.Embedding(config.vocab_size, config.embed_size, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden_size, config.vocab_size)

    # -- the contract -------------------------------------------------------------
    @abstractmethod
    def encode(self, feats: Tensor, mask: Tensor | None = None) -> Memory:
        """feats (B, T, F) or (B, T, R, F), mask (B, T) bool (None = all frames valid)."""

    @abstractmethod
    def init_state(self, memory: Memory) -> State:
        """The decoder state before the first (BOS) step."""

    @abstractmethod
    def step(self, tokens: Tensor, state: State, memory: Memory) -> tuple[Tensor, State, Tensor | None]:
        """tokens (B,) -> logits (B, V), new state, attention weights (B, N) or None."""

    def forward(
        self,
        feats: Tensor,
        mask: Tensor | None,
        captions: Tensor,
        sampling_prob: float = 0.0,
        generator: torch.Generator | None = None,
        auxiliary: bool = False,
    ) -> tuple[Tensor, Tensor | None] | tuple[Tensor, Tensor | None, dict[str, Tensor]]:
        """Teacher forcing. captions (B, L) start with BOS; logits[:, t] predicts captions[:, t + 1].

        Train with `masked_nll(logits[:, :-1], captions[:, 1:])`. With `sampling_prob > 0`
        (scheduled sampling) each clip's input at step t >= 1 is, with that probability,
        the model's own argmax from step t - 1 instead of the reference token.
        Returns logits (B, L, V) and attention weights (B, L, N) or None; with `auxiliary=True` also
        `auxiliary_outputs(memory, captions)`, computed inside forward so DDP sees every parameter used.
        """
        memory = self.encode(feats, mask)
        logits, alphas = self._decode_teacher_forced(memory, captions, sampling_prob, generator)
        if auxiliary:
            return logits, alphas, self.auxiliary_outputs(memory, captions)
        return logits, alphas

    def auxiliary_outputs(self, memory: Memory, captions: Tensor) -> dict[str, Tensor]:
        """What auxiliary training losses read (concept scores, joint embeddings); none by default."""
        return {}

    def _decode_teacher_forced(
        self, memory: Memory, captions: Tensor, sampling_prob: float, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor | None]:
        B, L = captions.shape
        state = self.init_state(memory)
        if sampling_prob <= 0.0:
            fast = self._teacher_forced(captions, state, memory)
            if fast is not None:
                return fast, None
        step_logits: list[Tensor] = []
        step_alphas: list[Tensor | None] = []
        tokens = captions[:, 0]  # (B,)
        for t in range(L):
            if t > 0:
                tokens = captions[:, t]
                if sampling_prob > 0.0:
                    own = step_logits[-1].detach().argmax(-1)  # (B,)
                    use_own = torch.rand(B, generator=generator, device=captions.device) < sampling_prob
                    tokens = torch.where(use_own, own, tokens)
            logits, state, alpha = self.step(tokens, state, memory)
            step_logits.append(logits)
            step_alphas.append(alpha)
        logits = torch.stack(step_logits, dim=1)  # (B, L, V)
        alphas = None if step_alphas[0] is None else torch.stack(step_alphas, dim=1)  # (B, L, N)
        return logits, alphas

    def _teacher_forced(self, captions: Tensor, state: State, memory: Memory) -> Tensor | None:
        """Optional whole-sequence fast path equal to looping `step()`; None = use the loop."""
        return None

    # -- helpers for beam search and for sampling several captions per clip -----------
    def expand(self, memory: Memory, state: State, k: int) -> tuple[Memory, State]:
        """Repeat every clip k times: row b * k + j is beam (or sample) j of clip b. The clip is encoded
        once; its copies share the memory, and gradients through them add up in that one encoding."""
        index = repeat_each(torch.arange(memory.batch_size, device=memory.mask.device), k)  # (B * k,)
        return memory.select(index), select_state(state, index)

    @staticmethod
    def select(obj: Memory | State, index: Tensor) -> Memory | State:
        """Rows `index` of the batch of a Memory or a decoder state."""
        return obj.select(index) if isinstance(obj, Memory) else select_state(obj, index)

    # -- shared input handling ----------------------------------------------------------
    def _prepare_inputs(self, feats: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """Validate feats (B, T, F) / (B, T, R, F) and return what the layers read, with a (B, T) bool mask.

        The one place every architecture takes its frame features: with `config.frame_deltas` > 0
        they become (B, T, [R,] 2F), each frame (region) followed by its scaled change since the
        previous frame (`append_frame_deltas`); otherwise they pass through unchanged.
        """
        if feats.dim() not in (3, 4):
            raise FeatureError(
                f"features must be (B, T, F) or (B, T, R, F), got shape {tuple(feats.shape)}"
            )
        if feats.size(-1) != self.config.feature_dim:
            raise FeatureError(
                f"model expects {self.config.feature_dim}-d features, got {feats.size(-1)}-d "
                f"(shape {tuple(feats.shape)}): use features from the backbone the model was trained on"
            )
        B, T = feats.shape[:2]
        if mask is None:
            mask = torch.ones(B, T, dtype=torch.bool, device=feats.device)  # (B, T)
        check_frame_mask(mask, B, T)
        if self.config.frame_deltas > 0:
            feats = append_frame_deltas(feats, mask, self.config.frame_deltas)  # (B, T, [R,] 2F)
        return feats, mask


def append_frame_deltas(feats: Tensor, mask: Tensor, scale: float) -> Tensor:
    """feats (B, T, F) or (B, T, R, F), prefix mask (B, T) -> (B, T, [R,] 2F): concat(x_t, scale * (x_t - x_{t-1})).

    Per-frame features say what a frame shows, not how it changes, and the decoders did not learn
    actions from them alone (SynthClips oracle features, attention-LSTM: val exact 0.12 without,
    0.58 with deltas x 10; issue #11). x_{-1} = x_0, so the first frame's delta is 0, and a padded
    frame's delta is 0. Region grids take the difference per region: a region is the same place
    (CNN grid cell) or the same tracked object (oracle slot) in every frame of a clip.
    """
    change = feats[:, 1:] - feats[:, :-1]  # (B, T - 1, [R,] F): frame t minus frame t - 1
    deltas = torch.cat([torch.zeros_like(feats[:, :1]), change], dim=1)  # (B, T, [R,] F), x_{-1} = x_0
    real = mask.view(*mask.shape, *([1] * (feats.dim() - 2)))  # (B, T, 1[, 1]) broadcasts over [R,] F
    deltas = torch.where(real, deltas * scale, torch.zeros_like(deltas))  # padding: 0, whatever its values
    return torch.cat([feats, deltas], dim=-1)  # (B, T, [R,] 2F)
