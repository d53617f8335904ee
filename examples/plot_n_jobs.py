r"""
Every core: ``n_jobs``
======================

``n_jobs`` runs the compiled kernels on threads (scikit-learn's convention: ``None`` is one,
``-1`` every core). The kernels release the GIL, so N threads use N cores. With mini-batches
and ``parallel="average"`` (the default), each batch's rows are split between the threads and
their gradients summed: the fit is the one-thread fit, up to the order in which the gradient's
terms are added. The point of this example: ``n_jobs`` costs no accuracy. The two fits below
end at the same weights to rounding, and their training curves lie on top of each other.

How much faster two threads are is measured with care on the
:doc:`performance page </performance/threads>`.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

import deltaprop

X, y = load_digits(return_X_y=True)
X = np.tile(X / 16.0, (4, 1))  # 7,188 rows: 36 batches of 200 an epoch
y = np.tile(y, 4)
warnings.simplefilter("ignore", ConvergenceWarning)  # 10 epochs: not converged, on purpose

fits = {}
for n_jobs in (1, 2):
    fits[n_jobs] = deltaprop.MLPClassifier(hidden_layer_sizes=(128,), batch_size=200, max_iter=10,
                                           random_state=0, n_jobs=n_jobs).fit(X, y)

w1 = np.concatenate([W.ravel() for W in fits[1].coefs_ + fits[1].intercepts_])
w2 = np.concatenate([W.ravel() for W in fits[2].coefs_ + fits[2].intercepts_])
print(f"largest weight difference, n_jobs=2 vs 1, relative to the largest weight: "
      f"{np.abs(w2 - w1).max() / np.abs(w1).max():.1e}")
print("the same predictions:", bool((fits[1].predict(X) == fits[2].predict(X)).all()))

# %%
# The training loss after each epoch, on one thread and on two.

fig, ax = plt.subplots(figsize=(6, 3.5))
for n_jobs, style in ((1, "o-"), (2, "x--")):
    clf = fits[n_jobs]
    ax.plot(np.arange(1, clf.n_iter_ + 1), clf.loss_curve_, style, label=f"n_jobs={n_jobs}")
ax.set_xlabel("epoch")
ax.set_ylabel("training loss")
ax.set_title("MLPClassifier (adam, batch 200) on one and two threads")
ax.legend()
fig.tight_layout()
plt.show()
