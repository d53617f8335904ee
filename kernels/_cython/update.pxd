# cython: language_level=3
from cython cimport floating
from libc.stdint cimport int64_t

cdef void update(floating* w, const floating* g, Py_ssize_t P, int solver, const floating* hyper,
                 floating* state, int64_t* t) noexcept nogil
cdef double adam_rate(const floating* hyper, int64_t t) noexcept nogil
