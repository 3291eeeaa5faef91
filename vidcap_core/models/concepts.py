"""Visual-concept captioner ([1] in the report): concept classifiers over the frames, whose clip
scores initialise the decoder (or, in the ablation, are one of its inputs at every step).

[1] scores every key frame with one classifier per concept (SVMs over CNN features, one per COCO
category), averages the scores across frames into a concept vector, initialises the LSTM with it
and feeds the frame features after it; it reports that initialising beats feeding the vector as an
input. Here the classifiers are a small per-frame head trained jointly with a multi-label (BCE)
loss on concepts named by the training captions (training/auxiliary.py derives them), and the
frames follow through the S2VT encoder, so concepts-LSTM differs from S2VT-LSTM by the concept
vector alone and "init" vs "input" differs by where that vector enters, nothing else.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from vidcap_core.models.base import Memory
from vidcap_core.models.cells import Recurrent, State
from vidcap_core.models.config import ModelConfig
from vidcap_core.models.s2vt import S2VTCaptioner


class StateFromVector(nn.Module):
    """A vector (B, C) -> an initial state of `recurrent`: h = tanh(W_h v) per layer (h of every cell
    lives in (-1, 1)), and for an LSTM c = W_c v (a cell state is unbounded)."""

    def __init__(self, in_size: int, recurrent: Recurrent) -> None:
        super().__init__()
        self.layers, self.hidden, self.is_lstm = recurrent.num_layers, recurrent.hidden_size, recurrent.is_lstm
        self.h = nn.Linear(in_size, self.layers * self.hidden)
        self.c = nn.Linear(in_size, self.layers * self.hidden) if self.is_lstm else None

    def _layers_first(self, x: Tensor) -> Tensor:
        B = x.size(0)
        return x.view(B, self.layers, self.hidden).transpose(0, 1).contiguous()  # (B, layers * H) -> (layers, B, H)

    def forward(self, vector: Tensor) -> State:
        h = self._layers_first(torch.tanh(self.h(vector)))  # (layers, B, H)
        if self.c is None:
            return h
        return h, self._layers_first(self.c(vector))


class ConceptCaptioner(S2VTCaptioner):
    """S2VT's two stacks plus a concept head whose clip scores start (or accompany) the decoding.

    Concept head: per frame, an MLP scores every concept (B, T, C); the clip's concept logits are
    the masked mean over real frames ([1] averages classifier scores across key frames), the concept
    vector is their sigmoid. "init": the vector sets both stacks' initial states, which then read
    the frames (S2VT encoding) and emit the words. "input": both stacks start from zero and the word
    stack reads the projected vector at every step (frames and words), the variant [1] found worse.
    Why S2VT and not attention around the concepts: [1] has no attention, and with attention the
    decoder could read the frames directly at every word, hiding whether the initial state matters.
    Region grids (B, T, R, F) are averaged over regions. Encoding is S2VT's (`_encode_frames`) from the
    concept states; decoding is S2VT's `step()` and `_teacher_forced()`; only what the word stack reads
    (`_word_input`) differs.
    """

    def __init__(self, config: ModelConfig) -> None:
        E, H, C = config.embed_size, config.hidden_size, len(config.concepts)
        feeds_concepts = config.concept_mode == "input"
        super().__init__(config, word_extra_size=E if feeds_concepts else 0)  # S2VT's embedding, classifier, stacks
        self.feeds_concepts = feeds_concepts
        self.concept_head = nn.Sequential(
            nn.Linear(config.input_dim, H), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(H, C)
        )
        if self.feeds_concepts:
            self.concept_proj = nn.Linear(C, E)
        else:
            self.video_init = StateFromVector(C, self.video_rnn)
            self.word_init = StateFromVector(C, self.word_rnn)

    def concept_scores(self, feats: Tensor, mask: Tensor) -> Tensor:
        """feats (B, T, F), mask (B, T) -> clip concept logits (B, C): per-frame scores averaged over real frames."""
        frame_logits = self.concept_head(feats)  # (B, T, C)
        weights = mask.unsqueeze(-1).to(frame_logits.dtype)  # (B, T, 1)
        return (frame_logits * weights).sum(1) / weights.sum(1)  # (B, C)

    def encode(self, feats: Tensor, mask: Tensor | None = None) -> Memory:
        feats, mask = self._clip_features(feats, mask)  # (B, T, F_in)
        concept_logits = self.concept_scores(feats, mask)  # (B, C)
        concepts = torch.sigmoid(concept_logits)  # (B, C) the concept vector
        frames = self.dropout(self.frame_proj(feats))  # (B, T, E)
        memory = Memory(mask=mask, concept_logits=concept_logits)
        if self.feeds_concepts:  # both stacks start from zero; the word stack reads the vector at every step
            return self._encode_frames(frames, replace(memory, video=self.dropout(self.concept_proj(concepts))))
        return self._encode_frames(frames, memory, initial=(self.video_init(concepts), self.word_init(concepts)))

    def auxiliary_outputs(self, memory: Memory, captions: Tensor) -> dict[str, Tensor]:
        return {"concept_logits": memory.concept_logits}  # (B, C)

    def _word_input(self, video_out: Tensor, words: Tensor, memory: Memory) -> Tensor:
        """S2VT's [video-stack output, word embedding], then the concept vector in "input" mode, (B, [L,] H + E [+ E]);
        words (B, E) while decoding step by step, (B, L, E) teacher-forced or while encoding (L = T)."""
        if not self.feeds_concepts:
            return super()._word_input(video_out, words, memory)
        video = memory.video if words.dim() == 2 else memory.video.unsqueeze(1).expand(-1, words.size(1), -1)
        return torch.cat([video_out, words, video], dim=-1)
