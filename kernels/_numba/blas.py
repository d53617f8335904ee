r"""Matrix products of the numba kernels: :func:`gemm`, a row-major
:math:`C = \alpha\, \mathrm{op}(A)\, \mathrm{op}(B) + \beta C` through the BLAS that
``deltaprop.kernels.blas`` finds (NumPy's OpenBLAS, else SciPy's).

numba's own ``np.dot(a, b, out)`` computes :math:`C = AB` only, through SciPy's BLAS. With
:math:`\alpha` and :math:`\beta` a product does more of a step's work: the gradient product
accumulates straight into the weights, :math:`W \leftarrow W - \frac{\eta}{S} Z^T \Delta`
(:math:`\beta = 1`), or into a velocity, :math:`V \leftarrow \mu V - \frac{\eta}{S} Z^T \Delta`
(:math:`\beta = \mu`), with no gradient buffer and no second pass.

The library's ``sgemm`` / ``dgemm`` addresses are registered with LLVM under the names
``deltaprop_sgemm`` / ``deltaprop_dgemm`` when this module is imported, and the compiled code
calls those names, so numba's on-disk cache holds no address: a cached kernel links to whichever
library this process found. Integers go by pointer to 64-bit values (see
``deltaprop.kernels.blas``).
"""

from llvmlite import binding as ll
from llvmlite import ir
from numba import types
from numba.core import cgutils, config
from numba.extending import intrinsic

from deltaprop.kernels.blas import gemm_library

LIBRARY = gemm_library()
ll.add_symbol("deltaprop_sgemm", LIBRARY.sgemm)
ll.add_symbol("deltaprop_dgemm", LIBRARY.dgemm)


def _gemm_python(A, B, C, alpha, beta, trans_a, trans_b):
    """The pure-Python twin of :func:`gemm`, which runs under NUMBA_DISABLE_JIT=1 (coverage runs)."""
    a = A.T if trans_a else A
    b = B.T if trans_b else B
    C[...] = alpha * (a @ b) + beta * C


def _matrix(context, builder, arytype, value):
    """(data pointer, rows, columns, leading dimension in elements) of a 2-D array whose rows are
    contiguous."""
    array = context.make_array(arytype)(context, builder, value)
    rows, cols = cgutils.unpack_tuple(builder, array.shape, 2)
    stride = cgutils.unpack_tuple(builder, array.strides, 2)[0]
    itemsize = context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(arytype.dtype)))
    return array.data, rows, cols, builder.sdiv(stride, itemsize)


@intrinsic
def gemm(typingctx, A, B, C, alpha, beta, trans_a, trans_b):
    r"""Row-major :math:`C = \alpha\, \mathrm{op}(A)\, \mathrm{op}(B) + \beta C` for 2-D arrays of
    one dtype (float32 or float64) whose rows are contiguous (any row stride); ``op(X)`` is
    :math:`X^T` when ``trans_*`` is true. Shapes are the caller's to match, as for BLAS.

    The row-major product is the column-major one of the transposes,
    :math:`C^T = \alpha\, \mathrm{op}(B)^T \mathrm{op}(A)^T + \beta C^T`: ``?gemm`` is called
    with B first and the row strides as leading dimensions.
    """
    arrays = (A, B, C)
    if not all(isinstance(x, types.Array) and x.ndim == 2 for x in arrays):
        return None
    dtype = C.dtype
    if dtype not in (types.float32, types.float64) or A.dtype != dtype or B.dtype != dtype:
        return None
    sig = types.void(A, B, C, dtype, dtype, types.boolean, types.boolean)

    def codegen(context, builder, signature, args):
        a, b, c, alpha_v, beta_v, ta, tb = args
        fp = context.get_value_type(dtype)
        i8, i64 = ir.IntType(8), ir.IntType(64)
        fnty = ir.FunctionType(ir.VoidType(), [i8.as_pointer(), i8.as_pointer()] + [i64.as_pointer()] * 3
                               + [fp.as_pointer()] * 2 + [i64.as_pointer(), fp.as_pointer(), i64.as_pointer()]
                               + [fp.as_pointer()] * 2 + [i64.as_pointer()])
        name = "deltaprop_sgemm" if dtype == types.float32 else "deltaprop_dgemm"
        fn = cgutils.get_or_insert_function(builder.module, fnty, name)
        a_ptr, a_rows, a_cols, lda = _matrix(context, builder, signature.args[0], a)
        b_ptr, _, _, ldb = _matrix(context, builder, signature.args[1], b)
        c_ptr, c_rows, c_cols, ldc = _matrix(context, builder, signature.args[2], c)
        k = builder.select(ta, a_rows, a_cols)
        ch_n, ch_t = i8(ord("N")), i8(ord("T"))

        def ref(value):
            return cgutils.alloca_once_value(builder, value)

        builder.call(fn, [ref(builder.select(tb, ch_t, ch_n)), ref(builder.select(ta, ch_t, ch_n)),
                          ref(c_cols), ref(c_rows), ref(k), ref(alpha_v), b_ptr, ref(ldb), a_ptr, ref(lda),
                          ref(beta_v), c_ptr, ref(ldc)])
        return context.get_dummy_value()

    return sig, codegen


if config.DISABLE_JIT:
    gemm = _gemm_python  # noqa: F811

__all__ = ["gemm", "LIBRARY"]
