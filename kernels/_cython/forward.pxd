# cython: language_level=3
from cython cimport floating

cdef void forward_batch(const floating* w, const Py_ssize_t* layout, Py_ssize_t L, int hidden,
                        int output, const floating* X, Py_ssize_t n, floating* A,
                        floating* Z) noexcept nogil
