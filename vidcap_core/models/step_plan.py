"""Which teacher-forced decoder steps a batch needs: no step whose input is PAD is computed.

A batch's captions are padded to its longest (SynthClips standard: 27 tokens on average per batch of 64),
yet nothing reads the logits of a step whose input is PAD (masked_nll ignores PAD targets, and a caller
scoring BOS w1 .. wn without EOS reads the logits of the steps whose inputs are its tokens). On SynthClips
standard those are about 45% of a batch's decoder steps. `StepPlan` orders the rows by how many steps they
need (their non-PAD tokens), longest first, so the rows step t must compute are a prefix of that order,
and the decoders compute only those (`active`), or, for a recurrent layer that runs whole sequences in
one call, a few calls over shrinking prefixes (`segments`).

What is computed is what the step loop computes for those rows; the logits of the steps left out are
the classifier's bias (the output before it is zero), and their attention weights 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from vidcap_core.models.config import PAD_ID

# What one more recurrent-layer call costs, in row-steps of work (one row through one time step):
# oneDNN's LSTM call on one CPU thread costs about one step of a 64-row batch beyond its work (measured
# with `vidcap-bench perf-training`, issue #20). `segments` trades calls against rows computed for nothing.
CALL_COST_ROW_STEPS = 64


@dataclass(frozen=True)
class Segment:
    """Steps start..stop - 1 of the first `rows` rows (in StepPlan order), computed in one call."""

    start: int
    stop: int
    rows: int


@dataclass(frozen=True)
class StepPlan:
    order: Tensor  # (B,) long: the batch's rows, the caption needing most steps first (stable)
    active: tuple[int, ...]  # (S,) how many rows of `order` step t computes; non-increasing, S = the most steps

    @classmethod
    def of(cls, captions: Tensor) -> StepPlan:
        """captions (B, L): BOS w1 .. wn [EOS] PAD ..; row b needs one step per non-PAD token (at least 1)."""
        steps = (captions != PAD_ID).sum(1).clamp(min=1)  # (B,)
        ordered, order = torch.sort(steps, descending=True, stable=True)
        counts = ordered.tolist()
        active = [0] * counts[0]
        for count in counts:  # row with `count` steps is active in steps 0 .. count - 1
            active[count - 1] += 1
        for t in range(len(active) - 2, -1, -1):
            active[t] += active[t + 1]
        return cls(order, tuple(active))

    @property
    def steps(self) -> int:
        return len(self.active)

    @cached_property
    def restore(self) -> Tensor:
        """(B,) long: the inverse of `order` (rows back in batch order)."""
        return torch.argsort(self.order)

    @property
    def row_steps(self) -> int:
        """Row-steps the plan computes (the batch times L without it)."""
        return sum(self.active)

    def segments(self, call_cost: int = CALL_COST_ROW_STEPS) -> list[Segment]:
        """The fewest-cost cover of the active rows by calls over prefixes: a segment computes its first
        step's active rows through all its steps; cost = rows x steps + call_cost per segment (dynamic
        programming over segment ends, S <= a few dozen)."""
        S = self.steps
        best = [0.0] + [float("inf")] * S  # best[t]: cost of covering steps 0 .. t - 1
        start_of = [0] * (S + 1)
        for stop in range(1, S + 1):
            for start in range(stop):
                cost = best[start] + self.active[start] * (stop - start) + call_cost
                if cost < best[stop]:
                    best[stop], start_of[stop] = cost, start
        bounds, stop = [], S
        while stop > 0:
            bounds.append((start_of[stop], stop))
            stop = start_of[stop]
        return [Segment(start, stop, self.active[start]) for start, stop in reversed(bounds)]


def recurrent_segments(plan: StepPlan, num_layers: int, batch: int, length: int) -> list[Segment]:
    """The calls a teacher-forced recurrent stack makes: `plan.segments()` for one layer; for deeper stacks
    one call over the whole batch and length, as before issue #20, because nn.LSTM / GRU / RNN draw their
    between-layer dropout per call and the random stream must stay the step loop's (seeded runs)."""
    if num_layers == 1:
        return plan.segments()
    return [Segment(0, length, batch)]


def assemble_steps(parts: list[tuple[Segment, Tensor]], batch: int, length: int, restore: Tensor) -> Tensor:
    """Segment outputs (rows, stop - start, D), in order, rows in plan order -> (batch, length, D) in batch
    order (`restore`, StepPlan.restore), zeros wherever no segment computed (rows past a segment's prefix,
    steps past the plan).

    The result is a batch-first view of a time-major (length, batch, D) tensor: the layout nn.LSTM / GRU /
    RNN return with batch_first, so the dropout applied to it (nn.Dropout draws its noise in the input's
    memory order) draws the same noise as for the whole-sequence call it replaces (seeded runs keep their
    numbers)."""
    first = parts[0][1]
    grid = first.new_zeros(length, batch, first.size(-1))  # (length, batch, D), rows in plan order
    for segment, out in parts:
        grid[segment.start : segment.stop, : segment.rows] = out.transpose(0, 1)
    return grid.index_select(1, restore).transpose(0, 1)  # (batch, length, D), batch order
