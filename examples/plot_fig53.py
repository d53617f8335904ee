r"""
Bishop's Fig. 5.3: four functions fitted by a 1-3-1 network
===========================================================

A network with three tanh hidden units and a linear output can approximate very different
functions (Bishop, *Pattern Recognition and Machine Learning*, §5.1, Fig. 5.3): here
:math:`f(x) = x^2`, :math:`\sin x`, :math:`|x|` and the Heaviside step :math:`H(x)`, each
sampled at N = 50 points uniform on (-1, 1).

Each network is a :class:`deltaprop.MLPRegressor` minimising the sum-of-squares error by
L-BFGS on deltaprop's backprop gradient; the best of four seeded initialisations is kept, since
training finds one of several minima of :math:`E(\mathbf{w})`. The dashed curves are the three
hidden units' outputs :math:`z_j = \tanh(a_j)`, of which the network's output is a weighted sum.
``deltaprop approx --out fig53.png`` draws the same figure from the command line.
"""

import matplotlib.pyplot as plt
import numpy as np

from deltaprop.demo import fit_fig53

results = fit_fig53(seed=0, n=50)  # one dict per function: x, t, the fitted estimator, E, rms

grid = np.linspace(-1, 1, 201)
fig, axes = plt.subplots(2, 2, figsize=(8, 6.5))
for ax, res in zip(axes.ravel(), results, strict=True):
    est = res["est"]
    hidden = np.tanh(grid[:, None] @ est.coefs_[0] + est.intercepts_[0])  # z_j = h(a_j)
    ax.plot(res["x"], res["t"], "o", color="tab:blue", ms=4, label="data")
    for j, colour in enumerate(["tab:green", "tab:orange", "tab:purple"]):  # one colour per hidden unit
        ax.plot(grid, hidden[:, j], "--", lw=1, color=colour, label=f"hidden unit {j + 1}")
    ax.plot(grid, est.predict(grid[:, None]), "-", color="tab:red", lw=2, label="network")
    ax.set_title(f"{res['label']}   (RMS error {res['rms']:.3g})", fontsize=10)
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1.1, 1.6)
axes[0, 0].legend(fontsize=8, loc="upper center", ncol=2)
fig.suptitle("1-3-1 network, tanh hidden units, linear output, N = 50")
fig.tight_layout()
plt.show()

for res in results:
    print(f"{res['name']:>7}: E = {res['E']:.3g}, RMS error {res['rms']:.3g}")
