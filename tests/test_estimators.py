"""deltaprop.MLPClassifier / MLPRegressor against scikit-learn: conformance, exactness, behaviour.

scikit-learn is the oracle: with the same random_state both draw the same initial weights,
shuffles and validation split, so in float64 the fitted weights must agree to rounding.
"""

import io
import pickle
import warnings
from contextlib import redirect_stdout

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import BACKENDS
from sklearn import neural_network as sknn
from sklearn.datasets import load_iris, make_classification, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from deltaprop import MLPClassifier, MLPRegressor

# coefs_ relative to scikit-learn's: the same float64 updates summed in another order differ by
# rounding (about 1e-16 per operation); 1e-6 leaves that ten orders of magnitude to grow in over
# the few epochs of BASE, while a different update rule moves the weights by far more
RTOL = 1e-6


@pytest.fixture(autouse=True)
def _quiet_and_serial():
    """No ConvergenceWarning noise; one BLAS thread (the problems are tiny: BLAS threads waiting
    for work too small to share only cost time, for deltaprop and scikit-learn alike)."""
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


# ---------------------------------------------------------------------------- data
def clf_data(n=80, d=6, k=3, seed=0):
    X, y = make_classification(n_samples=n, n_features=d, n_informative=4, n_classes=k,
                               random_state=seed)
    return X, y


def reg_data(n=80, d=6, k=1, seed=0):
    X, y = make_regression(n_samples=n, n_features=d, n_targets=k, noise=0.1, random_state=seed)
    return X, y / np.std(y)


def assert_same_weights(ours, theirs, rtol=RTOL):
    assert len(ours.coefs_) == len(theirs.coefs_)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True):
        assert a.dtype == b.dtype
        scale = np.abs(b).max()
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)


def pair(kind, **params):
    """(deltaprop estimator, scikit-learn estimator) with the same parameters."""
    ours = {"clf": MLPClassifier, "reg": MLPRegressor}[kind]
    theirs = {"clf": sknn.MLPClassifier, "reg": sknn.MLPRegressor}[kind]
    backend = params.pop("backend", "auto")
    return ours(backend=backend, **params), theirs(**params)


# ---------------------------------------------------------------------------- conformance
# No check is expected to fail on the default backend; the mapping stays here to give each
# future exception its reason.
EXPECTED_FAILED_CHECKS: dict = {}


@parametrize_with_checks([MLPClassifier(), MLPRegressor()],
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------------- exactness
BASE = dict(hidden_layer_sizes=(7,), max_iter=5, random_state=3, tol=0.0)
EXACT = {
    "sgd-online": dict(solver="sgd", batch_size=1, momentum=0.0, learning_rate_init=0.05),
    "sgd-online-nesterov": dict(solver="sgd", batch_size=1, momentum=0.9, learning_rate_init=0.01),
    "sgd-minibatch": dict(solver="sgd", batch_size=16, momentum=0.0, learning_rate_init=0.1),
    "sgd-minibatch-momentum": dict(solver="sgd", batch_size=16, momentum=0.9,
                                   nesterovs_momentum=False, learning_rate_init=0.05),
    "sgd-minibatch-nesterov": dict(solver="sgd", batch_size=16, momentum=0.8,
                                   learning_rate_init=0.05),
    "sgd-invscaling": dict(solver="sgd", batch_size=10, learning_rate="invscaling",
                           learning_rate_init=0.2, power_t=0.3),
    "sgd-noshuffle-alpha": dict(solver="sgd", batch_size=25, shuffle=False, alpha=0.1,
                                learning_rate_init=0.1, activation="tanh"),
    "adam": dict(solver="adam", batch_size=16, learning_rate_init=0.01, activation="logistic"),
    "adam-auto-batch": dict(solver="adam", learning_rate_init=0.01),
    "lbfgs": dict(solver="lbfgs", activation="tanh"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(EXACT))
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_fit_matches_sklearn_after_5_epochs(task, name, backend):
    kind = "reg" if task == "regression" else "clf"
    X, y = reg_data() if kind == "reg" else clf_data(k=2 if task == "binary" else 3)
    ours, theirs = pair(kind, backend=backend, **BASE, **EXACT[name])
    ours.fit(X, y)
    theirs.fit(X, y)
    assert_same_weights(ours, theirs)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    if name != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
        assert ours.t_ == theirs.t_


@pytest.mark.parametrize("task, params", [
    ("multilabel", dict(solver="sgd", batch_size=8, learning_rate_init=0.1)),
    ("multioutput", dict(solver="adam", batch_size=8, learning_rate_init=0.01)),
    ("poisson", dict(solver="sgd", batch_size=8, learning_rate_init=0.01, loss="poisson")),
    ("weighted", dict(solver="sgd", batch_size=8, learning_rate_init=0.1)),
    ("weighted-lbfgs", dict(solver="lbfgs")),
    ("early-stopping", dict(solver="adam", learning_rate_init=0.01, early_stopping=True,
                            validation_fraction=0.2, max_iter=30, n_iter_no_change=3)),
    ("early-stopping-binary", dict(solver="sgd", learning_rate_init=0.2, early_stopping=True,
                                   max_iter=30, n_iter_no_change=2, tol=1e-3)),
    ("adaptive", dict(solver="sgd", batch_size=10, learning_rate="adaptive", tol=10.0,
                      learning_rate_init=0.1, max_iter=12, n_iter_no_change=1)),
])
def test_options_match_sklearn(task, params):
    rng = np.random.RandomState(0)
    sample_weight = None
    if task == "multilabel":
        X, y = make_multilabel_classification(n_samples=80, n_features=6, n_classes=3,
                                              random_state=0)
        kind = "clf"
    elif task == "multioutput":
        X, y = reg_data(k=3)
        kind = "reg"
    elif task == "poisson":
        X, _ = reg_data()
        y = rng.poisson(np.exp(0.3 * X[:, 0]))
        kind = "reg"
    elif task == "early-stopping-binary":
        X, y = clf_data(k=2)
        kind = "clf"
    else:
        X, y = clf_data()
        kind = "clf"
    if task.startswith("weighted"):
        sample_weight = rng.uniform(0.2, 3.0, size=X.shape[0])
    ours, theirs = pair(kind, **{**BASE, **params})
    ours.fit(X, y, sample_weight=sample_weight)
    theirs.fit(X, y, sample_weight=sample_weight)
    assert_same_weights(ours, theirs)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    if params["solver"] != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    if params["solver"] == "sgd":
        assert ours._optimizer.eta == pytest.approx(theirs._optimizer.learning_rate)
    if params.get("early_stopping"):
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
        assert ours.best_validation_score_ == theirs.best_validation_score_
        assert ours.best_loss_ is None
        assert len(ours.validation_loss_curve_) == ours.n_iter_


def test_adaptive_learning_rate_divides_by_five_then_stops():
    X, y = clf_data()
    est = MLPClassifier(**{**BASE, "max_iter": 200, "tol": 10.0}, solver="sgd",
                        learning_rate="adaptive", n_iter_no_change=1,
                        learning_rate_init=0.1).fit(X, y)
    # the first epoch improves on best_loss_ = inf; from then on every second stalled epoch
    # (count > n_iter_no_change = 1) divides eta by 5, 8 times (0.1 / 5**8 <= 1e-6), and the
    # 9th trigger stops: epochs 3, 5, ..., 19
    assert est._optimizer.eta == pytest.approx(0.1 / 5**8)
    assert est.n_iter_ == 19


def test_early_stopping_restores_best_validation_weights():
    X, y = clf_data(n=200)
    seen = []
    est = MLPClassifier(**{**BASE, "max_iter": 100}, solver="sgd", learning_rate_init=0.5,
                        early_stopping=True, n_iter_no_change=3,
                        callback=lambda e: seen.append([W.copy() for W in e.coefs_])).fit(X, y)
    assert est.n_iter_ < 100
    best = int(np.argmax(est.validation_scores_))
    assert best < est.n_iter_ - 1  # the last epoch was not the best: restoring changes weights
    assert est.best_validation_score_ == est.validation_scores_[best]
    assert len(est.validation_scores_) == len(est.validation_loss_curve_) == est.n_iter_
    for W, W_best in zip(est.coefs_, seen[best], strict=True):
        np.testing.assert_array_equal(W, W_best)
    assert not np.array_equal(seen[-1][0], est.coefs_[0])


def test_warm_start_continues_like_sklearn():
    X, y = clf_data()
    ours, theirs = pair("clf", **{**BASE, "max_iter": 3}, solver="sgd", warm_start=True,
                        learning_rate_init=0.05)
    for _ in range(2):
        ours.fit(X, y)
        theirs.fit(X, y)
    assert_same_weights(ours, theirs)
    assert ours.t_ == theirs.t_ == 6 * X.shape[0]
    cold = MLPClassifier(**{**BASE, "max_iter": 3}, solver="sgd", learning_rate_init=0.05)
    cold.fit(X, y)
    first = [c.copy() for c in cold.coefs_]
    cold.fit(X, y)  # warm_start=False: starts again from the same initialisation
    np.testing.assert_array_equal(first[0], cold.coefs_[0])


def test_warm_start_may_switch_solver_and_early_stopping():
    # scikit-learn raises AttributeError here (no loss_curve_ after lbfgs); deltaprop continues
    X, y = clf_data()
    est = MLPClassifier(**BASE, solver="lbfgs", warm_start=True).fit(X, y)
    est.set_params(solver="sgd").fit(X, y)
    assert len(est.loss_curve_) == 5
    est.set_params(early_stopping=True).fit(X, y)
    assert est.best_loss_ is None and len(est.validation_scores_) == est.n_iter_


@pytest.mark.parametrize("kind", ["clf", "reg"])
def test_partial_fit_streaming_equals_fit_over_the_same_batches(kind):
    X, y = clf_data() if kind == "clf" else reg_data()
    params = dict(hidden_layer_sizes=(5,), solver="sgd", batch_size=10, shuffle=False,
                  random_state=1, learning_rate_init=0.05, max_iter=1)
    fit = (MLPClassifier if kind == "clf" else MLPRegressor)(**params).fit(X, y)
    stream = (MLPClassifier if kind == "clf" else MLPRegressor)(**params)
    for start in range(0, X.shape[0], 10):
        extra = {"classes": np.unique(y)} if kind == "clf" else {}
        stream.partial_fit(X[start : start + 10], y[start : start + 10], **extra)
    assert_same_weights(stream, fit, rtol=1e-12)
    assert stream.t_ == fit.t_


def test_partial_fit_matches_sklearn_partial_fit():
    X, y = clf_data()
    ours, theirs = pair("clf", **BASE, solver="adam", learning_rate_init=0.01)
    for start in range(0, 80, 20):
        ours.partial_fit(X[start : start + 20], y[start : start + 20], classes=[0, 1, 2])
        theirs.partial_fit(X[start : start + 20], y[start : start + 20], classes=[0, 1, 2])
    assert_same_weights(ours, theirs)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)


# ---------------------------------------------------------------------------- bad inputs
def _raises_like_sklearn(call_ours, call_theirs):
    with pytest.raises(Exception) as theirs:
        call_theirs()
    with pytest.raises(type(theirs.value)) as ours:
        call_ours()
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


def _fitted_pair(kind="clf", **params):
    X, y = clf_data() if kind == "clf" else reg_data()
    ours, theirs = pair(kind, **{**BASE, **params})
    return ours.fit(X, y), theirs.fit(X, y), X, y


def _snapshot(est):
    return ([c.copy() for c in est.coefs_ + est.intercepts_],
            {k: v for k, v in vars(est).items() if k.endswith("_")})


def _assert_unchanged(est, snap):
    weights, attrs = snap
    for a, b in zip(est.coefs_ + est.intercepts_, weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert set(attrs) == {k for k in vars(est) if k.endswith("_")}
    for k, v in attrs.items():
        if isinstance(v, (int, float, str)):
            assert getattr(est, k) == v or (v != v), k


BAD_X = {
    "nan": lambda X: np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X),
    "inf": lambda X: np.where(np.arange(X.size).reshape(X.shape) == 3, np.inf, X),
    "wrong-features": lambda X: X[:, :-1],
    "one-d": lambda X: X[:, 0],
    "strings": lambda X: np.array([["a"] * X.shape[1]] * X.shape[0]),
    "empty": lambda X: X[:0],
}


@pytest.mark.parametrize("bad", list(BAD_X))
@pytest.mark.parametrize("method", ["fit", "partial_fit", "predict", "predict_proba"])
def test_bad_X_raises_like_sklearn_and_leaves_model_unchanged(bad, method):
    if bad == "wrong-features" and method == "fit":
        pytest.skip("a new fit may change the number of features")
    ours, theirs, X, y = _fitted_pair(solver="sgd")
    snap = _snapshot(ours)
    Xb = BAD_X[bad](X)
    yb = y[: Xb.shape[0]] if Xb.ndim else y
    args = (Xb, yb) if "fit" in method else (Xb,)
    _raises_like_sklearn(lambda: getattr(ours, method)(*args),
                         lambda: getattr(theirs, method)(*args))
    _assert_unchanged(ours, snap)


@pytest.mark.parametrize("case", ["unseen-label", "no-classes-first-call", "warm-start-classes",
                                  "early-stopping-partial", "y-none", "y-length", "nan-y",
                                  "bad-param", "bad-weight-shape"])
def test_bad_targets_and_params_raise_like_sklearn(case):
    ours, theirs, X, y = _fitted_pair(solver="sgd")
    snap = _snapshot(ours)
    if case == "unseen-label":
        calls = [(e, "partial_fit", (X, y + 7), {}) for e in (ours, theirs)]
    elif case == "no-classes-first-call":
        calls = [(e, "partial_fit", (X, y), {}) for e in (MLPClassifier(solver="sgd"),
                                                           sknn.MLPClassifier(solver="sgd"))]
    elif case == "warm-start-classes":
        for e in (ours, theirs):
            e.set_params(warm_start=True)
        calls = [(e, "fit", (X, np.where(y == 2, 0, y)), {}) for e in (ours, theirs)]
    elif case == "early-stopping-partial":
        for e in (ours, theirs):
            e.set_params(early_stopping=True)
        calls = [(e, "partial_fit", (X, y), {}) for e in (ours, theirs)]
    elif case == "y-none":
        calls = [(e, "fit", (X, None), {}) for e in (ours, theirs)]
    elif case == "y-length":
        calls = [(e, "fit", (X, y[:-1]), {}) for e in (ours, theirs)]
    elif case == "nan-y":
        calls = [(e, "fit", (X, np.where(np.arange(len(y)) == 2, np.nan, y)), {})
                 for e in (ours, theirs)]
    elif case == "bad-param":
        for e in (ours, theirs):
            e.set_params(learning_rate_init=-1.0)
        calls = [(e, "fit", (X, y), {}) for e in (ours, theirs)]
    else:
        calls = [(e, "fit", (X, y), {"sample_weight": np.ones(3)}) for e in (ours, theirs)]
    (o, om, oa, ok), (t, tm, ta, tk) = calls
    _raises_like_sklearn(lambda: getattr(o, om)(*oa, **ok), lambda: getattr(t, tm)(*ta, **tk))
    if o is ours:
        _assert_unchanged(ours, snap)


def test_divergence_raises_like_sklearn_and_keeps_the_previous_model():
    rng = np.random.RandomState(0)
    X = rng.rand(20, 3) * 100
    y = np.full(20, 100.0)
    params = dict(hidden_layer_sizes=(5,), max_iter=20, solver="sgd", learning_rate_init=1.0,
                  momentum=0.9, activation="identity", random_state=0)
    ours = MLPRegressor(**{**params, "learning_rate_init": 0.01})
    ours.fit(X / 100, y / 100)
    ours.set_params(learning_rate_init=1.0)
    snap = _snapshot(ours)
    _raises_like_sklearn(lambda: ours.fit(X, y), lambda: sknn.MLPRegressor(**params).fit(X, y))
    _assert_unchanged(ours, snap)
    fresh = MLPRegressor(**params)
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        fresh.fit(X, y)
    assert not hasattr(fresh, "coefs_") and not hasattr(fresh, "n_iter_")


IRIS_DIVERGING = dict(hidden_layer_sizes=100, activation="identity", solver="sgd", alpha=0.0001,
                      learning_rate="constant", learning_rate_init=1, shuffle=True, max_iter=20,
                      early_stopping=True, n_iter_no_change=10, random_state=0)


def _fit_recording_warnings(est, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y)
    return est, [w for w in caught if w.category is ConvergenceWarning]


def test_diverging_fit_with_early_stopping_restores_the_best_epoch_like_sklearn(backend, dtype):
    # scikit-learn's test_mlp_diverging_loss (non-regression test for scikit-learn#29504): the
    # weights overflow after a few epochs; scikit-learn raises nothing, runs on to max_iter with
    # NaN validation scores and restores the best validation epoch's (finite) weights
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X = X.astype(dtype)
    ours, ours_warned = _fit_recording_warnings(MLPRegressor(backend=backend, **IRIS_DIVERGING),
                                                X, y)
    theirs, theirs_warned = _fit_recording_warnings(sknn.MLPRegressor(**IRIS_DIVERGING), X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 20 and ours.t_ == theirs.t_
    assert [str(w.message) for w in ours_warned] == [str(w.message) for w in theirs_warned]
    assert len(ours_warned) == 1  # max_iter reached
    # scikit-learn's own assertions
    assert str(ours.validation_scores_[-1]) == str(np.nan)
    assert isinstance(ours.validation_scores_[-1], float)
    # the records, epoch by epoch: NaN / -inf where scikit-learn's are, the same values elsewhere
    rtol = 1e-9 if dtype == np.float64 else 1e-5
    vo, vt = np.array(ours.validation_scores_), np.array(theirs.validation_scores_)
    np.testing.assert_array_equal(np.isnan(vo), np.isnan(vt))
    np.testing.assert_array_equal(np.isinf(vo), np.isinf(vt))
    assert np.isnan(vt).sum() >= 10 and np.isfinite(vt).sum() >= 2
    np.testing.assert_allclose(vo[np.isfinite(vt)], vt[np.isfinite(vt)], rtol=rtol)
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_, rel=rtol)
    assert len(ours.validation_loss_curve_) == ours.n_iter_
    lo, lt = np.array(ours.loss_curve_), np.array(theirs.loss_curve_)
    np.testing.assert_array_equal(np.isnan(lo), np.isnan(lt))
    # deltaprop sums the loss in the network's dtype, scikit-learn in float64 (its targets):
    # in float32 a loss beyond float32's range is inf here
    fits = np.abs(lt) <= np.finfo(dtype).max
    np.testing.assert_allclose(lo[fits], lt[fits], rtol=rtol)
    assert np.isposinf(lo[np.isfinite(lt) & ~fits]).all()
    assert str(ours.loss_) == str(theirs.loss_) == "nan"
    # the fitted weights: finite, scikit-learn's, and those of the best validation epoch
    assert all(np.isfinite(c).all() for c in ours.coefs_ + ours.intercepts_)
    assert_same_weights(ours, theirs, rtol=RTOL if dtype == np.float64 else 1e-4)
    best = int(np.nanargmax(vo))
    upto_best = MLPRegressor(backend=backend, **{**IRIS_DIVERGING, "max_iter": best + 1}).fit(X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, upto_best.coefs_ + upto_best.intercepts_, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ours.predict(X), upto_best.predict(X))
    # without early stopping the same fit still raises scikit-learn's error
    params = {**IRIS_DIVERGING, "early_stopping": False}
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _raises_like_sklearn(lambda: MLPRegressor(backend=backend, **params).fit(X, y),
                             lambda: sknn.MLPRegressor(**params).fit(X, y))


@pytest.mark.parametrize("y", [
    [0, 0, 0, 1], [0] * 19 + [1], ["b", "a", "a", "a", "a"], [False, True, True, True, True],
    [0, 0, 0, 1, 2, 2], [0] * 10 + [1] * 9 + [2], [0] * 6 + [1] * 34,
], ids=["binary", "binary-20", "binary-str", "binary-bool", "multiclass", "multiclass-20",
        "binary-ok"])
def test_early_stopping_split_stratifies_like_sklearn(y, backend, dtype):
    # scikit-learn stratifies on its binarised boolean targets: a class too small to stratify is
    # named 'True' / 'False' in its error (multiclass targets are not stratified at all)
    y = np.array(y)
    X = np.random.RandomState(0).rand(len(y), 3).astype(dtype)
    params = dict(hidden_layer_sizes=(3,), max_iter=2, early_stopping=True, random_state=0,
                  solver="sgd")
    ours = MLPClassifier(backend=backend, **params)
    theirs = sknn.MLPClassifier(**params)
    try:
        theirs.fit(X, y)
    except ValueError:
        _raises_like_sklearn(lambda: ours.fit(X, y), lambda: theirs.fit(X, y))
        return
    ours.fit(X, y)  # the same split: the same validation scores and weights
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
    assert_same_weights(ours, theirs, rtol=RTOL if dtype == np.float64 else 1e-4)


def _saturated(backend, dtype, task):
    """A fitted classifier whose outputs are pushed to |a| ~ 1000: probabilities that round to
    exactly 1 (several per row when multilabel) and that underflow to 0, in both dtypes."""
    if task == "multilabel":
        X, y = make_multilabel_classification(n_samples=60, n_features=5, n_classes=4,
                                              random_state=0)
    else:
        X, y = clf_data(n=60, k=2 if task == "binary" else 4)
    X = X.astype(dtype)
    est = MLPClassifier(**{**BASE, "max_iter": 20}, solver="lbfgs", backend=backend).fit(X, y)
    _, a = est._forward(X, pre_activation=True)
    scale = 1000 / np.abs(a).max()
    est.coefs_[-1] *= scale
    est.intercepts_[-1] *= scale
    return est, X


def _reference_log_proba(est, X, task):
    """Independent log-probabilities: the forward pass in float64 NumPy, scipy's log_expit /
    log_softmax."""
    from scipy.special import log_expit, log_softmax

    h = {"relu": lambda z: np.maximum(z, 0)}[est.activation]
    a = X.astype(np.float64)
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_, strict=True)):
        a = a @ W.astype(np.float64) + b.astype(np.float64)
        if i < len(est.coefs_) - 1:
            a = h(a)
    if task == "multiclass":
        return log_softmax(a, axis=1)
    if task == "binary":
        return np.hstack([log_expit(-a), log_expit(a)])
    return log_expit(a)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_predict_log_proba_is_log_of_predict_proba_where_finite(task, backend, dtype):
    est, X = _saturated(backend, dtype, task)
    p = est.predict_proba(X)
    log_p = est.predict_log_proba(X)
    assert log_p.dtype == p.dtype == dtype
    with np.errstate(divide="ignore"):
        want = np.log(p)  # scikit-learn's predict_log_proba
    finite = np.isfinite(want)
    assert (p == 1).sum(axis=1).max() >= (2 if task == "multilabel" else 1)  # ties at 1.0 ...
    assert (~finite).any()  # ... and underflow to 0: both cases are exercised
    np.testing.assert_array_equal(log_p[finite], want[finite])
    # where the probability underflows: finite, the stable log-sigmoid / log-softmax
    assert np.isfinite(log_p).all()
    ref = _reference_log_proba(est, X, task)
    np.testing.assert_allclose(log_p[~finite], ref[~finite], rtol=1e-5 if dtype == np.float32
                               else 1e-9)
    rows = (p > 0).any(axis=1)  # a row whose probabilities all underflow has no argmax in p
    np.testing.assert_array_equal(log_p[rows].argmax(axis=1), p[rows].argmax(axis=1))


def test_single_class_behaves_like_sklearn():
    X, _ = clf_data()
    y = np.zeros(X.shape[0])
    ours, theirs = pair("clf", **BASE, solver="sgd")
    ours.fit(X, y)
    theirs.fit(X, y)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-6)


# ---------------------------------------------------------------------------- scikit-learn API
def test_pipeline_gridsearch_and_cross_val_score():
    X, y = clf_data(n=120)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=50,
                                                         random_state=0))
    search = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-1],
                                 "mlpclassifier__solver": ["adam", "lbfgs"]}, cv=3)
    search.fit(X, y)
    assert search.best_score_ > 0.6
    assert search.best_estimator_.predict(X).shape == y.shape
    scores = cross_val_score(MLPRegressor(hidden_layer_sizes=(8,), max_iter=100, random_state=0,
                                          learning_rate_init=0.01), *reg_data(n=90), cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.5)


def test_partial_fit_hidden_for_lbfgs_on_both_estimators():
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")
    assert hasattr(MLPRegressor(solver="sgd"), "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'"):
        _ = MLPRegressor(solver="lbfgs").partial_fit


@pytest.mark.parametrize("kind", ["clf", "reg"])
def test_pickle_roundtrip_predicts_the_same(kind):
    est, _, X, _ = _fitted_pair(kind, solver="adam")
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(est.predict(X), clone.predict(X))
    assert clone.backend_ == est.backend_
    clone.partial_fit(X, est.predict(X))  # still trainable after unpickling


def test_float32_input_keeps_float32_weights():
    X, y = clf_data()
    est = MLPClassifier(**BASE, solver="adam").fit(X.astype(np.float32), y)
    assert all(c.dtype == np.float32 for c in est.coefs_ + est.intercepts_)
    assert est.predict_proba(X.astype(np.float32)).dtype == np.float32
    est64 = MLPClassifier(**BASE, solver="adam").fit(X, y)
    np.testing.assert_allclose(est.coefs_[0], est64.coefs_[0], atol=1e-4)


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_sparse_csr_fits_like_dense(solver, monkeypatch):
    from deltaprop.engine import buffers

    monkeypatch.setattr(buffers, "UNIT_ELEMENTS", 6 * 20)  # force several chunks
    X, y = clf_data()
    X[np.abs(X) < 0.8] = 0.0
    params = dict(**BASE, solver=solver, batch_size=10, learning_rate_init=0.05)
    dense = MLPClassifier(**params).fit(X, y)
    sparse = MLPClassifier(**params).fit(sp.csr_matrix(X), y)
    assert_same_weights(sparse, dense, rtol=1e-12)
    np.testing.assert_allclose(sparse.predict_proba(sp.csc_matrix(X)), dense.predict_proba(X))


def test_sparse_and_float32_inputs_match_sklearn():
    X, y = clf_data()
    X[np.abs(X) < 0.8] = 0.0
    ours, theirs = pair("clf", **BASE, solver="sgd", batch_size=8, learning_rate_init=0.05)
    assert_same_weights(ours.fit(sp.csr_matrix(X), y), theirs.fit(sp.csr_matrix(X), y))
    ours, theirs = pair("clf", **BASE, solver="adam", learning_rate_init=0.01)
    ours.fit(X.astype(np.float32), y)
    theirs.fit(X.astype(np.float32), y)
    assert_same_weights(ours, theirs, rtol=1e-4)  # both train in float32


def test_pandas_feature_names_are_kept():
    pd = pytest.importorskip("pandas")
    X, y = clf_data()
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    est = MLPClassifier(**BASE).fit(df, y)
    np.testing.assert_array_equal(est.feature_names_in_, df.columns)
    with pytest.warns(UserWarning, match="feature names"):
        est.predict(X)


# ---------------------------------------------------------------------------- beyond sklearn
def test_predict_log_proba_is_finite_for_large_logits():
    X, y = clf_data()
    for k in (2, 3):
        Xk, yk = clf_data(k=k)
        est = MLPClassifier(**BASE, solver="lbfgs").fit(Xk, yk)
        est.coefs_[-1] = est.coefs_[-1] * 1e4  # saturate the output
        log_p = est.predict_log_proba(Xk)
        assert np.isfinite(log_p).all()
        p = est.predict_proba(Xk)
        with np.errstate(divide="ignore"):
            mask = p > 1e-300
        np.testing.assert_allclose(log_p[mask], np.log(p[mask]), rtol=1e-6, atol=1e-12)
    ml_X, ml_y = make_multilabel_classification(n_samples=60, n_features=5, random_state=0)
    est = MLPClassifier(**BASE, solver="lbfgs").fit(ml_X, ml_y)
    np.testing.assert_allclose(est.predict_log_proba(ml_X), np.log(est.predict_proba(ml_X)),
                               rtol=1e-9)


def test_lbfgs_gradient_is_right_for_multiple_outputs():
    from deltaprop.estimators.objective import BatchLossGradient, SklearnLoss

    X, y = reg_data(n=30, k=3)
    est = MLPRegressor(**BASE, solver="lbfgs", alpha=0.3).fit(X, y)
    net = est._mlp
    s = np.ones(30)
    fun = BatchLossGradient(net, X, y, s, 0.3, SklearnLoss("squared_error", y))
    x0 = net.w.copy()
    F, g = fun(x0)
    eps = 1e-6
    for i in np.random.RandomState(0).choice(x0.size, 10, replace=False):
        e = np.zeros_like(x0)
        e[i] = eps
        numeric = (fun(x0 + e)[0] - fun(x0 - e)[0]) / (2 * eps)
        assert g[i] == pytest.approx(numeric, rel=1e-5, abs=1e-8)
    # and loss_ keeps scikit-learn's convention (outputs averaged)
    assert est.loss_ == pytest.approx(fun.reported(est._mlp.w.astype(np.float64)))


def test_lbfgs_single_output_regression_matches_sklearn():
    X, y = reg_data()
    ours, theirs = pair("reg", **BASE, solver="lbfgs")
    assert_same_weights(ours.fit(X, y), theirs.fit(X, y))


def test_class_weight_equals_sample_weight():
    X, y = clf_data()
    cw = {0: 1.0, 1: 3.0, 2: 0.5}
    a = MLPClassifier(**BASE, solver="sgd", class_weight=cw).fit(X, y)
    b = MLPClassifier(**BASE, solver="sgd").fit(X, y, sample_weight=np.vectorize(cw.get)(y))
    assert_same_weights(a, b, rtol=1e-12)
    bal = MLPClassifier(**BASE, solver="sgd", class_weight="balanced").fit(X[:50], y[:50])
    counts = np.bincount(y[:50])
    c = MLPClassifier(**BASE, solver="sgd").fit(X[:50], y[:50],
                                                 sample_weight=(50 / (3 * counts))[y[:50]])
    assert_same_weights(bal, c, rtol=1e-12)
    with pytest.raises(ValueError, match="not supported for partial_fit"):
        MLPClassifier(solver="sgd", class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_verbose_prints_progress_for_every_solver(solver):
    X, y = clf_data()
    out = io.StringIO()
    with redirect_stdout(out):
        MLPClassifier(**{**BASE, "max_iter": 3}, solver=solver, verbose=True).fit(X, y)
    lines = [ln for ln in out.getvalue().splitlines() if ln.startswith("Iteration")]
    assert len(lines) == 3
    assert lines[0].startswith("Iteration 1, loss = ")


def test_progress_bar_shows_every_epoch(capsys):
    pytest.importorskip("tqdm")
    X, y = reg_data()
    MLPRegressor(**BASE, progress_bar=True, learning_rate_init=0.01).fit(X, y)
    err = capsys.readouterr().err
    assert "MLPRegressor(adam)" in err and "5/5" in err and "loss=" in err


def test_gudermannian_hidden_units_compute_gd():
    r"""gd(a) = 2 arctan(tanh(a / 2)), the Gudermannian function, checked against the weights."""
    X, y = reg_data()
    est = MLPRegressor(**BASE, activation="gudermannian", learning_rate_init=0.01).fit(X, y)
    (W0, W1), (b0, b1) = est.coefs_, est.intercepts_
    z = 2 * np.arctan(np.tanh((X @ W0 + b0) / 2))
    np.testing.assert_allclose(est.predict(X), (z @ W1 + b1).ravel(), rtol=1e-12)
    with pytest.raises(ValueError, match="activation"):
        MLPRegressor(activation="swish").fit(X, y)


@pytest.mark.parametrize("random_state", [1.5, "x", np.float64(2.0), np.random.default_rng(0)])
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_random_state_of_a_wrong_type_raises_naming_it(Estimator, random_state):
    X, y = clf_data()
    est = Estimator(**{**BASE, "random_state": random_state}, solver="sgd")
    with pytest.raises(ValueError, match="random_state"):
        est.fit(X, y)
    with pytest.raises(ValueError, match="random_state"):
        est.partial_fit(X, y, **({"classes": np.unique(y)} if Estimator is MLPClassifier else {}))
    assert not hasattr(est, "coefs_")


def test_poisson_rejects_negative_targets():
    X, y = reg_data()
    with pytest.raises(ValueError, match="negative"):
        MLPRegressor(loss="poisson").fit(X, y)


def test_backend_parameter_is_resolved():
    X, y = clf_data()
    est = MLPClassifier(**BASE, backend="numpy").fit(X, y)
    assert est.backend_ == "numpy"
    with pytest.raises(ValueError, match="unknown backend"):
        MLPClassifier(backend="fortran").fit(X, y)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_callback_sees_every_epoch_and_stopping_equals_a_shorter_fit(solver, backend):
    X, y = load_iris(return_X_y=True)
    kw = dict(hidden_layer_sizes=(5,), solver=solver, random_state=0, backend=backend)
    seen = []

    def callback(est):
        seen.append((est.n_iter_, est.loss_, est.coefs_[0].copy()))
        return est.n_iter_ == 3

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a stop asked for is not a failure
        stopped = MLPClassifier(max_iter=50, callback=callback, **kw).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        three = MLPClassifier(max_iter=3, **kw).fit(X, y)
    assert [n for n, _, _ in seen] == [1, 2, 3]
    assert stopped.n_iter_ == three.n_iter_ == 3
    assert seen[-1][1] == pytest.approx(three.loss_, rel=1e-12)
    np.testing.assert_allclose(seen[-1][2], three.coefs_[0], rtol=1e-12)
    for a, b in zip(stopped.coefs_, three.coefs_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    if solver != "lbfgs":
        assert len(stopped.loss_curve_) == 3


GROUPED = {
    # a large step: the loss stops improving and the n_iter_no_change rule ends the fit
    "adam-stops": (MLPClassifier, dict(solver="adam", batch_size=16, learning_rate_init=0.3,
                                       n_iter_no_change=3, max_iter=200), False),
    "sgd-adaptive": (MLPClassifier, dict(solver="sgd", batch_size=8, learning_rate="adaptive",
                                         tol=10.0, n_iter_no_change=2, max_iter=200,
                                         learning_rate_init=0.1), False),
    "nesterov-max-iter": (MLPClassifier, dict(solver="sgd", batch_size=16, momentum=0.9,
                                              max_iter=23, tol=0.0), False),
    "poisson-weighted": (MLPRegressor, dict(solver="sgd", batch_size=8, loss="poisson",
                                            learning_rate_init=0.01, max_iter=17), True),
    "two-threads": (MLPClassifier, dict(solver="adam", batch_size=10, max_iter=19, n_jobs=2),
                    False),
}


@pytest.mark.parametrize("case", list(GROUPED))
def test_minibatch_epochs_run_several_to_a_call_as_one_at_a_time(case, backend, monkeypatch):
    """Mini-batch fits run several epochs per compiled call where no rule between epochs can act
    (``EpochRunner.most_epochs``, ``_epochs_at_once``). The fit is the one of an epoch per call,
    bit for bit: weights, records, optimizer, the stopping epoch and the random state's draws."""
    from deltaprop.estimators.solvers import EpochRunner

    Estimator, params, weighted = GROUPED[case]
    X, y = clf_data(n=80) if Estimator is MLPClassifier else reg_data(n=80)
    if Estimator is MLPRegressor:
        y = np.random.RandomState(0).poisson(np.exp(0.3 * X[:, 0])).astype(float)
    sw = np.random.RandomState(1).uniform(0.5, 2.0, X.shape[0]) if weighted else None
    run, calls = EpochRunner.run, []

    def counted(self, opt, epochs=1):
        calls.append(epochs)
        return run(self, opt, epochs)

    def fit():
        est = Estimator(hidden_layer_sizes=(7,), random_state=3, backend=backend, **params)
        return est.fit(X, y, sample_weight=sw)

    monkeypatch.setattr(EpochRunner, "run", counted)
    grouped = fit()
    assert max(calls) > 1 and sum(calls) == grouped.n_iter_  # grouped, and no epoch past the stop
    monkeypatch.setattr(EpochRunner, "most_epochs", lambda self, opt: 1)
    calls.clear()
    single = fit()
    assert set(calls) == {1}
    if case in ("adam-stops", "sgd-adaptive"):
        assert grouped.n_iter_ < params["max_iter"]  # the rule stopped the fit
    for a, b in zip(grouped.coefs_ + grouped.intercepts_, single.coefs_ + single.intercepts_,
                    strict=True):
        np.testing.assert_array_equal(a, b)
    assert grouped.loss_curve_ == single.loss_curve_
    for name in ("n_iter_", "t_", "loss_", "best_loss_", "_no_improvement_count"):
        assert getattr(grouped, name) == getattr(single, name), name
    assert grouped._optimizer.eta == single._optimizer.eta
    np.testing.assert_array_equal(grouped._optimizer.state, single._optimizer.state)
    for a, b in zip(grouped._random_state.get_state(), single._random_state.get_state(),
                    strict=True):
        np.testing.assert_array_equal(a, b)


def test_estimator_rebuilt_around_a_fitted_network_predicts_the_same(backend):
    """``from_network`` (how a model file becomes an estimator) shares the network's predictions."""
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = MLPClassifier((5,), max_iter=30, random_state=0, backend=backend).fit(X, labels)
    again = MLPClassifier.from_network(clf._mlp, classes=clf.classes_)
    np.testing.assert_array_equal(again.predict(X), clf.predict(X))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert again.score(X, labels) == clf.score(X, labels)
    binary = MLPClassifier((4,), max_iter=30, random_state=0, backend=backend).fit(X, y == 1)
    np.testing.assert_array_equal(
        MLPClassifier.from_network(binary._mlp, classes=[False, True]).predict_proba(X),
        binary.predict_proba(X))
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=30, random_state=0, backend=backend).fit(X[:, :3], X[:, 3])
    np.testing.assert_array_equal(MLPRegressor.from_network(reg._mlp).predict(X[:, :3]),
                                  reg.predict(X[:, :3]))
    with pytest.raises(ValueError, match="2 class labels do not fit a network with 3 outputs"):
        MLPClassifier.from_network(clf._mlp, classes=["a", "b"])
    with pytest.raises(ValueError, match="has a logistic output and binary_cross_entropy; the "
                                         "network has identity"):
        MLPClassifier.from_network(reg._mlp, classes=["a", "b"])
    with pytest.raises(ValueError, match="no class labels"):
        MLPRegressor.from_network(reg._mlp, classes=[0, 1])


def test_solver_names_are_scikit_learns():
    from sklearn.neural_network._multilayer_perceptron import BaseMultilayerPerceptron

    from deltaprop.estimators.solvers import SOLVER_NAMES

    assert set(SOLVER_NAMES) == BaseMultilayerPerceptron._parameter_constraints["solver"][0].options
