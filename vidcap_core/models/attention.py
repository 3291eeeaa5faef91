"""Soft-attention captioner (SA-LSTM, Yao et al. 2015): attend over frames or frames x regions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidcap_core.models.attention_decoder import teacher_forced_attention
from vidcap_core.models.base import CaptionModel, Memory
from vidcap_core.models.cells import Recurrent, State, select_state
from vidcap_core.models.config import ModelConfig
from vidcap_core.models.joint_embedding import JointEmbedding, caption_word_mask
from vidcap_core.models.soft_attention import SoftAttention
from vidcap_core.models.step_plan import StepPlan


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
        words = self.dropout(self.embed(tokens))  # (B, E)
        out, state, alpha = self._attend_and_step(self._project_words(words), state, memory)  # (B, H)
        return self.classifier(self.dropout(out)), state, alpha  # (B, V)

    def _project_words(self, words: Tensor) -> Tensor:
        """The word part of the decoder's input projection, bias included: (B, [L,] E) -> (B, [L,] G H).

        The decoder reads [word embedding, context]; the word half does not depend on the step before,
        so teacher forcing projects every step's word in one product."""
        weights = self.decoder.layer_weights(0)
        return F.linear(words, weights.w_ih[:, : self.config.embed_size], weights.b_ih)

    def _attend_and_step(self, projected_words: Tensor, state: State, memory: Memory) -> tuple[Tensor, State, Tensor]:
        """Attend with the previous top hidden state, then one decoder step: projected_words (B, G H) ->
        output (B, H), state, alpha (B, N)."""
        query = self.decoder.top_hidden(state)  # (B, H)
        context, alpha = self.attention(query, memory.slots, memory.slots_proj, memory.mask)  # (B, H), (B, N)
        w_context = self.decoder.layer_weights(0).w_ih[:, self.config.embed_size :]  # (G H, H)
        projected = torch.addmm(projected_words, context, w_context.t())  # (B, G H)
        out, state = self.decoder.step_projected(projected, state)  # (B, H)
        return out, state, alpha

    def _teacher_forced(self, captions: Tensor, state: State, memory: Memory, plan: StepPlan
                        ) -> tuple[Tensor, Tensor] | None:
        """For one recurrent layer, the loop of `step()` over the steps `plan` needs (rows sorted by caption
        length) as one autograd operation (attention_decoder.py), with what does not depend on the step
        before taken out of it (the word projections before it, the classifier after it: one product each);
        equal to looping `step()` on those steps (tested). Deeper decoders loop over `step()` (None)."""
        if self.decoder.num_layers != 1:
            return None  # nn.LSTM's between-layer dropout draws per call: only the loop keeps its random stream
        B, L = captions.shape
        word_noise, output_noise = self._step_loop_dropout(B, L, memory.slots)
        words = self.embed(captions)  # (B, L, E)
        if word_noise is not None:
            words = words * word_noise
        projected_words = self._project_words(words.index_select(0, plan.order))  # (B, L, G H), plan order
        memory = memory.select(plan.order)
        state = select_state(state, plan.order)
        outputs, alphas = self._fused_loop(projected_words, state, memory, plan)  # (B, L, H), (B, L, N)
        outputs = outputs.index_select(0, plan.restore)  # batch order
        if output_noise is not None:
            outputs = outputs * output_noise
        return self.classifier(outputs), alphas.index_select(0, plan.restore)  # (B, L, V), (B, L, N)

    def _step_loop_dropout(self, B: int, L: int, like: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """The dropout noise the loop of `step()` draws, in its order (step t: its words (B, E), then its
        output (B, H)), as nn.Dropout makes it on a CPU (Bernoulli(1 - p) / (1 - p)), so teacher forcing
        consumes the random stream as the loop does and seeded runs keep their numbers:
        (B, L, E), (B, L, H), or None, None when dropout is off."""
        p = self.dropout.p
        if not self.training or p == 0.0:
            return None, None
        keep = 1.0 - p
        E, H = self.config.embed_size, self.config.hidden_size
        word_noise, output_noise = [], []
        for _ in range(L):
            word_noise.append(like.new_empty(B, E).bernoulli_(keep).div_(keep))
            output_noise.append(like.new_empty(B, H).bernoulli_(keep).div_(keep))
        return torch.stack(word_noise, 1), torch.stack(output_noise, 1)

    def _fused_loop(self, projected_words: Tensor, state: State, memory: Memory, plan: StepPlan
                    ) -> tuple[Tensor, Tensor]:
        h0, c0 = state if self.decoder.is_lstm else (state, None)  # (1, B, H)
        weights = self.decoder.layer_weights(0)
        mask = None if bool(memory.mask.all()) else memory.mask
        return teacher_forced_attention(
            self.config.cell, projected_words, memory.slots, memory.slots_proj, mask, h0[0],
            None if c0 is None else c0[0], self.attention.query_proj.weight, self.attention.score.weight,
            weights.w_ih[:, self.config.embed_size :], weights.w_hh, weights.b_hh, plan.active)

    def auxiliary_outputs(self, memory: Memory, captions: Tensor) -> dict[str, Tensor]:
        if self.joint is None:
            return {}
        return {
            "clip_embedding": self.joint.clip(memory.slots, memory.mask),  # (B, D)
            "sentence_embedding": self.joint.sentence(self.embed(captions), caption_word_mask(captions)),  # (B, D)
        }
