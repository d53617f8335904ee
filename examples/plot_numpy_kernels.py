r"""
The kernels in a hand-written NumPy loop
========================================

A hand-written NumPy MLP (a list of ``W`` matrices and ``b`` vectors, a forward loop, a backprop
loop) can hand each of its loops to deltaprop's compiled kernels and keep everything else. This
example trains a 4-8-3 tanh / softmax network on the iris data by full-batch gradient descent
on the cross-entropy, first by hand, then on the kernels from the same starting weights, and
checks that the two end at the same weights.

Three helpers of :mod:`deltaprop.layout` connect a user's arrays to the kernel contract:

- ``pack(coefs, intercepts, dtype=None) -> (w, layout)`` copies ``(W, b)`` pairs in
  scikit-learn's layout (``W`` of shape (n_in, n_out), ``b`` of (n_out,)) into one new flat
  vector ``w``; a ``ValueError`` names the layer whose shapes do not chain;
- ``unpack(w, layout) -> (coefs, intercepts)`` returns them as views into ``w``, so a kernel
  updating ``w`` in place updates them too;
- ``unit_buffers(layout, n, dtype) -> (A, Z, D)`` allocates :math:`a`, :math:`z` and
  :math:`\delta` of every unit for a batch of ``n`` samples.

:mod:`deltaprop.lowlevel` holds the kernels with their arguments checked (a mistake is an error
naming the argument); the :doc:`user guide </user_guide/numpy_kernels>` describes every
argument.
"""

# %%
# By hand
# -------
# The forward pass (Bishop, *Pattern Recognition and Machine Learning*, Eqs. 5.48-5.49), the
# output errors :math:`\delta_k = y_k - t_k` (Eq. 5.54), backpropagation (Eq. 5.56) and the
# gradient summed over the samples (Eqs. 5.53, 5.57), then one step
# :math:`\mathbf{w} \leftarrow \mathbf{w} - \eta \nabla E` (Eq. 5.41).

import numpy as np
from sklearn.datasets import load_iris

import deltaprop
from deltaprop import lowlevel  # the kernels, arguments checked; backend="auto"
from deltaprop.contract import ACTIVATIONS, LOSSES
from deltaprop.layout import pack, unit_buffers, unpack

X, labels = load_iris(return_X_y=True)
X = (X - X.mean(axis=0)) / X.std(axis=0)          # 150 × 4 inputs x_i, standardised
T = np.eye(3)[labels]                             # one-hot targets t_k
rng = np.random.RandomState(0)
W1, W2 = rng.uniform(-0.5, 0.5, (4, 8)), rng.uniform(-0.5, 0.5, (8, 3))   # (n_in, n_out)
b1, b2 = np.zeros(8), np.zeros(3)
start = [W1.copy(), W2.copy()], [b1.copy(), b2.copy()]   # for the kernels below
eta = 0.005                                       # η

for _ in range(200):
    a1 = X @ W1 + b1                              # a_j = Σ_i w_ji x_i + w_j0
    z1 = np.tanh(a1)                              # z_j = h(a_j)
    a2 = z1 @ W2 + b2                             # a_k = Σ_j w_kj z_j + w_k0
    y = np.exp(a2 - a2.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)             # y_k = softmax(a)_k
    d2 = y - T                                    # δ_k = y_k − t_k
    d1 = (1 - z1**2) * (d2 @ W2.T)                # δ_j = h'(a_j) Σ_k w_kj δ_k
    gW1, gb1 = X.T @ d1, d1.sum(axis=0)           # ∂E/∂w_ji = Σ_n δ_j x_i, ∂E/∂w_j0 = Σ_n δ_j
    gW2, gb2 = z1.T @ d2, d2.sum(axis=0)
    W1 -= eta * gW1                               # w ← w − η ∇E
    b1 -= eta * gb1
    W2 -= eta * gW2
    b2 -= eta * gb2
print((y.argmax(axis=1) == labels).mean())        # training accuracy, 0.98

# %%
# On the kernels
# --------------
# The same loop, each step one kernel call on the flat vector ``w`` and the unit buffers. The
# kernels take C-contiguous, writeable arrays of ``w``'s dtype and the integer codes of the
# contract's tables; ``backend="auto"`` (the default) is the fastest one installed.

w, layout = pack(*start)                          # one flat w (P,) and its (L, 5) layout
coefs, intercepts = unpack(w, layout)             # [W1, W2], [b1, b2] as views into w
h, f, loss = ACTIVATIONS["tanh"], ACTIVATIONS["softmax"], LOSSES["cross_entropy"]
A, Z, D = unit_buffers(layout, len(X), w.dtype)   # a, z, δ of every unit of every sample
s, g = np.ones(len(X)), np.empty_like(w)          # sample weights s_n = 1; ∇E in w's layout

for _ in range(200):
    lowlevel.forward(w, layout, h, f, X, A, Z)                 # a, z = h(a), y = f(a)
    E = lowlevel.output_delta(layout, f, loss, A, Z, T, s, D)  # δ_k = y_k − t_k; E = Σ_n E_n
    lowlevel.backprop(w, layout, h, A, Z, D)                   # δ_j = h'(a_j) Σ_k w_kj δ_k
    lowlevel.gradient(layout, X, Z, D, g)                      # ∂E/∂w_ji = Σ_n δ_j z_i
    w -= eta * g                                               # w ← w − η ∇E
print(deltaprop.get_backend("auto").name, f"E = {E:.4f}")
print(all(np.allclose(c, W, rtol=0, atol=1e-12) for c, W in
          zip(coefs + intercepts, [W1, W2, b1, b2], strict=True)))  # True: the same weights
