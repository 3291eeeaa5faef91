"""Recurrent cells: one validated lookup, and the one place that knows LSTM state is `(h, c)`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Union

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from vidcap_core.errors import ConfigError

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
    """A batch-first LSTM, GRU or RNN stack with zero-state creation, sequence and step calls."""

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

    def forward(self, x: Tensor, state: State | None = None, mask: Tensor | None = None) -> tuple[Tensor, State]:
        """Run over a whole sequence `x` (B, S, I) in one (cuDNN) call.

        `mask` (B, S) bool must be a prefix mask (valid steps first). Padded steps are
        skipped by packing: they do not change the state and their outputs are zeros.
        """
        B, S, _ = x.shape
        if state is None:
            state = self.zero_state(B)
        if mask is None or bool(mask.all()):
            return self.rnn(x, state)  # (B, S, H), state
        lengths = mask.sum(1).cpu()  # (B,) pack_padded_sequence wants CPU lengths
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed, state)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=S)  # (B, S, H)
        return out, state

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One time step: `x` (B, I) -> output (B, H) and the new state."""
        out, state = self.rnn(x.unsqueeze(1), state)  # (B, 1, H)
        return out.squeeze(1), state  # (B, H)
