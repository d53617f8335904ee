r"""The multilayer perceptron :class:`MLP`: parameters, forward pass, error, gradient and Jacobian.

Its training methods come from :mod:`.descent`, its model-file methods from :mod:`.modelfile`.

The network with layer sizes ``[D, M_1, ..., K]`` computes (Bishop 5.7, any depth)

.. math::

    y_k(\mathbf{x}, \mathbf{w}) = f\Big(\sum_j w^{(L)}_{kj}\, h\big(\cdots
    h\big(\sum_i w^{(1)}_{ji} x_i + w^{(1)}_{j0}\big)\cdots\big) + w^{(L)}_{k0}\Big)

All parameters live in one flat vector ``w`` described by a layout table (see
:mod:`deltaprop.contract`); ``coefs_[l]`` (n_in, n_out) and ``intercepts_[l]`` (n_out,) are
views into it, in scikit-learn's layout. Bishop absorbs the bias as a weight from an extra input
:math:`x_0 = 1` (:math:`a_j = \sum_{i=0}^D w_{ji} x_i`); that is the same model, and the
intercepts are kept as separate vectors here.

The network validates, casts and allocates; the backend's kernels do the arithmetic, called by
the row sweeps (:mod:`.sweeps`) and the epoch runners (:mod:`.epochs`).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.utils import check_random_state

from ..backends import get_backend
from ..contract import ACTIVATIONS, LOSSES
from ..layout import layer_params, make_layout, n_params, n_units
from ..parallel import Threads, effective_n_jobs
from ..validation import check_config, check_sample_weight, check_T, check_X
from . import buffers, sweeps
from .buffers import Workspace, aligned_zeros, thread_pool, work_arrays
from .descent import GradientDescentMixin
from .modelfile import ModelFileMixin

if TYPE_CHECKING:
    from .descent import Checked

__all__ = ["MLP"]


class _LayerList(list):
    """The list behind ``coefs_`` / ``intercepts_``: item assignment writes into ``w``."""

    def __init__(self, views: list[np.ndarray], name: str) -> None:
        super().__init__(views)
        self._name = name

    def __setitem__(self, index: object, value: Any) -> None:  # value: array_like (list's own item type is Any)
        if not isinstance(index, int):
            raise TypeError(f"{self._name} items are assigned one layer at a time")
        view = list.__getitem__(self, index)
        view[...] = _as_param(value, view, f"{self._name}[{index}]")


def _as_param(value: npt.ArrayLike, view: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array; got dtype {arr.dtype}")
    if arr.shape != view.shape:
        raise ValueError(f"{name} must have shape {view.shape}; got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return arr.astype(view.dtype, copy=False)


def _check_random_state(random_state: object) -> np.random.RandomState:
    """scikit-learn's rules (``check_random_state``), with an error that names ``random_state``."""
    try:
        return check_random_state(random_state)
    except (TypeError, ValueError):
        raise ValueError("random_state must be None, an integer in [0, 2**32) or a "
                         f"numpy.random.RandomState; got {random_state!r}") from None


class MLP(GradientDescentMixin, ModelFileMixin):
    r"""A multilayer perceptron trained by error backpropagation and gradient descent.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[D, M_1, ..., K]``: inputs, hidden layers (any number, also none), outputs.
    hidden : {"identity", "logistic", "tanh", "relu", "gudermannian", "softplus"}
        Hidden activation h.
    output : {"identity", "logistic", "softmax", "exp"}
        Output activation f.
    loss : {"squared_error", "binary_cross_entropy", "cross_entropy", "poisson"}
        Error function E(w), summed over samples. Allowed pairs with ``output``
        (``deltaprop.contract.PAIRS``): identity + squared_error, logistic +
        binary_cross_entropy or squared_error, softmax + cross_entropy or squared_error,
        exp + poisson.
    backend : str
        ``"auto"`` (fastest available), ``"numpy"``, ``"numba"`` or ``"cython"``.
    dtype : {"float64", "float32"}
        dtype of weights, buffers and arithmetic.
    random_state : None, int in [0, 2**32) or numpy.random.RandomState
        Seeds the weight initialisation and the shuffling in :meth:`fit`. Training finds one
        of many minima of E(w) (Bishop's :math:`w_A`, :math:`w_B`, Fig. 5.5): a seed reproduces
        a run, different seeds are restarts.

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

    Raises
    ------
    ValueError
        For a bad configuration, naming the parameter and what it accepts; an unavailable
        ``backend`` names the missing dependency.
    TypeError
        If ``layer_sizes`` is not a sequence.
    """

    def __init__(self, layer_sizes: Sequence[int], hidden: str = "tanh", output: str = "identity",
                 loss: str = "squared_error", backend: str = "auto", dtype: npt.DTypeLike = "float64",
                 random_state: int | np.random.RandomState | None = None) -> None:
        sizes, dt = check_config(layer_sizes, hidden, output, loss, dtype)
        self._kernels = get_backend(backend)
        self.layer_sizes = sizes
        self.hidden = hidden
        self.output = output
        self.loss_function = loss
        self.backend = self._kernels.name
        self.dtype = dt
        self.random_state = random_state
        self.layout = make_layout(sizes)
        self._rng = _check_random_state(random_state)
        self.w = aligned_zeros(n_params(self.layout), dt)
        self._init_weights()
        self.loss_curve_: list[float] = []

    # ----------------------------------------------------------------- parameters
    def _init_weights(self) -> None:
        r"""Glorot-uniform initialisation, drawn exactly as scikit-learn's MLP draws it.

        For each layer, :math:`w \sim U(-b, b)` with :math:`b = \sqrt{6 / (n_{in} + n_{out})}`
        (:math:`\sqrt{2 / (n_{in} + n_{out})}` for logistic hidden units), weights then biases.
        """
        factor = 2.0 if self.hidden == "logistic" else 6.0
        for W, b in zip(self.coefs_, self.intercepts_, strict=True):
            bound = np.sqrt(factor / (W.shape[0] + W.shape[1]))
            W[...] = self._rng.uniform(-bound, bound, W.shape)
            b[...] = self._rng.uniform(-bound, bound, b.shape)

    def _replica(self) -> MLP:
        """The same network (configuration, backend) with its own copy of ``w``."""
        twin = copy.copy(self)
        twin.__dict__.pop("_kept", None)
        twin.w = aligned_zeros(self.w.shape[0], self.dtype)
        twin.w[...] = self.w
        twin.loss_curve_ = []
        return twin

    @property
    def n_layers(self) -> int:
        """Number L of weight layers."""
        return self.layout.shape[0]

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices, ``coefs_[l]`` (n_in, n_out) holding :math:`w_{ji}` at ``[i, j]``: views of ``w``."""
        return _LayerList([layer_params(self.w, self.layout, layer)[0] for layer in range(self.n_layers)], "coefs_")

    @coefs_.setter
    def coefs_(self, values: Iterable[npt.ArrayLike]) -> None:
        self._assign(values, 0, "coefs_")

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors, ``intercepts_[l]`` (n_out,) holding :math:`w_{j0}`: views of ``w``."""
        return _LayerList([layer_params(self.w, self.layout, layer)[1] for layer in range(self.n_layers)],
                          "intercepts_")

    @intercepts_.setter
    def intercepts_(self, values: Iterable[npt.ArrayLike]) -> None:
        self._assign(values, 1, "intercepts_")

    def _assign(self, values: Iterable[npt.ArrayLike], which: int, name: str) -> None:
        values = list(values)
        if len(values) != self.n_layers:
            raise ValueError(f"{name} needs {self.n_layers} arrays, one per layer; got {len(values)}")
        views = [layer_params(self.w, self.layout, layer)[which] for layer in range(self.n_layers)]
        checked = [_as_param(v, view, f"{name}[{layer}]")
                   for layer, (v, view) in enumerate(zip(values, views, strict=True))]
        for view, v in zip(views, checked, strict=True):  # all validated first: nothing changes on error
            view[...] = v

    # ----------------------------------------------------------------- codes and buffers
    @property
    def _codes(self) -> tuple[int, int, int]:
        """The kernels' codes of the hidden activation, the output activation and the error function."""
        return ACTIVATIONS[self.hidden], ACTIVATIONS[self.output], LOSSES[self.loss_function]

    def _buffers(self, n: int, slot: Hashable = 0, size: int | None = None, count: int = 3,
                 dtype: npt.DTypeLike | None = None) -> tuple[np.ndarray, ...]:
        """Unit buffers ``(A, Z, D)`` for a batch of ``n`` (or ``count`` buffers of ``size``
        values, of ``dtype`` if not the network's): fresh ones, or inside :meth:`reuse_buffers`
        the kept ones of ``slot`` (:func:`~deltaprop.engine.buffers.work_arrays`)."""
        size = n * n_units(self.layout) if size is None else size
        return work_arrays(self.__dict__.get("_kept"), slot, size, count, self.dtype if dtype is None else dtype)

    @contextlib.contextmanager
    def reuse_buffers(self) -> Iterator[MLP]:
        """Keep unit buffers and thread pools between calls while the block runs.

        Inside the block :meth:`forward`, :meth:`loss` and :meth:`loss_and_gradient` keep their
        unit buffers between calls (one set per row shard) instead of allocating them anew: for
        callers that evaluate many times, as L-BFGS does (buffers of a few hundred KB come back
        from the allocator as fresh pages, which must be touched in anew at every call). With
        ``n_jobs`` > 1 the block also keeps its thread pools. Buffers and pools are released
        when the block ends; a nested block uses the outer one's.

        Yields
        ------
        MLP
            This network.
        """
        if "_kept" in self.__dict__:  # nested: the outer block keeps them
            yield self
            return
        try:
            with Workspace() as self._kept:
                yield self
        finally:
            self.__dict__.pop("_kept", None)

    def _threads(self, n: int) -> contextlib.AbstractContextManager[Threads]:
        """A context giving a pool of ``n`` threads (:func:`~deltaprop.engine.buffers.thread_pool`)."""
        return thread_pool(self.__dict__.get("_kept"), n)

    def _check_XT(self, X: npt.ArrayLike | sp.spmatrix, T: npt.ArrayLike,
                  sample_weight: npt.ArrayLike | None = None, finite_X: bool = True) -> Checked:
        """X, T and the sample weights validated and cast to the network's dtype (``finite_X``
        False: X's values are not checked for NaN and infinity, :func:`~deltaprop.validation.check_X`)."""
        Xc = check_X(X, self.layer_sizes[0], self.dtype, finite=finite_X)
        Tc = check_T(T, Xc.shape[0], self.layer_sizes[-1], self.loss_function, self.dtype)
        s = None if sample_weight is None else check_sample_weight(sample_weight, Xc.shape[0], self.dtype)
        return Xc, Tc, s

    def chunk_rows(self, X: np.ndarray | sp.spmatrix) -> int:
        """Rows of X per kernel call in :meth:`forward`, :meth:`loss` and :meth:`loss_and_gradient`.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n, D)
            The inputs.

        Returns
        -------
        int
            Rows per chunk (:func:`deltaprop.engine.buffers.chunk_rows`).
        """
        return buffers.chunk_rows(n_units(self.layout), self.w.shape[0], X)

    # ----------------------------------------------------------------- the maths
    def forward(self, X: npt.ArrayLike | sp.spmatrix, out: np.ndarray | None = None, *,
                pre_activation: np.ndarray | None = None, check_input: bool = True,
                n_jobs: int | None = None) -> np.ndarray:
        r"""Network outputs :math:`y_k(\mathbf{x}_n, \mathbf{w})` (Bishop 5.7).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n, D)
            Inputs; a sparse X is densified a chunk of rows at a time (:meth:`chunk_rows`).
        out : ndarray (n, K) of the network's dtype, optional
            Receives the outputs (a new array if None).
        pre_activation : ndarray (n, K), optional
            Receives the output units' :math:`a_k`.
        check_input : bool
            False skips validation (X already as :func:`~deltaprop.engine.kernel_input` makes it).
        n_jobs : None or int
            Threads that split the rows (scikit-learn's convention: None is 1, -1 all cores).

        Returns
        -------
        ndarray (n, K)
            ``out``, holding y.

        Raises
        ------
        ValueError
            For X of the wrong shape or with NaN or infinity, or a bad ``n_jobs``.
        """
        # check_input=False: the caller vouches that X is kernel input already
        Xc = check_X(X, self.layer_sizes[0], self.dtype) if check_input else cast("np.ndarray | sp.csr_matrix", X)
        n_jobs = effective_n_jobs(n_jobs)
        if out is None:
            out = np.empty((Xc.shape[0], self.layer_sizes[-1]), dtype=self.dtype)
        sweeps.sharded(self, Xc, None, None, n_jobs, outputs=out, pre_activation=pre_activation)
        return out

    def loss(self, X: npt.ArrayLike | sp.spmatrix, T: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None, *,
             outputs: np.ndarray | None = None, check_input: bool = True, n_jobs: int | None = None) -> float:
        r"""Error :math:`E(\mathbf{w}) = \sum_n s_n E_n(\mathbf{w})` over the samples of X, T.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n, D)
            Inputs.
        T : array-like of shape (n, K), or (n,) class indices for cross-entropy
            Targets :math:`t_n`.
        sample_weight : array-like (n,), optional
            :math:`s_n`, ones by default (Bishop's :math:`E = \sum_n E_n`).
        outputs : ndarray (n, K), optional
            Receives y from the same forward pass.
        check_input : bool
            False skips validation (X, T, s already as the kernels take them).
        n_jobs : None or int
            Threads that split the rows; their sums are added in a fixed order.

        Returns
        -------
        float
            E.

        Raises
        ------
        ValueError
            For inputs, targets or weights of the wrong shape or values, or a bad ``n_jobs``.
        """
        Xc, Tc, s = self._check_XT(X, T, sample_weight) if check_input else _unchecked(X, T, sample_weight)
        return sweeps.sharded(self, Xc, Tc, s, effective_n_jobs(n_jobs), outputs=outputs)

    def loss_and_gradient(self, X: npt.ArrayLike | sp.spmatrix, T: npt.ArrayLike,
                          sample_weight: npt.ArrayLike | None = None, out: np.ndarray | None = None, *,
                          check_input: bool = True, n_jobs: int | None = None) -> tuple[float, np.ndarray]:
        r"""Error and gradient, :math:`E = \sum_n s_n E_n` and :math:`g = \sum_n s_n \nabla E_n`.

        The gradient is one flat vector laid out like ``w``, by δ-backprop (Bishop 5.56). Both
        are plain sums over the samples (no mean, no regularisation), so sums over chunks of
        rows, threads or machines add up to the sums over all of them. With ``n_jobs`` threads
        the rows are split into contiguous pieces whose sums are added in piece order:
        deterministic for a given ``n_jobs``, equal to the one-thread result up to the order of
        summation.

        Parameters
        ----------
        X, T, sample_weight, check_input, n_jobs
            As for :meth:`loss`.
        out : ndarray (P,), optional
            Receives g (a new array of the network's dtype if None; pass float64 to accumulate
            a float32 network's gradient in double).

        Returns
        -------
        E : float
        g : ndarray (P,)
            ``out``.

        Raises
        ------
        ValueError
            As for :meth:`loss`.
        """
        Xc, Tc, s = self._check_XT(X, T, sample_weight) if check_input else _unchecked(X, T, sample_weight)
        if out is None:
            out = np.empty_like(self.w)
        E = sweeps.sharded(self, Xc, Tc, s, effective_n_jobs(n_jobs), grad=out)
        return E, out

    def gradient(self, X: npt.ArrayLike | sp.spmatrix,
                 T: npt.ArrayLike) -> tuple[list[np.ndarray], list[np.ndarray]]:
        r""":math:`\partial E / \partial w`, summed over samples, per layer.

        By δ-backprop: :math:`\delta_j = h'(a_j) \sum_k w_{kj} \delta_k` (Bishop 5.56) and
        :math:`\partial E_n / \partial w_{ji} = \delta_j z_i` (5.53); in matrix form
        :math:`\partial L / \partial W = Z^T \Delta`.

        Parameters
        ----------
        X, T
            As for :meth:`loss`.

        Returns
        -------
        coef_grads : list of ndarray (n_in, n_out)
        intercept_grads : list of ndarray (n_out,)

        Raises
        ------
        ValueError
            As for :meth:`loss`.
        """
        _, g = self.loss_and_gradient(X, T)
        return ([layer_params(g, self.layout, layer)[0] for layer in range(self.n_layers)],
                [layer_params(g, self.layout, layer)[1] for layer in range(self.n_layers)])

    def jacobian(self, X: npt.ArrayLike) -> np.ndarray:
        r"""Jacobian :math:`J_{ki} = \partial y_k / \partial x_i` of every sample (Bishop 5.70),
        by backpropagation (:func:`deltaprop.engine.sweeps.jacobian`).

        Parameters
        ----------
        X : array-like (n, D)
            Inputs.

        Returns
        -------
        ndarray (n, K, D)

        Raises
        ------
        ValueError
            For X of the wrong shape or with NaN or infinity.
        """
        return sweeps.jacobian(self, check_X(X, self.layer_sizes[0], self.dtype))

    def __repr__(self) -> str:
        return (f"MLP(layer_sizes={list(self.layer_sizes)}, hidden={self.hidden!r}, "
                f"output={self.output!r}, loss={self.loss_function!r}, backend={self.backend!r}, "
                f"dtype={self.dtype.name!r})")


def _unchecked(X: object, T: object, sample_weight: object) -> Checked:
    """X, T and the sample weights as given with ``check_input=False``: the caller vouches that
    they are as :meth:`MLP._check_XT` makes them (nothing is checked or copied)."""
    return cast("Checked", (X, T, sample_weight))
