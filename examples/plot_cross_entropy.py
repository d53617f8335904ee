r"""
The cross-entropy error, worked by hand
=======================================

For 1-of-K targets and softmax outputs the error function is the categorical cross-entropy
(Bishop, *Pattern Recognition and Machine Learning*, §5.2, Eq. 5.24):

.. math:: E(\mathbf{w}) = -\sum_{n=1}^N \sum_{k=1}^K t_{kn} \ln y_k(\mathbf{x}_n, \mathbf{w}).

Four examples of three classes, with the probabilities a model gave them:

=======  ==============  ===================
example  target          :math:`y_n`
=======  ==============  ===================
1        Car (1, 0, 0)   (0.8, 0.1, 0.1)
2        Bike (0, 1, 0)  (0.2, 0.7, 0.1)
3        Person (0,0,1)  (0.1, 0.2, 0.7)
4        Car (1, 0, 0)   (0.6, 0.2, 0.2)
=======  ==============  ===================

Only the target class's term survives in each row, so
:math:`E = -(\ln 0.8 + \ln 0.7 + \ln 0.7 + \ln 0.6) = 0.22314 + 0.35667 + 0.35667 + 0.51083
= 1.44731`.

deltaprop computes the same number with its own loss: a one-layer softmax network with
:math:`W = I` and :math:`\mathbf{b} = 0` fed :math:`\ln y` outputs :math:`y` itself, because
:math:`\mathrm{softmax}(\ln y) = y` when the :math:`y_k` sum to one.
"""

import matplotlib.pyplot as plt
import numpy as np

import deltaprop

Y = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.6, 0.2, 0.2]])
T = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=float)
names = ["Car", "Bike", "Person", "Car"]

net = deltaprop.MLP([3, 3], output="softmax", loss="cross_entropy")
net.coefs_ = [np.eye(3)]
net.intercepts_ = [np.zeros(3)]
assert np.allclose(net.forward(np.log(Y)), Y)

E = net.loss(np.log(Y), T)
E_n = [net.loss(np.log(Y[n:n + 1]), T[n:n + 1]) for n in range(4)]
print(f"E = {E:.6f}")
print("by hand:", -np.log([0.8, 0.7, 0.7, 0.6]).sum().round(6))
print("class indices instead of one-hot rows:", round(net.loss(np.log(Y), [0, 1, 2, 0]), 6))

# %%
# Each example's share :math:`E_n = -\ln y_{k(n)}`: the confident right answers cost little,
# the hesitant Car (0.6) most.

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.bar([f"{n + 1}: {name}" for n, name in enumerate(names)], E_n, color="tab:blue")
for n, e in enumerate(E_n):
    ax.text(n, e, f"{e:.5f}", ha="center", va="bottom")
ax.set_ylabel(r"$E_n = -\sum_k t_{kn} \ln y_{kn}$")
ax.set_title(f"cross-entropy per example; E = {E:.6f}")
ax.set_ylim(0, 0.6)
fig.tight_layout()
plt.show()
