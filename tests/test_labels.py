"""Class labels as targets (deltaprop.estimators._labels) against scikit-learn's LabelBinarizer.

scikit-learn is the truth: ``LabelBinarizer().fit(y)`` for the binarizer, its ``transform`` for
the targets, its ``inverse_transform`` for the decoded outputs, ``unique_labels`` for the
classes of later calls, and scikit-learn's MLPClassifier for the errors of warm_start and
partial_fit. Plain labels take the ``np.unique`` path, every other kind LabelBinarizer's own.
"""

import pickle
import warnings

import numpy as np
import pytest
from sklearn import neural_network as sknn
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import unique_labels

from deltaprop import MLPClassifier
from deltaprop.estimators._labels import binarize, class_labels, decode, fit_binarizer, plain_codes

PLAIN = {
    "int-with-gaps": lambda: np.array([7, 2, 2, 11, 7, 2, 30, 11]),
    "negative-int": lambda: np.array([-3, 0, -7, 5, -3, 0, 5]),
    "two-classes": lambda: np.array([4, 9, 9, 4, 4]),
    "one-class": lambda: np.full(5, 3),
    "int32": lambda: np.array([1, 2, 3, 1], dtype=np.int32),
    "uint8": lambda: np.array([200, 3, 3, 255], dtype=np.uint8),
    "uint64-beyond-int64": lambda: np.array([2**64 - 1, 0, 5, 0], dtype=np.uint64),
    "bool": lambda: np.array([True, False, True]),
    "float-integral": lambda: np.array([2.0, -1.0, 5.0, 2.0, 0.0]),
    "float-integral-two": lambda: np.array([0.0, 1.0, 1.0, 0.0]),
    "float32-integral": lambda: np.array([3.0, 1.0, 2.0, 3.0], dtype=np.float32),
    "float-least-int64": lambda: np.array([-(2.0**63), 0.0, 1.0]),
}

NOT_PLAIN = {
    "strings": lambda: np.array(["b", "a", "c", "a"]),
    "string-objects": lambda: np.array(["b", "a", "b"], dtype=object),
    "int-objects": lambda: np.array([1, 0, 1], dtype=object),
    "multilabel-indicator": lambda: np.array([[0, 1, 1], [1, 0, 0], [0, 0, 1]]),
    "multiclass-multioutput": lambda: np.array([[0, 1], [2, 0], [1, 1]]),
    "continuous": lambda: np.array([0.5, 1.0, 2.0]),
    "float-beyond-int64": lambda: np.array([2.0**63, 0.0]),
    "negative-zero": lambda: np.array([-0.0, 1.0, 0.0]),
    "list": lambda: [3, 1, 3],
    "column": lambda: np.array([[1], [2], [1]]),
    "empty": lambda: np.array([], dtype=int),
}


def assert_same_binarizer(ours, theirs):
    """Two fitted LabelBinarizers hold the same parameters and fitted attributes."""
    assert vars(ours).keys() == vars(theirs).keys()
    for key, value in vars(theirs).items():
        if isinstance(value, np.ndarray):
            assert vars(ours)[key].dtype == value.dtype, key
            np.testing.assert_array_equal(vars(ours)[key], value)
        else:
            assert type(vars(ours)[key]) is type(value) and vars(ours)[key] == value, key


def labelbinarizer_targets(binarizer, y):
    """scikit-learn's targets of y as the network takes them: (n, K) booleans."""
    Y = binarizer.transform(y).astype(bool)
    return Y.reshape(-1, 1) if Y.ndim == 1 else Y


def outcome(fn):
    """fn()'s value, or the type and message of what it raised."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - the exception is the outcome being compared
        return type(e), str(e)


def assert_same_outcome(ours, theirs):
    if isinstance(theirs, tuple) and isinstance(theirs[0], type):
        assert ours == theirs
    else:
        assert not (isinstance(ours, tuple) and isinstance(ours[0], type)), ours
        assert type(ours) is type(theirs)
        if isinstance(theirs, np.ndarray):
            assert ours.dtype == theirs.dtype
            assert ours.shape == theirs.shape
            np.testing.assert_array_equal(ours, theirs)


# ---------------------------------------------------------------------------- fit_binarizer / binarize
@pytest.mark.parametrize("case", list(PLAIN))
def test_plain_labels_give_labelbinarizers_fit_and_targets(case):
    y = PLAIN[case]()
    binarizer, codes = fit_binarizer(y)
    assert codes is not None
    truth = LabelBinarizer().fit(y)
    assert_same_binarizer(binarizer, truth)
    Y = binarize(binarizer, y, codes)
    expected = labelbinarizer_targets(truth, y)
    assert Y.dtype == bool and Y.shape == expected.shape
    np.testing.assert_array_equal(Y, expected)
    np.testing.assert_array_equal(codes.classes[codes.inverse], y)


@pytest.mark.parametrize("case", list(NOT_PLAIN))
def test_other_labels_give_labelbinarizers_results_and_errors(case):
    y = NOT_PLAIN[case]()
    assert plain_codes(y) is None

    def ours():
        binarizer, codes = fit_binarizer(y)
        return binarizer, binarize(binarizer, y, codes)

    def theirs():
        binarizer = LabelBinarizer().fit(y)
        return binarizer, labelbinarizer_targets(binarizer, y)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the cast of values beyond int64
        got, expected = outcome(ours), outcome(theirs)
    if isinstance(expected[0], type):
        assert got == expected
    else:
        assert_same_binarizer(got[0], expected[0])
        assert_same_outcome(got[1], expected[1])


@pytest.mark.parametrize("case", list(PLAIN) + list(NOT_PLAIN))
def test_class_labels_equal_unique_labels(case):
    y = {**PLAIN, **NOT_PLAIN}[case]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert_same_outcome(outcome(lambda: class_labels(y)[0]), outcome(lambda: unique_labels(y)))


@pytest.mark.parametrize("classes, y", [
    (np.array([-2, 0, 3, 8]), np.array([3, 3, -2, 8])),  # a subset of the classes
    (np.array([-2, 0, 3, 8]), np.array([0, 0])),  # one class of four: one-hot rows
    (np.array([1, 5]), np.array([5, 5, 5])),  # one class of two: one column
    (np.array([1, 5]), np.array([5, 1, 1])),
    (np.array([4]), np.array([4, 4])),  # a single class: one column of zeros
    (np.array([-2, 0, 3, 8]), np.array([3, 7, 8])),  # 7 is no class: LabelBinarizer's zero row
    (np.array([0, 1, 2]), np.array([2, 0], dtype=np.int32)),  # y's dtype is not the classes'
    (np.array([0.0, 1.0, 2.0]), np.array([2.0, 0.0])),
])
def test_binarize_against_classes_of_an_earlier_fit_equals_transform(classes, y):
    binarizer = LabelBinarizer().fit(classes)
    Y = binarize(binarizer, y, plain_codes(y))
    expected = labelbinarizer_targets(binarizer, y)
    assert Y.dtype == bool and Y.shape == expected.shape
    np.testing.assert_array_equal(Y, expected)


def test_binarize_of_plain_labels_with_a_multilabel_binarizer_equals_transform():
    binarizer = LabelBinarizer().fit(np.array([[0, 1], [1, 1]]))
    y = np.array([1, 0, 1])
    assert_same_outcome(outcome(lambda: binarize(binarizer, y, plain_codes(y))),
                        outcome(lambda: labelbinarizer_targets(binarizer, y)))


# ---------------------------------------------------------------------------- decode
def network_outputs(rng, n, K, dtype):
    """Outputs with ties, exact 0.5s and NaN rows, as a diverged or saturated network gives them."""
    out = rng.rand(n, K).astype(dtype)
    out[0] = 0.5
    out[1, : min(K, 2)] = 0.25  # a tie between the first two
    out[2] = np.nan
    out[3, -1] = np.nan
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("y", [np.array([3, 8, 8]), np.array([-1.0, 1.0]), np.array([7]),
                               np.array([0, 5, 2, 9]), np.array([True, False])],
                         ids=["binary", "binary-float", "one-class", "multiclass", "bool"])
def test_decode_equals_inverse_transform(y, dtype):
    rng = np.random.RandomState(0)
    binarizer = fit_binarizer(y)[0]
    K = len(binarizer.classes_) if binarizer.y_type_ == "multiclass" else 1
    out = network_outputs(rng, 40, K, dtype)
    shapes = [out] if K > 1 else [out, out.ravel()]
    for o in shapes:
        assert_same_outcome(decode(binarizer, o), LabelBinarizer().fit(y).inverse_transform(o))


def test_decode_of_multilabel_and_of_integer_outputs_equals_inverse_transform():
    multilabel = LabelBinarizer().fit(np.array([[0, 1, 1], [1, 0, 0]]))
    out = np.random.RandomState(0).rand(10, 3)
    assert_same_outcome(decode(multilabel, out), multilabel.inverse_transform(out))
    binarizer = LabelBinarizer().fit(np.array([2, 4, 6]))
    one_hot = np.eye(3, dtype=int)[[2, 0, 1, 1]]
    assert_same_outcome(decode(binarizer, one_hot), binarizer.inverse_transform(one_hot))


# ---------------------------------------------------------------------------- the classifier
SMALL = dict(hidden_layer_sizes=(5,), max_iter=6, random_state=0, tol=0.0)


def clf_data(n=90, k=4, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 5)
    y = np.argmax(X[:, :k] + 0.5 * rng.randn(n, k), axis=1)
    return X, y


def fitted(y, X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(**{**SMALL, **params}).fit(X, y)


def assert_same_fit(a, b):
    """Bit-identical weights and records."""
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_array_equal(u, v)
    assert a.loss_curve_ == b.loss_curve_
    assert a.validation_scores_ == b.validation_scores_
    assert a.n_iter_ == b.n_iter_


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_fit_on_integers_equals_fit_on_their_names(k, early_stopping):
    # zero-padded names sort as the integers do, and strings take LabelBinarizer's path
    X, y = clf_data(k=k)
    names = np.array([f"c{v:02d}" for v in range(k)])
    ours = fitted(y, X, early_stopping=early_stopping)
    theirs = fitted(names[y], X, early_stopping=early_stopping)
    assert_same_fit(ours, theirs)
    np.testing.assert_array_equal(names[ours.predict(X)], theirs.predict(X))


def test_fit_on_integral_floats_equals_fit_on_integers():
    X, y = clf_data()
    ours, theirs = fitted(y.astype(float) - 2, X), fitted(y - 2, X)
    assert ours.classes_.dtype == np.float64
    assert_same_fit(ours, theirs)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X).astype(float))


@pytest.mark.parametrize("case", ["int-with-gaps", "negative-int", "two-classes", "bool"])
def test_classifier_binarizer_is_labelbinarizers_fit_and_survives_pickle(case):
    y = np.resize(PLAIN[case](), 30)
    X = np.random.RandomState(1).randn(30, 3)
    est = fitted(y, X)
    assert_same_binarizer(est._label_binarizer, LabelBinarizer().fit(y))
    np.testing.assert_array_equal(est.classes_, unique_labels(y))
    clone = pickle.loads(pickle.dumps(est))
    assert_same_binarizer(clone._label_binarizer, est._label_binarizer)
    np.testing.assert_array_equal(clone.predict(X), est.predict(X))


def test_one_class_fits_one_output_that_predicts_the_class():
    X = np.random.RandomState(2).randn(20, 3)
    est = fitted(np.full(20, 6), X)
    assert_same_binarizer(est._label_binarizer, LabelBinarizer().fit(np.full(20, 6)))
    assert est.n_outputs_ == 1
    np.testing.assert_array_equal(est.predict(X), np.full(20, 6))


def test_continuous_labels_raise_labelbinarizers_error():
    X = np.random.RandomState(3).randn(6, 2)
    y = np.array([0.5, 1.0, 1.5, 0.5, 1.0, 1.5])
    with pytest.raises(ValueError) as theirs:
        LabelBinarizer().fit(y)
    with pytest.raises(ValueError) as ours:
        MLPClassifier(**SMALL).fit(X, y)
    assert str(ours.value) == str(theirs.value)


def _raise_alike(call_ours, call_theirs):
    with pytest.raises(ValueError) as theirs:
        call_theirs()
    with pytest.raises(ValueError) as ours:
        call_ours()
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("labels", ["int", "float", "str"])
def test_warm_start_with_other_classes_raises_like_sklearn(labels):
    X, y = clf_data(k=3)
    y = {"int": y, "float": y.astype(float), "str": np.array(["a", "b", "c"])[y]}[labels]
    ours = fitted(y, X, solver="sgd", warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = sknn.MLPClassifier(**SMALL, solver="sgd", warm_start=True).fit(X, y)
    other = np.where(y == y[0], y[1] if y[1] != y[0] else y[2], y)  # one class fewer
    _raise_alike(lambda: ours.fit(X, other), lambda: theirs.fit(X, other))


@pytest.mark.parametrize("labels", ["int", "float", "str"])
def test_partial_fit_with_a_new_class_raises_like_sklearn(labels):
    X, y = clf_data(k=3)
    names = {"int": np.array([0, 1, 2, 9]), "float": np.array([0.0, 1.0, 2.0, 9.0]),
             "str": np.array(["a", "b", "c", "z"])}[labels]
    ours = MLPClassifier(**SMALL, solver="sgd").partial_fit(X, names[y], classes=names[:3])
    theirs = sknn.MLPClassifier(**SMALL, solver="sgd").partial_fit(X, names[y], classes=names[:3])
    unseen = names[np.where(np.arange(len(y)) == 0, 3, y)]
    _raise_alike(lambda: ours.partial_fit(X, unseen), lambda: theirs.partial_fit(X, unseen))


def test_partial_fit_on_subsets_of_the_classes_equals_sklearn():
    X, y = clf_data(k=4)
    ours = MLPClassifier(**SMALL, solver="sgd", learning_rate_init=0.1)
    theirs = sknn.MLPClassifier(**SMALL, solver="sgd", learning_rate_init=0.1)
    for est in (ours, theirs):
        est.partial_fit(X[:30], y[:30], classes=np.arange(4))
        est.partial_fit(X[30:60][y[30:60] < 2], y[30:60][y[30:60] < 2])  # two of the four classes
        est.partial_fit(X[60:][y[60:] == 3], y[60:][y[60:] == 3])  # one of them
    for u, v in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True):
        np.testing.assert_allclose(u, v, rtol=0, atol=1e-6 * np.abs(v).max())
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


# ---------------------------------------------------------------------------- early stopping's score
@pytest.mark.parametrize("labels", ["int", "negative-int", "binary", "float", "bool", "one-class", "str"])
@pytest.mark.parametrize("weighted", [False, True])
def test_validation_score_equals_accuracy_score(labels, weighted):
    X, y = clf_data(n=60, k=3)
    y = {"int": y * 3, "negative-int": y - 5, "binary": y % 2, "float": y / 1.0, "bool": y == 1,
         "one-class": np.zeros_like(y), "str": np.array(["x", "y", "z"])[y]}[labels]
    est = fitted(y, X)
    rng = np.random.RandomState(4)
    for n in (1, 7, 60):
        out = rng.rand(n, est.n_outputs_)
        out[: n // 2] = 0.5  # ties and outputs on the threshold
        y_val = y[:n]
        sw = rng.rand(n) if weighted else None
        score = est._score_outputs(out, y_val, sw)
        truth = accuracy_score(y_val, est._decode(out.ravel() if est.n_outputs_ == 1 else out),
                               sample_weight=sw)
        assert type(score) is float
        assert score == truth


def test_validation_score_of_multilabel_targets_equals_accuracy_score():
    X = np.random.RandomState(5).randn(40, 4)
    Y = (np.random.RandomState(6).rand(40, 3) > 0.5).astype(int)
    est = fitted(Y, X)
    out = np.random.RandomState(7).rand(40, 3)
    assert est._score_outputs(out, Y, None) == accuracy_score(Y, est._decode(out))


def test_validation_score_of_nonfinite_outputs_is_nan():
    X, y = clf_data()
    est = fitted(y, X)
    out = np.random.RandomState(8).rand(10, est.n_outputs_)
    out[3, 1] = np.inf
    assert np.isnan(est._score_outputs(out, y[:10], None))
