r"""The engine: :class:`MLP`, a multilayer perceptron in the seed's notation.

The network with layer sizes ``[D, M_1, ..., K]`` computes (Bishop 5.7, any depth)

.. math:: y_k(\mathbf{x}, \mathbf{w}) = f\Big(\sum_j w^{(L)}_{kj}\, h\big(\cdots h\big(\sum_i w^{(1)}_{ji} x_i + w^{(1)}_{j0}\big)\cdots\big) + w^{(L)}_{k0}\Big)

All parameters live in one flat vector ``w`` described by a layout table (see
:mod:`deltaprop.contract`); ``coefs_[l]`` (n_in, n_out) and ``intercepts_[l]`` (n_out,) are
views into it, in scikit-learn's layout. Bishop absorbs the bias as a weight from an extra input
:math:`x_0 = 1` (:math:`a_j = \sum_{i=0}^D w_{ji} x_i`); that is the same model, and the
intercepts are kept as separate vectors here.

The engine validates, casts and allocates; the backend's kernels do the arithmetic.
"""

from __future__ import annotations

import os
import tempfile
import zipfile

import numpy as np

from .backends import get_backend
from .contract import (ACTIVATIONS, LOSSES, SOLVERS, layer_params, layer_units, make_layout, n_params,
                       n_units)
from .validation import check_config, check_lr, check_order, check_positive_int, check_T, check_X

__all__ = ["MLP", "Epochs"]

FORMAT = "deltaprop.MLP"
FORMAT_VERSION = 1
#: samples per compiled call when a fit runs several small epochs in one call
_SAMPLES_PER_CALL = 20_000


class _LayerList(list):
    """The list behind ``coefs_`` / ``intercepts_``: item assignment writes into ``w``."""

    def __init__(self, views, name):
        super().__init__(views)
        self._name = name

    def __setitem__(self, index, value):
        if not isinstance(index, int):
            raise TypeError(f"{self._name} items are assigned one layer at a time")
        view = list.__getitem__(self, index)
        view[...] = _as_param(value, view, f"{self._name}[{index}]")


def _as_param(value, view, name):
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array; got dtype {arr.dtype}")
    if arr.shape != view.shape:
        raise ValueError(f"{name} must have shape {view.shape}; got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return arr.astype(view.dtype, copy=False)


class MLP:
    r"""A multilayer perceptron trained by error backpropagation and gradient descent.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[D, M_1, ..., K]``: inputs, hidden layers (any number, also none), outputs.
    hidden : {"identity", "logistic", "tanh", "relu", "gudermannian"}
        Hidden activation h.
    output : {"identity", "logistic", "softmax"}
        Output activation f.
    loss : {"squared_error", "binary_cross_entropy", "cross_entropy"}
        Error function E(w), summed over samples. Allowed pairs with ``output``:
        identity + squared_error, logistic + binary_cross_entropy or squared_error,
        softmax + cross_entropy or squared_error.
    backend : str
        ``"auto"`` (fastest available), ``"numpy"``, ``"numba"`` or ``"cython"``.
    dtype : {"float64", "float32"}
        dtype of weights, buffers and arithmetic.
    random_state : None, int or numpy.random.RandomState
        Seeds the weight initialisation and the shuffling in :meth:`fit`. Training finds one
        of many minima of E(w) (the seed's :math:`w_A`, :math:`w_B`): a seed reproduces a run,
        different seeds are restarts.

    Attributes
    ----------
    w : ndarray (P,)
        Every weight and bias, in the layout of ``layout``.
    layout : ndarray (L, 5) of intp
        ``(n_in, n_out, w_off, b_off, u_off)`` per layer.
    coefs_, intercepts_ : list of ndarray
        Views of ``w``: ``coefs_[l]`` (n_in, n_out), ``intercepts_[l]`` (n_out,). Assigning a
        list, or one item, validates and copies the values into ``w``.
    loss_curve_ : list of float
        Summed error of each epoch of :meth:`fit`.
    """

    def __init__(self, layer_sizes, hidden="tanh", output="identity", loss="squared_error",
                 backend="auto", dtype="float64", random_state=None):
        sizes, dt = check_config(layer_sizes, hidden, output, loss, dtype)
        self.kernels = get_backend(backend)
        self.layer_sizes = sizes
        self.hidden = hidden
        self.output = output
        self.loss_function = loss
        self.backend = self.kernels.name
        self.dtype = dt
        self.random_state = random_state
        self.layout = make_layout(sizes)
        self._rng = _check_random_state(random_state)
        self.w = np.zeros(n_params(self.layout), dtype=dt)
        self._init_weights()
        self.loss_curve_ = []

    # ----------------------------------------------------------------- parameters
    def _init_weights(self):
        r"""Glorot-uniform initialisation, drawn exactly as scikit-learn's MLP draws it.

        For each layer, :math:`w \sim U(-b, b)` with :math:`b = \sqrt{6 / (n_{in} + n_{out})}`
        (:math:`\sqrt{2 / (n_{in} + n_{out})}` for logistic hidden units), weights then biases.
        """
        factor = 2.0 if self.hidden == "logistic" else 6.0
        for W, b in zip(self.coefs_, self.intercepts_):
            bound = np.sqrt(factor / (W.shape[0] + W.shape[1]))
            W[...] = self._rng.uniform(-bound, bound, W.shape)
            b[...] = self._rng.uniform(-bound, bound, b.shape)

    @property
    def n_layers(self) -> int:
        """Number L of weight layers."""
        return self.layout.shape[0]

    @property
    def coefs_(self):
        return _LayerList([layer_params(self.w, self.layout, l)[0] for l in range(self.n_layers)], "coefs_")

    @coefs_.setter
    def coefs_(self, values):
        self._assign(values, 0, "coefs_")

    @property
    def intercepts_(self):
        return _LayerList([layer_params(self.w, self.layout, l)[1] for l in range(self.n_layers)], "intercepts_")

    @intercepts_.setter
    def intercepts_(self, values):
        self._assign(values, 1, "intercepts_")

    def _assign(self, values, which, name):
        values = list(values)
        if len(values) != self.n_layers:
            raise ValueError(f"{name} needs {self.n_layers} arrays, one per layer; got {len(values)}")
        views = [layer_params(self.w, self.layout, l)[which] for l in range(self.n_layers)]
        checked = [_as_param(v, view, f"{name}[{l}]") for l, (v, view) in enumerate(zip(values, views))]
        for view, v in zip(views, checked):  # all validated first: nothing changes on error
            view[...] = v

    # ----------------------------------------------------------------- codes and buffers
    @property
    def _codes(self):
        return ACTIVATIONS[self.hidden], ACTIVATIONS[self.output], LOSSES[self.loss_function]

    def _buffers(self, n):
        U = n_units(self.layout)
        return (np.empty(n * U, dtype=self.dtype), np.empty(n * U, dtype=self.dtype),
                np.empty(n * U, dtype=self.dtype))

    def _check_XT(self, X, T):
        X = check_X(X, self.layer_sizes[0], self.dtype)
        T = check_T(T, X.shape[0], self.layer_sizes[-1], self.loss_function, self.dtype)
        return X, T

    # ----------------------------------------------------------------- the maths
    def forward(self, X):
        r"""Network outputs :math:`y(\mathbf{x}_n, \mathbf{w})`, shape (n, K)."""
        X = check_X(X, self.layer_sizes[0], self.dtype)
        h, f, _ = self._codes
        A, Z, _ = self._buffers(X.shape[0])
        self.kernels.forward(self.w, self.layout, h, f, X, A, Z)
        return layer_units(Z, self.layout, -1, X.shape[0]).copy()

    def _loss_and_deltas(self, X, T):
        h, f, e = self._codes
        A, Z, D = self._buffers(X.shape[0])
        self.kernels.forward(self.w, self.layout, h, f, X, A, Z)
        s = np.ones(X.shape[0], dtype=self.dtype)
        E = self.kernels.output_delta(self.layout, f, e, A, Z, T, s, D)
        return float(E), A, Z, D

    def loss(self, X, T) -> float:
        r"""Error :math:`E(\mathbf{w}) = \sum_n E_n(\mathbf{w})` over the samples of X, T."""
        X, T = self._check_XT(X, T)
        return self._loss_and_deltas(X, T)[0]

    def loss_and_gradient(self, X, T):
        r"""``(E, g)``: the error and its gradient :math:`\nabla E` as one flat vector like ``w``."""
        X, T = self._check_XT(X, T)
        E, A, Z, D = self._loss_and_deltas(X, T)
        self.kernels.backprop(self.w, self.layout, self._codes[0], A, Z, D)
        g = np.empty_like(self.w)
        self.kernels.gradient(self.layout, X, Z, D, g)
        return E, g

    def gradient(self, X, T):
        r"""``(coef_grads, intercept_grads)``: :math:`\partial E / \partial w`, summed over samples.

        By δ-backprop: :math:`\delta_j = h'(a_j) \sum_k w_{kj} \delta_k` (5.56) and
        :math:`\partial E_n / \partial w_{ji} = \delta_j z_i`; in matrix form
        :math:`\partial L / \partial W = Z^T \Delta`.
        """
        _, g = self.loss_and_gradient(X, T)
        return ([layer_params(g, self.layout, l)[0] for l in range(self.n_layers)],
                [layer_params(g, self.layout, l)[1] for l in range(self.n_layers)])

    def jacobian(self, X):
        r"""Jacobian :math:`J_{ki} = \partial y_k / \partial x_i` of every sample, shape (n, K, D).

        By backpropagation: for each output k the error vector at the output units is
        :math:`\partial y_k / \partial a_{k'}` (the output activation's derivative), which the
        δ-recursion (5.56) carries back to the first hidden layer; then
        :math:`\partial y_k / \partial x_i = \sum_j w_{ji} \delta_j`
        (:math:`\partial L/\partial X = \partial L/\partial Y\, W^T`). No per-layer Jacobian
        matrix is ever formed.
        """
        X = check_X(X, self.layer_sizes[0], self.dtype)
        n, K = X.shape[0], self.layer_sizes[-1]
        h, f, _ = self._codes
        A, Z, _ = self._buffers(n)
        self.kernels.forward(self.w, self.layout, h, f, X, A, Z)
        # A batch of n*K rows: row n*K + k carries sample n with output k's error vector.
        U = n_units(self.layout)
        Ar, Zr, Dr = (np.empty(n * K * U, dtype=self.dtype) for _ in range(3))
        for l, (n_out, u_off) in enumerate(self.layout[:, [1, 4]]):
            for src, dst in ((A, Ar), (Z, Zr)):
                block = src[n * u_off : n * (u_off + n_out)].reshape(n, n_out)
                dst[n * K * u_off : n * K * (u_off + n_out)] = np.repeat(block, K, axis=0).ravel()
        y = layer_units(Z, self.layout, -1, n)
        eye = np.eye(K, dtype=self.dtype)
        if self.output == "identity":
            dy_da = np.broadcast_to(eye, (n, K, K))
        elif self.output == "logistic":
            dy_da = eye * (y * (1 - y))[:, :, None]
        elif self.output == "exp":
            dy_da = eye * y[:, :, None]
        else:  # softmax: dy_k/da_k' = y_k (I_kk' - y_k')
            dy_da = y[:, :, None] * (eye - y[:, None, :])
        layer_units(Dr, self.layout, -1, n * K)[...] = dy_da.reshape(n * K, K)
        self.kernels.backprop(self.w, self.layout, h, Ar, Zr, Dr)
        n_out0 = self.layout[0, 1]
        delta0 = Dr[: n * K * n_out0].reshape(n * K, n_out0)
        return (delta0 @ self.coefs_[0].T).reshape(n, K, self.layer_sizes[0])

    # ----------------------------------------------------------------- training
    def _guarded(self, step):
        """Run ``step()`` (a kernel updating ``w``); restore ``w`` if it leaves E or w non-finite."""
        saved = self.w.copy()
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
            losses = step()
        if not (np.isfinite(losses).all() and np.isfinite(self.w).all()):
            self.w[...] = saved
            raise FloatingPointError(
                "training diverged (the error or the weights became NaN or infinite); the weights "
                "were restored to their values before this call. Lower the learning rate."
            )
        return losses

    def _run_epochs(self, X, T, orders, lr, batch_size):
        """Plain gradient descent over ``orders`` (n_epochs, m) in one kernel call; summed errors."""
        dt = self.dtype
        hyper = np.array([lr, 0.0, 0.0, 0.9, 0.999, 1e-8], dtype=dt)  # (η, α, μ, β₁, β₂, ε)
        state = np.zeros((2, self.w.shape[0]), dtype=dt)
        t = np.zeros(1, dtype=np.int64)
        losses = np.zeros((orders.shape[0], 2), dtype=np.float64)
        epochs = Epochs(self, X.shape[1], T.shape[1], min(batch_size, orders.shape[1]))
        s = np.ones(X.shape[0], dtype=dt)

        def step():
            epochs(X, T, s, orders, SOLVERS["sgd"], hyper, state, t, losses)
            return losses[:, 0]

        return self._guarded(step)

    def sgd_epoch(self, X, T, lr, order=None) -> float:
        r"""One epoch of on-line gradient descent, :math:`w \leftarrow w - \eta \nabla E_n(w)`.

        Samples are visited in ``order`` (default ``0..n-1``), the weights updated after each
        one, in a single kernel call. Returns :math:`\sum_n E_n`, each taken before its update.
        """
        X, T = self._check_XT(X, T)
        lr = check_lr(lr)
        order = np.arange(X.shape[0], dtype=np.intp) if order is None else check_order(order, X.shape[0])
        return float(self._run_epochs(X, T, order[None, :], lr, 1)[0])

    def batch_epoch(self, X, T, lr, batch_size, order=None) -> float:
        r"""One epoch of mini-batch gradient descent with the mean gradient of each batch.

        .. math:: w \leftarrow w - \frac{\eta}{|B|} \sum_{n \in B} \nabla E_n(w)

        ``batch_size >= n`` is full-batch gradient descent; ``batch_size=1`` equals
        :meth:`sgd_epoch`. Returns :math:`\sum_n E_n`, each batch's taken before its update.
        """
        X, T = self._check_XT(X, T)
        lr = check_lr(lr)
        batch_size = check_positive_int("batch_size", batch_size)
        order = np.arange(X.shape[0], dtype=np.intp) if order is None else check_order(order, X.shape[0])
        return float(self._run_epochs(X, T, order[None, :], lr, batch_size)[0])

    def fit(self, X, T, epochs=100, lr=0.01, batch_size=1, shuffle=True, progress=None):
        """Train for ``epochs`` epochs of gradient descent; return ``self``.

        ``batch_size=1`` is on-line SGD, larger sizes mini-batch, ``>= n`` full batch. With
        ``shuffle`` each epoch visits the samples in a fresh random order drawn from
        ``random_state``. Small data runs several epochs per kernel call (all orders drawn up
        front), so per-call overhead stays small. ``progress`` is an optional callable
        ``progress(n_epochs_done, loss)`` called after each kernel call (e.g. to move a progress
        bar). Appends each epoch's summed error to ``loss_curve_``.

        If training diverges, the weights are restored to their values before the failing
        call and FloatingPointError is raised.
        """
        X, T = self._check_XT(X, T)
        lr = check_lr(lr)
        epochs = check_positive_int("epochs", epochs)
        batch_size = check_positive_int("batch_size", batch_size)
        n = X.shape[0]
        per_call = max(1, min(epochs, _SAMPLES_PER_CALL // n))
        done = 0
        while done < epochs:
            k = min(per_call, epochs - done)
            if shuffle:  # k random permutations at once: argsort of uniform keys
                orders = self._rng.random_sample((k, n)).argsort(axis=1).astype(np.intp)
            else:
                orders = np.tile(np.arange(n, dtype=np.intp), (k, 1))
            losses = self._run_epochs(X, T, orders, lr, batch_size)
            self.loss_curve_.extend(float(v) for v in losses)
            done += k
            if progress is not None:
                progress(k, float(losses[-1]))
        return self

    # ----------------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Write weights and configuration to a ``.npz`` file, atomically (temporary file, rename)."""
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".deltaprop-", suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, format=np.str_(FORMAT), version=np.int64(FORMAT_VERSION),
                         layer_sizes=np.asarray(self.layer_sizes, dtype=np.int64),
                         hidden=np.str_(self.hidden), output=np.str_(self.output),
                         loss=np.str_(self.loss_function), dtype=np.str_(self.dtype.name), w=self.w)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path, backend="auto") -> "MLP":
        """Read a model written by :meth:`save` (never unpickles: loading runs no code)."""
        try:
            with np.load(os.fspath(path), allow_pickle=False) as data:
                fields = {key: data[key] for key in data.files}
        except FileNotFoundError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
            raise ValueError(f"{path}: not a deltaprop model file ({type(exc).__name__}: {exc})") from None
        if not isinstance(fields, dict) or str(fields.get("format", "")) != FORMAT:
            raise ValueError(f"{path}: not a deltaprop model file (no '{FORMAT}' format marker)")
        version = int(fields.get("version", -1))
        if version != FORMAT_VERSION:
            raise ValueError(f"{path}: model file version {version} is not supported "
                             f"(this deltaprop reads version {FORMAT_VERSION})")
        missing = {"layer_sizes", "hidden", "output", "loss", "dtype", "w"} - set(fields)
        if missing:
            raise ValueError(f"{path}: model file is missing {', '.join(sorted(missing))}")
        net = cls([int(s) for s in fields["layer_sizes"]], hidden=str(fields["hidden"]),
                  output=str(fields["output"]), loss=str(fields["loss"]), backend=backend,
                  dtype=str(fields["dtype"]))
        w = fields["w"]
        if w.shape != net.w.shape or w.dtype != net.w.dtype or not np.isfinite(w).all():
            raise ValueError(f"{path}: weights do not match the stored configuration")
        net.w[...] = w
        return net

    def __repr__(self):
        return (f"MLP(layer_sizes={list(self.layer_sizes)}, hidden={self.hidden!r}, "
                f"output={self.output!r}, loss={self.loss_function!r}, backend={self.backend!r}, "
                f"dtype={self.dtype.name!r})")


class Epochs:
    """Work buffers for the epoch kernels of one network, allocated once; one call runs epochs.

    ``Epochs(net, n_features, n_outputs, batch_size)(X, T, s, orders, solver, hyper, state, t,
    losses)`` calls the backend's ``sgd_epoch`` (batch_size 1: on-line, fused per sample) or
    ``batch_epoch`` on ``net.w`` in place; the arguments are those of the kernel contract
    (:mod:`deltaprop.contract`), already validated and of the network's dtype.
    """

    def __init__(self, net, n_features, n_outputs, batch_size):
        self.net = net
        self.batch_size = int(batch_size)
        self.codes = net._codes
        dt, B, U = net.dtype, self.batch_size, n_units(net.layout)
        self.A, self.Z, self.D = (np.empty(B * U, dtype=dt) for _ in range(3))
        if B > 1:
            self.Xb = np.empty((B, n_features), dtype=dt)
            self.Tb = np.empty((B, n_outputs), dtype=dt)
            self.sb = np.empty(B, dtype=dt)
            self.g = np.empty_like(net.w)

    def __call__(self, X, T, s, orders, solver, hyper, state, t, losses):
        net, (h, f, e) = self.net, self.codes
        if self.batch_size == 1:
            net.kernels.sgd_epoch(net.w, net.layout, h, f, e, X, T, s, orders, solver, hyper, state, t,
                                  self.A, self.Z, self.D, losses)
        else:
            net.kernels.batch_epoch(net.w, net.layout, h, f, e, X, T, s, orders, self.batch_size, solver,
                                    hyper, state, t, self.Xb, self.Tb, self.sb, self.A, self.Z, self.D,
                                    self.g, losses)
        return losses


def _check_random_state(seed):
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, np.random.RandomState):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.RandomState(seed)
    raise ValueError(f"random_state must be None, an int or a numpy RandomState; got {seed!r}")
