"""
A drop-in for scikit-learn: Pipeline and GridSearchCV
=====================================================

:class:`deltaprop.MLPClassifier` takes scikit-learn's constructor arguments and defaults and
gives the same fitted attributes, so it goes wherever
:class:`sklearn.neural_network.MLPClassifier` goes: here into a :class:`~sklearn.pipeline.Pipeline`
after a :class:`~sklearn.preprocessing.StandardScaler`, searched over the hidden layer's size and
the L2 penalty :math:`\\alpha` by :class:`~sklearn.model_selection.GridSearchCV` with 3-fold
cross-validation. The only change from a scikit-learn script is the import line.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from deltaprop import MLPClassifier  # instead of: from sklearn.neural_network import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=60, random_state=0))
grid = {"mlpclassifier__hidden_layer_sizes": [(16,), (32,), (64,)],
        "mlpclassifier__alpha": [1e-4, 1e-2, 1.0]}
search = GridSearchCV(pipe, grid, cv=3)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # 60 epochs of adam: not converged
    search.fit(X_train, y_train)

print("best parameters:", search.best_params_)
print(f"cross-validated accuracy {search.best_score_:.4f}, held-out {search.score(X_test, y_test):.4f}")

# %%
# The mean cross-validated accuracy of each of the nine candidates.

scores = search.cv_results_["mean_test_score"].reshape(3, 3)  # alpha (rows) x hidden (columns)
fig, ax = plt.subplots(figsize=(5, 3.8))
im = ax.imshow(scores, cmap="viridis")
ax.set_xticks(range(3), [str(h[0]) for h in grid["mlpclassifier__hidden_layer_sizes"]])
ax.set_yticks(range(3), [str(a) for a in grid["mlpclassifier__alpha"]])
ax.set_xlabel("hidden units")
ax.set_ylabel(r"L2 penalty $\alpha$")
for (i, j), s in np.ndenumerate(scores):
    ax.text(j, i, f"{s:.3f}", ha="center", va="center", color="w" if s < scores.max() - 0.01 else "k")
fig.colorbar(im, ax=ax, label="mean CV accuracy")
ax.set_title("GridSearchCV over a deltaprop Pipeline")
fig.tight_layout()
plt.show()
