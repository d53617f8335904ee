"""The engine on every backend against truth that owes nothing to it.

Central differences, the lecture notes' worked examples (arithmetic in the comments), and scikit-learn's
MLP predicting with the same weights.
"""

import warnings

import numpy as np
import pytest
from conftest import GRADCHECK_TOL, HIDDEN_ACTIVATIONS, PAIRS, targets

import deltaprop
from deltaprop import MLP

DEPTHS = {1: [3, 2], 2: [3, 4, 2], 3: [3, 4, 3, 2]}


@pytest.mark.parametrize("depth", sorted(DEPTHS))
@pytest.mark.parametrize("output,loss", PAIRS, ids=[f"{o}+{e}" for o, e in PAIRS])
@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
def test_backprop_matches_central_differences(backend, dtype, hidden, output, loss, depth):
    rng = np.random.RandomState(depth)
    net = MLP(DEPTHS[depth], hidden=hidden, output=output, loss=loss, backend=backend,
              dtype=dtype, random_state=1)
    X = rng.randn(6, 3)
    T = rng.poisson(1.5, (6, 2)) if loss == "poisson" else targets(rng, 6, 2, output)
    assert deltaprop.gradcheck(net, X, T) < GRADCHECK_TOL[dtype]


def test_gradcheck_detects_a_wrong_gradient():
    """The checker itself can fail: a gradient off by 1% is reported as such."""
    net = MLP([3, 4, 2], random_state=0, backend="numpy")
    X, T = np.random.RandomState(0).randn(5, 3), np.random.RandomState(1).randn(5, 2)

    class Wrong:
        def __getattr__(self, name):
            return getattr(net, name)

        def loss_and_gradient(self, X, T):
            E, g = net.loss_and_gradient(X, T)
            return E, g * 1.01

    assert deltaprop.gradcheck(Wrong(), X, T) > 1e-3


def test_cross_entropy_of_the_seeds_table(backend, dtype):
    """The Car/Bike/Person table of the lecture notes on cross-entropy: E = -sum_n sum_k t_kn ln y_k(x_n).

    Example 1, Car,    y = [0.8, 0.1, 0.1]: -ln 0.8 = 0.22314
    Example 2, Bike,   y = [0.2, 0.7, 0.1]: -ln 0.7 = 0.35667
    Example 3, Person, y = [0.1, 0.2, 0.7]: -ln 0.7 = 0.35667
    Example 4, Car,    y = [0.6, 0.2, 0.2]: -ln 0.6 = 0.51083
    E = 0.22314 + 0.35667 + 0.35667 + 0.51083 = 1.44731
    A softmax layer with W = I, b = 0 and inputs ln y outputs y itself (softmax(ln y) = y).
    """
    Y = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.6, 0.2, 0.2]])
    T = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]])
    net = MLP([3, 3], output="softmax", loss="cross_entropy", backend=backend, dtype=dtype)
    net.coefs_ = [np.eye(3)]
    net.intercepts_ = [np.zeros(3)]
    np.testing.assert_allclose(net.forward(np.log(Y)), Y, rtol=1e-6)
    E = net.loss(np.log(Y), T)
    assert E == pytest.approx(1.44731, abs=1e-5)
    assert E == pytest.approx(-np.log([0.8, 0.7, 0.7, 0.6]).sum(), rel=1e-6)
    assert net.loss(np.log(Y), [0, 1, 2, 0]) == pytest.approx(E, rel=1e-6)  # class indices


def test_one_sgd_step_of_mitchells_algorithm_by_hand(backend, dtype):
    """A 1-1-1 net, logistic hidden and output units, squared error, η = 1 (Mitchell's rule).

    x = 1, t = 1; w1 = 0, b1 = 0, w2 = 2, b2 = -1.
    Forward: a_j = 0, z = σ(0) = 0.5; a_k = 2(0.5) - 1 = 0, y = σ(0) = 0.5; E = ½(0.5 - 1)² = 0.125.
    Output:  δ_k = (y - t) y (1 - y) = (-0.5)(0.5)(0.5) = -0.125.
    Hidden:  δ_j = z (1 - z) w2 δ_k = (0.25)(2)(-0.125) = -0.0625.
    Update w ← w - η δ z_in:  w2 = 2 - (-0.125)(0.5) = 2.0625,  b2 = -1 + 0.125 = -0.875,
                              w1 = 0 - (-0.0625)(1) = 0.0625,   b1 = 0.0625.
    """
    net = MLP([1, 1, 1], hidden="logistic", output="logistic", loss="squared_error",
              backend=backend, dtype=dtype)
    net.coefs_ = [[[0.0]], [[2.0]]]
    net.intercepts_ = [[0.0], [-1.0]]
    E = net.sgd_epoch([[1.0]], [[1.0]], lr=1.0)
    assert E == pytest.approx(0.125, rel=1e-6)
    np.testing.assert_allclose(net.coefs_[1], [[2.0625]], rtol=1e-6)
    np.testing.assert_allclose(net.intercepts_[1], [-0.875], rtol=1e-6)
    np.testing.assert_allclose(net.coefs_[0], [[0.0625]], rtol=1e-6)
    np.testing.assert_allclose(net.intercepts_[0], [0.0625], rtol=1e-6)


def test_softplus_and_its_derivative_by_hand(backend, dtype):
    """Softplus h(a) = ln(1 + e^a), h'(a) = σ(a), through a 1-1-1 net with w = 1, b = 0 and an
    identity output, so that y = h(x) and the Jacobian ∂y/∂x = h'(x).

    x = 0:      h = ln 2 = 0.6931471805599453;               h' = σ(0) = 1/2
    x = 40:     h = 40 + ln(1 + e^-40) = 40 + 4.2e-18 = 40;  h' = 1 / (1 + e^-40) = 1 (rounded)
    x = -40:    h = ln(1 + e^-40) = e^-40 - e^-80/2 + ... = 4.248354255291589e-18 (ln(1 + e^a)
                taken naively would round 1 + e^-40 to 1 and give 0);
                h' = e^-40 / (1 + e^-40) = 4.248354255291589e-18
    x = 1000:   h = 1000 (e^1000 overflows: h is max(a, 0) + ln(1 + e^-|a|)); h' = 1
    x = -1000:  h = e^-1000 = 0 (underflow), h' = 0
    """
    x = np.array([0.0, 40.0, -40.0, 1000.0, -1000.0])
    h = [np.log(2), 40.0, 4.248354255291589e-18, 1000.0, 0.0]
    dh = [0.5, 1.0, 4.248354255291589e-18, 1.0, 0.0]
    net = MLP([1, 1, 1], hidden="softplus", output="identity", loss="squared_error",
              backend=backend, dtype=dtype)
    net.coefs_ = [[[1.0]], [[1.0]]]
    net.intercepts_ = [[0.0], [0.0]]
    rtol = 1e-6 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(net.forward(x[:, None]).ravel(), h, rtol=rtol, atol=0)
    np.testing.assert_allclose(net.jacobian(x[:, None]).ravel(), dh, rtol=rtol, atol=0)


SKLEARN_CASES = [
    ("regressor", "identity", "squared_error", 3),
    ("classifier", "softmax", "cross_entropy", 3),
    ("classifier", "logistic", "binary_cross_entropy", 2),
]


@pytest.mark.parametrize("hidden", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("kind,output,loss,n_classes", SKLEARN_CASES)
def test_forward_equals_scikit_learn_with_the_same_weights(backend, hidden, kind, output, loss, n_classes):
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    rng = np.random.RandomState(0)
    X = rng.randn(40, 4)
    if kind == "regressor":
        y = rng.randn(40, n_classes)
        sk = MLPRegressor(hidden_layer_sizes=(5, 3), activation=hidden, max_iter=2, random_state=0)
    else:
        y = rng.randint(0, n_classes, 40)
        sk = MLPClassifier(hidden_layer_sizes=(5, 3), activation=hidden, max_iter=2, random_state=0)
    with warnings.catch_warnings():  # 2 iterations need not converge; only the weights matter
        warnings.simplefilter("ignore")
        sk.fit(X, y)
    K = sk.coefs_[-1].shape[1]
    net = MLP([4, 5, 3, K], hidden=hidden, output=output, loss=loss, backend=backend)
    net.coefs_, net.intercepts_ = sk.coefs_, sk.intercepts_
    if kind == "regressor":
        np.testing.assert_allclose(net.forward(X), sk.predict(X), rtol=1e-10, atol=1e-12)
    else:
        proba = sk.predict_proba(X)
        y_net = net.forward(X)
        if K == 1:
            y_net = np.hstack([1 - y_net, y_net])
        np.testing.assert_allclose(y_net, proba, rtol=1e-10, atol=1e-12)
