"""Minimum-cost assignment (the Hungarian method) for the slot tracker's small cost matrices.

`min_cost_assignment(cost)` has the contract of `scipy.optimize.linear_sum_assignment`: for an (n, m)
cost matrix it pairs min(n, m) rows with distinct columns at the least total cost and returns
(rows, cols), rows ascending. It exists because importing `scipy.optimize` costs 0.3-0.5 s of every
`vidcap caption` (the package pulls in linalg, linprog and shgo), while the tracker only ever solves
matrices of a few tracks by a few detections per frame (NUM_SLOTS objects, a handful of regions).

The algorithm is Kuhn-Munkres with row and column potentials and shortest augmenting paths, O(n^2 m)
for n <= m (a taller matrix is solved transposed): row i joins the matching along the cheapest path in
reduced costs, then the potentials move so every reduced cost stays >= 0. Where several assignments
share the least total, it may pick a different one than scipy (the total is the same);
tests/test_assignment.py checks totals and pairs against scipy.
"""

from __future__ import annotations

import math

import numpy as np


def min_cost_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, m) finite costs -> (rows (k,), cols (k,)), k = min(n, m), rows ascending, least total cost."""
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"min_cost_assignment needs a 2-D cost matrix, got shape {cost.shape}.")
    if not np.isfinite(cost).all():
        raise ValueError("min_cost_assignment needs finite costs (use a large cost for a forbidden pair).")
    if cost.shape[0] > cost.shape[1]:
        cols, rows = _assign_rows(cost.T.tolist())  # each column of the tall matrix gets a row
        order = np.argsort(rows, kind="stable")
        return rows[order], cols[order]
    return _assign_rows(cost.tolist())


def _assign_rows(cost: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """n <= m: every row gets a distinct column. Indices 1.. are rows/columns; column 0 is the free
    start of each augmenting path."""
    n = len(cost)
    m = len(cost[0]) if n else 0
    row_potential = [0.0] * (n + 1)
    col_potential = [0.0] * (m + 1)
    row_of_col = [0] * (m + 1)  # the row matched to each column (0: none)
    for row in range(1, n + 1):
        row_of_col[0] = row
        previous_col = [0] * (m + 1)  # the path back to column 0
        slack = [math.inf] * (m + 1)  # cheapest reduced cost to reach each column so far
        done = [False] * (m + 1)
        col = 0
        while row_of_col[col]:  # until the path ends in a free column
            done[col] = True
            i = row_of_col[col]
            delta, next_col = math.inf, 0
            for j in range(1, m + 1):
                if done[j]:
                    continue
                reduced = cost[i - 1][j - 1] - row_potential[i] - col_potential[j]
                if reduced < slack[j]:
                    slack[j], previous_col[j] = reduced, col
                if slack[j] < delta:
                    delta, next_col = slack[j], j
            for j in range(m + 1):
                if done[j]:
                    row_potential[row_of_col[j]] += delta
                    col_potential[j] -= delta
                else:
                    slack[j] -= delta
            col = next_col
        while col:  # flip the path: each column takes the row of the column before it
            before = previous_col[col]
            row_of_col[col] = row_of_col[before]
            col = before
    pairs = sorted((row_of_col[j] - 1, j - 1) for j in range(1, m + 1) if row_of_col[j])
    rows = np.array([r for r, _ in pairs], dtype=np.int64)
    cols = np.array([c for _, c in pairs], dtype=np.int64)
    return rows, cols
