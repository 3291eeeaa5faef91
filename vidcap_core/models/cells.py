"""Recurrent cells: one validated lookup, and the one place that knows LSTM state is `(h, c)`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from vidcap_core.errors import ConfigError
from vidcap_core.models.recurrence import LayerWeights, cell_step, run_sequence

# nn.RNN with its default tanh non-linearity is the reports' "plain RNN".
CELLS: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}

# A recurrent state: `h` of shape (layers, B, H), an LSTM's `(h, c)`, or a tuple of such
# states for models with several stacks (S2VT). Every tensor has the batch on dim 1.
State = Union[Tensor, tuple["State", ...]]


def cell_class(name: str) -> type[nn.RNNBase]:
    try:
        return CELLS[name]
    except KeyError:
        raise ConfigError(f"unknown cell {name!r}: choose one of {', '.join(CELLS)}") from None


def map_state(fn: Callable[[Tensor], Tensor], state: State) -> State:
    """Apply `fn` to every tensor of a (possibly nested) state."""
    if isinstance(state, Tensor):
        return fn(state)
    return tuple(map_state(fn, part) for part in state)


def select_state(state: State, index: Tensor) -> State:
    """Reorder / repeat the batch of a state: rows `index` of dim 1 of every tensor."""
    return map_state(lambda t: t.index_select(1, index), state)


class Recurrent(nn.Module):
    """A batch-first LSTM, GRU or RNN stack with zero-state creation, sequence and step calls.

    The weights live in an nn.LSTM / nn.GRU / nn.RNN (`self.rnn`; checkpoints keep its parameter names).
    Whole sequences go through it (on a CPU, an LSTM layer is oneDNN's fused kernel); single steps are
    recurrence.py's arithmetic on the same weights, which costs less per call than the module's
    set-up for a one-step sequence (issue #20).
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        rnn_class = cell_class(cell)
        self.rnn = rnn_class(
            input_size,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,  # nn.* apply it between layers only
        )
        self.kind = cell
        self.is_lstm = rnn_class is nn.LSTM
        self.num_layers = num_layers
        self.hidden_size = hidden_size

    def zero_state(self, batch_size: int) -> State:
        h = self.rnn.weight_hh_l0.new_zeros(self.num_layers, batch_size, self.hidden_size)  # (layers, B, H)
        return (h, torch.zeros_like(h)) if self.is_lstm else h

    def top_hidden(self, state: State) -> Tensor:
        """The last layer's hidden vector, e.g. the query for attention."""
        h = state[0] if self.is_lstm else state
        return h[-1]  # (B, H)

    def layer_weights(self, layer: int = 0) -> LayerWeights:
        """W_ih (G H, I), b_ih, W_hh (G H, H), b_hh of `layer`, in torch's gate order."""
        return LayerWeights(*(getattr(self.rnn, f"{name}_l{layer}")
                              for name in ("weight_ih", "bias_ih", "weight_hh", "bias_hh")))

    def forward(self, x: Tensor, state: State | None = None, mask: Tensor | None = None) -> tuple[Tensor, State]:
        """Run over a whole sequence `x` (B, S, I) in one call.

        `mask` (B, S) bool must be a prefix mask (valid steps first). Padded steps are
        skipped by packing: they do not change the state and their outputs are zeros.
        """
        B, S, _ = x.shape
        if state is None:
            state = self.zero_state(B)
        if mask is None or bool(mask.all()):
            if self.kind != "gru" or x.is_cuda:
                return self.rnn(x, state)  # (B, S, H), state: oneDNN's fused LSTM layer / torch's RNN on a CPU, cuDNN on a GPU
            return self._written_out(x, state)
        lengths = mask.sum(1).cpu()  # (B,) pack_padded_sequence wants CPU lengths
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed, state)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=S)  # (B, S, H)
        return out, state

    def _written_out(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """A GRU stack over whole sequences as recurrence.run_sequence layers: (B, S, I) -> (B, S, H),
        h (layers, B, H). torch's own CPU GRU runs each step as a dozen autograd operations (a tanh RNN stays
        torch's: written out it measured 1.06-1.08x slower, issue #20)."""
        last = []
        out = x
        for layer in range(self.num_layers):
            weights = self.layer_weights(layer)
            if layer > 0:  # nn.*'s dropout between layers
                out = F.dropout(out, self.rnn.dropout, self.training)
            gx = F.linear(out, weights.w_ih, weights.b_ih)  # (B, S, G H): every step's input in one product
            out, h = run_sequence(self.kind, gx, state[layer], weights.w_hh, weights.b_hh)
            last.append(h)
        return out, torch.stack(last)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One time step: `x` (B, I) -> output (B, H) and the new state."""
        return self.step_projected(F.linear(x, self.rnn.weight_ih_l0, self.rnn.bias_ih_l0), state)

    def step_projected(self, gx: Tensor, state: State) -> tuple[Tensor, State]:
        """One time step from layer 0's input projection gx = x W_ih^T + b_ih (B, G H): callers that know
        part of the input in advance project it for every step at once. -> output (B, H), new state."""
        h0, c0 = state if self.is_lstm else (state, None)  # (layers, B, H)
        new_h, new_c = [], []
        out = gx
        for layer in range(self.num_layers):
            weights = self.layer_weights(layer)
            if layer > 0:  # nn.*'s dropout between layers, then this layer's input projection
                gx = F.linear(F.dropout(out, self.rnn.dropout, self.training), weights.w_ih, weights.b_ih)
            out, c = cell_step(self.kind, gx, h0[layer], None if c0 is None else c0[layer], weights.w_hh, weights.b_hh)
            new_h.append(out)
            new_c.append(c)
        h_n = torch.stack(new_h)  # (layers, B, H)
        return out, ((h_n, torch.stack(new_c)) if self.is_lstm else h_n)
