"""ONNX export: ONNX Runtime's outputs equal forward / predict / predict_proba, for every piece.

Each test builds small networks (weights scaled so that no unit saturates) and runs them in one
``onnxruntime.InferenceSession`` each on a few rows, one row and no rows.
"""

import ast
import inspect
import sys

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from sklearn.exceptions import NotFittedError  # noqa: E402

from deltaprop import MLP, MLPClassifier, MLPRegressor, to_onnx  # noqa: E402
from deltaprop.cli.export import export_model_file  # noqa: E402
from deltaprop.contract import ACTIVATIONS, HIDDEN_ACTIVATIONS, PAIRS  # noqa: E402
from deltaprop.kernels._numpy.activations import activate  # noqa: E402
from deltaprop.onnx_export import DEFAULT_OPSET, MIN_OPSET  # noqa: E402

#: ONNX Runtime against the NumPy reference, relative
RTOL = {np.float32: 1e-5, np.float64: 1e-6}
DTYPES = [np.float32, np.float64]
IDS = ["float32", "float64"]
fit_quietly = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def assert_close(actual, desired, dtype):
    """Equal to RTOL relative; an entry that is a near-cancelling sum (or ``1 - p`` with p near
    1) to RTOL / 10 of the largest entry, absolute. ``actual`` must have ``desired``'s dtype."""
    assert actual.dtype == desired.dtype
    scale = np.abs(desired).max(initial=0.0)
    np.testing.assert_allclose(actual, desired, rtol=RTOL[dtype], atol=0.1 * RTOL[dtype] * scale)


def session(model):
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def run(sess, X):
    """``{output name: array}`` for input X."""
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {"X": X})))


def small_net(sizes, hidden, output, loss, dtype, seed=0):
    """A random network whose pre-activations stay within a few units (nothing saturated)."""
    net = MLP(list(sizes), hidden=hidden, output=output, loss=loss, backend="numpy",
              dtype=np.dtype(dtype).name, random_state=seed)
    net.w[...] = 0.7 * net.w
    return net


def inputs(n, D, dtype, seed=1):
    return np.random.RandomState(seed).randn(n, D).astype(dtype)


# ------------------------------------------------------------------ MLP: y = forward(X)
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("output,loss", PAIRS, ids=[f"{o}+{e}" for o, e in PAIRS])
@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
def test_mlp_graph_equals_forward(hidden, output, loss, dtype):
    net = small_net((4, 6, 5, 3), hidden, output, loss, dtype)
    sess = session(to_onnx(net))
    X = inputs(5, 4, dtype)
    for rows in (X, X[:1]):  # a few rows, batch size 1
        y = run(sess, rows)["y"]
        assert y.dtype == dtype and y.shape == (rows.shape[0], 3)
        assert_close(y, net.forward(rows), dtype)
    y = run(sess, X[:0])["y"]  # an empty batch (forward itself rejects one)
    assert y.dtype == dtype and y.shape == (0, 3)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_network_without_hidden_layer_equals_forward(dtype):
    net = small_net((3, 2), "tanh", "softmax", "cross_entropy", dtype)
    X = inputs(4, 3, dtype)
    assert_close(run(session(to_onnx(net)), X)["y"], net.forward(X), dtype)


@pytest.mark.parametrize("name", [h for h in HIDDEN_ACTIVATIONS if h not in ("identity", "logistic")])
def test_float64_activations_match_the_reference_over_the_whole_range(name):
    """The float64 workarounds (gudermannian: Atan refined by Newton; softplus: log1p) to a few
    ulp, tails included. (A logistic hidden unit is ONNX Runtime's Sigmoid: absolute accuracy.)"""
    net = MLP([1, 1, 1], hidden=name, output="identity", backend="numpy", dtype="float64")
    net.coefs_, net.intercepts_ = [np.ones((1, 1)), np.ones((1, 1))], [np.zeros(1), np.zeros(1)]
    a = np.concatenate([np.linspace(-40, 40, 8001), np.logspace(-300, 2.8, 400), -np.logspace(-300, 2.8, 400)])
    z = run(session(to_onnx(net)), a[:, None])["y"].ravel()
    np.testing.assert_allclose(z, activate(ACTIVATIONS[name], a), rtol=4e-15, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_logistic_output_is_relatively_accurate_in_both_tails(dtype):
    """Small probabilities keep their relative accuracy (ONNX Runtime's Sigmoid would not)."""
    net = MLP([1, 1], output="logistic", loss="binary_cross_entropy", backend="numpy",
              dtype=np.dtype(dtype).name)
    net.coefs_, net.intercepts_ = [np.ones((1, 1))], [np.zeros(1)]
    a = np.linspace(-80, 30, 2201).astype(dtype)[:, None]
    tol = {np.float32: 1e-6, np.float64: 1e-14}[dtype]
    np.testing.assert_allclose(run(session(to_onnx(net)), a)["y"], net.forward(a), rtol=tol, atol=0)


# ------------------------------------------------------------------ the estimators
def classification_data(kind, dtype, n=40, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 4).astype(dtype)
    score = X @ rng.randn(4, 3)
    if kind == "binary":
        y = np.where(score[:, 0] > 0, 7, -1)
    elif kind == "multiclass":
        y = np.array(["cat", "dog", "émeu"])[score.argmax(axis=1)]
    else:  # multilabel: an indicator matrix
        y = (score > 0).astype(int)
    return X, y


@fit_quietly
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_classifier_label_equals_predict_and_probabilities_equal_predict_proba(kind, dtype):
    X, y = classification_data(kind, dtype)
    clf = MLPClassifier(hidden_layer_sizes=(6,), activation="gudermannian", max_iter=50,
                        random_state=0, backend="numpy").fit(X, y)
    sess = session(to_onnx(clf, X_sample=X))
    assert [o.name for o in sess.get_outputs()] == ["label", "probabilities"]
    for rows in (X, X[:1]):
        out = run(sess, rows)
        label, expected = out["label"], clf.predict(rows)
        assert label.shape == expected.shape
        assert label.dtype == expected.dtype or (label.dtype == object and expected.dtype.kind == "U")
        np.testing.assert_array_equal(label, expected)
        assert_close(out["probabilities"], clf.predict_proba(rows), dtype)
    out = run(sess, X[:0])  # an empty batch (predict itself rejects one)
    assert out["label"].shape == (0,) + expected.shape[1:] and out["probabilities"].shape == (0, len(clf.classes_))


@fit_quietly
def test_float_class_labels_come_back_as_floats():
    X, y = classification_data("multiclass", np.float64)
    y = np.searchsorted(np.unique(y), y) + 1.0  # 1.0, 2.0, 3.0 (scikit-learn takes integral floats)
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0, backend="numpy").fit(X, y)
    label = run(session(to_onnx(clf)), X)["label"]
    assert label.dtype == np.float64
    np.testing.assert_array_equal(label, clf.predict(X))


@fit_quietly
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("n_outputs,loss", [(1, "squared_error"), (3, "squared_error"), (1, "poisson")])
def test_regressor_variable_equals_predict(n_outputs, loss, dtype):
    rng = np.random.RandomState(0)
    X = rng.randn(30, 4).astype(dtype)
    y = np.abs(X @ rng.randn(4, n_outputs)).astype(dtype)
    reg = MLPRegressor(hidden_layer_sizes=(6,), activation="tanh", loss=loss, max_iter=50,
                       random_state=0, backend="numpy").fit(X, y.ravel() if n_outputs == 1 else y)
    sess = session(to_onnx(reg))
    for rows in (X, X[:1]):
        variable = run(sess, rows)["variable"]
        assert variable.shape == (rows.shape[0], n_outputs) and variable.dtype == dtype
        assert_close(variable, reg.predict(rows).reshape(-1, n_outputs), dtype)
    assert run(sess, X[:0])["variable"].shape == (0, n_outputs)  # an empty batch


# ------------------------------------------------------------------ what cannot be exported
def test_unfitted_estimator_raises_not_fitted_error_naming_it():
    for est in (MLPClassifier(), MLPRegressor()):
        with pytest.raises(NotFittedError, match=f"This {type(est).__name__} instance is not fitted yet"):
            to_onnx(est)


@pytest.mark.parametrize("attr,value", [("hidden", "swish"), ("output", "sinh"), ("dtype", np.dtype(np.float16))])
def test_unsupported_piece_is_a_value_error_naming_it(attr, value):
    net = small_net((2, 3, 1), "tanh", "identity", "squared_error", np.float64)
    setattr(net, attr, value)
    with pytest.raises(ValueError, match=str(getattr(value, "name", value))):
        to_onnx(net)


def test_unknown_model_type_is_a_value_error_naming_it():
    from sklearn.neural_network import MLPClassifier as SkMLP

    with pytest.raises(ValueError, match="MLPClassifier"):
        to_onnx(SkMLP())
    with pytest.raises(ValueError, match="dict"):
        to_onnx({})


def test_x_sample_is_checked_against_the_model():
    net = small_net((3, 2), "tanh", "identity", "squared_error", np.float32)
    to_onnx(net, X_sample=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(n_samples, 3\)"):
        to_onnx(net, X_sample=np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="float32"):
        to_onnx(net, X_sample=np.zeros((2, 3)))


@pytest.mark.parametrize("opset", [MIN_OPSET - 1, onnx.defs.onnx_opset_version() + 1, 17.0, True])
def test_target_opset_out_of_range_is_a_value_error(opset):
    net = small_net((3, 2), "tanh", "identity", "squared_error", np.float64)
    with pytest.raises(ValueError, match="target_opset"):
        to_onnx(net, target_opset=opset)


# ------------------------------------------------------------------ opsets, metadata, the extra
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_oldest_supported_opset_runs_every_activation(dtype):
    X = inputs(3, 4, dtype)
    for hidden in HIDDEN_ACTIVATIONS:
        for output, loss in (("logistic", "binary_cross_entropy"), ("softmax", "cross_entropy")):
            net = small_net((4, 3, 2), hidden, output, loss, dtype)
            model = to_onnx(net, target_opset=MIN_OPSET)
            assert model.opset_import[0].version == MIN_OPSET
            assert_close(run(session(model), X)["y"], net.forward(X), dtype)


def test_default_opset_and_ir_version_load_in_onnx_runtime():
    model = to_onnx(small_net((3, 2), "relu", "exp", "poisson", np.float64))
    assert model.opset_import[0].version == min(DEFAULT_OPSET, onnx.defs.onnx_opset_version())
    assert model.producer_name == "deltaprop"
    graph_input = model.graph.input[0]
    assert graph_input.name == "X"
    assert [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim] == ["N", 3]


def test_onnx_is_imported_only_when_exporting(monkeypatch):
    """``import deltaprop`` never imports onnx (no module-level import of it in the export
    module); without it, exporting says which extra to install."""
    import deltaprop.onnx_export as module

    tree = ast.parse(inspect.getsource(module))
    top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    imported = {a.name.split(".")[0] for n in top_level for a in n.names} | \
               {n.module.split(".")[0] for n in top_level if isinstance(n, ast.ImportFrom) and n.module}
    assert not imported & {"onnx", "onnxruntime"}
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'deltaprop\[onnx\]'"):
        to_onnx(small_net((3, 2), "tanh", "identity", "squared_error", np.float64))


# ------------------------------------------------------------------ command-line model files
@fit_quietly
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_model_file_export_includes_the_preprocessing(task, tmp_path):
    from sklearn.preprocessing import StandardScaler

    from deltaprop.cli import pipeline as savedmodel

    rng = np.random.RandomState(0)
    X = rng.randn(40, 3) * [1.0, 10.0, 0.1] + [5.0, -2.0, 0.0]
    x_scaler = StandardScaler().fit(X)
    Xs = x_scaler.transform(X)
    if task == "classification":
        y = np.array(["a", "b", "c"])[(Xs @ rng.randn(3, 3)).argmax(axis=1)]
        est, y_scaler = MLPClassifier(hidden_layer_sizes=(5,), max_iter=30, random_state=0).fit(Xs, y), None
    else:
        y = X @ rng.randn(3) * 100 + 40
        y_scaler = StandardScaler().fit(y[:, None])
        est = MLPRegressor(hidden_layer_sizes=(5,), max_iter=50, random_state=0)
        est.fit(Xs, y_scaler.transform(y[:, None]).ravel())
    savedmodel.save(tmp_path / "model.npz", savedmodel.assemble(x_scaler, est, y_scaler))
    pipeline = savedmodel.load(tmp_path / "model.npz").model
    export_model_file(tmp_path / "model.npz", tmp_path / "model.onnx")
    model = onnx.load(str(tmp_path / "model.onnx"))
    assert {"Sub", "Div"} <= {node.op_type for node in model.graph.node}
    out = run(session(model), X)
    if task == "classification":
        np.testing.assert_array_equal(out["label"], pipeline.predict(X))
        np.testing.assert_allclose(out["probabilities"], pipeline.predict_proba(X), rtol=1e-6, atol=0)
    else:
        np.testing.assert_allclose(out["variable"].ravel(), pipeline.predict(X), rtol=1e-6, atol=0)


def test_plain_network_file_exports_its_outputs(tmp_path):
    net = small_net((3, 4, 2), "gudermannian", "softmax", "squared_error", np.float32)
    net.save(tmp_path / "net.npz")
    export_model_file(tmp_path / "net.npz", tmp_path / "net.onnx")
    X = inputs(4, 3, np.float32)
    y = run(session(onnx.load(str(tmp_path / "net.onnx"))), X)["y"]
    np.testing.assert_allclose(y, net.forward(X), rtol=1e-5, atol=0)


@fit_quietly
def test_standardised_export_rejects_statistics_that_do_not_fit_the_model():
    from deltaprop.onnx_export import to_onnx_standardised

    rng = np.random.RandomState(0)
    X = rng.randn(20, 3)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, X[:, 0] > 0)
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, X[:, 0])
    with pytest.raises(ValueError, match=r"x_mean and x_scale must have shape \(3,\)"):
        to_onnx_standardised(reg, np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="for MLPRegressor only"):
        to_onnx_standardised(clf, np.zeros(3), np.ones(3), y_mean=[0.0], y_scale=[1.0])
    with pytest.raises(ValueError, match="both"):
        to_onnx_standardised(reg, np.zeros(3), np.ones(3), y_mean=[0.0])
    with pytest.raises(ValueError, match=r"shape \(1,\)"):
        to_onnx_standardised(reg, np.zeros(3), np.ones(3), y_mean=np.zeros(2), y_scale=np.ones(2))


def test_the_export_modules_import_nothing_from_the_command_line():
    import deltaprop._onnx_graph
    import deltaprop.onnx_export

    for module in (deltaprop.onnx_export, deltaprop._onnx_graph):
        tree = ast.parse(inspect.getsource(module))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | \
                   {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
        assert not [name for name in imported if name.split(".")[0] == "cli" or name.startswith("deltaprop.cli")]
