r"""
The Jacobian of a trained classifier as a saliency map
======================================================

The Jacobian :math:`J_{ki} = \partial y_k / \partial x_i` says how much each output moves when
one input moves (Bishop, *Pattern Recognition and Machine Learning*, §5.3.4, Eq. 5.70). For a
digit classifier, row :math:`k` of a sample's Jacobian, drawn as an 8 x 8 image, shows which
pixels would raise or lower the probability of class :math:`k`: a saliency map.

:meth:`deltaprop.MLP.jacobian` computes it by backpropagation (Eqs. 5.73-5.74): the output
units' derivatives are carried back through the network by the same δ-recursion as the
gradient, and no per-layer Jacobian matrix is ever formed.

The classifier is a :class:`deltaprop.MLPClassifier`; its weights go into a
:class:`deltaprop.MLP` of the same shape (``coefs_`` and ``intercepts_`` share scikit-learn's
layout), whose ``forward`` equals the classifier's ``predict_proba``.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import deltaprop

X, y = load_digits(return_X_y=True)
X = X / 16.0  # pixel values in [0, 1]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

clf = deltaprop.MLPClassifier(hidden_layer_sizes=(64,), activation="tanh", solver="lbfgs",
                              alpha=1e-3, max_iter=300, random_state=0).fit(X_train, y_train)
print(f"held-out accuracy {clf.score(X_test, y_test):.4f}")

net = deltaprop.MLP([64, 64, 10], hidden="tanh", output="softmax", loss="cross_entropy")
net.coefs_ = clf.coefs_
net.intercepts_ = clf.intercepts_
assert np.allclose(net.forward(X_test), clf.predict_proba(X_test))

samples = X_test[:6]
J = net.jacobian(samples)  # (n, K, D): dy_k / dx_i for every sample
predicted = clf.predict(samples)
print("Jacobian shape (samples, outputs, inputs):", J.shape)

# %%
# Top row: the digits. Bottom row: :math:`\partial y_k / \partial x_i` for the predicted
# class :math:`k`, red where a brighter pixel raises the probability of that class, blue where
# it lowers it.

fig, axes = plt.subplots(2, len(samples), figsize=(1.6 * len(samples), 3.6))
for n, (image, k) in enumerate(zip(samples, predicted, strict=True)):
    axes[0, n].imshow(image.reshape(8, 8), cmap="gray_r")
    axes[0, n].set_title(f"predicted {k}", fontsize=9)
    saliency = J[n, k].reshape(8, 8)
    scale = np.abs(saliency).max()
    axes[1, n].imshow(saliency, cmap="RdBu_r", vmin=-scale, vmax=scale)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
axes[1, 0].set_ylabel(r"$\partial y_k / \partial x_i$")
fig.tight_layout()
plt.show()
