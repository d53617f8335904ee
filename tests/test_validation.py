"""The learning-rate check takes every real number type and names what it rejects."""

from fractions import Fraction

import numpy as np
import pytest

from deltaprop import MLP
from deltaprop.validation import check_lr


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
