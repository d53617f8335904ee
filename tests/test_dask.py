"""deltaprop.dask: the estimators on a two-worker LocalCluster (processes, one thread each).

One cluster for the module (starting one takes seconds); every fit is small. The claims: L-BFGS
is the single-machine model; local SGD reaches the single machine's accuracy, learns as far per
epoch as one machine with every ``sync`` rule but plain averaging, and is reproducible;
synchronous batches are the single machine's algorithm; prediction on dask collections is lazy;
dataframes keep their feature names; the fitted model pickles and becomes a plain estimator; a
lost worker is survived when Dask can recompute the data, and reported (model unchanged) when it
cannot.
"""

import os
import pickle
import signal

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import deltaprop  # noqa: E402
import deltaprop.dask as ddp  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, random_state=0)


@pytest.fixture(scope="module")
def standard_digits():
    """Digits, a stratified 75/25 split, standardised with the training rows' statistics."""
    X, y = load_digits(return_X_y=True)
    X, Xte, y, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    scaler = StandardScaler().fit(X)
    return scaler.transform(X), scaler.transform(Xte), y, yte


def rel(a, b):
    return max(np.abs(x - y).max() / np.abs(x).max() for x, y in zip(a, b, strict=True))


def kill_a_worker(client):
    """SIGKILL one worker process of the LocalCluster (its nanny starts a fresh, empty one)."""
    pids = client.run(os.getpid)
    os.kill(pids[sorted(pids)[0]], signal.SIGKILL)


def test_lbfgs_equals_single_machine(client, digits):
    X, _, y, _ = digits
    params = dict(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=40, random_state=0)
    local = deltaprop.MLPClassifier(**params).fit(X, y)
    dist = ddp.MLPClassifier(**params).fit(da.from_array(X, chunks=(400, -1)),
                                           da.from_array(y, chunks=400))
    assert rel(local.coefs_, dist.coefs_) < 1e-6 and rel(local.intercepts_, dist.intercepts_) < 1e-6
    assert dist.n_iter_ == local.n_iter_ and dist.loss_ == pytest.approx(local.loss_, rel=1e-6)
    np.testing.assert_array_equal(dist.classes_, local.classes_)


def test_lbfgs_regressor_with_sample_weight_equals_single_machine(client, rng):
    X = rng.randn(300, 5)
    Y = np.c_[np.sin(X[:, 0]), X[:, 1] * X[:, 2]]
    s = rng.rand(300) + 0.5
    params = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, random_state=0)
    local = deltaprop.MLPRegressor(**params).fit(X, Y, sample_weight=s)
    dist = ddp.MLPRegressor(**params).fit(da.from_array(X, chunks=(70, 5)), da.from_array(Y),
                                          sample_weight=da.from_array(s, chunks=100))
    assert rel(local.coefs_, dist.coefs_) < 1e-6
    assert dist.loss_ == pytest.approx(local.loss_, rel=1e-6)


def test_numpy_input_is_scattered_and_fits_the_same_model(client, digits):
    X, _, y, _ = digits
    params = dict(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=20, random_state=0)
    local = deltaprop.MLPClassifier(**params).fit(X, y)
    dist = ddp.MLPClassifier(**params, client=client).fit(X, y)
    assert rel(local.coefs_, dist.coefs_) < 1e-6


def test_local_sgd_reaches_single_machine_accuracy(client, digits):
    X, Xte, y, yte = digits
    params = dict(hidden_layer_sizes=(32,), activation="tanh", solver="sgd", batch_size=1,
                  momentum=0.0, learning_rate_init=0.01, max_iter=10, random_state=0)
    local = deltaprop.MLPClassifier(**params).fit(X, y)
    dist = ddp.MLPClassifier(**params).fit(da.from_array(X, chunks=(674, -1)),
                                           da.from_array(y, chunks=674))
    assert dist.n_iter_ == local.n_iter_ == 10 and len(dist.loss_curve_) == 10
    # a test accuracy is an estimate from n test digits, with standard error sqrt(p (1 - p) / n):
    # two fits of the same quality differ by that noise; a gap beyond two standard errors is not
    p, n = local.score(Xte, yte), len(yte)
    assert abs(dist.score(Xte, yte) - p) <= 2 * np.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("solver, epochs", [("sgd", 10), ("adam", 5)])
@pytest.mark.parametrize("sync", ["lr-scaled", "sum", "batch"])
def test_two_partitions_learn_as_far_per_epoch_as_one_machine(client, standard_digits, solver,
                                                               epochs, sync):
    """With the estimators' defaults (batches of 200, η = 0.001, sgd with Nesterov momentum 0.9)
    training is limited by its number of steps: a few epochs on 2 partitions score within 0.05
    of one machine after the same epochs, on the 450 held-out digits. 0.05 is two standard
    errors of an accuracy near 0.5 estimated from 450 digits, sqrt(0.25 / 450) = 0.024: the
    noise between two fits of the same quality. Averaging the partitions' models at the single
    machine's η (sync="average") moves the weights about half as far per epoch and falls
    outside the tolerance, as the second assertion checks (the test tells the rules apart)."""
    X, Xte, y, yte = standard_digits
    params = dict(solver=solver, max_iter=epochs, random_state=0)
    Xd, yd = da.from_array(X, chunks=(674, -1)), da.from_array(y, chunks=674)
    p = deltaprop.MLPClassifier(**params).fit(X, y).score(Xte, yte)
    dist = ddp.MLPClassifier(**params, sync=sync).fit(Xd, yd)
    assert dist.n_iter_ == epochs and abs(dist.score(Xte, yte) - p) <= 0.05
    assert ddp.MLPClassifier(**params, sync="average").fit(Xd, yd).score(Xte, yte) < p - 0.05


@pytest.mark.parametrize("solver, momentum", [("sgd", 0.0), ("sgd", 0.9), ("adam", 0.0)])
def test_synchronous_batches_are_the_single_machine_algorithm(client, digits, solver, momentum):
    """sync="batch" on 2 partitions of 512 rows, batches of 128, visited in order: batch k is
    rows 64k .. 64k + 63 of each partition, their gradients added, one update. One machine
    given the rows in that order, unshuffled, takes the same batches, so the fits agree up to
    the order of summation (the L2 term and the loss records included)."""
    X, _, y, _ = digits
    X, y = X[:1024], y[:1024]
    params = dict(hidden_layer_sizes=(16,), activation="tanh", solver=solver, momentum=momentum,
                  batch_size=128, shuffle=False, learning_rate_init=0.01, alpha=0.001, max_iter=3,
                  random_state=0)
    rows = np.arange(1024).reshape(2, 8, 64).transpose(1, 0, 2).ravel()  # batch k: both halves' k-th
    local = deltaprop.MLPClassifier(**params).fit(X[rows], y[rows])
    dist = ddp.MLPClassifier(**params, sync="batch").fit(da.from_array(X, chunks=(512, -1)),
                                                         da.from_array(y, chunks=512))
    assert rel(local.coefs_ + local.intercepts_, dist.coefs_ + dist.intercepts_) < 1e-10
    np.testing.assert_allclose(dist.loss_curve_, local.loss_curve_, rtol=1e-12)
    assert dist.t_ == local.t_ and dist._optimizer.t[0] == local._optimizer.t[0]


@pytest.mark.parametrize("solver, batch_size", [("sgd", 1), ("adam", 32)])
def test_local_sgd_on_one_partition_is_the_single_machine_fit(client, digits, solver, batch_size):
    """One partition visited in order, averaged once per epoch, is the single machine's fit: the
    same initial weights (random_state), the same samples in the same order, the same kernel.
    Averaging computes (m w) / m and (m state) / m in float64; with m = 1024 samples, a power of
    two, both products are exact, so the weights, the optimizer state and the losses are equal
    bit for bit."""
    X, _, y, _ = digits
    X, y = X[:1024], y[:1024]
    params = dict(hidden_layer_sizes=(16,), activation="tanh", solver=solver, momentum=0.0,
                  batch_size=batch_size, shuffle=False, learning_rate_init=0.01, max_iter=3,
                  random_state=0)
    local = deltaprop.MLPClassifier(**params).fit(X, y)
    dist = ddp.MLPClassifier(**params).fit(da.from_array(X, chunks=(1024, -1)),
                                           da.from_array(y, chunks=1024))
    for a, b in zip(local.coefs_ + local.intercepts_, dist.coefs_ + dist.intercepts_, strict=True):
        np.testing.assert_array_equal(a, b)
    assert dist.loss_curve_ == local.loss_curve_ and dist.t_ == local.t_


@pytest.mark.parametrize("Estimator", [ddp.MLPClassifier, ddp.MLPRegressor])
def test_random_state_of_a_wrong_type_raises_naming_it(Estimator, digits):
    X, _, y, _ = digits
    with pytest.raises(ValueError, match="random_state"):
        Estimator(random_state=1.5).fit(X, y)


def test_local_adam_is_reproducible_for_a_fixed_partitioning(client, digits):
    X, _, y, _ = digits
    Xd, yd = da.from_array(X, chunks=(500, -1)), da.from_array(y, chunks=500)
    params = dict(hidden_layer_sizes=(16,), solver="adam", batch_size=32, max_iter=3,
                  random_state=1, average_every=160)
    a = ddp.MLPClassifier(**params).fit(Xd, yd)
    b = ddp.MLPClassifier(**params).fit(Xd, yd)
    for wa, wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert a.loss_curve_ == b.loss_curve_ and a.t_ == 3 * X.shape[0]


def test_early_stopping_scores_a_distributed_validation_split(client, digits):
    X, _, y, _ = digits
    est = ddp.MLPClassifier(hidden_layer_sizes=(16,), solver="adam", learning_rate_init=0.01,
                            early_stopping=True, n_iter_no_change=2, max_iter=30, random_state=0)
    est.fit(da.from_array(X, chunks=(500, -1)), da.from_array(y, chunks=500))
    assert len(est.validation_scores_) == est.n_iter_ == len(est.validation_loss_curve_)
    assert est.best_validation_score_ == max(est.validation_scores_) > 0.8


def test_predict_on_dask_arrays_is_lazy_and_blockwise(client, digits):
    X, Xte, y, yte = digits
    est = ddp.MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=10,
                            random_state=0).fit(X, y)
    Xd = da.from_array(Xte, chunks=(100, 32))
    pred, proba = est.predict(Xd), est.predict_proba(Xd)
    score = est.score(Xd, da.from_array(yte, chunks=50))
    assert all(isinstance(a, da.Array) for a in (pred, proba, score))
    assert pred.chunks == ((100, 100, 100, 100, 50),) and proba.shape == (450, 10)
    local = est.to_local()
    np.testing.assert_array_equal(pred.compute(), local.predict(Xte))
    np.testing.assert_allclose(proba.compute(), local.predict_proba(Xte))
    assert float(score) == pytest.approx(local.score(Xte, yte))
    u = np.linspace(0.1, 2.0, len(yte))
    weighted = est.score(Xd, yte, sample_weight=da.from_array(u, chunks=150))
    assert float(weighted) == pytest.approx(local.score(Xte, yte, sample_weight=u))
    np.testing.assert_array_equal(est.predict(Xte), local.predict(Xte))  # plain arrays as before


def test_dask_dataframe_input_keeps_feature_names(client, rng):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    X = pd.DataFrame(rng.randn(240, 3), columns=["a", "b", "c"])
    y = pd.Series(np.where(X["a"] + X["b"] > 0, "yes", "no"))
    Xd, yd = dd.from_pandas(X, npartitions=3), dd.from_pandas(y, npartitions=3)
    est = ddp.MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=50,
                            random_state=0).fit(Xd, yd)
    assert list(est.feature_names_in_) == ["a", "b", "c"] and list(est.classes_) == ["no", "yes"]
    pred = est.predict(Xd)
    assert isinstance(pred, da.Array)
    np.testing.assert_array_equal(pred.compute(), est.to_local().predict(X))
    assert float(est.score(Xd, yd)) > 0.9
    with pytest.raises(ValueError, match="feature names"):
        est.predict(dd.from_pandas(X.rename(columns={"c": "d"}), npartitions=2))


def test_regressor_predict_and_score_are_lazy(client, rng):
    X = rng.randn(200, 4)
    y = X @ np.array([1.0, -2.0, 0.5, 0.0])
    Xd, yd = da.from_array(X, chunks=(50, 4)), da.from_array(y, chunks=50)
    est = ddp.MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=100,
                           random_state=0).fit(Xd, yd)
    score = est.score(Xd, yd)
    assert isinstance(score, da.Array) and float(score) == pytest.approx(est.to_local().score(X, y))


def test_fitted_estimator_pickles_and_becomes_a_plain_estimator(client, digits):
    X, Xte, y, _ = digits
    est = ddp.MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=10, random_state=0,
                            client=client).fit(X, y)
    again = pickle.loads(pickle.dumps(est))
    assert again.client is None and est.client is client
    np.testing.assert_array_equal(again.predict(Xte), est.predict(Xte))
    local = est.to_local()
    assert type(local) is deltaprop.MLPClassifier and "client" not in local.get_params()
    np.testing.assert_array_equal(local.predict_proba(Xte), est.predict_proba(Xte))
    assert local.n_iter_ == est.n_iter_ and local.loss_ == est.loss_
    local.coefs_[0][...] = 0  # a copy: the Dask estimator keeps its weights
    assert np.abs(est.coefs_[0]).max() > 0


def test_unpickled_estimator_without_sync_takes_its_default(client, digits):
    """A pickle of a deltaprop.dask estimator from a release without ``sync``: unpickled, it
    has the default, as a new estimator does, and fits as one."""
    X, Xte, y, _ = digits
    Xd, yd = da.from_array(X, chunks=(500, -1)), da.from_array(y, chunks=500)
    params = dict(hidden_layer_sizes=(8,), solver="sgd", batch_size=32, max_iter=2, random_state=0)
    est = ddp.MLPClassifier(**params).fit(Xd, yd)
    del est.__dict__["sync"]
    again = pickle.loads(pickle.dumps(est))
    assert again.sync == "lr-scaled" and again.get_params()["sync"] == "lr-scaled"
    np.testing.assert_array_equal(again.predict(Xte), est.predict(Xte))
    again.fit(Xd, yd)
    fresh = ddp.MLPClassifier(**params).fit(Xd, yd)
    for wa, wb in zip(again.coefs_ + again.intercepts_, fresh.coefs_ + fresh.intercepts_, strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert again.loss_curve_ == fresh.loss_curve_


def test_parameters_are_the_single_machine_ones_plus_client(client):
    base = set(deltaprop.MLPRegressor().get_params())
    assert set(ddp.MLPRegressor().get_params()) == base | {"client", "average_every", "sync"}
    twin = clone(ddp.MLPClassifier(client=client, alpha=0.1))
    assert twin.client is client and twin.alpha == 0.1
    assert not hasattr(ddp.MLPClassifier(), "partial_fit")
    with pytest.raises(ValueError, match="sync"):
        ddp.MLPClassifier(sync="median").fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_bad_input_raises_and_leaves_the_model_as_it_was(client, digits):
    X, _, y, _ = digits
    est = ddp.MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=5,
                            random_state=0).fit(X, y)
    before = [c.copy() for c in est.coefs_]
    bad = X.copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(da.from_array(bad, chunks=(500, -1)), da.from_array(y, chunks=500))
    assert rel(before, est.coefs_) == 0 and est.n_features_in_ == 64


def test_lost_worker_is_survived_when_dask_can_recompute_the_data(client, digits):
    X, _, y, _ = digits
    Xd, yd = da.from_array(X, chunks=(300, -1)), da.from_array(y, chunks=300)
    params = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=8, random_state=0)
    reference = ddp.MLPClassifier(**params).fit(Xd, yd)

    def kill_at_3(est):
        if est.n_iter_ == 3:
            kill_a_worker(client)

    try:
        est = ddp.MLPClassifier(**params, callback=kill_at_3).fit(Xd, yd)
    finally:
        client.wait_for_workers(2, timeout=60)
    assert est.n_iter_ == reference.n_iter_ and rel(reference.coefs_, est.coefs_) < 1e-9


def test_lost_worker_with_scattered_data_raises_and_keeps_the_model(client, digits):
    X, _, y, _ = digits
    est = ddp.MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=5,
                            random_state=0).fit(X, y)
    before, n_iter = [c.copy() for c in est.coefs_], est.n_iter_

    def kill_at_2(e):
        if e.n_iter_ == 2:
            kill_a_worker(client)

    est.set_params(max_iter=10, callback=kill_at_2)
    try:
        with pytest.raises(ddp.WorkerLostError, match="cannot be recomputed"):
            est.fit(X, y)
    finally:
        client.wait_for_workers(2, timeout=60)
    assert rel(before, est.coefs_) == 0 and est.n_iter_ == n_iter


def test_no_client_is_a_clear_error(monkeypatch, digits):
    def none():
        raise ValueError("No clients found")

    monkeypatch.setattr(distributed, "default_client", none)
    X, _, y, _ = digits
    with pytest.raises(ValueError, match="distributed.Client"):
        ddp.MLPClassifier().fit(X, y)


def test_dask_ml_incremental_trains_the_single_machine_estimator(client, digits):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X, Xte, y, yte = digits
    inc = wrappers.Incremental(deltaprop.MLPClassifier(hidden_layer_sizes=(16,), solver="sgd",
                                                       learning_rate_init=0.1, random_state=0))
    Xd = da.from_array(X, chunks=(300, -1))
    inc.fit(Xd, da.from_array(y, chunks=300), classes=np.arange(10))
    assert isinstance(inc.estimator_, deltaprop.MLPClassifier)
    assert inc.estimator_.t_ == X.shape[0]  # one partial_fit per block: every sample once
    np.testing.assert_array_equal(inc.predict(Xd).compute(), inc.estimator_.predict(X))


def test_balanced_class_weights_and_warm_start_as_on_one_machine(client, digits):
    X, _, y, _ = digits
    Xd, yd = da.from_array(X, chunks=(500, -1)), da.from_array(y, chunks=500)
    params = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=10, random_state=0,
                  class_weight="balanced", warm_start=True)
    local = deltaprop.MLPClassifier(**params).fit(X, y).fit(X, y)
    dist = ddp.MLPClassifier(**params, progress_bar=True).fit(Xd, yd).fit(Xd, yd)
    assert rel(local.coefs_, dist.coefs_) < 1e-6
