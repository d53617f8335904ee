r"""
Mitchell's XOR by on-line backpropagation
=========================================

Exclusive OR is the smallest problem a single layer of weights cannot solve and one hidden layer
can. A 2-2-1 network with logistic hidden and output units and the sum-of-squares error,

.. math:: y(\mathbf{x}, \mathbf{w}) = \sigma\Big(\sum_j w_{kj}\,
          \sigma\big(\sum_i w_{ji} x_i + w_{j0}\big) + w_{k0}\Big),
          \qquad E = \tfrac12 \sum_n (y_n - t_n)^2,

is trained one sample at a time, :math:`\mathbf{w} \leftarrow \mathbf{w} - \eta \nabla E_n`,
with Mitchell's output error :math:`\delta_k = (y_k - t_k)\, y_k (1 - y_k)` (Mitchell, *Machine
Learning*, §4.5; Bishop, *Pattern Recognition and Machine Learning*, §5.3).
"""

import matplotlib.pyplot as plt
import numpy as np

import deltaprop

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
t = np.array([0, 1, 1, 0], dtype=float)

net = deltaprop.MLP([2, 2, 1], hidden="logistic", output="logistic", loss="squared_error",
                    random_state=0)
net.fit(X, t, epochs=3000, lr=3.0, batch_size=1)  # on-line: one update per sample

print("outputs y(x_n):", np.round(net.forward(X).ravel(), 3))
print("backprop gradient against central differences:", deltaprop.gradcheck(net, X, t))
print("layer shapes (scikit-learn's):", [W.shape for W in net.coefs_], [b.shape for b in net.intercepts_])

# %%
# The summed error of each epoch falls slowly at first (the network sits near a saddle of
# :math:`E(\mathbf{w})` while both hidden units do the same thing), then quickly once they
# specialise.

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.semilogy(np.arange(1, len(net.loss_curve_) + 1), net.loss_curve_)
ax.set_xlabel("epoch")
ax.set_ylabel(r"$E = \frac{1}{2}\sum_n (y_n - t_n)^2$")
ax.set_title("XOR, 2-2-1 logistic network, on-line gradient descent (η = 3)")
fig.tight_layout()
plt.show()
