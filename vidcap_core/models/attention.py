"""Soft-attention captioner (SA-LSTM, Yao et al. 2015): attend over frames or frames x regions."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vidcap_core.models.base import CaptionModel, Memory
from vidcap_core.models.cells import Recurrent, State
from vidcap_core.models.config import ModelConfig
from vidcap_core.models.joint_embedding import JointEmbedding, caption_word_mask
from vidcap_core.models.soft_attention import SoftAttention


class AttentionCaptioner(CaptionModel):
    """Recurrent frame encoder + decoder whose input is [word embedding, attended context].

    Memory slots: for (B, T, F) features one per frame, `encoder_output[t] + W x[t]`; for
    region grids (B, T, R, F) one per frame region, `encoder_output[t] + W x[t, r]`, flattened
    to T * R slots (spatio-temporal attention). The encoder reads the region mean of each
    frame. The slots are projected for attention once, in `encode()`. The decoder starts
    from the encoder's final state and queries attention with its previous top hidden state.
    With `consistency_size` > 0 it also has the joint clip/sentence embedding of aLSTMs
    (joint_embedding.py), read by the semantic-consistency loss only.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        E, H, layers = config.embed_size, config.hidden_size, config.num_layers
        self.frame_proj = nn.Linear(config.input_dim, E)
        self.encoder = Recurrent(config.cell, E, H, layers, config.dropout)
        self.slot_proj = nn.Linear(E, H)
        self.attention = SoftAttention(memory_dim=H, query_dim=H, attention_size=config.attention_size)
        self.decoder = Recurrent(config.cell, E + H, H, layers, config.dropout)
        self.joint = JointEmbedding(H, E, config.consistency_size) if config.consistency_size else None

    def encode(self, feats: Tensor, mask: Tensor | None = None) -> Memory:
        feats, mask = self._prepare_inputs(feats, mask)  # (B, T, [R,] F_in), F_in = config.input_dim
        if feats.dim() == 3:
            feats = feats.unsqueeze(2)  # (B, T, F) -> (B, T, 1, F): a frame is one region
        B, T, R, _ = feats.shape
        frames = self.dropout(self.frame_proj(feats))  # (B, T, R, E)
        encoded, encoder_state = self.encoder(frames.mean(2), mask=mask)  # (B, T, H)
        slots = encoded.unsqueeze(2) + self.slot_proj(frames)  # (B, T, R, H)
        slots = slots.reshape(B, T * R, -1)  # (B, N = T * R, H)
        slot_mask = mask.unsqueeze(2).expand(B, T, R).reshape(B, T * R)  # (B, N)
        return Memory(
            mask=slot_mask,
            slots=slots,
            slots_proj=self.attention.project(slots),  # (B, N, A)
            initial_state=encoder_state,
        )

    def init_state(self, memory: Memory) -> State:
        return memory.initial_state

    def step(self, tokens: Tensor, state: State, memory: Memory) -> tuple[Tensor, State, Tensor]:
        query = self.decoder.top_hidden(state)  # (B, H)
        context, alpha = self.attention(query, memory.slots, memory.slots_proj, memory.mask)  # (B, H), (B, N)
        words = self.dropout(self.embed(tokens))  # (B, E)
        out, state = self.decoder.step(torch.cat([words, context], dim=-1), state)  # (B, E + H) -> (B, H)
        return self.classifier(self.dropout(out)), state, alpha  # (B, V)

    def auxiliary_outputs(self, memory: Memory, captions: Tensor) -> dict[str, Tensor]:
        if self.joint is None:
            return {}
        return {
            "clip_embedding": self.joint.clip(memory.slots, memory.mask),  # (B, D)
            "sentence_embedding": self.joint.sentence(self.embed(captions), caption_word_mask(captions)),  # (B, D)
        }
