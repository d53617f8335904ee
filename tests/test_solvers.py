"""EpochRunner (deltaprop.estimators.solvers): scikit-learn's visiting order, each epoch a transaction.

The visiting order's truth is scikit-learn's draw (``sklearn.utils.shuffle`` of the previous
order: ``random_state.shuffle(arange(n))``, then the order indexed by that permutation) and its
random state afterwards; the transaction's truth is a copy of the weights and the optimizer state
taken before the epoch.
"""

import numpy as np
import pytest
from sklearn.utils import shuffle as sklearn_shuffle

from deltaprop import MLP
from deltaprop.estimators.objective import SklearnLoss
from deltaprop.estimators.solvers import EpochRunner, Optimizer


def sklearn_orders(seed, n, epochs):
    """The orders of ``epochs`` epochs as scikit-learn draws them, and its random state after."""
    rs = np.random.RandomState(seed)
    order, orders = np.arange(n), []
    for _ in range(epochs):
        order = sklearn_shuffle(order, random_state=rs)
        orders.append(order)
    return orders, rs.get_state()


def assert_same_state(a, b):
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))


@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
@pytest.mark.parametrize("n", [1, 2, 17, 1347])
def test_shuffle_in_place_equals_shuffled_arange_indexing(seed, n):
    """``rs.shuffle(order)`` == ``order[perm]`` with ``perm`` = ``rs.shuffle(arange(n))``, epoch after epoch."""
    rs_index, rs_in_place = np.random.RandomState(seed), np.random.RandomState(seed)
    indexed = np.arange(n, dtype=np.intp)
    in_place = np.arange(n, dtype=np.intp)
    for _ in range(8):
        perm = np.arange(n)
        rs_index.shuffle(perm)
        indexed = indexed[perm]
        rs_in_place.shuffle(in_place)
        np.testing.assert_array_equal(in_place, indexed)
    assert_same_state(rs_in_place.get_state(), rs_index.get_state())


def small_runner(seed, n=23, batch_size=5, shuffle=True):
    rng = np.random.RandomState(0)
    net = MLP([3, 4, 2], hidden="tanh", output="softmax", loss="cross_entropy", backend="numpy",
              dtype="float64", random_state=0)
    X = rng.randn(n, 3)
    T = np.eye(2)[rng.randint(0, 2, n)]
    s = np.ones(n)
    runner = EpochRunner(net, X, T, s, batch_size, SklearnLoss(net.loss_function, T), False,
                         np.random.RandomState(seed) if shuffle else None, None, "average")
    opt = Optimizer("adam", net.w.shape[0], net.dtype, eta0=0.01, lr_schedule="constant",
                    momentum=0.9, nesterov=True, power_t=0.5, beta_1=0.9, beta_2=0.999,
                    epsilon=1e-8, alpha=1e-4)
    return runner, opt


class Recorder:
    """Stands in for the engine's epochs: records each epoch's order, optionally changes the
    weights and the optimizer state and then raises."""

    def __init__(self, runner, fail=False):
        self.runner, self.fail, self.orders = runner, fail, []

    def __call__(self, X, T, s, orders, solver, hyper, state, t, losses):
        self.orders.append(orders[0].copy())
        if self.fail:
            self.runner.net.w[:] = np.nan
            state[:] = -1.0
            t[:] += 99
            raise KeyboardInterrupt
        losses[:] = 0.0
        return losses


@pytest.mark.parametrize("seed", [0, 3, 42])
def test_runner_visits_sklearn_orders(seed):
    runner, opt = small_runner(seed)
    recorder = Recorder(runner)
    runner.epochs = recorder
    for _ in range(6):
        runner.run(opt)
    expected, state = sklearn_orders(seed, 23, 6)
    for got, want in zip(recorder.orders, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert_same_state(runner.random_state.get_state(), state)


def test_runner_without_shuffle_visits_rows_in_order():
    runner, opt = small_runner(0, shuffle=False)
    recorder = Recorder(runner)
    runner.epochs = recorder
    for _ in range(3):
        runner.run(opt)
    for got in recorder.orders:
        np.testing.assert_array_equal(got, np.arange(23))


def test_epoch_that_raises_restores_weights_and_optimizer_state_bit_for_bit():
    runner, opt = small_runner(0)
    with runner:
        for _ in range(3):  # real epochs: the state is no longer all zeros
            runner.run(opt)
    w, state, t = runner.net.w.copy(), opt.state.copy(), opt.t.copy()
    assert np.any(state != 0) and t[0] > 0
    runner.epochs = Recorder(runner, fail=True)
    for _ in range(2):  # twice: the kept copies are taken afresh for each epoch
        with pytest.raises(KeyboardInterrupt):
            runner.run(opt)
        assert runner.net.w.tobytes() == w.tobytes()
        assert opt.state.tobytes() == state.tobytes()
        assert opt.t.tobytes() == t.tobytes()


def test_runner_keeps_one_set_of_copies_for_its_epochs():
    runner, opt = small_runner(0)
    with runner:
        runner.run(opt)
        saved = list(runner.saved)
        runner.run(opt)
    assert all(a is b for a, b in zip(runner.saved, saved, strict=True))
    other = opt.copy()  # an optimizer of the same shapes uses the same copies
    with runner:
        runner.run(other)
    assert all(a is b for a, b in zip(runner.saved, saved, strict=True))
