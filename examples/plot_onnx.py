r"""
Deploy: export to ONNX, run in ONNX Runtime
===========================================

:func:`deltaprop.to_onnx` turns a fitted :class:`deltaprop.MLPClassifier`,
:class:`deltaprop.MLPRegressor` or :class:`deltaprop.MLP` into an ``onnx.ModelProto`` of
standard operators: one ``MatMul`` and ``Add`` per layer,
:math:`\mathbf{a} = \mathbf{z} W + \mathbf{b}`, then the activation (Bishop, *Pattern
Recognition and Machine Learning*, Eqs. 5.48-5.49). Any runtime that loads ONNX (C++, C#, the
browser) can then serve the network. Here ONNX Runtime runs it and its answers are compared with
deltaprop's.
"""

import matplotlib.pyplot as plt
import numpy as np
import onnx
import onnxruntime
from sklearn.datasets import load_digits

import deltaprop

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)  # a float32 model takes float32 inputs
clf = deltaprop.MLPClassifier(hidden_layer_sizes=(32,), activation="gudermannian", solver="lbfgs",
                              max_iter=100, random_state=0).fit(X, y)

model = deltaprop.to_onnx(clf)
onnx.checker.check_model(model)
print("inputs:", [i.name for i in model.graph.input], " outputs:", [o.name for o in model.graph.output])
print("operators:", sorted({node.op_type for node in model.graph.node}))

session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
label, proba = session.run(None, {"X": X})
print("the same labels as predict:", bool((label == clf.predict(X)).all()))
err = np.abs(proba - clf.predict_proba(X)).max()
print(f"largest difference from predict_proba: {err:.1e}")

# %%
# ONNX Runtime's probabilities against deltaprop's, for every sample and class.

fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.loglog(clf.predict_proba(X).ravel(), proba.ravel(), ".", ms=2)
ax.plot([1e-12, 1], [1e-12, 1], lw=0.8, color="gray")
ax.set_xlim(1e-12, 1.5)
ax.set_ylim(1e-12, 1.5)
ax.set_xlabel("deltaprop predict_proba")
ax.set_ylabel("ONNX Runtime probabilities")
ax.set_title("float32, gudermannian hidden units")
fig.tight_layout()
plt.show()
