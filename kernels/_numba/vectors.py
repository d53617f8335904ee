r"""The per-sample sweep's update of four rows, emitted as explicit vector code through llvmlite.

numba cannot tell LLVM that two arrays, or two rows of one array, do not overlap (it has no
``restrict``), so LLVM vectorises a loop that writes four rows of ``w`` and reads δ and the
forward sum behind run-time checks of every pair of ranges: about a hundred instructions before
each block of four rows, against about 130 for the block's own 128 columns in float32. The
functions here emit the loop themselves, with no checks: vectors of :data:`VECTOR_BYTES` (eight
float32 or four float64: an AVX2 register, half an AVX-512 one; the choice is measured in
``docs/performance/single_core.rst``) loaded, combined by ``llvm.fmuladd`` and stored, then a
scalar loop over the last ``n mod V`` columns. The rows, δ, the forward sum and ``pv`` must not
overlap, as they never do in the kernels (rows of ``W_0``, unit buffers).

Each column is computed as :func:`deltaprop.kernels._numba.rows.sweep4` computes it, operation
for operation and in the same order; ``llvm.fmuladd`` is fused exactly where LLVM contracts
``x * y + z`` under the kernels' ``contract`` flag, so the results are bit for bit those of the
loop LLVM vectorises (``tests/test_numba.py`` compares them).
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils, config
from numba.extending import intrinsic

#: bytes per vector
VECTOR_BYTES = 32


def _update_rows4_python(*args):
    """The pure-Python twin of the intrinsics, which runs under NUMBA_DISABLE_JIT=1 (coverage runs):
    :func:`~deltaprop.kernels._numba.rows.sweep4_loop` itself (imported here, not at the top:
    ``rows`` imports this module)."""
    from .rows import sweep4_loop
    sweep4_loop(*args)


def _make_update_rows4(fwd: bool, norm: bool):
    """The intrinsic for one combination of the flags (``fwd``: add the new rows into the forward
    sum; ``norm``: add :math:`\\sum_k c_k w_{kj}` of the old rows into ``pv``)."""

    @intrinsic
    def update_rows4(typingctx, w, r0, r1, r2, r3, n, d, c0, c1, c2, c3, y0, y1, y2, y3, a, u, pv):
        arrays = (w, d, a, pv)
        if not all(isinstance(x, types.Array) and x.ndim == 1 for x in arrays):
            return None
        dt = w.dtype
        if dt not in (types.float32, types.float64) or any(x.dtype != dt for x in arrays):
            return None
        sig = types.void(w, r0, r1, r2, r3, n, d, c0, c1, c2, c3, y0, y1, y2, y3, a, u, pv)

        def codegen(context, builder, signature, args):
            argtys = signature.args
            fty = context.get_value_type(dt)
            V = VECTOR_BYTES // (dt.bitwidth // 8)
            vty = ir.VectorType(fty, V)
            i64 = ir.IntType(64)
            align = dt.bitwidth // 8

            def data(k):
                return context.make_array(argtys[k])(context, builder, args[k]).data

            def offset(k):
                return context.cast(builder, args[k], argtys[k], types.uint64)

            def scalar(k):
                return context.cast(builder, args[k], argtys[k], dt)

            wptr, dptr, pvptr = data(0), data(6), data(17)
            rows = [builder.gep(wptr, [offset(k)]) for k in range(1, 5)]
            acc_base = builder.gep(data(15), [offset(16)])
            n64 = offset(5)
            cs = [scalar(k) for k in range(7, 11)]
            ys = [scalar(k) for k in range(11, 15)]
            suffix = "f32" if dt == types.float32 else "f64"
            fma_v = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3),
                                                   f"llvm.fmuladd.v{V}{suffix}")
            fma_s = cgutils.get_or_insert_function(builder.module, ir.FunctionType(fty, [fty] * 3),
                                                   f"llvm.fmuladd.{suffix}")

            def splat(x):
                vec = builder.insert_element(ir.Constant(vty, ir.Undefined), x, i64(0))
                return builder.shuffle_vector(vec, vec, ir.Constant(ir.VectorType(ir.IntType(32), V), [0] * V))

            def column(j, load, store, fma, c, neg_c, y):
                """One column j (or V columns) of the sweep, in sweep4's order."""
                old = [load(r, j) for r in rows]
                if norm:
                    q = load(pvptr, j)
                    for k in range(4):
                        q = builder.call(fma, [c[k], old[k], q])
                    store(q, pvptr, j)
                dj = load(dptr, j)
                new = [builder.call(fma, [neg_c[k], dj, old[k]]) for k in range(4)]
                for r, wk in zip(rows, new):
                    store(wk, r, j)
                if fwd:
                    acc = load(acc_base, j)
                    for k in range(4):
                        acc = builder.call(fma, [y[k], new[k], acc])
                    store(acc, acc_base, j)

            def vload(p, j):
                return builder.load(builder.bitcast(builder.gep(p, [j]), vty.as_pointer()), align=align)

            def vstore(x, p, j):
                builder.store(x, builder.bitcast(builder.gep(p, [j]), vty.as_pointer()), align=align)

            def sload(p, j):
                return builder.load(builder.gep(p, [j]))

            def sstore(x, p, j):
                builder.store(x, builder.gep(p, [j]))

            neg_cs = [builder.fneg(c) for c in cs]
            vcs, vneg, vys = [splat(c) for c in cs], [splat(c) for c in neg_cs], [splat(y) for y in ys]
            whole = builder.udiv(n64, i64(V))
            with cgutils.for_range(builder, whole) as loop:
                column(builder.mul(loop.index, i64(V)), vload, vstore, fma_v, vcs, vneg, vys)
            with cgutils.for_range_slice(builder, builder.mul(whole, i64(V)), n64, i64(1)) as (j, _):
                column(j, sload, sstore, fma_s, cs, neg_cs, ys)
            return context.get_dummy_value()

        return sig, codegen

    return update_rows4


#: :math:`w_{kj} \leftarrow w_{kj} - c_k d_j` for the four rows at ``w[r0]`` ... ``w[r3]``, then
#: :math:`a_{u+j} \mathrel{+}= y_0 w_{0j} + y_1 w_{1j} + y_2 w_{2j} + y_3 w_{3j}` with the new
#: rows (``pv`` is not touched); arguments as :func:`~deltaprop.kernels._numba.rows.sweep4`'s
#: without its flags.
update_rows4_fwd = _make_update_rows4(fwd=True, norm=False)
#: the update alone
update_rows4 = _make_update_rows4(fwd=False, norm=False)
#: the update and the forward sum, with :math:`pv_j \mathrel{+}= \sum_k c_k w_{kj}` of the old rows first
update_rows4_fwd_norm = _make_update_rows4(fwd=True, norm=True)
#: the update, with :math:`pv_j \mathrel{+}= \sum_k c_k w_{kj}` of the old rows first
update_rows4_norm = _make_update_rows4(fwd=False, norm=True)

@intrinsic
def prefetch(typingctx, x, offset, nbytes):
    """Ask the caches (into L2) for the ``nbytes`` bytes of the 1-D array ``x`` from element
    ``offset`` on: one ``llvm.prefetch`` per 64-byte line, and the last byte's. No effect on
    the results; an address outside ``x`` is not an error (a prefetch never faults)."""
    if not (isinstance(x, types.Array) and x.ndim == 1):
        return None
    sig = types.void(x, offset, nbytes)

    def codegen(context, builder, signature, args):
        i8p = ir.IntType(8).as_pointer()
        i32, i64 = ir.IntType(32), ir.IntType(64)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0")
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        base = builder.bitcast(builder.gep(data, [context.cast(builder, args[1], signature.args[1], types.uint64)]),
                               i8p)
        n = context.cast(builder, args[2], signature.args[2], types.uint64)
        with cgutils.for_range_slice(builder, i64(0), n, i64(64)) as (o, _):
            builder.call(fn, [builder.gep(base, [o]), i32(0), i32(2), i32(1)])
        with builder.if_then(builder.icmp_unsigned(">", n, i64(0))):
            builder.call(fn, [builder.gep(base, [builder.sub(n, i64(1))]), i32(0), i32(2), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


if config.DISABLE_JIT:
    def update_rows4_fwd(*args):  # noqa: F811
        _update_rows4_python(*args, True, True, False)

    def update_rows4(*args):  # noqa: F811
        _update_rows4_python(*args, True, False, False)

    def update_rows4_fwd_norm(*args):  # noqa: F811
        _update_rows4_python(*args, True, True, True)

    def update_rows4_norm(*args):  # noqa: F811
        _update_rows4_python(*args, True, False, True)

    def prefetch(x, offset, nbytes):  # noqa: F811
        """No effect (the twin of the intrinsic under NUMBA_DISABLE_JIT=1)."""

__all__ = ["update_rows4", "update_rows4_fwd", "update_rows4_norm", "update_rows4_fwd_norm", "prefetch",
           "VECTOR_BYTES"]
