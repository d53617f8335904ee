r"""The first layer's two large products of a mini-batch, reading the batch's rows of X where they
are, through the visiting order ``idx`` (no gathered copy of the batch):

.. math::

    A = X_{\mathrm{idx}} W \quad (m \times N), \qquad
    C \leftarrow \beta C + \alpha X_{\mathrm{idx}}^T \Delta \quad (K \times N)

for ``W`` (K, N) and ``Δ`` (m, N), row-major, emitted as explicit vector code through llvmlite in
register tiles of :data:`MR` = 6 rows by two vectors of columns: twelve vector accumulators, two
vector loads and six broadcasts per step of the sum, combined by ``llvm.fmuladd`` (the register
tile of a BLIS micro-kernel; Van Zee and van de Geijn, ACM TOMS 41(3), 2015). The vectors are
those of the CPU numba compiles for (:data:`VECTOR_BYTES`): 64 bytes with AVX-512, whose 32
registers hold the twelve accumulators of two 64-byte vectors with room to spare, else 32 with
AVX2 and FMA. A last panel of fewer columns takes a tile of one vector or two, its loads and
stores masked (``llvm.masked.load`` / ``store``) past ``N``; a last block of fewer than six rows
a tile of as many rows.

Both products take the batch in blocks of rows, so that what a block's tiles pass over stays in
the caches. The forward product reads ``W`` in place, in blocks of about
:data:`FORWARD_X_BYTES` of X's rows (in L2 while every panel of ``W``'s columns passes over
them). The gradient takes blocks of at most :data:`GRADIENT_X_BYTES` of X's rows and
:data:`GRADIENT_D_BYTES` of a panel of ``Δ``, which it copies into a buffer on the stack, its
rows one after another, before every tile of ``W``'s rows passes over it: read in place, a panel's
rows lie a whole row of ``Δ`` apart and fall into a quarter of the L1 cache's sets (the row
length is a multiple of 512 bytes for 128 outputs), where they evict each other. Each tile of
``C`` is read and written once per block (β on the first, 1 after). Callers check
:func:`use_indexed` and gather the rows for BLAS otherwise.
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils, config
from numba.extending import intrinsic

from ._jit import helper

#: rows of a register tile
MR = 6
#: at most this many rows of a batch
MAX_ROWS = 512
#: batches of fewer than SHORT_ROWS rows need a first layer of at least MIN_INPUTS inputs
SHORT_ROWS = 128
MIN_INPUTS = 384
#: the first layer's weights at most this many bytes (they stay in a 1 MB L2 cache)
MAX_W_BYTES = 1024 * 1024
#: the forward product's blocks: about this many bytes of X's rows
FORWARD_X_BYTES = 256 * 1024
#: the gradient product's blocks: at most this many bytes of X's rows ...
GRADIENT_X_BYTES = 384 * 1024
#: ... and of a panel of Δ (two vectors of each of the block's rows: the packed buffer's size)
GRADIENT_D_BYTES = 16 * 1024


def _vector_bytes():
    """Bytes of a vector for the CPU numba compiles for (the host's, or ``NUMBA_CPU_FEATURES``'):
    64 with AVX-512, 32 with AVX2 and FMA (16 registers: twelve accumulators, two loads and a
    broadcast fill them), else 0 (no register tiles: :func:`use_indexed` is false)."""
    from llvmlite import binding as ll

    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else ll.get_host_cpu_features().flatten()
    have = set(features.split(","))
    if "+avx512f" in have:
        return 64
    return 32 if {"+avx2", "+fma"} <= have else 0


#: bytes of a vector of the tiles (0: none on this CPU)
VECTOR_BYTES = _vector_bytes()


@helper
def use_indexed(n, n_in, n_out, itemsize):
    """Whether a first layer of ``n_in`` inputs and ``n_out`` outputs takes the products here for
    a batch of ``n`` rows: a CPU with the tiles' vectors, weights of at most :data:`MAX_W_BYTES`,
    at most :data:`MAX_ROWS` rows, and either :data:`SHORT_ROWS` rows or :data:`MIN_INPUTS`
    inputs (a short batch of short rows has little gather to save)."""
    return (VECTOR_BYTES > 0 and n_in * n_out * itemsize <= MAX_W_BYTES and n <= MAX_ROWS
            and (n >= SHORT_ROWS or n_in >= MIN_INPUTS))


def _indexed_matmul_python(X, idx, W, A):
    """The pure-Python twin of :func:`indexed_matmul` (NUMBA_DISABLE_JIT=1)."""
    A[...] = X[idx] @ W


def _indexed_relu_layer_python(X, idx, W, b, A, Z):
    """The pure-Python twin of :func:`indexed_relu_layer` (NUMBA_DISABLE_JIT=1)."""
    A[...] = X[idx] @ W + b
    Z[...] = A
    Z[A <= 0] = 0


def _window_update_python(W, C, D, q):
    """The pure-Python twin of :func:`window_update` (NUMBA_DISABLE_JIT=1)."""
    if q != 1:
        W *= q
    for r in range(D.shape[0]):
        W -= np.outer(C[r], D[r])


def _indexed_matmul_at_python(X, idx, D, C, alpha, beta):
    """The pure-Python twin of :func:`indexed_matmul_at` (NUMBA_DISABLE_JIT=1)."""
    G = alpha * (X[idx].T @ D)
    C[...] = G if beta == 0 else G + beta * C


class _Code:
    """What both products' code generators share: the arrays' pointers, the vector operations
    (plain or masked), the loops over blocks, panels and tiles."""

    def __init__(self, context, builder, dtype, vector_bytes):
        self.context, self.builder = context, builder
        self.fty = context.get_value_type(dtype)
        self.V = V = vector_bytes // (dtype.bitwidth // 8)
        self.vty = ir.VectorType(self.fty, V)
        self.mty = ir.VectorType(ir.IntType(1), V)
        self.i32, self.i64 = ir.IntType(32), ir.IntType(64)
        self.align = dtype.bitwidth // 8
        suffix = f"v{V}{'f32' if dtype == types.float32 else 'f64'}"
        module, vty, ptr = builder.module, self.vty, self.vty.as_pointer()
        self.fma = cgutils.get_or_insert_function(module, ir.FunctionType(vty, [vty] * 3), f"llvm.fmuladd.{suffix}")
        self.mload = cgutils.get_or_insert_function(
            module, ir.FunctionType(vty, [ptr, self.i32, self.mty, vty]), f"llvm.masked.load.{suffix}.p0")
        self.mstore = cgutils.get_or_insert_function(
            module, ir.FunctionType(ir.VoidType(), [vty, ptr, self.i32, self.mty]), f"llvm.masked.store.{suffix}.p0")
        self.zero = ir.Constant(vty, None)

    def matrix(self, arytype, value):
        """(data pointer, rows, columns, row stride in elements) of a 2-D array with contiguous rows."""
        context, builder = self.context, self.builder
        array = context.make_array(arytype)(context, builder, value)
        rows, cols = cgutils.unpack_tuple(builder, array.shape, 2)
        stride = cgutils.unpack_tuple(builder, array.strides, 2)[0]
        return array.data, rows, cols, builder.sdiv(stride, self.i64(self.align))

    def vector(self, arytype, value):
        """(data pointer, length) of a 1-D array."""
        array = self.context.make_array(arytype)(self.context, self.builder, value)
        return array.data, cgutils.unpack_tuple(self.builder, array.shape, 1)[0]

    def at(self, p, *offsets):
        """``p + sum(offsets)`` (elements)."""
        off = offsets[0]
        for o in offsets[1:]:
            off = self.builder.add(off, o)
        return self.builder.gep(p, [off])

    def load(self, p, mask):
        """A vector at ``p``; with ``mask``, only its lanes (zeros elsewhere)."""
        b = self.builder
        q = b.bitcast(p, self.vty.as_pointer())
        if mask is None:
            return b.load(q, align=self.align)
        return b.call(self.mload, [q, self.i32(self.align), mask, self.zero])

    def store(self, x, p, mask):
        """Store vector ``x`` at ``p``; with ``mask``, only its lanes."""
        b = self.builder
        q = b.bitcast(p, self.vty.as_pointer())
        if mask is None:
            b.store(x, q, align=self.align)
        else:
            b.call(self.mstore, [x, q, self.i32(self.align), mask])

    def splat(self, x):
        b, V = self.builder, self.V
        vec = b.insert_element(ir.Constant(self.vty, ir.Undefined), x, self.i32(0))
        return b.shuffle_vector(vec, vec, ir.Constant(ir.VectorType(self.i32, V), [0] * V))

    def smaller(self, x, y):
        """min(x, y) of two unsigned integers."""
        return self.builder.select(self.builder.icmp_unsigned("<", x, y), x, y)

    def block_size(self, nbytes, row_bytes, multiple=1):
        """Rows in a block of about ``nbytes`` of rows of ``row_bytes`` bytes: a multiple of
        ``multiple``, at least ``multiple``."""
        b, i64 = self.builder, self.i64
        rows = b.mul(b.udiv(b.udiv(i64(nbytes), row_bytes), i64(multiple)), i64(multiple))
        return b.select(b.icmp_unsigned("<", rows, i64(multiple)), i64(multiple), rows)

    def blocks(self, n, size, body):
        """body(first row, rows) for the blocks of ``size`` rows of ``n``."""
        with cgutils.for_range_slice(self.builder, self.i64(0), n, size) as (b0, _):
            body(b0, self.smaller(size, self.builder.sub(n, b0)))

    def panels(self, N, body):
        """body(first column, vectors, masks) for the panels of two vectors of columns of ``N``,
        then a last one of one or two vectors, masked past ``N``."""
        b, i64, V = self.builder, self.i64, self.V
        whole = b.udiv(N, i64(2 * V))
        with cgutils.for_range(b, whole) as loop:
            body(b.mul(loop.index, i64(2 * V)), 2, [None, None])
        j0 = b.mul(whole, i64(2 * V))
        rest = b.sub(N, j0)
        lanes = ir.Constant(ir.VectorType(self.i64, V), list(range(V)))

        def mask(first):
            limit = b.insert_element(ir.Constant(ir.VectorType(self.i64, V), ir.Undefined), rest, self.i32(0))
            limit = b.shuffle_vector(limit, limit, ir.Constant(ir.VectorType(self.i32, V), [0] * V))
            return b.icmp_unsigned("<", b.add(lanes, ir.Constant(ir.VectorType(self.i64, V), [first] * V)), limit)

        with b.if_then(b.icmp_unsigned("!=", rest, i64(0))):
            with b.if_else(b.icmp_unsigned(">", rest, i64(V))) as (two, one):
                with two:
                    body(j0, 2, [None, mask(V)])
                with one:
                    body(j0, 1, [mask(0)])

    def tiles(self, start, n, tile):
        """tile(i0, mr) for i0 = start, start + MR, ... (mr = MR), then the last n mod MR rows."""
        b, i64 = self.builder, self.i64
        full = b.udiv(n, i64(MR))
        with cgutils.for_range(b, full) as loop:
            tile(b.add(start, b.mul(loop.index, i64(MR))), MR)
        rest = b.urem(n, i64(MR))
        i0 = b.add(start, b.mul(full, i64(MR)))
        for mr in range(1, MR):
            with b.if_then(b.icmp_unsigned("==", rest, i64(mr))):
                tile(i0, mr)

    def accumulators(self, mr, nv):
        """mr x nv zeroed stack slots (LLVM keeps them in registers)."""
        accs = [[cgutils.alloca_once(self.builder, self.vty) for _ in range(nv)] for _ in range(mr)]
        for row in accs:
            for slot in row:
                self.builder.store(self.zero, slot)
        return accs

    def step(self, accs, xs, ys):
        """accs[q][v] += splat(xs[q]) * ys[v]."""
        b = self.builder
        for q, x in enumerate(xs):
            xv = self.splat(x)
            for v, y in enumerate(ys):
                b.store(b.call(self.fma, [xv, y, b.load(accs[q][v])]), accs[q][v])


def _matrix_types(*arrays):
    """Whether every argument is a C-contiguous 2-D float32 / float64 array of one dtype."""
    return (all(isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C" for a in arrays)
            and arrays[0].dtype in (types.float32, types.float64)
            and all(a.dtype == arrays[0].dtype for a in arrays))


def _index_type(idx):
    return isinstance(idx, types.Array) and idx.ndim == 1 and idx.dtype == types.int64 and idx.layout in "CA"


def make_products(vector_bytes):
    """The two products' intrinsics with vectors of ``vector_bytes`` (32 or 64)."""

    def forward_codegen(relu):
        r"""The codegen of :math:`A = X_{idx} W` (``relu`` False; arguments X, idx, W, A) or of
        :math:`A = X_{idx} W + b`, :math:`Z = \max(0, A)` (``relu`` True; X, idx, W, b, A, Z),
        the bias and the activation applied to each tile as it is stored."""

        def codegen(context, builder, signature, args):
            c = _Code(context, builder, signature.args[0].dtype, vector_bytes)
            V, i64 = c.V, c.i64
            xp, _, K, ldx = c.matrix(signature.args[0], args[0])
            ip, m = c.vector(signature.args[1], args[1])
            istride = context.make_array(signature.args[1])(context, builder, args[1]).strides
            istep = builder.sdiv(cgutils.unpack_tuple(builder, istride, 1)[0], i64(8))
            wp, _, N, ldw = c.matrix(signature.args[2], args[2])
            if relu:
                bp, _ = c.vector(signature.args[3], args[3])
                ap, _, _, lda = c.matrix(signature.args[4], args[4])
                zp, _, _, ldz = c.matrix(signature.args[5], args[5])
            else:
                ap, _, _, lda = c.matrix(signature.args[3], args[3])
            zero = ir.Constant(c.fty, 0.0)

            def row(i):
                """X's row idx[i]."""
                return c.at(xp, builder.mul(builder.load(builder.gep(ip, [builder.mul(i, istep)])), ldx))

            def block(b0, nb):
                def panel(j0, nv, masks):
                    w0 = c.at(wp, j0)

                    def tile(i0, mr):
                        rows = [row(builder.add(i0, i64(q))) for q in range(mr)]
                        accs = c.accumulators(mr, nv)
                        with cgutils.for_range(builder, K) as loop:
                            wk = builder.gep(w0, [builder.mul(loop.index, ldw)])
                            ys = [c.load(builder.gep(wk, [i64(v * V)]), masks[v]) for v in range(nv)]
                            c.step(accs, [builder.load(builder.gep(r, [loop.index])) for r in rows], ys)
                        if relu:
                            bias = [c.load(c.at(bp, j0, i64(v * V)), masks[v]) for v in range(nv)]
                            zeros = c.splat(zero)
                        for q in range(mr):
                            i = builder.add(i0, i64(q))
                            out = c.at(ap, builder.mul(i, lda), j0)
                            for v in range(nv):
                                acc = builder.load(accs[q][v])
                                if not relu:
                                    c.store(acc, builder.gep(out, [i64(v * V)]), masks[v])
                                    continue
                                a = builder.fadd(acc, bias[v])  # a = x W + b, then z = 0 if a <= 0 else a
                                c.store(a, builder.gep(out, [i64(v * V)]), masks[v])
                                z = builder.select(builder.fcmp_ordered("<=", a, zeros), zeros, a)
                                c.store(z, c.at(zp, builder.mul(i, ldz), j0, i64(v * V)), masks[v])

                    c.tiles(b0, nb, tile)

                c.panels(N, panel)

            itemsize = i64(c.align)
            c.blocks(m, c.block_size(FORWARD_X_BYTES, builder.mul(K, itemsize), MR), block)
            return context.get_dummy_value()

        return codegen

    @intrinsic
    def indexed_matmul(typingctx, X, idx, W, A):
        if not (_matrix_types(X, W, A) and _index_type(idx)):
            return None
        return types.void(X, idx, W, A), forward_codegen(False)

    @intrinsic
    def indexed_relu_layer(typingctx, X, idx, W, b, A, Z):
        if not (_matrix_types(X, W, A, Z) and _index_type(idx) and isinstance(b, types.Array)
                and b.ndim == 1 and b.dtype == A.dtype and b.layout in "CA"):
            return None
        return types.void(X, idx, W, b, A, Z), forward_codegen(True)

    @intrinsic
    def indexed_matmul_at(typingctx, X, idx, D, C, alpha, beta):
        if not (_matrix_types(X, D, C) and _index_type(idx)):
            return None
        dt = C.dtype
        sig = types.void(X, idx, D, C, dt, dt)

        def codegen(context, builder, signature, args):
            c = _Code(context, builder, dt, vector_bytes)
            V, i64 = c.V, c.i64
            xp, _, K, ldx = c.matrix(signature.args[0], args[0])
            ip, m = c.vector(signature.args[1], args[1])
            istride = context.make_array(signature.args[1])(context, builder, args[1]).strides
            istep = builder.sdiv(cgutils.unpack_tuple(builder, istride, 1)[0], i64(8))
            dp, _, N, ldd = c.matrix(signature.args[2], args[2])
            cp, _, _, ldc = c.matrix(signature.args[3], args[3])
            alpha_v = c.splat(args[4])
            first_beta, one = c.splat(args[5]), c.splat(ir.Constant(c.fty, 1.0))
            first_keep = builder.fcmp_unordered("!=", args[5], ir.Constant(c.fty, 0.0))
            slots = ir.ArrayType(c.fty, max(GRADIENT_D_BYTES // (2 * vector_bytes), 1) * 2 * c.V)
            packed = cgutils.alloca_once(builder, slots)
            packed.align = 64
            packed = builder.bitcast(packed, c.fty.as_pointer())

            def block(b0, nb):
                first = builder.icmp_unsigned("==", b0, i64(0))
                beta = builder.select(first, first_beta, one)
                keep = builder.select(first, first_keep, ir.Constant(ir.IntType(1), 1))

                def panel(j0, nv, masks):
                    d0 = c.at(dp, j0)
                    with cgutils.for_range(builder, nb) as loop:  # the block's rows of the panel, packed
                        src = builder.gep(d0, [builder.mul(builder.add(b0, loop.index), ldd)])
                        dst = builder.gep(packed, [builder.mul(loop.index, i64(2 * V))])
                        for v in range(nv):
                            c.store(c.load(builder.gep(src, [i64(v * V)]), masks[v]), builder.gep(dst, [i64(v * V)]),
                                    None)

                    def tile(k0, mr):
                        accs = c.accumulators(mr, nv)
                        with cgutils.for_range(builder, nb) as loop:
                            r = builder.add(b0, loop.index)
                            n = builder.load(builder.gep(ip, [builder.mul(r, istep)]))
                            x = c.at(xp, builder.mul(n, ldx), k0)
                            dr = builder.gep(packed, [builder.mul(loop.index, i64(2 * V))])
                            ys = [c.load(builder.gep(dr, [i64(v * V)]), None) for v in range(nv)]
                            c.step(accs, [builder.load(builder.gep(x, [i64(q)])) for q in range(mr)], ys)
                        for q in range(mr):
                            out = c.at(cp, builder.mul(builder.add(k0, i64(q)), ldc), j0)
                            for v in range(nv):
                                p = builder.gep(out, [i64(v * V)])
                                g = builder.fmul(alpha_v, builder.load(accs[q][v]))
                                new = builder.select(keep, builder.call(c.fma, [beta, c.load(p, masks[v]), g]), g)
                                c.store(new, p, masks[v])

                    c.tiles(i64(0), K, tile)

                c.panels(N, panel)

            size = c.smaller(c.block_size(GRADIENT_X_BYTES, builder.mul(K, i64(c.align))),
                             i64(max(GRADIENT_D_BYTES // (2 * vector_bytes), 1)))
            c.blocks(m, size, block)
            return context.get_dummy_value()

        return sig, codegen

    @intrinsic
    def window_update(typingctx, W, C, D, q):
        if not _matrix_types(W, C, D):
            return None
        dt = W.dtype
        sig = types.void(W, C, D, dt)

        def codegen(context, builder, signature, args):
            c = _Code(context, builder, dt, vector_bytes)
            V, i64 = c.V, c.i64
            wp, K, N, ldw = c.matrix(signature.args[0], args[0])
            cp, k, _, ldc = c.matrix(signature.args[1], args[1])
            dp, _, _, ldd = c.matrix(signature.args[2], args[2])
            qv = c.splat(args[3])

            def update(kk, scaled):
                def panel(j0, nv, masks):
                    ds = [[c.load(c.at(dp, builder.mul(i64(r), ldd), j0, i64(v * V)), masks[v]) for v in range(nv)]
                          for r in range(kk)]
                    with cgutils.for_range(builder, K) as loop:
                        row = c.at(wp, builder.mul(loop.index, ldw), j0)
                        ws = [c.load(builder.gep(row, [i64(v * V)]), masks[v]) for v in range(nv)]
                        if scaled:
                            ws = [builder.fmul(qv, x) for x in ws]
                        for r in range(kk):
                            coef = builder.load(c.at(cp, builder.mul(i64(r), ldc), loop.index))
                            neg = c.splat(builder.fneg(coef))
                            ws = [builder.call(c.fma, [neg, ds[r][v], ws[v]]) for v in range(nv)]
                        for v in range(nv):
                            c.store(ws[v], builder.gep(row, [i64(v * V)]), masks[v])

                c.panels(N, panel)

            one = builder.fcmp_ordered("==", args[3], ir.Constant(c.fty, 1.0))
            for kk in range(1, MR + 1):
                with builder.if_then(builder.icmp_unsigned("==", k, i64(kk))):
                    with builder.if_else(one) as (plain, scaled):
                        with plain:
                            update(kk, False)
                        with scaled:
                            update(kk, True)
            return context.get_dummy_value()

        return sig, codegen

    return indexed_matmul, indexed_matmul_at, indexed_relu_layer, window_update


_products = make_products(VECTOR_BYTES or 32)

#: Row-major :math:`A = X_{\mathrm{idx}} W`: row r of ``A`` (m, N) is ``X[idx[r]] @ W``, for
#: ``X`` (n, K), ``idx`` (m,) int64, ``W`` (K, N); C-contiguous. Shapes are the caller's to match.
indexed_matmul = _products[0]
#: Row-major :math:`C \leftarrow \beta C + \alpha X_{\mathrm{idx}}^T D` for ``X`` (n, K), ``idx``
#: (m,) int64, ``D`` (m, N), ``C`` (K, N); C-contiguous. With β = 0, C's old values are not
#: used (C may hold anything, NaN included), as with BLAS.
indexed_matmul_at = _products[1]
#: A hidden relu layer of the batch's rows: :math:`A = X_{\mathrm{idx}} W + b`,
#: :math:`Z = \max(0, A)` (``0 if a <= 0 else a``: NaN stays NaN), for ``b`` (N,), ``A`` and
#: ``Z`` (m, N); the same values, bit for bit, as :data:`indexed_matmul` then the bias and
#: ``activations.activate``'s relu.
indexed_relu_layer = _products[2]
#: The updates of a window of k ≤ :data:`MR` samples in one pass over ``W`` (K, N):
#: :math:`w_{ij} \leftarrow q\, w_{ij} - \sum_r c_{ri} d_{rj}`, taken r = 0, 1, ... in turn
#: after the scaling (one rounding each; q = 1 leaves the old weights exact, and then each
#: weight ends as k sample-by-sample updates round it), for ``C`` (k, K) (the samples'
#: :math:`\eta_r x_r`), ``D`` (k, N) and the scalar ``q``; C-contiguous. Two vectors of columns
#: at a time: their k rows of ``D`` stay in registers while the pass goes down ``W``'s rows.
window_update = _products[3]

if config.DISABLE_JIT:
    indexed_matmul = _indexed_matmul_python  # noqa: F811
    indexed_matmul_at = _indexed_matmul_at_python  # noqa: F811
    indexed_relu_layer = _indexed_relu_layer_python  # noqa: F811
    window_update = _window_update_python  # noqa: F811

__all__ = ["indexed_matmul", "indexed_matmul_at", "indexed_relu_layer", "window_update", "make_products", "use_indexed",
           "VECTOR_BYTES", "MR", "MAX_ROWS", "SHORT_ROWS", "MIN_INPUTS", "MAX_W_BYTES", "FORWARD_X_BYTES",
           "GRADIENT_X_BYTES", "GRADIENT_D_BYTES"]
