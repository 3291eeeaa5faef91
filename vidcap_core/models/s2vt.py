"""S2VT (Venugopalan et al., ICCV 2015, "Sequence to Sequence - Video to Text")."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from vidcap_core.models.base import CaptionModel, Memory
from vidcap_core.models.cells import Recurrent, State
from vidcap_core.models.config import ModelConfig


class S2VTCaptioner(CaptionModel):
    """Two stacked recurrent layers shared by the encoding and the decoding stage.

    Encoding (T steps, one cuDNN call per layer): the video layer reads projected frames, the
    word layer reads [video-layer output, zero word]. Decoding (one `step()` per word): the
    video layer reads zero "padding" frames, the word layer reads [video-layer output, word
    embedding] and emits the next word. Decoding starts from the encoder's final states.
    Padded frames (mask False, always at the end) are packed away and do not change a state.
    Region grids (B, T, R, F) are averaged over regions.
    """

    def __init__(self, config: ModelConfig, word_extra_size: int = 0) -> None:
        """`word_extra_size`: what a subclass's `_word_input` appends to the word stack's input (ConceptCaptioner's
        concept vector in "input" mode)."""
        super().__init__(config)
        E, H, layers = config.embed_size, config.hidden_size, config.num_layers
        self.frame_proj = nn.Linear(config.input_dim, E)
        self.video_rnn = Recurrent(config.cell, E, H, layers, config.dropout)
        self.word_rnn = Recurrent(config.cell, H + E + word_extra_size, H, layers, config.dropout)

    def encode(self, feats: Tensor, mask: Tensor | None = None) -> Memory:
        feats, mask = self._clip_features(feats, mask)  # (B, T, F_in)
        frames = self.dropout(self.frame_proj(feats))  # (B, T, E)
        return self._encode_frames(frames, Memory(mask=mask))

    def _clip_features(self, feats: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """Validated features, one vector per frame: (B, T, F_in), F_in = config.input_dim; and the (B, T) mask."""
        feats, mask = self._prepare_inputs(feats, mask)  # (B, T, [R,] F_in)
        if feats.dim() == 4:
            feats = feats.mean(2)  # (B, T, R, F_in) -> (B, T, F_in)
        return feats, mask

    def _encode_frames(self, frames: Tensor, memory: Memory, initial: State | None = None) -> Memory:
        """The encoding stage: both stacks read the projected frames (B, T, E) from `initial` states ((video,
        word); None: zeros), the word stack with no word (`_word_input` of `memory`). Returns `memory` with
        their final states, where decoding starts."""
        B, T, _ = frames.shape
        video_initial, word_initial = (None, None) if initial is None else initial
        video_out, video_state = self.video_rnn(frames, video_initial, mask=memory.mask)  # (B, T, H)
        no_words = frames.new_zeros(B, T, self.config.embed_size)  # (B, T, E)
        word_in = self._word_input(video_out, no_words, memory)  # (B, T, H + E [+ extra])
        _, word_state = self.word_rnn(word_in, word_initial, mask=memory.mask)
        return replace(memory, initial_state=(video_state, word_state))

    def init_state(self, memory: Memory) -> State:
        return memory.initial_state

    def _word_input(self, video_out: Tensor, words: Tensor, memory: Memory) -> Tensor:
        """What the word stack reads: [video-stack output, word embedding (zeros while encoding)], (B, [L,] H + E).

        The one hook subclasses change (ConceptCaptioner appends its concept vector), so encoding, `step()`
        and `_teacher_forced()` are written once.
        """
        return torch.cat([video_out, words], dim=-1)

    def step(self, tokens: Tensor, state: State, memory: Memory) -> tuple[Tensor, State, None]:
        video_state, word_state = state
        words = self.dropout(self.embed(tokens))  # (B, E)
        pad_frame = words.new_zeros(words.shape)  # (B, E)
        video_out, video_state = self.video_rnn.step(pad_frame, video_state)  # (B, H)
        out, word_state = self.word_rnn.step(self._word_input(video_out, words, memory), word_state)  # (B, H)
        return self.classifier(self.dropout(out)), (video_state, word_state), None  # (B, V)

    def _teacher_forced(self, captions: Tensor, state: State, memory: Memory) -> Tensor:
        """All L steps in one call per layer; equal to looping `step()` (tested)."""
        video_state, word_state = state
        words = self.dropout(self.embed(captions))  # (B, L, E)
        pad_frames = words.new_zeros(words.shape)  # (B, L, E)
        video_out, _ = self.video_rnn(pad_frames, video_state)  # (B, L, H)
        out, _ = self.word_rnn(self._word_input(video_out, words, memory), word_state)  # (B, L, H)
        return self.classifier(self.dropout(out))  # (B, L, V)
