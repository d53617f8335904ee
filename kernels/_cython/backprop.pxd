# cython: language_level=3
from cython cimport floating

cdef double output_delta_batch(const Py_ssize_t* layout, Py_ssize_t L, int output, int loss,
                               Py_ssize_t n, const floating* A, const floating* Z,
                               const floating* T, const floating* s, floating* D) noexcept nogil
cdef void backprop_batch(const floating* w, const Py_ssize_t* layout, Py_ssize_t L, int hidden,
                         Py_ssize_t n, const floating* A, const floating* Z,
                         floating* D) noexcept nogil
cdef void gradient_batch(const Py_ssize_t* layout, Py_ssize_t L, Py_ssize_t n, const floating* X,
                         const floating* Z, const floating* D, floating* g) noexcept nogil
cdef void gradient_step(const Py_ssize_t* layout, Py_ssize_t L, Py_ssize_t n, const floating* X,
                        const floating* Z, const floating* D, floating c, floating* w) noexcept nogil
