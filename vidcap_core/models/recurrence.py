"""The arithmetic of one LSTM, GRU or tanh-RNN step, on nn.LSTM / nn.GRU / nn.RNN's own weights.

Two forms of the same step, in torch's gate order (LSTM i, f, g, o; GRU r, z, n) and weight layout:

- `cell_step`: ordinary autograd operations, from the input projection gx = x W_ih^T + b_ih. Decoding and
  any decoder that steps calls it; a caller that knows part of the input in advance projects that part
  for every step at once and adds the rest (Recurrent.step_projected).
- `cell_forward` / `cell_backward`: the same step with autograd off, writing what its backward pass needs
  into the caller's buffers, and that backward pass written out. A custom autograd Function that runs a
  whole time loop (attention_decoder.py) calls them, so the loop costs no autograd node per step and the
  weight gradients of all steps become one matrix product each.

`G` is the number of gates: 4 (LSTM), 3 (GRU), 1 (RNN); `H` the hidden size.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

GATES: dict[str, int] = {"lstm": 4, "gru": 3, "rnn": 1}


class LayerWeights(NamedTuple):
    """One layer of an nn.LSTM / GRU / RNN: W_ih (G H, I), b_ih (G H,), W_hh (G H, H), b_hh (G H,)."""

    w_ih: Tensor
    b_ih: Tensor
    w_hh: Tensor
    b_hh: Tensor


def cell_step(kind: str, gx: Tensor, h: Tensor, c: Tensor | None, w_hh: Tensor, b_hh: Tensor
              ) -> tuple[Tensor, Tensor | None]:
    """One step: input projection gx (B, G H), state h (B, H) [and an LSTM's c (B, H)] -> (h', c' or None)."""
    gh = torch.addmm(b_hh, h, w_hh.t())  # (B, G H) = h W_hh^T + b_hh
    H = h.size(1)
    if kind == "lstm":
        gates = gx + gh
        i = torch.sigmoid(gates[:, :H])
        f = torch.sigmoid(gates[:, H:2 * H])
        g = torch.tanh(gates[:, 2 * H:3 * H])
        o = torch.sigmoid(gates[:, 3 * H:])
        c_new = f * c + i * g
        return o * torch.tanh(c_new), c_new
    if kind == "gru":  # torch's GRU: the reset gate scales the hidden side of n, bias included
        rz = torch.sigmoid(gx[:, :2 * H] + gh[:, :2 * H])
        r, z = rz[:, :H], rz[:, H:]
        n = torch.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
        return n + z * (h - n), None  # = (1 - z) n + z h
    return torch.tanh(gx + gh), None


def tape_width(kind: str, hidden_size: int) -> int:
    """Values per row `cell_forward` keeps beside the gate activations: an LSTM's c and tanh(c'), a
    GRU's h W_hn^T + b_hn, nothing for an RNN."""
    return {"lstm": 2 * hidden_size, "gru": hidden_size, "rnn": 0}[kind]


def cell_forward(kind: str, gx: Tensor, gh: Tensor, h: Tensor, c: Tensor | None, acts: Tensor, tape: Tensor
                 ) -> tuple[Tensor, Tensor | None]:
    """`cell_step` with autograd off, from both projections gx, gh (B, G H): writes the gate activations
    into acts (B, G H) (an RNN's: h') and what the backward pass needs into tape (B, tape_width)."""
    H = h.size(1)
    if kind == "lstm":
        torch.add(gx, gh, out=acts)
        acts[:, :2 * H].sigmoid_()  # i, f
        acts[:, 2 * H:3 * H].tanh_()  # g
        acts[:, 3 * H:].sigmoid_()  # o
        tape[:, :H] = c
        c_new = acts[:, H:2 * H] * c + acts[:, :H] * acts[:, 2 * H:3 * H]  # f c + i g
        return acts[:, 3 * H:] * torch.tanh(c_new, out=tape[:, H:]), c_new
    if kind == "gru":
        torch.add(gx[:, :2 * H], gh[:, :2 * H], out=acts[:, :2 * H]).sigmoid_()  # r, z
        tape.copy_(gh[:, 2 * H:])  # h W_hn^T + b_hn
        n = torch.add(gx[:, 2 * H:], acts[:, :H] * gh[:, 2 * H:], out=acts[:, 2 * H:]).tanh_()
        return n + acts[:, H:2 * H] * (h - n), None
    return torch.add(gx, gh, out=acts).tanh_(), None


def cell_backward(kind: str, dh: Tensor, dc: Tensor | None, acts: Tensor, tape: Tensor, h: Tensor,
                  d_gx: Tensor, d_gh: Tensor) -> tuple[Tensor | None, Tensor | None]:
    """The backward pass of one `cell_forward` step, given dh (B, H) on h' [and dc on c'] and the state h
    it started from. Writes the gradient of gx into d_gx and of gh = h W_hh^T + b_hh into d_gh (B, G H;
    pass the same tensor for both except for a GRU, whose reset gate scales gh's n part).
    Returns (dc on c, or None; the gradient that reaches h directly rather than through gh, or None);
    the caller adds d_gh W_hh to the latter. Few, whole-width operations: at a decoder's sizes each
    costs more to launch than to compute."""
    H = h.size(1)
    if kind == "lstm":
        i, f, g = acts[:, :H], acts[:, H:2 * H], acts[:, 2 * H:3 * H]
        c_prev, tanh_c = tape[:, :H], tape[:, H:]
        slope_c = torch.addcmul(_ONE.to(tape), tanh_c, tanh_c, value=-1)  # tanh'(c') = 1 - tanh(c')^2
        dc_new = torch.addcmul(dc, dh * acts[:, 3 * H:], slope_c)  # (B, H) on c'
        torch.mul(dc_new, g, out=d_gx[:, :H])  # on i
        torch.mul(dc_new, c_prev, out=d_gx[:, H:2 * H])  # on f
        torch.mul(dc_new, i, out=d_gx[:, 2 * H:3 * H])  # on g
        torch.mul(dh, tanh_c, out=d_gx[:, 3 * H:])  # on o
        slopes = torch.addcmul(acts, acts, acts, value=-1)  # sigmoid' = s (1 - s) for i, f, o ...
        torch.addcmul(_ONE.to(g), g, g, value=-1, out=slopes[:, 2 * H:3 * H])  # ... tanh' = 1 - g^2 for g
        d_gx.mul_(slopes)
        return dc_new * f, None
    if kind == "gru":
        rz, n = acts[:, :2 * H], acts[:, 2 * H:]
        direct = dh * rz[:, H:]  # h' = n + z (h - n) = (1 - z) n + z h reads h directly
        dn = torch.mul(dh - direct, torch.addcmul(_ONE.to(n), n, n, value=-1), out=d_gx[:, 2 * H:])  # on n's input
        torch.mul(dn, tape, out=d_gx[:, :H])  # on r, before sigmoid'
        torch.mul(dh, h - n, out=d_gx[:, H:2 * H])  # on z, before sigmoid'
        d_gx[:, :2 * H].mul_(torch.addcmul(rz, rz, rz, value=-1))
        d_gh[:, :2 * H] = d_gx[:, :2 * H]
        torch.mul(dn, rz[:, :H], out=d_gh[:, 2 * H:])  # r scales gh's n part
        return None, direct
    torch.mul(dh, torch.addcmul(_ONE.to(acts), acts, acts, value=-1), out=d_gx)
    if d_gh is not d_gx:
        d_gh.copy_(d_gx)
    return None, None


_ONE = torch.ones(())


class _Sequence(torch.autograd.Function):
    """One layer over S steps of every row: the forward loop with autograd off, the backward pass through
    time written out with `cell_backward`, the weight gradient of all steps one matrix product."""

    @staticmethod
    def forward(ctx: Any, kind: str, gx: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor) -> tuple[Tensor, Tensor]:
        B, S, GH = gx.shape
        H = h0.size(1)
        before = gx.new_empty(S, B, H)  # the h each step starts from
        outputs = gx.new_empty(B, S, H)
        acts = gx.new_empty(S, B, GH)
        tape = gx.new_empty(S, B, tape_width(kind, H))
        hh_t = w_hh.t()
        h = h0
        for t in range(S):
            before[t] = h
            gh = torch.addmm(b_hh, h, hh_t)  # (B, G H)
            h, _ = cell_forward(kind, gx[:, t], gh, h, None, acts[t], tape[t])
            outputs[:, t] = h
        ctx.kind = kind
        ctx.save_for_backward(before, acts, tape, w_hh)
        return outputs, h.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, d_outputs: Tensor, d_last: Tensor) -> tuple[Any, ...]:
        before, acts, tape, w_hh = ctx.saved_tensors
        kind = ctx.kind
        S, B, GH = acts.shape
        d_gx = torch.empty_like(acts)  # (S, B, G H)
        d_gh = torch.empty_like(acts) if kind == "gru" else d_gx
        dh = d_last.clone()
        for t in range(S - 1, -1, -1):
            dh_t = dh + d_outputs[:, t]
            _, direct = cell_backward(kind, dh_t, None, acts[t], tape[t], before[t], d_gx[t], d_gh[t])
            dh = torch.mm(d_gh[t], w_hh)
            if direct is not None:
                dh += direct
        rows = d_gh.view(S * B, GH)
        d_w_hh = torch.mm(rows.t(), before.view(S * B, -1))  # (G H, H)
        return None, d_gx.transpose(0, 1), dh, d_w_hh, rows.sum(0)


def run_sequence(kind: str, gx: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor) -> tuple[Tensor, Tensor]:
    """A GRU or RNN layer over whole sequences: gx (B, S, G H) input projections (b_ih included), h0 (B, H)
    -> outputs (B, S, H), last h (B, H). (An LSTM layer runs faster as oneDNN's fused kernel: nn.LSTM.)"""
    if kind not in ("gru", "rnn"):
        raise ValueError(f"run_sequence computes GRU and RNN layers, not {kind!r}")
    return _Sequence.apply(kind, gx, h0, w_hh, b_hh)
