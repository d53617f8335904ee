# cython: language_level=3
r"""The per-sample pieces the epochs and the small-layer batch loops share: the next sample to
visit, one sample through one layer forward or backward, and the C row loops under them.

Mirrors ``kernels/_numba/rows.py`` (``next_sample``, ``forward_rows``, ``upper_forward``), plus
``backprop_rows``, which numba keeps in ``sgd_general.py`` and which here also serves the
batch kernels (``backprop.pyx``) for layers too small for BLAS. numba passes one flat array and
an offset for each block, ``(w, wo)``; here the same block is a pointer, ``W = w + wo``.

Memory layout and loop order (chosen for speed): a weight matrix ``W`` (n_in, n_out) is
row-major, so the forward sum :math:`a = \sum_i z_i W_{i,:} + b` and the update
:math:`W_{i,:} \mathrel{-}= \eta z_i \delta` both run over contiguous rows (axpy, vectorised),
and a zero input :math:`z_i = 0` skips its whole row in both, exactly. The δ-recursion reads
the same row as a dot product, :math:`\sum_k w_{kj} \delta_k = W_{j,:} \cdot \delta`. Rows go
four at a time through the C loops of ``_rows.h`` (``restrict`` pointers, ``omp simd``
reductions), which the C compiler vectorises; the fused-type wrappers below pick the float or
double one.
"""

from cython cimport floating
from libc.string cimport memset

from ._core cimport B_OFF, N_IN, N_OUT, U_OFF, W_OFF, axpy, col
from .activations cimport activate, derivative


cdef extern from "_rows.h":
    void deltaprop_rows4f(Py_ssize_t n, const float* d, float* r0, float* r1, float* r2, float* r3,
                          float c0, float c1, float c2, float c3, float y0, float y1, float y2,
                          float y3, float* a) noexcept nogil
    void deltaprop_rows4(Py_ssize_t n, const double* d, double* r0, double* r1, double* r2,
                         double* r3, double c0, double c1, double c2, double c3, double y0,
                         double y1, double y2, double y3, double* a) noexcept nogil
    void deltaprop_sum4f(Py_ssize_t n, const float* r0, const float* r1, const float* r2,
                         const float* r3, float z0, float z1, float z2, float z3,
                         float* a) noexcept nogil
    void deltaprop_sum4(Py_ssize_t n, const double* r0, const double* r1, const double* r2,
                        const double* r3, double z0, double z1, double z2, double z3,
                        double* a) noexcept nogil
    void deltaprop_dot_update4f(Py_ssize_t n, const float* d, float* r0, float* r1, float* r2,
                                float* r3, float c0, float c1, float c2, float c3,
                                float* out) noexcept nogil
    void deltaprop_dot_update4(Py_ssize_t n, const double* d, double* r0, double* r1,
                               double* r2, double* r3, double c0, double c1, double c2,
                               double c3, double* out) noexcept nogil
    float deltaprop_dot_update1f(Py_ssize_t n, const float* d, float* r, float c) noexcept nogil
    double deltaprop_dot_update1(Py_ssize_t n, const double* d, double* r, double c) noexcept nogil
    float deltaprop_dotf(Py_ssize_t n, const float* x, const float* y) noexcept nogil
    void deltaprop_dotsf(Py_ssize_t n, const float* x, const float* const* ys, int k,
                         float* out) noexcept nogil
    void deltaprop_dots(Py_ssize_t n, const double* x, const double* const* ys, int k,
                        double* out) noexcept nogil
    void deltaprop_window_updatef(Py_ssize_t n_in, Py_ssize_t n_out, float* W,
                                  const float* const* xs, const float* D, const float* etas,
                                  float q, int k, float* c) noexcept nogil
    void deltaprop_window_update(Py_ssize_t n_in, Py_ssize_t n_out, double* W,
                                 const double* const* xs, const double* D, const double* etas,
                                 double q, int k, double* c) noexcept nogil
    double deltaprop_dot(Py_ssize_t n, const double* x, const double* y) noexcept nogil
    double deltaprop_sum_squaresf(Py_ssize_t n, const float* x) noexcept nogil
    double deltaprop_sum_squares(Py_ssize_t n, const double* x) noexcept nogil
    void deltaprop_dot_decay4f(Py_ssize_t n, const float* d, float* r0, float* r1, float* r2,
                               float* r3, float c0, float c1, float c2, float c3, float rd,
                               float* out) noexcept nogil
    void deltaprop_dot_decay4(Py_ssize_t n, const double* d, double* r0, double* r1, double* r2,
                              double* r3, double c0, double c1, double c2, double c3, double rd,
                              double* out) noexcept nogil
    void deltaprop_dot_decay1f(Py_ssize_t n, const float* d, float* r, float c, float rd,
                               float* out) noexcept nogil
    void deltaprop_dot_decay1(Py_ssize_t n, const double* d, double* r, double c, double rd,
                              double* out) noexcept nogil
    double deltaprop_scale_normf(Py_ssize_t n, float* x, float c) noexcept nogil
    double deltaprop_scale_norm(Py_ssize_t n, double* x, double c) noexcept nogil
    Py_ssize_t deltaprop_nonzerof(Py_ssize_t n, const float* x, const float* x2,
                                  Py_ssize_t* active) noexcept nogil
    Py_ssize_t deltaprop_nonzero(Py_ssize_t n, const double* x, const double* x2,
                                 Py_ssize_t* active) noexcept nogil


# --------------------------------------------------------------------------- the C loops, per dtype
cdef inline Py_ssize_t nonzero_rows(Py_ssize_t n, const floating* x, const floating* x2,
                                    Py_ssize_t* active) noexcept nogil:
    """Indices i with x[i] != 0 or x2[i] != 0 (x2 may be NULL) into ``active``; return how many."""
    if floating is float:
        return deltaprop_nonzerof(n, x, x2, active)
    else:
        return deltaprop_nonzero(n, x, x2, active)


cdef inline void sum4(Py_ssize_t n, const floating* r0, const floating* r1, const floating* r2,
                      const floating* r3, floating z0, floating z1, floating z2, floating z3,
                      floating* a) noexcept nogil:
    """a += z0 r0 + z1 r1 + z2 r2 + z3 r3 (in that order)."""
    if floating is float:
        deltaprop_sum4f(n, r0, r1, r2, r3, z0, z1, z2, z3, a)
    else:
        deltaprop_sum4(n, r0, r1, r2, r3, z0, z1, z2, z3, a)


cdef inline void dot_update4(Py_ssize_t n, const floating* d, floating* r0, floating* r1,
                             floating* r2, floating* r3, floating c0, floating c1, floating c2,
                             floating c3, floating* out) noexcept nogil:
    """out[k] = r_k . d (old rows), then r_k -= c_k d, for four rows in one pass."""
    if floating is float:
        deltaprop_dot_update4f(n, d, r0, r1, r2, r3, c0, c1, c2, c3, out)
    else:
        deltaprop_dot_update4(n, d, r0, r1, r2, r3, c0, c1, c2, c3, out)


cdef inline floating dot_update1(Py_ssize_t n, const floating* d, floating* r,
                                 floating c) noexcept nogil:
    """Return r . d (old row), then r -= c d."""
    if floating is float:
        return deltaprop_dot_update1f(n, d, r, c)
    else:
        return deltaprop_dot_update1(n, d, r, c)


cdef inline void rows4(Py_ssize_t n, const floating* d, floating* r0, floating* r1, floating* r2,
                       floating* r3, floating c0, floating c1, floating c2, floating c3,
                       floating y0, floating y1, floating y2, floating y3,
                       floating* a) noexcept nogil:
    r""":math:`r_k \mathrel{-}= c_k \delta` for four rows, then :math:`a \mathrel{+}= \sum_k y_k r_k` (in order)."""
    if floating is float:
        deltaprop_rows4f(n, d, r0, r1, r2, r3, c0, c1, c2, c3, y0, y1, y2, y3, a)
    else:
        deltaprop_rows4(n, d, r0, r1, r2, r3, c0, c1, c2, c3, y0, y1, y2, y3, a)


cdef inline void dot_decay4(Py_ssize_t n, const floating* d, floating* r0, floating* r1,
                            floating* r2, floating* r3, floating c0, floating c1, floating c2,
                            floating c3, floating rd, floating* out) noexcept nogil:
    """out[k] = r_k . d, out[4] = sum_k |r_k|^2 (old rows), then r_k = rd r_k - c_k d."""
    if floating is float:
        deltaprop_dot_decay4f(n, d, r0, r1, r2, r3, c0, c1, c2, c3, rd, out)
    else:
        deltaprop_dot_decay4(n, d, r0, r1, r2, r3, c0, c1, c2, c3, rd, out)


cdef inline void dot_decay1(Py_ssize_t n, const floating* d, floating* r, floating c, floating rd,
                            floating* out) noexcept nogil:
    """out[0] = r . d, out[1] = |r|^2 (old row), then r = rd r - c d."""
    if floating is float:
        deltaprop_dot_decay1f(n, d, r, c, rd, out)
    else:
        deltaprop_dot_decay1(n, d, r, c, rd, out)


cdef inline double scale_norm(Py_ssize_t n, floating* x, floating c) noexcept nogil:
    """x *= c (skipped when c == 1); return |x|^2 after."""
    if floating is float:
        return deltaprop_scale_normf(n, x, c)
    else:
        return deltaprop_scale_norm(n, x, c)


cdef inline void window_update(Py_ssize_t n_in, Py_ssize_t n_out, floating* W,
                               const floating* const* xs, const floating* D,
                               const floating* etas, floating q, int k,
                               floating* c) noexcept nogil:
    """The updates of a window of k samples (1 ≤ k ≤ 6) in one pass over W (n_in, n_out):
    :math:`w_{ij} \leftarrow q\, w_{ij} - \sum_r \eta_r x_{ri} \delta_{rj}`, r = 0, 1, ... in
    turn after the scaling (q = 1 leaves the old weights exact); ``xs[r]`` sample r's inputs,
    ``D`` (k, n_out) its δ, ``etas`` its step sizes, ``c`` scratch for k n_in values."""
    if floating is float:
        deltaprop_window_updatef(n_in, n_out, W, xs, D, etas, q, k, c)
    else:
        deltaprop_window_update(n_in, n_out, W, xs, D, etas, q, k, c)


cdef inline void dots(Py_ssize_t n, const floating* x, const floating* const* ys, int k,
                      floating* out) noexcept nogil:
    """out[r] = x · ys[r] for r < k (1 ≤ k ≤ 6), x read once for all k sums."""
    if floating is float:
        deltaprop_dotsf(n, x, ys, k, out)
    else:
        deltaprop_dots(n, x, ys, k, out)


cdef inline floating dot(Py_ssize_t n, const floating* x, const floating* y) noexcept nogil:
    """x · y, vectorised (a dot product is otherwise bound by the latency of one add chain:
    ``omp simd reduction`` lets the compiler reorder the additions)."""
    if floating is float:
        return deltaprop_dotf(n, x, y)
    else:
        return deltaprop_dot(n, x, y)


cdef inline double sum_squares(const floating* x, Py_ssize_t n) noexcept nogil:
    """x · x in double, with four vector accumulators: for long sums (a layer's weights, the L2
    penalty), where one accumulator's add latency would bound the loop."""
    if floating is float:
        return deltaprop_sum_squaresf(n, x)
    else:
        return deltaprop_sum_squares(n, x)


# --------------------------------------------------------------------------- one sample
cdef inline void forward_rows(const floating* W, const floating* b, Py_ssize_t n_in,
                              Py_ssize_t n_out, const floating* z, floating* a) noexcept nogil:
    r""":math:`a_j = \sum_i w_{ji} z_i + w_{j0}` for one sample (5.48): rows of W scaled by
    :math:`z_i` and summed in order, four non-zero rows per sweep (zero inputs are skipped:
    exact), the bias added last (numba's ``forward_rows`` starts from the bias and visits every
    row)."""
    cdef Py_ssize_t i, j, k, cnt = 0
    cdef Py_ssize_t idx[4]
    memset(a, 0, n_out * sizeof(floating))
    for i in range(n_in):
        idx[cnt] = i
        cnt += z[i] != 0
        if cnt == 4:
            sum4(n_out, W + idx[0] * n_out, W + idx[1] * n_out, W + idx[2] * n_out,
                 W + idx[3] * n_out, z[idx[0]], z[idx[1]], z[idx[2]], z[idx[3]], a)
            cnt = 0
    for k in range(cnt):
        axpy(n_out, z[idx[k]], W + idx[k] * n_out, a)
    for j in range(n_out):
        a[j] += b[j]


cdef inline void backprop_rows(const floating* W, Py_ssize_t n_in, Py_ssize_t n_out, int hidden,
                               const floating* a, const floating* z, floating* delta_in,
                               const floating* delta) noexcept nogil:
    r""":math:`\delta_i = h'(a_i) \sum_k w_{ki} \delta_k` (5.56) for the ``n_in`` units of layer
    l-1 (``a``, ``z``, ``delta_in``) from layer l's ``delta`` and weights ``W`` (n_in, n_out)."""
    cdef Py_ssize_t i
    for i in range(n_in):
        delta_in[i] = derivative(hidden, a[i], z[i]) * dot(n_out, W + i * n_out, delta)


cdef inline Py_ssize_t next_sample(const Py_ssize_t* order, const floating* s, Py_ssize_t p,
                                   Py_ssize_t n_steps) noexcept nogil:
    """The first position from ``p`` on in the flattened ``order`` (n_steps,) whose sample
    weight is non-zero (``n_steps`` when there is none): batches of one sample with
    :math:`S_B = 0` are skipped. numba's ``next_sample`` walks ``(e, p)`` of the 2-D order."""
    while p < n_steps and s[order[p]] == 0:
        p += 1
    return p


cdef inline void upper_forward(const floating* w, const Py_ssize_t* layout, Py_ssize_t L,
                               int hidden, int output, floating* z, floating* a) noexcept nogil:
    """Activations of layer 0 (its pre-activations are ready in ``a``) and the forward pass of
    layers 1..L-1, for one sample, on the unit buffers ``a``, ``z`` (U,)."""
    cdef Py_ssize_t l, u
    for l in range(L):
        u = col(layout, l, U_OFF)
        if l > 0:
            forward_rows(w + col(layout, l, W_OFF), w + col(layout, l, B_OFF),
                         col(layout, l, N_IN), col(layout, l, N_OUT),
                         z + col(layout, l - 1, U_OFF), a + u)
        activate(output if l == L - 1 else hidden, a + u, z + u, col(layout, l, N_OUT))
