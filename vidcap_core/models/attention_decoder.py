"""The attention decoder's teacher-forced time loop as one autograd operation, its backward pass written out.

Teacher forcing runs AttentionCaptioner's step L times: attend with the previous hidden state, read the
context, one recurrent step. Under autograd each step leaves some forty nodes, and the backward pass
multiplies every weight once per step by a 64-row gradient. Here the loop runs with autograd off, keeps
what its backward pass needs in time-major buffers, and the backward pass walks the steps in reverse with
plain tensor operations; every weight gradient (W_hh, the context part of W_ih, W_q, w) is then one matrix
product over all L x B rows, and the gradient of the slots one batched product (issue #20).

The forward arithmetic is the step's own: `SoftAttention`'s (through `attention_weights`) and
recurrence.cell_forward's (= cell_step's), so teacher forcing equals stepping (tested, with gradients
checked against autograd in float64). One recurrent layer: deeper decoders loop over `step()` instead.

Names: B batch, L caption length, N memory slots, M slot size, A attention size, H hidden size,
G gates (4 LSTM, 3 GRU, 1 RNN).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from vidcap_core.models.recurrence import GATES, cell_backward, cell_forward, tape_width
from vidcap_core.models.soft_attention import attention_weights


def teacher_forced_attention(kind: str, words: Tensor, slots: Tensor, slots_proj: Tensor, mask: Tensor | None,
                             h0: Tensor, c0: Tensor | None, w_query: Tensor, w_score: Tensor, w_context: Tensor,
                             w_hh: Tensor, b_hh: Tensor, active: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """The attention decoder's steps: words (B, L, G H) the word part of every step's input projection (b_ih
    included), slots (B, N, M), slots_proj (B, N, A), mask (B, N) bool or None (all valid), h0 [, c0] (B, H)
    the start state, w_query (A, H), w_score (1, A), w_context (G H, M) the context part of W_ih, w_hh
    (G H, H), b_hh (G H,); step t computes the first active[t] rows (non-increasing: step_plan.StepPlan) ->
    outputs (B, L, H) (each step's hidden state; 0 where not computed) and alphas (B, L, N) (0 likewise)."""
    return _AttentionDecoder.apply(kind, words, slots, slots_proj, mask, h0, c0, w_query, w_score, w_context,
                                   w_hh, b_hh, active)


class _AttentionDecoder(torch.autograd.Function):
    """Buffers are packed like a PackedSequence: step t's rows sit at offsets[t] .. offsets[t] + active[t]."""

    @staticmethod
    def forward(ctx: FunctionCtx, kind: str, words: Tensor, slots: Tensor, slots_proj: Tensor, mask: Tensor | None,
                h0: Tensor, c0: Tensor | None, w_query: Tensor, w_score: Tensor, w_context: Tensor, w_hh: Tensor,
                b_hh: Tensor, active: tuple[int, ...]) -> tuple[Tensor, Tensor]:
        B, L, GH = words.shape
        N, A = slots_proj.shape[1:]
        H = h0.size(1)
        P = sum(active)  # rows of all steps
        hidden = slots_proj.new_empty(P, N, A)  # tanh(W_m m + W_q h) of every step
        alphas = slots_proj.new_empty(P, N)
        contexts = slots.new_empty(P, slots.size(2))  # (P, M)
        before = h0.new_empty(P, H)  # the h each step starts from
        after = h0.new_empty(P, H)  # the h each step ends with: the decoder's outputs
        acts = words.new_empty(P, GH)  # gate activations
        tape = words.new_empty(P, tape_width(kind, H))
        query_t, context_t, hh_t = w_query.t(), w_context.t(), w_hh.t()
        h, c = h0, c0
        offset = 0
        for t, n in enumerate(active):
            rows = slice(offset, offset + n)
            h = h[:n]  # (n, H): the rows still decoding
            c = None if c is None else c[:n]
            before[rows] = h
            query = torch.mm(h, query_t)  # (n, A) = SoftAttention.query_proj(h)
            step_hidden = torch.add(slots_proj[:n], query.unsqueeze(1), out=hidden[rows]).tanh_()  # (n, N, A)
            alpha = attention_weights(step_hidden, w_score, None if mask is None else mask[:n])  # (n, N)
            alphas[rows] = alpha
            context = torch.bmm(alpha.unsqueeze(1), slots[:n], out=contexts[rows].unsqueeze(1)).squeeze(1)  # (n, M)
            gx = torch.addmm(words[:n, t], context, context_t)  # (n, G H): [word, context] W_ih^T + b_ih
            gh = torch.addmm(b_hh, h, hh_t)  # (n, G H)
            h, c = cell_forward(kind, gx, gh, h, c, acts[rows], tape[rows])
            after[rows] = h
            offset += n
        where = packed_positions(active, L, words.device)  # (P,) b * L + t of each packed row
        outputs = scatter_rows(after, where, B, L)  # (B, L, H)
        ctx.kind, ctx.active, ctx.length = kind, active, L
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(slots, hidden, alphas, contexts, before, acts, tape, w_query, w_score, w_context, w_hh,
                              where)
        return outputs, scatter_rows(alphas, where, B, L)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, d_outputs: Tensor | None, d_alphas: Tensor | None) -> tuple[Tensor | None, ...]:
        (slots, hidden, alphas, contexts, before, acts, tape, w_query, w_score, w_context, w_hh,
         where) = ctx.saved_tensors
        kind, active, L = ctx.kind, ctx.active, ctx.length
        P, N, A = hidden.shape
        B, H = slots.size(0), before.size(1)
        GH = GATES[kind] * H
        w = w_score.view(A)
        d_gx = acts.new_empty(P, GH)  # on every step's input projection
        d_gh = acts.new_empty(P, GH) if kind == "gru" else d_gx  # on h W_hh^T + b_hh
        d_contexts = contexts.new_empty(P, contexts.size(1))  # (P, M)
        d_queries = before.new_empty(P, A)
        d_scores = alphas.new_empty(P, N)
        d_slots_proj = hidden.new_zeros(B, N, A)  # sum over steps of (1 - hidden^2) x dscore (times w at the end)
        outputs_grad = None if d_outputs is None else gather_rows(d_outputs, where)  # (P, H)
        alphas_grad = None if d_alphas is None else gather_rows(d_alphas, where)  # (P, N)
        dh = before.new_zeros(B, H)  # rows not active yet (their caption ended) get no gradient
        dc = before.new_zeros(B, H) if kind == "lstm" else None
        one = hidden.new_ones(())
        slots_by_column = slots.transpose(1, 2).contiguous()  # (B, M, N): a row vector times it is the fast bmm
        offset = P
        for t in range(len(active) - 1, -1, -1):
            n = active[t]
            offset -= n
            rows = slice(offset, offset + n)
            dh_t = dh[:n] if outputs_grad is None else dh[:n] + outputs_grad[rows]
            step_d_gx = d_gx[rows]
            step_d_gh = d_gh[rows] if kind == "gru" else step_d_gx
            dc_n, direct = cell_backward(kind, dh_t, None if dc is None else dc[:n], acts[rows], tape[rows],
                                         before[rows], step_d_gx, step_d_gh)
            if dc is not None:
                dc[:n] = dc_n
            step_dh = torch.mm(step_d_gh, w_hh)  # (n, H)
            if direct is not None:
                step_dh += direct
            d_context = torch.mm(step_d_gx, w_context, out=d_contexts[rows])  # (n, M)
            d_alpha = torch.bmm(d_context.unsqueeze(1), slots_by_column[:n]).squeeze(1)  # (n, N)
            if alphas_grad is not None:
                d_alpha += alphas_grad[rows]
            alpha = alphas[rows]
            d_score = torch.mul(alpha, d_alpha - (alpha * d_alpha).sum(-1, keepdim=True), out=d_scores[rows])  # (n, N)
            slope = torch.addcmul(one, hidden[rows], hidden[rows], value=-1)  # (n, N, A): tanh' = 1 - tanh^2
            d_query = torch.bmm(d_score.unsqueeze(1), slope, out=d_queries[rows].unsqueeze(1)).squeeze(1)  # (n, A)
            d_slots_proj[:n].addcmul_(slope, d_score.unsqueeze(2))
            dh[:n] = torch.addmm(step_dh, d_query.mul_(w), w_query)  # the step's query was h
        d_slots_proj.mul_(w)
        d_w = torch.mv(hidden.view(P * N, A).t(), d_scores.view(P * N))  # (A,): every step's scores in one product
        d_w_hh = torch.mm(d_gh.t(), before)  # (G H, H): every step's share in one product
        d_b_hh = d_gh.sum(0)
        d_w_context = torch.mm(d_gx.t(), contexts)  # (G H, M)
        d_w_query = torch.mm(d_queries.t(), before)  # (A, H)
        d_slots = torch.bmm(scatter_rows(alphas, where, B, L).transpose(1, 2), scatter_rows(d_contexts, where, B, L))
        return (None, scatter_rows(d_gx, where, B, L), d_slots, d_slots_proj, None, dh, dc, d_w_query, d_w.view(1, A),
                d_w_context, d_w_hh, d_b_hh, None)


def packed_positions(active: tuple[int, ...], length: int, device: torch.device) -> Tensor:
    """(P,) long: where each packed row (step t's first active[t] rows, t = 0, 1, ..) sits in a flat (B * L) grid."""
    return torch.cat([torch.arange(n, device=device) * length + t for t, n in enumerate(active)])


def scatter_rows(packed: Tensor, where: Tensor, batch: int, length: int) -> Tensor:
    """Packed rows (P, D...) -> (batch, length, D...), zeros where no step computed."""
    grid = packed.new_zeros(batch * length, *packed.shape[1:])
    grid.index_copy_(0, where, packed)
    return grid.view(batch, length, *packed.shape[1:])


def gather_rows(grid: Tensor, where: Tensor) -> Tensor:
    """(batch, length, D...) -> the packed rows (P, D...)."""
    return grid.reshape(-1, *grid.shape[2:]).index_select(0, where)
