"""The codes and kernel constants of the Cython kernels, read from the enums of ``_core.pxd`` by
compiled code, so that a test can compare them with the tables of ``deltaprop.contract``."""

from ._core cimport (ADAM, ALPHA, B_OFF, BETA_1, BETA_2, BINARY_CROSS_ENTROPY, BLAS_MIN_FLOPS,
                     CROSS_ENTROPY, EPSILON, ETA, EXP, GUDERMANNIAN, IDENTITY, LINE, LOGISTIC,
                     MOMENTUM, MU, N_IN, N_OUT, NESTEROV, POISSON, RELU, SGD, SOFTMAX, SOFTPLUS,
                     SPINS, SQUARED_ERROR, TANH, U_OFF, W_OFF)


def _in_order(slots):
    """``{index: name}`` as a tuple of names by index (None where an index is missing)."""
    return tuple(slots.get(i) for i in range(max(slots) + 1))


def codes():
    """``{"activations": {name: code}, "losses": {...}, "solvers": {...}, "hyper": names of the
    ``hyper`` slots in order, "layout": names of the layout columns in order, "kernel":
    {constant: value}}``, as compiled."""
    return {
        "activations": {"identity": IDENTITY, "logistic": LOGISTIC, "tanh": TANH, "relu": RELU,
                        "gudermannian": GUDERMANNIAN, "softmax": SOFTMAX, "exp": EXP,
                        "softplus": SOFTPLUS},
        "losses": {"squared_error": SQUARED_ERROR, "binary_cross_entropy": BINARY_CROSS_ENTROPY,
                   "cross_entropy": CROSS_ENTROPY, "poisson": POISSON},
        "solvers": {"sgd": SGD, "momentum": MOMENTUM, "nesterov": NESTEROV, "adam": ADAM},
        "hyper": _in_order({ETA: "eta", ALPHA: "alpha", MU: "momentum", BETA_1: "beta_1",
                            BETA_2: "beta_2", EPSILON: "epsilon"}),
        "layout": _in_order({N_IN: "n_in", N_OUT: "n_out", W_OFF: "w_off", B_OFF: "b_off",
                             U_OFF: "u_off"}),
        "kernel": {"LINE": LINE, "SPINS": SPINS, "BLAS_MIN_FLOPS": BLAS_MIN_FLOPS},
    }
