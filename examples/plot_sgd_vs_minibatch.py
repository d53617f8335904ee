r"""
On-line, mini-batch and full-batch gradient descent
===================================================

The same 64-32-10 tanh / softmax network on the digits, from the same initial weights, trained
three ways for 30 epochs (Bishop, *Pattern Recognition and Machine Learning*, §5.2.4):

- on-line (``batch_size=1``): :math:`\mathbf{w} \leftarrow \mathbf{w} - \eta \nabla E_n`
  after every sample (Eq. 5.43), N updates per epoch;
- mini-batch (``batch_size=32``): the mean gradient of each batch of 32,
  :math:`\mathbf{w} \leftarrow \mathbf{w} - \frac{\eta}{|B|} \sum_{n \in B} \nabla E_n`;
- full batch (``batch_size=N``): one step per epoch along :math:`-\nabla E` (Eq. 5.41).

Per epoch, the on-line rule makes the most progress: it takes N small steps where the batch
rule takes one. Each method gets its own learning rate, the largest of a few that trains
stably.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

import deltaprop

X, labels = load_digits(return_X_y=True)
X = X / 16.0
T = np.eye(10)[labels]  # 1-of-K targets t_k
N = len(X)

runs = {"on-line, batch 1": dict(batch_size=1, lr=0.02),
        "mini-batch 32": dict(batch_size=32, lr=0.5),
        f"full batch ({N})": dict(batch_size=N, lr=1.0)}
curves = {}
for name, kw in runs.items():
    net = deltaprop.MLP([64, 32, 10], hidden="tanh", output="softmax", loss="cross_entropy",
                        random_state=0)  # the same initial weights for every run
    net.fit(X, T, epochs=30, **kw)
    curves[name] = np.array(net.loss_curve_) / N  # mean cross-entropy per sample
    accuracy = (net.forward(X).argmax(axis=1) == labels).mean()
    print(f"{name:>18}: updates per epoch {int(np.ceil(N / kw['batch_size'])):5d}, "
          f"final E/N {curves[name][-1]:.4f}, training accuracy {accuracy:.4f}")

# %%
# The mean error per sample after each epoch (each epoch's :math:`E_n` taken before its update).

fig, ax = plt.subplots(figsize=(6.5, 4))
for name, curve in curves.items():
    ax.semilogy(np.arange(1, len(curve) + 1), curve, label=name)
ax.set_xlabel("epoch")
ax.set_ylabel("cross-entropy E / N")
ax.set_title("64-32-10 tanh / softmax on the digits")
ax.legend()
fig.tight_layout()
plt.show()
