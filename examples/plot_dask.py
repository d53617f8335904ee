r"""
Beyond one machine: a Dask cluster
==================================

:mod:`deltaprop.dask` holds the two estimators again, trained data-parallel on a
`Dask <https://distributed.dask.org>`_ cluster with the data staying on the workers. With
``solver="lbfgs"`` each iteration sends the weights to every worker, each worker sums
:math:`E = \sum_n E_n` and :math:`\nabla E = \sum_n \nabla E_n` over the partitions it holds
(Bishop, *Pattern Recognition and Machine Learning*, Eqs. 5.44 and 5.57: the error and its
gradient are sums over the samples, so sums over partitions add up), and SciPy's L-BFGS-B on
the client takes the step. It is the single-machine objective, so the fit is the single-machine
model.

This example starts a small ``LocalCluster`` of two workers inside this process (threads, no
processes: it starts in a moment); on a real cluster pass ``Client("tcp://scheduler:8786")``
instead, with the same Python and deltaprop on every machine.
"""

import dask.array as da
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import deltaprop
import deltaprop.dask

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, random_state=0)

cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
client = Client(cluster)

Xd = da.from_array(X_train, chunks=(350, -1))  # four partitions, spread over the two workers
yd = da.from_array(y_train, chunks=350)
params = dict(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=60, random_state=0)

dist = deltaprop.dask.MLPClassifier(**params).fit(Xd, yd)
local = deltaprop.MLPClassifier(**params).fit(X_train, y_train)

difference = max(np.abs(a - b).max() / np.abs(b).max() for a, b in zip(dist.coefs_, local.coefs_, strict=True))
print(f"L-BFGS iterations: on the cluster {dist.n_iter_}, on one machine {local.n_iter_}")
print(f"largest weight difference, relative: {difference:.1e}")
print(f"held-out accuracy: cluster {float(dist.score(da.from_array(X_test), y_test)):.4f}, "
      f"one machine {local.score(X_test, y_test):.4f}")

proba = dist.predict_proba(da.from_array(X_test, chunks=(150, -1)))  # lazy: a dask array
print("predict_proba on a dask array gives", type(proba).__name__, proba.shape)
plain = dist.to_local()  # the fitted model as a plain estimator, for use without the cluster
print("to_local() gives", f"{type(plain).__module__}.{type(plain).__name__}")
client.close()
cluster.close()

# %%
# The two fits' weights of the first layer, one against the other: they lie on the diagonal.

fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.plot(local.coefs_[0].ravel(), dist.coefs_[0].ravel(), ".", ms=3)
lim = np.abs(local.coefs_[0]).max() * 1.05
ax.plot([-lim, lim], [-lim, lim], lw=0.8, color="gray")
ax.set_xlabel("deltaprop.MLPClassifier: $w_{ji}$")
ax.set_ylabel("deltaprop.dask.MLPClassifier: $w_{ji}$")
ax.set_title("first-layer weights, L-BFGS")
fig.tight_layout()
plt.show()
