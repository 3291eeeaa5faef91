"""Mean-pool captioner (Venugopalan et al., NAACL 2015): the clip is the masked mean of its frames."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vidcap_core.models.base import CaptionModel, Memory, state_prefix
from vidcap_core.models.cells import Recurrent, State, select_state
from vidcap_core.models.config import ModelConfig
from vidcap_core.models.step_plan import StepPlan, assemble_steps, recurrent_segments


class MeanPoolCaptioner(CaptionModel):
    """A recurrent language model whose input at every step is [word embedding, clip vector].

    The clip vector is a linear projection of the masked mean of the frame features, so the
    model is invariant to frame order, unless `frame_deltas` > 0: the mean of the appended deltas is
    frame_deltas * (x_last - x_0) / T, the clip's net change. Region grids (B, T, R, F) are averaged over regions.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        E, H = config.embed_size, config.hidden_size
        self.video_proj = nn.Linear(config.input_dim, E)
        self.decoder = Recurrent(config.cell, 2 * E, H, config.num_layers, config.dropout)

    def encode(self, feats: Tensor, mask: Tensor | None = None) -> Memory:
        feats, mask = self._prepare_inputs(feats, mask)  # (B, T, [R,] F_in), F_in = config.input_dim
        if feats.dim() == 4:
            feats = feats.mean(2)  # (B, T, R, F) -> (B, T, F)
        weights = mask.unsqueeze(-1).to(feats.dtype)  # (B, T, 1)
        pooled = (feats * weights).sum(1) / weights.sum(1)  # (B, F)
        video = self.dropout(self.video_proj(pooled))  # (B, E)
        return Memory(mask=mask, video=video)

    def init_state(self, memory: Memory) -> State:
        return self.decoder.zero_state(memory.batch_size)

    def step(self, tokens: Tensor, state: State, memory: Memory) -> tuple[Tensor, State, None]:
        words = self.dropout(self.embed(tokens))  # (B, E)
        out, state = self.decoder.step(torch.cat([words, memory.video], dim=-1), state)  # (B, 2E) -> (B, H)
        return self.classifier(self.dropout(out)), state, None  # (B, V)

    def _teacher_forced(self, captions: Tensor, state: State, memory: Memory, plan: StepPlan) -> tuple[Tensor, None]:
        """The steps `plan` needs, in a few recurrent calls over shrinking prefixes of the rows sorted by
        caption length; equal to looping `step()` on them (tested)."""
        B, L = captions.shape
        words = self.dropout(self.embed(captions)).index_select(0, plan.order)  # (B, L, E): dropout in batch order, rows in plan order
        video = memory.video.index_select(0, plan.order).unsqueeze(1).expand(B, L, -1)  # (B, L, E)
        inputs = torch.cat([words, video], dim=-1)  # (B, L, 2E)
        state = select_state(state, plan.order)
        parts = []
        for segment in recurrent_segments(plan, self.decoder.num_layers, B, L):
            out, state = self.decoder(inputs[: segment.rows, segment.start : segment.stop],
                                      state_prefix(state, segment.rows))  # (rows, steps, H)
            parts.append((segment, out))
        outputs = assemble_steps(parts, B, L, plan.restore)  # (B, L, H) batch order, zeros where no step was needed
        return self.classifier(self.dropout(outputs)), None  # (B, L, V)
