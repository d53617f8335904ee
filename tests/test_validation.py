"""Validation: the learning-rate check takes every real number type and names what it rejects;
X's and T's checks find every bad value."""

import warnings
from fractions import Fraction

import numpy as np
import pytest

from deltaprop import MLP
from deltaprop.validation import check_lr, check_T, check_X


@pytest.mark.parametrize("lr", [0.01, 1, np.float32(0.5), np.float64(0.25), np.int64(2), Fraction(1, 100)])
def test_check_lr_takes_real_numbers(lr):
    assert check_lr(lr) == float(lr)
    assert type(check_lr(lr)) is float


@pytest.mark.parametrize("lr", [0, -1.0, Fraction(-1, 2), float("nan"), float("inf"), np.float32("inf"), True,
                                "0.1", None, 1j])
def test_check_lr_rejects_what_is_not_a_finite_positive_real(lr):
    with pytest.raises(ValueError, match="learning rate must be a finite number > 0"):
        check_lr(lr)


def test_fit_with_a_fraction_learning_rate_is_the_fit_with_its_float():
    rng = np.random.RandomState(0)
    X, T = rng.randn(20, 2), rng.randn(20, 1)
    nets = [MLP([2, 3, 1], backend="numpy", random_state=0).fit(X, T, epochs=2, lr=lr)
            for lr in (Fraction(1, 100), 0.01)]
    np.testing.assert_array_equal(nets[0].w, nets[1].w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "inf and -inf in one row"])
@pytest.mark.parametrize("n", [3, 5000])
def test_check_X_finds_every_nan_or_infinity(dtype, bad, n):
    """Small and large X (the large checked through its row sums first), each non-finite value
    alone, and +inf with -inf in one row (whose sum is NaN)."""
    rng = np.random.RandomState(0)
    for row, col in [(0, 0), (n - 1, 6), (n // 2, 3)]:
        X = rng.rand(n, 7).astype(dtype)
        if bad == "inf and -inf in one row":
            X[row, col], X[row, (col + 1) % 7] = np.inf, -np.inf
        else:
            X[row, col] = float(bad)
        with pytest.raises(ValueError, match="X contains NaN or infinity"):
            check_X(X, 7, np.dtype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_check_X_takes_large_finite_values_whose_row_sums_overflow(dtype):
    """...silently: the overflow of the row sums sends X to the element-wise check, no warning."""
    big = np.finfo(dtype).max / 2
    X = np.full((5000, 7), big, dtype=dtype)
    X[::2] *= -1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(check_X(X, 7, np.dtype(dtype)), X)


@pytest.mark.parametrize("dtype,atol", [(np.float32, 1e-5), (np.float64, 1e-10)])
def test_cross_entropy_targets_sum_to_one_within_allclose_tolerance(dtype, atol):
    """Rows summing to 1 within np.allclose's bound (atol + 1e-5 relative to 1) pass; rows
    just outside it are refused."""
    T = np.full((3000, 4), 0.25)
    ok, off = T.copy(), T.copy()
    ok[7, 0] += 0.9 * (atol + 1e-5)
    off[2999, 3] += 1.1 * (atol + 1e-5)
    assert np.allclose(ok.sum(axis=1), 1.0, atol=atol) and not np.allclose(off.sum(axis=1), 1.0, atol=atol)
    check_T(ok, 3000, 4, "cross_entropy", np.dtype(dtype))
    with pytest.raises(ValueError, match="one-hot rows"):
        check_T(off, 3000, 4, "cross_entropy", np.dtype(dtype))
