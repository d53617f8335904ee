"""Training calls are transactions: on any error the model is exactly what it was before.

``MLP.fit``, ``sgd_epoch`` and ``batch_epoch`` cut their work into compiled calls of
``buffers.WORK_PER_CALL`` weight visits (so Ctrl-C is seen between calls, see
``test_interrupt.py``). These tests shrink that size so that a fit makes many calls, then make a
late one fail — by divergence, by KeyboardInterrupt, by an exception from the progress callback —
and compare the weights, ``loss_curve_`` and the random state bit for bit with a copy taken
before the call.
"""

import warnings

import numpy as np
import pytest

import deltaprop
from deltaprop import MLP
from deltaprop.contract import SOLVERS
from deltaprop.engine import buffers
from deltaprop.engine.epochs import OneThreadEpochs

#: y = w x + b with x = 2 and η = 0.6: each sample multiplies the error by 1 - η (x² + 1) = -2,
#: so the loss overflows after a known number of samples (about 64 in float32, 512 in float64).
X_DIVERGE = np.full((16, 1), 2.0)
T_DIVERGE = np.ones(16)
LR_DIVERGE = 0.6


def samples_per_call(monkeypatch, net, rows):
    """Make every compiled call of ``net`` process ``rows`` samples."""
    monkeypatch.setattr(buffers, "WORK_PER_CALL", rows * (buffers.SAMPLE_OVERHEAD + net.w.shape[0]))


def snapshot(net):
    return net.w.copy(), list(net.loss_curve_), net._rng.get_state()


def assert_unchanged(net, before):
    w, curve, rng_state = before
    assert net.w.tobytes() == w.tobytes()  # bit for bit
    assert net.loss_curve_ == curve
    after = net._rng.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(after, rng_state))


def linear_net(backend, dtype):
    return MLP([1, 1], hidden="identity", output="identity", loss="squared_error",
               backend=backend, dtype=np.dtype(dtype).name, random_state=0)


def test_fit_that_diverges_after_several_calls_restores_everything(backend, dtype, monkeypatch):
    net = linear_net(backend, dtype)
    net.fit(X_DIVERGE, T_DIVERGE, epochs=3, lr=0.01)  # a history to keep
    before = snapshot(net)
    samples_per_call(monkeypatch, net, X_DIVERGE.shape[0])  # one epoch per call
    calls = []
    with pytest.raises(FloatingPointError, match="restored to their values before this fit"):
        net.fit(X_DIVERGE, T_DIVERGE, epochs=10_000, lr=LR_DIVERGE,
                progress=lambda k, loss: calls.append(loss))
    assert len(calls) >= 3, "the fit must diverge only after several successful calls"
    assert max(calls) > 1e30  # the last successful calls were far from the start
    assert_unchanged(net, before)
    # the restored random state replays: the next fit equals one on an untouched twin
    twin = linear_net(backend, dtype)
    twin.fit(X_DIVERGE, T_DIVERGE, epochs=3, lr=0.01)
    net.fit(X_DIVERGE, T_DIVERGE, epochs=2, lr=0.01)
    twin.fit(X_DIVERGE, T_DIVERGE, epochs=2, lr=0.01)
    np.testing.assert_array_equal(net.w, twin.w)


@pytest.mark.parametrize("method", ["sgd_epoch", "batch_epoch"])
def test_epoch_that_diverges_mid_epoch_restores_w(backend, dtype, method, monkeypatch):
    net = linear_net(backend, dtype)
    X = np.full((2048, 1), 2.0)
    T = np.ones(2048)
    samples_per_call(monkeypatch, net, 4)  # an epoch is hundreds of calls, the first ones finite
    w = net.w.copy()
    with pytest.raises(FloatingPointError, match="restored"):
        if method == "sgd_epoch":
            net.sgd_epoch(X, T, LR_DIVERGE)
        else:
            net.batch_epoch(X, T, LR_DIVERGE, 2)
    assert net.w.tobytes() == w.tobytes()


class Interrupt:
    """Wrap ``OneThreadEpochs._kernel``: run the real kernel, then raise ``exc`` after call ``at``."""

    def __init__(self, monkeypatch, at, exc=KeyboardInterrupt):
        self.calls, self.at, self.exc = 0, at, exc
        self.kernel = OneThreadEpochs._kernel
        monkeypatch.setattr(OneThreadEpochs, "_kernel", self)

    def __get__(self, obj, cls):
        return lambda *args: self(obj, *args)

    def __call__(self, epochs, *args):
        self.kernel(epochs, *args)
        self.calls += 1
        if self.calls == self.at:
            raise self.exc()


@pytest.mark.parametrize("exc", [KeyboardInterrupt, MemoryError])
def test_fit_interrupted_between_calls_restores_everything(backend, dtype, exc, monkeypatch):
    rng = np.random.RandomState(0)
    X, T = rng.randn(40, 3), rng.randn(40, 2)
    net = MLP([3, 5, 2], backend=backend, dtype=np.dtype(dtype).name, random_state=0)
    net.fit(X, T, epochs=2, lr=0.01)
    before = snapshot(net)
    samples_per_call(monkeypatch, net, 8)  # five calls an epoch
    interrupt = Interrupt(monkeypatch, at=12, exc=exc)  # in the third epoch, after two finished ones
    with pytest.raises(exc):
        net.fit(X, T, epochs=5, lr=0.01)
    assert interrupt.calls == 12
    assert_unchanged(net, before)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_epoch_interrupted_mid_epoch_restores_w(backend, batch_size, monkeypatch):
    rng = np.random.RandomState(1)
    X, T = rng.randn(30, 3), rng.randn(30, 2)
    net = MLP([3, 5, 2], backend=backend, random_state=0)
    samples_per_call(monkeypatch, net, 6)
    Interrupt(monkeypatch, at=2)
    w = net.w.copy()
    with pytest.raises(KeyboardInterrupt):
        net.batch_epoch(X, T, 0.05, batch_size)
    assert net.w.tobytes() == w.tobytes()


def test_progress_callback_error_restores_everything(backend):
    rng = np.random.RandomState(2)
    X, T = rng.randn(20, 2), rng.randn(20, 1)
    net = MLP([2, 3, 1], backend=backend, random_state=0)
    before = snapshot(net)

    def progress(k, loss):
        raise ValueError("the caller's bar broke")

    with pytest.raises(ValueError, match="bar broke"):
        net.fit(X, T, epochs=3, lr=0.01, progress=progress)
    assert_unchanged(net, before)


@pytest.mark.parametrize("solver", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_epochs_cut_into_calls_equal_one_call(backend, dtype, solver, batch_size, monkeypatch):
    """Parts of an epoch (whole batches) in separate calls are the same computation as one call."""
    rng = np.random.RandomState(3)
    X, T = rng.randn(37, 4).astype(dtype), rng.randn(37, 3).astype(dtype)
    orders = np.stack([rng.permutation(37) for _ in range(2)]).astype(np.intp)
    results = []
    for rows in (None, batch_size * 2):
        net = MLP([4, 6, 3], backend=backend, dtype=np.dtype(dtype).name, random_state=0)
        if rows:
            samples_per_call(monkeypatch, net, rows)
        hyper = np.array([0.01, 1e-3, 0.9, 0.9, 0.999, 1e-8], dtype=dtype)
        state = np.zeros((2, net.w.shape[0]), dtype=dtype)
        t = np.zeros(1, dtype=np.int64)
        losses = np.zeros((2, 2))
        epochs = OneThreadEpochs(net, 4, 3, batch_size)
        assert epochs.samples_per_call(SOLVERS[solver]) < 37 or not rows
        epochs(X, T, np.ones(37, dtype=dtype), orders, SOLVERS[solver], hyper, state, t, losses)
        results.append((net.w.copy(), state.copy(), t.copy(), losses.copy()))
    (w1, s1, t1, l1), (w2, s2, t2, l2) = results
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(w2, w1, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(s2, s1, rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(t2, t1)
    np.testing.assert_allclose(l2, l1, rtol=rtol)


@pytest.mark.parametrize("method", ["sgd_epoch", "batch_epoch"])
def test_empty_order_is_an_epoch_that_visits_nothing(backend, dtype, method):
    rng = np.random.RandomState(4)
    X, T = rng.randn(5, 2), rng.randn(5, 1)
    net = MLP([2, 3, 1], backend=backend, dtype=np.dtype(dtype).name, random_state=0)
    w = net.w.copy()
    empty = np.array([], dtype=np.intp)
    if method == "sgd_epoch":
        E = net.sgd_epoch(X, T, 0.1, order=empty)
    else:
        E = net.batch_epoch(X, T, 0.1, 2, order=empty)
    assert E == 0.0
    assert net.w.tobytes() == w.tobytes()


@pytest.mark.parametrize("solver, batch_size", [("sgd", 1), ("adam", 1), ("adam", 5)])
def test_estimator_interrupted_mid_epoch_keeps_its_last_whole_epoch(backend, solver, batch_size,
                                                                    monkeypatch):
    """scikit-learn's Ctrl-C contract: fit stops, warns, and keeps the epochs it finished.

    The interrupted epoch is rolled back whole, so the weights equal those of a fit that ran
    only the finished epochs.
    """
    rng = np.random.RandomState(5)
    X = rng.randn(60, 4)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    kw = dict(hidden_layer_sizes=(6,), solver=solver, batch_size=batch_size, random_state=0,
              learning_rate_init=0.01, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        two = deltaprop.MLPClassifier(max_iter=2, **kw).fit(X, y)
    P = two._mlp.w.shape[0]
    monkeypatch.setattr(buffers, "WORK_PER_CALL", 10 * (buffers.SAMPLE_OVERHEAD + P) * 4)
    rule = two._optimizer.code  # sgd with scikit-learn's default momentum: Nesterov
    calls_per_epoch = -(-60 // OneThreadEpochs(two._mlp, 4, 1, batch_size).samples_per_call(rule))
    assert calls_per_epoch >= 2
    Interrupt(monkeypatch, at=2 * calls_per_epoch + 1)  # inside the third epoch
    est = deltaprop.MLPClassifier(max_iter=5, **kw)
    with pytest.warns(UserWarning, match="interrupted"):
        est.fit(X, y)
    assert est.n_iter_ == 2
    assert len(est.loss_curve_) == 2
    np.testing.assert_allclose(est.loss_curve_, two.loss_curve_, rtol=1e-12)
    for a, b in zip(est.coefs_ + est.intercepts_, two.coefs_ + two.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_estimator_partial_fit_interrupted_leaves_the_model_as_it_was(backend, monkeypatch):
    rng = np.random.RandomState(6)
    X = rng.randn(60, 4)
    y = rng.randn(60)
    est = deltaprop.MLPRegressor(hidden_layer_sizes=(6,), solver="adam", batch_size=1,
                                 random_state=0, backend=backend)
    est.partial_fit(X, y)
    w, t, curve = est._mlp.w.copy(), est.t_, list(est.loss_curve_)
    opt = est._optimizer
    state, steps = opt.state.copy(), opt.t.copy()
    samples_per_call(monkeypatch, est._mlp, 4)
    Interrupt(monkeypatch, at=3)
    with pytest.warns(UserWarning, match="interrupted"):
        est.partial_fit(X, y)
    assert est._mlp.w.tobytes() == w.tobytes()
    assert est._optimizer.state.tobytes() == state.tobytes()
    np.testing.assert_array_equal(est._optimizer.t, steps)
    assert est.t_ == t
    assert est.loss_curve_ == curve


def test_estimator_interrupt_as_an_error_leaves_the_fitted_model_as_it_was(backend, monkeypatch):
    """With TrainingInterrupted turned into an error (as the command line does), Ctrl-C raises
    and the whole fit is undone."""
    from deltaprop.estimators import TrainingInterrupted

    rng = np.random.RandomState(7)
    X, y = rng.randn(40, 3), rng.randn(40)
    est = deltaprop.MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", batch_size=1, max_iter=3,
                                 random_state=0, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    w, curve, n_iter = est._mlp.w.copy(), list(est.loss_curve_), est.n_iter_
    samples_per_call(monkeypatch, est._mlp, 10)
    Interrupt(monkeypatch, at=6)  # in the second epoch of the new fit
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingInterrupted)
        with pytest.raises(TrainingInterrupted):
            est.set_params(warm_start=True).fit(X, y)
    assert est._mlp.w.tobytes() == w.tobytes()
    assert est.loss_curve_ == curve and est.n_iter_ == n_iter
