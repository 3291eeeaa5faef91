"""min_cost_assignment (the slot tracker's Hungarian method) == scipy's linear_sum_assignment."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from vidcap_core.features.assignment import min_cost_assignment

SHAPES = [(1, 1), (1, 4), (4, 1), (3, 3), (2, 5), (5, 2), (6, 6), (3, 8), (9, 4)]


@pytest.mark.parametrize("shape", SHAPES)
def test_same_pairs_as_scipy_on_random_costs(shape):
    """Continuous random costs have one optimum, so the pairs themselves must agree."""
    rng = np.random.default_rng(sum(shape))
    for _ in range(50):
        cost = rng.random(shape)
        rows, cols = min_cost_assignment(cost)
        expected_rows, expected_cols = linear_sum_assignment(cost)
        np.testing.assert_array_equal(rows, expected_rows)
        np.testing.assert_array_equal(cols, expected_cols)


@pytest.mark.parametrize("shape", SHAPES)
def test_same_total_as_scipy_with_gated_pairs_and_ties(shape):
    """The tracker's matrices: distances, pairs outside the gate at a huge cost, and repeated values."""
    rng = np.random.default_rng(100 + sum(shape))
    for _ in range(50):
        cost = np.round(rng.random(shape), 1)  # ties on purpose
        cost[rng.random(shape) < 0.4] = 1e6
        rows, cols = min_cost_assignment(cost)
        expected_rows, expected_cols = linear_sum_assignment(cost)
        assert len(rows) == min(shape) and len(set(cols.tolist())) == len(cols)
        np.testing.assert_array_equal(rows, np.sort(rows))
        assert cost[rows, cols].sum() == pytest.approx(cost[expected_rows, expected_cols].sum(), abs=1e-9)


@pytest.mark.parametrize("shape", [(0, 0), (0, 3), (3, 0)])
def test_empty_matrix_assigns_nothing(shape):
    rows, cols = min_cost_assignment(np.zeros(shape))
    assert rows.shape == cols.shape == (0,)
    assert rows.dtype == cols.dtype == np.int64


@pytest.mark.parametrize("cost", [np.zeros(3), np.array([[0.0, np.inf]]), np.array([[np.nan]])])
def test_bad_matrix_is_a_clear_error(cost):
    with pytest.raises(ValueError, match="min_cost_assignment"):
        min_cost_assignment(cost)
