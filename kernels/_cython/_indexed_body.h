/* The products of _indexed.h for one floating type: included once per type, with DP_T (the
   type), DP_VT (its vector), DP_VL (lanes), DP_FN (the name with the type's suffix), DP_MASKT
   (a lane mask) and the vector operations defined; it undefines them all at its end, for the
   next type. No include guard: included twice on purpose. */

#define DP_NR (2 * DP_VL)

/* Rows k0..k0+kc of W (ldw columns), columns j0..j0+nc, into panels of NR columns:
   Bp[p][k][0..NR), zeros past column N. With bias (not NULL), the packed rows' column sums are
   folded into it as the rows pass, b = bbeta b + c sum_k W[k] (bbeta 0: b is not read): the
   gradient's bias, sum_n delta_n, from the rows of D it packs, without a pass of its own; the
   sums run down each column in the order of the rows. */
static inline void DP_FN(indexed_pack)(Py_ssize_t kc, Py_ssize_t nc, Py_ssize_t N,
        const DP_T* W, Py_ssize_t ldw, Py_ssize_t j0, DP_T* DELTAPROP_RESTRICT Bp, DP_T* bias,
        DP_T c, DP_T bbeta) {
    for (Py_ssize_t jp = 0; jp < nc; jp += DP_NR) {
        Py_ssize_t nr = N - (j0 + jp) < DP_NR ? N - (j0 + jp) : DP_NR;
        DP_T* p = Bp + jp * kc;
        const DP_T* w = W + j0 + jp;
        DP_MASKT m0 = DP_MASK(nr), m1 = DP_MASK(nr - DP_VL);
        DP_VT s0 = DP_ZERO(), s1 = s0;
        if (nr == DP_NR) {
            for (Py_ssize_t k = 0; k < kc; k++) {
                DP_VT v0 = DP_LOAD(w + k * ldw), v1 = DP_LOAD(w + k * ldw + DP_VL);
                DP_STORE(p + k * DP_NR, v0);
                DP_STORE(p + k * DP_NR + DP_VL, v1);
                if (bias != NULL) { s0 = DP_ADD(s0, v0); s1 = DP_ADD(s1, v1); }
            }
        } else {
            for (Py_ssize_t k = 0; k < kc; k++) {
                DP_VT v0 = DP_MASKLOAD(w + k * ldw, m0), v1 = DP_MASKLOAD(w + k * ldw + DP_VL, m1);
                DP_STORE(p + k * DP_NR, v0);
                DP_STORE(p + k * DP_NR + DP_VL, v1);
                if (bias != NULL) { s0 = DP_ADD(s0, v0); s1 = DP_ADD(s1, v1); }
            }
        }
        if (bias != NULL) {
            DP_T* bp = bias + j0 + jp;
            DP_VT b0 = DP_MUL(DP_SET1(c), s0), b1 = DP_MUL(DP_SET1(c), s1);
            if (bbeta != 0) {
                b0 = DP_FMADD(DP_SET1(bbeta), DP_MASKLOAD(bp, m0), b0);
                b1 = DP_FMADD(DP_SET1(bbeta), DP_MASKLOAD(bp + DP_VL, m1), b1);
            }
            DP_MASKSTORE(bp, m0, b0);
            DP_MASKSTORE(bp + DP_VL, m1, b1);
        }
    }
}

#define DP_STEP(i, r) if (i < rows) { DP_VT a_ = DP_BCAST(r + k); \
    c##i##0 = DP_FMADD(a_, b0, c##i##0); c##i##1 = DP_FMADD(a_, b1, c##i##1); }

/* C[0..mr, 0..nr) = bias + (the tile's sum) when first, else += it. The sum is over k < kc of
   r_i[k] times B's row k: a packed panel (ldb = NR) or W's own rows (ldb = N; the last panel's
   columns past N are not read). With relu (the last block of k), max(that, 0) is stored. Only
   the first `rows` rows are summed (a constant where it is inlined: a last block of mr < MR
   rows takes 2 or 4, not the whole tile's work); rows from mr on are not stored. */
static inline DP_ALWAYS_INLINE void DP_FN(indexed_tile_rows)(Py_ssize_t kc, const DP_T* r0,
        const DP_T* r1, const DP_T* r2, const DP_T* r3, const DP_T* r4, const DP_T* r5,
        const DP_T* DELTAPROP_RESTRICT B, Py_ssize_t ldb, DP_T* C, Py_ssize_t ldc, int mr,
        Py_ssize_t nr, int first, const DP_T* bias, int relu, const int rows) {
    DP_VT c00 = DP_ZERO(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    DP_VT c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    if (ldb == DP_NR || nr == DP_NR) {
        for (Py_ssize_t k = 0; k < kc; k++) {
            DP_VT b0 = DP_LOAD(B + k * ldb), b1 = DP_LOAD(B + k * ldb + DP_VL);
            DP_STEP(0, r0) DP_STEP(1, r1) DP_STEP(2, r2) DP_STEP(3, r3) DP_STEP(4, r4) DP_STEP(5, r5)
        }
    } else {
        DP_MASKT m0 = DP_MASK(nr), m1 = DP_MASK(nr - DP_VL);
        for (Py_ssize_t k = 0; k < kc; k++) {
            DP_VT b0 = DP_MASKLOAD(B + k * ldb, m0), b1 = DP_MASKLOAD(B + k * ldb + DP_VL, m1);
            DP_STEP(0, r0) DP_STEP(1, r1) DP_STEP(2, r2) DP_STEP(3, r3) DP_STEP(4, r4) DP_STEP(5, r5)
        }
    }
    DP_VT acc[2 * DP_MR] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    DP_VT zero = DP_ZERO();
    if (nr == DP_NR) {
        DP_VT x0 = zero, x1 = x0;
        if (first) { x0 = DP_LOAD(bias); x1 = DP_LOAD(bias + DP_VL); }
        for (int i = 0; i < mr; i++) {
            DP_T* p = C + i * ldc;
            if (!first) { x0 = DP_LOAD(p); x1 = DP_LOAD(p + DP_VL); }
            DP_VT v0 = DP_ADD(x0, acc[2 * i]), v1 = DP_ADD(x1, acc[2 * i + 1]);
            if (relu) { v0 = DP_MAX(v0, zero); v1 = DP_MAX(v1, zero); }
            DP_STORE(p, v0);
            DP_STORE(p + DP_VL, v1);
        }
    } else {
        DP_MASKT m0 = DP_MASK(nr), m1 = DP_MASK(nr - DP_VL);
        DP_VT x0 = zero, x1 = x0;
        if (first) { x0 = DP_MASKLOAD(bias, m0); x1 = DP_MASKLOAD(bias + DP_VL, m1); }
        for (int i = 0; i < mr; i++) {
            DP_T* p = C + i * ldc;
            if (!first) { x0 = DP_MASKLOAD(p, m0); x1 = DP_MASKLOAD(p + DP_VL, m1); }
            DP_VT v0 = DP_ADD(x0, acc[2 * i]), v1 = DP_ADD(x1, acc[2 * i + 1]);
            if (relu) { v0 = DP_MAX(v0, zero); v1 = DP_MAX(v1, zero); }
            DP_MASKSTORE(p, m0, v0);
            DP_MASKSTORE(p + DP_VL, m1, v1);
        }
    }
}

/* indexed_tile_rows for a whole block of MR rows, and for a last block of mr < MR rows. */
static void DP_FN(indexed_tile)(Py_ssize_t kc, const DP_T* r0, const DP_T* r1, const DP_T* r2,
        const DP_T* r3, const DP_T* r4, const DP_T* r5, const DP_T* DELTAPROP_RESTRICT B,
        Py_ssize_t ldb, DP_T* C, Py_ssize_t ldc, int mr, Py_ssize_t nr, int first,
        const DP_T* bias, int relu) {
    DP_FN(indexed_tile_rows)(kc, r0, r1, r2, r3, r4, r5, B, ldb, C, ldc, mr, nr, first, bias,
                             relu, DP_MR);
}

static void DP_FN(indexed_tile_short)(Py_ssize_t kc, const DP_T* r0, const DP_T* r1,
        const DP_T* r2, const DP_T* r3, const DP_T* r4, const DP_T* r5,
        const DP_T* DELTAPROP_RESTRICT B, Py_ssize_t ldb, DP_T* C, Py_ssize_t ldc, int mr,
        Py_ssize_t nr, int first, const DP_T* bias, int relu) {
    if (mr <= 2)
        DP_FN(indexed_tile_rows)(kc, r0, r1, r2, r3, r4, r5, B, ldb, C, ldc, mr, nr, first,
                                 bias, relu, 2);
    else if (mr <= 4)
        DP_FN(indexed_tile_rows)(kc, r0, r1, r2, r3, r4, r5, B, ldb, C, ldc, mr, nr, first,
                                 bias, relu, 4);
    else
        DP_FN(indexed_tile_rows)(kc, r0, r1, r2, r3, r4, r5, B, ldb, C, ldc, mr, nr, first,
                                 bias, relu, DP_MR);
}

#define DP_STEP1(i, r) { c##i##0 = DP_FMADD(DP_BCAST(r + k), b0, c##i##0); }

/* indexed_tile for a last panel of at most one vector of columns (nr <= VL): half the work of
   a full tile (a 100-column layer of doubles in AVX-512 ends in 4 columns). */
static inline void DP_FN(indexed_tile1)(Py_ssize_t kc, const DP_T* r0, const DP_T* r1,
        const DP_T* r2, const DP_T* r3, const DP_T* r4, const DP_T* r5,
        const DP_T* DELTAPROP_RESTRICT B, Py_ssize_t ldb, DP_T* C, Py_ssize_t ldc, int mr,
        Py_ssize_t nr, int first, const DP_T* bias, int relu) {
    DP_VT c00 = DP_ZERO(), c10 = c00, c20 = c00, c30 = c00, c40 = c00, c50 = c00;
    DP_MASKT m0 = DP_MASK(nr);
    for (Py_ssize_t k = 0; k < kc; k++) {
        DP_VT b0 = DP_MASKLOAD(B + k * ldb, m0);
        DP_STEP1(0, r0) DP_STEP1(1, r1) DP_STEP1(2, r2) DP_STEP1(3, r3) DP_STEP1(4, r4)
        DP_STEP1(5, r5)
    }
    DP_VT acc[DP_MR] = {c00, c10, c20, c30, c40, c50};
    DP_VT zero = DP_ZERO();
    DP_VT x0 = first ? DP_MASKLOAD(bias, m0) : zero;
    for (int i = 0; i < mr; i++) {
        DP_T* p = C + i * ldc;
        if (!first) x0 = DP_MASKLOAD(p, m0);
        DP_VT v = DP_ADD(x0, acc[i]);
        DP_MASKSTORE(p, m0, relu ? DP_MAX(v, zero) : v);
    }
}

#ifdef DP_HVT
#define DP_HSTEP(i, r) { c##i = DP_HFMADD(DP_HBCAST(r + k), b0, c##i); }

/* indexed_tile1 in half vectors, for a last panel of nr <= HVL columns (AVX-512 build: 4
   doubles or 8 floats in 256 bits; mask lanes as DP_MASK's bits). */
static inline void DP_FN(indexed_tile_half)(Py_ssize_t kc, const DP_T* r0, const DP_T* r1,
        const DP_T* r2, const DP_T* r3, const DP_T* r4, const DP_T* r5,
        const DP_T* DELTAPROP_RESTRICT B, Py_ssize_t ldb, DP_T* C, Py_ssize_t ldc, int mr,
        Py_ssize_t nr, int first, const DP_T* bias, int relu) {
    DP_HVT c0 = DP_HZERO(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    __mmask8 m0 = (__mmask8)DP_MASK(nr);
    for (Py_ssize_t k = 0; k < kc; k++) {
        DP_HVT b0 = DP_HMASKLOAD(B + k * ldb, m0);
        DP_HSTEP(0, r0) DP_HSTEP(1, r1) DP_HSTEP(2, r2) DP_HSTEP(3, r3) DP_HSTEP(4, r4)
        DP_HSTEP(5, r5)
    }
    DP_HVT acc[DP_MR] = {c0, c1, c2, c3, c4, c5};
    DP_HVT zero = DP_HZERO();
    DP_HVT x0 = first ? DP_HMASKLOAD(bias, m0) : zero;
    for (int i = 0; i < mr; i++) {
        DP_T* p = C + i * ldc;
        if (!first) x0 = DP_HMASKLOAD(p, m0);
        DP_HVT v = DP_HADD(x0, acc[i]);
        DP_HMASKSTORE(p, m0, relu ? DP_HMAX(v, zero) : v);
    }
}
#endif

/* C (m, N) = b + X[idx] W, X with K columns, W (K, N); Bp: DELTAPROP_PANEL_BYTES, aligned.
   Batches of fewer than DP_PACK_ROWS rows read W where it is: the few tiles that pass over
   each panel do not pay for packing it. With relu, C = max(b + X[idx] W, 0), the ReLU taken
   in the registers as the last block of k is stored (a hidden layer's z = h(a), its a not
   kept). With pf (not NULL), its rows are asked for a few before each block of MR rows, all of
   them over the first pass of the blocks: spread over the product, the requests do not queue
   up behind each other. */
static void DP_FN(indexed_xw)(Py_ssize_t m, Py_ssize_t K, Py_ssize_t N, const DP_T* X,
        const Py_ssize_t* idx, const DP_T* W, const DP_T* b, DP_T* C, DP_T* Bp, int relu,
        deltaprop_prefetch* pf) {
    Py_ssize_t pf_rows = pf == NULL ? 0 : (pf->n * DP_MR + m - 1) / m;  /* per block of rows */
    Py_ssize_t nkb = (K + DP_KC - 1) / DP_KC, kc_max = (K + nkb - 1) / nkb;
    Py_ssize_t nc_max = DELTAPROP_PANEL_BYTES / (Py_ssize_t)sizeof(DP_T) / kc_max / DP_NR * DP_NR;
    if (nc_max < DP_NR) nc_max = DP_NR;
    Py_ssize_t nnb = (N + nc_max - 1) / nc_max;
    Py_ssize_t nc_blk = ((N + nnb - 1) / nnb + DP_NR - 1) / DP_NR * DP_NR;
    int packed = m >= DP_PACK_ROWS;
    for (Py_ssize_t j0 = 0; j0 < N; j0 += nc_blk) {
        Py_ssize_t nc = N - j0 < nc_blk ? N - j0 : nc_blk;
        for (Py_ssize_t k0 = 0; k0 < K; k0 += kc_max) {
            Py_ssize_t kc = K - k0 < kc_max ? K - k0 : kc_max;
            if (packed) DP_FN(indexed_pack)(kc, nc, N, W + k0 * N, N, j0, Bp, NULL, 0, 0);
            for (Py_ssize_t i0 = 0; i0 < m; i0 += DP_MR) {
                int mr = m - i0 < DP_MR ? (int)(m - i0) : DP_MR;
                const DP_T* r[DP_MR];  /* rows past m repeat the last one and are not stored */
                deltaprop_prefetch_some(pf, pf_rows);
                for (int i = 0; i < DP_MR; i++)
                    r[i] = X + idx[i0 + (i < mr ? i : mr - 1)] * K + k0;
                for (Py_ssize_t jp = 0; jp < nc; jp += DP_NR) {
                    Py_ssize_t nr = nc - jp < DP_NR ? nc - jp : DP_NR;
                    const DP_T* B = packed ? Bp + jp * kc : W + k0 * N + j0 + jp;
                    Py_ssize_t ldb = packed ? DP_NR : N;
                    int last_relu = relu && k0 + kc == K;
                    if (nr > DP_VL && mr == DP_MR)
                        DP_FN(indexed_tile)(kc, r[0], r[1], r[2], r[3], r[4], r[5], B, ldb,
                                            C + i0 * N + j0 + jp, N, mr, nr, k0 == 0,
                                            b + j0 + jp, last_relu);
                    else if (nr > DP_VL)
                        DP_FN(indexed_tile_short)(kc, r[0], r[1], r[2], r[3], r[4], r[5], B,
                                                  ldb, C + i0 * N + j0 + jp, N, mr, nr,
                                                  k0 == 0, b + j0 + jp, last_relu);
#ifdef DP_HVT
                    else if (nr <= DP_HVL)
                        DP_FN(indexed_tile_half)(kc, r[0], r[1], r[2], r[3], r[4], r[5], B, ldb,
                                                 C + i0 * N + j0 + jp, N, mr, nr, k0 == 0,
                                                 b + j0 + jp, last_relu);
#endif
                    else
                        DP_FN(indexed_tile1)(kc, r[0], r[1], r[2], r[3], r[4], r[5], B, ldb,
                                             C + i0 * N + j0 + jp, N, mr, nr, k0 == 0,
                                             b + j0 + jp, last_relu);
                }
            }
        }
    }
}

#define DP_GSTEP(i) if (i < rows) { DP_VT a_ = DP_BCAST(x + (i < mr ? i : 0)); \
    c##i##0 = DP_FMADD(a_, b0, c##i##0); if (nv == 2) c##i##1 = DP_FMADD(a_, b1, c##i##1); }

/* Rows i0..i0+mr of W, columns jp..jp+nr: W = beta W + c sum_r X[idx[r], i] Dp[r] over the
   block's nb rows, Dp the packed panel of D's columns jp..jp+NR (beta 0: W is not read); nv
   vectors of columns (1 for a last panel of nr <= VL); the first `rows` rows of the tile
   summed (mr <= rows of them stored). Always inlined, so that the caller's mr = MR, nv and
   rows are constants: the sum's loop tests none of them. */
static inline DP_ALWAYS_INLINE void DP_FN(indexed_grad_tile)(Py_ssize_t nb, const DP_T* X,
        Py_ssize_t K, const Py_ssize_t* idx, Py_ssize_t i0, int mr,
        const DP_T* DELTAPROP_RESTRICT Dp, DP_T* W, Py_ssize_t N, Py_ssize_t jp, Py_ssize_t nr,
        DP_T c, DP_T beta, const int nv, const int rows) {
    DP_VT c00 = DP_ZERO(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    DP_VT c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (Py_ssize_t r = 0; r < nb; r++) {
        const DP_T* x = X + idx[r] * K + i0;
        DP_VT b0 = DP_LOAD(Dp + r * DP_NR), b1 = nv == 2 ? DP_LOAD(Dp + r * DP_NR + DP_VL) : b0;
        DP_GSTEP(0) DP_GSTEP(1) DP_GSTEP(2) DP_GSTEP(3) DP_GSTEP(4) DP_GSTEP(5)
    }
    DP_VT acc[2 * DP_MR] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    DP_VT cv = DP_SET1(c), bv = DP_SET1(beta);
    for (int i = 0; i < mr; i++) {
        DP_T* p = W + (i0 + i) * N + jp;
        for (int h = 0; h < nv; h++) {
            DP_VT v;
            if (nr == DP_NR) {
                if (beta == 0) v = DP_MUL(cv, acc[2 * i + h]);
                else {
                    DP_VT w = DP_LOAD(p + h * DP_VL);
                    v = DP_FMADD(cv, acc[2 * i + h], beta == 1 ? w : DP_MUL(bv, w));
                }
                DP_STORE(p + h * DP_VL, v);
            } else {
                DP_MASKT mk = DP_MASK(nr - h * DP_VL);
                if (beta == 0) v = DP_MUL(cv, acc[2 * i + h]);
                else {
                    DP_VT w = DP_MASKLOAD(p + h * DP_VL, mk);
                    v = DP_FMADD(cv, acc[2 * i + h], beta == 1 ? w : DP_MUL(bv, w));
                }
                DP_MASKSTORE(p + h * DP_VL, mk, v);
            }
        }
    }
}

/* indexed_grad_tile for a last block of mr < MR rows of W: 2, 4 or MR rows' work. */
static void DP_FN(indexed_grad_tile_short)(Py_ssize_t nb, const DP_T* X, Py_ssize_t K,
        const Py_ssize_t* idx, Py_ssize_t i0, int mr, const DP_T* DELTAPROP_RESTRICT Dp, DP_T* W,
        Py_ssize_t N, Py_ssize_t jp, Py_ssize_t nr, DP_T c, DP_T beta) {
    if (nr > DP_VL) {
        if (mr <= 2) DP_FN(indexed_grad_tile)(nb, X, K, idx, i0, mr, Dp, W, N, jp, nr, c, beta, 2, 2);
        else if (mr <= 4) DP_FN(indexed_grad_tile)(nb, X, K, idx, i0, mr, Dp, W, N, jp, nr, c, beta, 2, 4);
        else DP_FN(indexed_grad_tile)(nb, X, K, idx, i0, mr, Dp, W, N, jp, nr, c, beta, 2, DP_MR);
    } else {
        if (mr <= 2) DP_FN(indexed_grad_tile)(nb, X, K, idx, i0, mr, Dp, W, N, jp, nr, c, beta, 1, 2);
        else if (mr <= 4) DP_FN(indexed_grad_tile)(nb, X, K, idx, i0, mr, Dp, W, N, jp, nr, c, beta, 1, 4);
        else DP_FN(indexed_grad_tile)(nb, X, K, idx, i0, mr, Dp, W, N, jp, nr, c, beta, 1, DP_MR);
    }
}

#ifdef DP_HVT
#define DP_HGSTEP(i) { c##i = DP_HFMADD(DP_HBCAST(x + (i < mr ? i : 0)), b0, c##i); }

/* indexed_grad_tile in half vectors, for a last panel of nr <= HVL columns (AVX-512 build). */
static inline DP_ALWAYS_INLINE void DP_FN(indexed_grad_tile_half)(Py_ssize_t nb, const DP_T* X,
        Py_ssize_t K, const Py_ssize_t* idx, Py_ssize_t i0, int mr,
        const DP_T* DELTAPROP_RESTRICT Dp, DP_T* W, Py_ssize_t N, Py_ssize_t jp, Py_ssize_t nr,
        DP_T c, DP_T beta) {
    DP_HVT c0 = DP_HZERO(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    for (Py_ssize_t r = 0; r < nb; r++) {
        const DP_T* x = X + idx[r] * K + i0;
        DP_HVT b0 = DP_HLOAD(Dp + r * DP_NR);
        DP_HGSTEP(0) DP_HGSTEP(1) DP_HGSTEP(2) DP_HGSTEP(3) DP_HGSTEP(4) DP_HGSTEP(5)
    }
    DP_HVT acc[DP_MR] = {c0, c1, c2, c3, c4, c5};
    DP_HVT cv = DP_HSET1(c), bv = DP_HSET1(beta);
    __mmask8 mk = (__mmask8)DP_MASK(nr);
    for (int i = 0; i < mr; i++) {
        DP_T* p = W + (i0 + i) * N + jp;
        DP_HVT v;
        if (beta == 0) v = DP_HMUL(cv, acc[i]);
        else {
            DP_HVT w = DP_HMASKLOAD(p, mk);
            v = DP_HFMADD(cv, acc[i], beta == 1 ? w : DP_HMUL(bv, w));
        }
        DP_HMASKSTORE(p, mk, v);
    }
}
#endif

/* The gradient's blocks of D (indexed_xtd): rows per block, as many as DP_D_BYTES hold of N
   columns padded to NR, in blocks of equal size. */
static inline Py_ssize_t DP_FN(xtd_block_rows)(Py_ssize_t m, Py_ssize_t N) {
    Py_ssize_t npad = (N + DP_NR - 1) / DP_NR * DP_NR;
    Py_ssize_t rb = DP_D_BYTES / (Py_ssize_t)sizeof(DP_T) / npad, nblk;
    if (rb < 8) rb = 8;
    nblk = (m + rb - 1) / rb;
    return (m + nblk - 1) / nblk;
}

/* W (K, N) = beta W + c X[idx]^T D, X with K columns, D (m, N); Dp: DELTAPROP_PANEL_BYTES,
   aligned. D is packed, as many rows as fit, into panels of NR columns (zeros past N); each
   panel stays in the L1 cache while every tile of its columns of W passes over it. With bias
   (N values, not NULL), also b = bbeta b + c sum_r D[r], summed as D's rows are packed (the
   bias's gradient, sum_n delta_n, without a pass of its own). With packed, D is not read: Dp
   holds it already packed, all m rows, with its column sums after them, as narrow_bt leaves
   them (deltaprop_packed_delta). */
static void DP_FN(indexed_xtd)(Py_ssize_t m, Py_ssize_t K, Py_ssize_t N, const DP_T* X,
        const Py_ssize_t* idx, const DP_T* D, DP_T* W, DP_T c, DP_T beta, DP_T* Dp,
        DP_T* bias, DP_T bbeta, int packed) {
    Py_ssize_t npad = (N + DP_NR - 1) / DP_NR * DP_NR;
    Py_ssize_t rb = DP_FN(xtd_block_rows)(m, N);
    /* columns per packed block: rb rows of them fit the buffer (all N unless N is huge; all
       of them when packed, whose m rows fit) */
    Py_ssize_t nc_blk = DELTAPROP_PANEL_BYTES / (Py_ssize_t)sizeof(DP_T) / rb / DP_NR * DP_NR;
    if (nc_blk > npad) nc_blk = npad;
    for (Py_ssize_t r0 = 0; r0 < m; r0 += rb) {
        Py_ssize_t nb = m - r0 < rb ? m - r0 : rb;
        DP_T bt = r0 == 0 ? beta : (DP_T)1, bbt = r0 == 0 ? bbeta : (DP_T)1;
        const DP_T* base = packed ? Dp + r0 * npad : Dp;
        for (Py_ssize_t j0 = 0; j0 < N; j0 += nc_blk) {
            Py_ssize_t nc = N - j0 < nc_blk ? N - j0 : nc_blk;
            if (!packed)
                DP_FN(indexed_pack)(nb, nc, N, D + r0 * N, N, j0, Dp, bias, c, bbt);
            for (Py_ssize_t i0 = 0; i0 < K; i0 += DP_MR) {
                int mr = K - i0 < DP_MR ? (int)(K - i0) : DP_MR;
                for (Py_ssize_t jp = 0; jp < nc; jp += DP_NR) {
                    Py_ssize_t nr = nc - jp < DP_NR ? nc - jp : DP_NR;
                    const DP_T* panel = base + jp * nb;
                    if (mr == DP_MR && nr > DP_VL)
                        DP_FN(indexed_grad_tile)(nb, X, K, idx + r0, i0, DP_MR, panel, W, N,
                                                 j0 + jp, nr, c, bt, 2, DP_MR);
#ifdef DP_HVT
                    else if (mr == DP_MR && nr <= DP_HVL)
                        DP_FN(indexed_grad_tile_half)(nb, X, K, idx + r0, i0, DP_MR, panel, W,
                                                      N, j0 + jp, nr, c, bt);
                    else if (nr <= DP_HVL)
                        DP_FN(indexed_grad_tile_half)(nb, X, K, idx + r0, i0, mr, panel, W, N,
                                                      j0 + jp, nr, c, bt);
#endif
                    else if (mr == DP_MR)
                        DP_FN(indexed_grad_tile)(nb, X, K, idx + r0, i0, DP_MR, panel, W, N,
                                                 j0 + jp, nr, c, bt, 1, DP_MR);
                    else
                        DP_FN(indexed_grad_tile_short)(nb, X, K, idx + r0, i0, mr, panel, W, N,
                                                       j0 + jp, nr, c, bt);
                }
            }
        }
    }
    if (packed && bias != NULL) {
        const DP_T* sums = Dp + m * npad;
        for (Py_ssize_t j = 0; j < N; j++)
            bias[j] = bbeta != 0 ? bbeta * bias[j] + c * sums[j] : c * sums[j];
    }
}

#define DP_DSTEP(i) { DP_VT a_ = DP_BCAST(d##i + k); \
    c##i##0 = DP_FMADD(a_, b0, c##i##0); if (nv == 2) c##i##1 = DP_FMADD(a_, b1, c##i##1); }

/* Rows i0..i0+mr of C, columns jp..jp+nr: h' times sum_k d_i[k] Bp[k] (Bp the packed panel of
   W^T's columns jp..jp+NR); nv vectors of columns as in indexed_grad_tile. Ah, Zh point at the
   tile's first unit (row stride ldc); row i is stored at out[i]: C's row, its columns past nr
   left alone, or with sums (not NULL) a row of the gradient's packed panel, whole vectors
   (zeros past N), its values added to the panel's column sums. */
static inline DP_ALWAYS_INLINE void DP_FN(narrow_bt_tile)(Py_ssize_t K, const DP_T* d0,
        const DP_T* d1, const DP_T* d2, const DP_T* d3, const DP_T* d4, const DP_T* d5,
        const DP_T* DELTAPROP_RESTRICT Bp, int deriv, const DP_T* Ah, const DP_T* Zh,
        DP_T* const* out, DP_T* sums, Py_ssize_t ldc, int mr, Py_ssize_t nr, const int nv) {
    DP_VT c00 = DP_ZERO(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    DP_VT c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (Py_ssize_t k = 0; k < K; k++) {
        DP_VT b0 = DP_LOAD(Bp + k * DP_NR), b1 = nv == 2 ? DP_LOAD(Bp + k * DP_NR + DP_VL) : b0;
        DP_DSTEP(0) DP_DSTEP(1) DP_DSTEP(2) DP_DSTEP(3) DP_DSTEP(4) DP_DSTEP(5)
    }
    DP_VT acc[2 * DP_MR] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    DP_VT one = DP_SET1((DP_T)1);
    for (int h = 0; h < nv; h++) {
        DP_MASKT mk = DP_MASK(nr - h * DP_VL);
        DP_VT total = sums != NULL ? DP_LOAD(sums + h * DP_VL) : one;
        for (int i = 0; i < mr; i++) {
            Py_ssize_t o = i * ldc + h * DP_VL;
            DP_VT v = acc[2 * i + h], u;
            if (deriv == DELTAPROP_DERIV_RELU) {  /* [a > 0] = [z > 0] */
                u = nr == DP_NR ? DP_LOAD(Zh + o) : DP_MASKLOAD(Zh + o, mk);
                v = DP_MUL(DP_STEP01(u), v);
            } else if (deriv == DELTAPROP_DERIV_TANH) {
                u = nr == DP_NR ? DP_LOAD(Zh + o) : DP_MASKLOAD(Zh + o, mk);
                v = DP_MUL(DP_SUB(one, DP_MUL(u, u)), v);
            } else if (deriv == DELTAPROP_DERIV_LOGISTIC) {
                u = nr == DP_NR ? DP_LOAD(Zh + o) : DP_MASKLOAD(Zh + o, mk);
                v = DP_MUL(DP_MUL(u, DP_SUB(one, u)), v);
            }
            if (sums != NULL) {
                DP_STORE(out[i] + h * DP_VL, v);
                total = DP_ADD(total, v);
            } else if (nr == DP_NR) DP_STORE(out[i] + h * DP_VL, v);
            else DP_MASKSTORE(out[i] + h * DP_VL, mk, v);
        }
        if (sums != NULL) DP_STORE(sums + h * DP_VL, total);
    }
}

/* The δ-backprop through a layer of few outputs (Bishop 5.56): C (m, N) = h' * (D W^T), D (m, K)
   the layer's deltas, W (N, K) its weights (N inputs, K <= DELTAPROP_NARROW_MAX_OUT outputs),
   h' by deriv (DELTAPROP_DERIV_*) from the units below, Ah and Zh (m, N), multiplied in as
   each tile is stored. W^T is packed into Bp (K NR-column panels, zeros past N; K x NR x
   ceil(N / NR) values must fit DELTAPROP_PANEL_BYTES) and stays in L1 while the rows pass.
   With packed, C is not written: the result goes to the start of Bp as indexed_xtd packs D
   (its blocks of rows, each in panels of NR columns, zeros past N), followed by its column
   sums (N padded to NR values, summed down each column in the order of the rows), W^T's
   panels after them; indexed_xtd with packed reads it there (deltaprop_packed_delta: what
   must fit). */
static void DP_FN(narrow_bt)(Py_ssize_t m, Py_ssize_t K, Py_ssize_t N, const DP_T* D,
        const DP_T* W, int deriv, const DP_T* Ah, const DP_T* Zh, DP_T* C, DP_T* Bp,
        int packed) {
    Py_ssize_t npad = (N + DP_NR - 1) / DP_NR * DP_NR;
    Py_ssize_t rb = DP_FN(xtd_block_rows)(m, N);
    DP_T* sums = packed ? Bp + m * npad : NULL;
    DP_T* Wt = packed ? sums + npad : Bp;
    if (packed)
        for (Py_ssize_t j = 0; j < npad; j++) sums[j] = 0;
    for (Py_ssize_t jp = 0; jp < N; jp += DP_NR) {
        Py_ssize_t nr = N - jp < DP_NR ? N - jp : DP_NR;
        DP_T* p = Wt + jp * K;
        for (Py_ssize_t k = 0; k < K; k++)
            for (Py_ssize_t c = 0; c < DP_NR; c++)
                p[k * DP_NR + c] = c < nr ? W[(jp + c) * K + k] : (DP_T)0;
    }
    for (Py_ssize_t i0 = 0; i0 < m; i0 += DP_MR) {
        int mr = m - i0 < DP_MR ? (int)(m - i0) : DP_MR;
        const DP_T* d[DP_MR];  /* rows past m repeat the last one and are not stored */
        for (int i = 0; i < DP_MR; i++)
            d[i] = D + (i0 + (i < mr ? i : mr - 1)) * K;
        for (Py_ssize_t jp = 0; jp < N; jp += DP_NR) {
            Py_ssize_t nr = N - jp < DP_NR ? N - jp : DP_NR;
            Py_ssize_t o = i0 * N + jp;
            DP_T* out[DP_MR];
            for (int i = 0; i < mr; i++) {
                if (packed) {  /* row r of the block at r0 of nb rows, in panel jp */
                    Py_ssize_t r = i0 + i, r0 = r / rb * rb;
                    Py_ssize_t nb = m - r0 < rb ? m - r0 : rb;
                    out[i] = Bp + r0 * npad + jp * nb + (r - r0) * DP_NR;
                } else out[i] = C + o + i * N;
            }
            if (nr > DP_VL)
                DP_FN(narrow_bt_tile)(K, d[0], d[1], d[2], d[3], d[4], d[5], Wt + jp * K, deriv,
                                      Ah + o, Zh + o, out, packed ? sums + jp : NULL, N, mr,
                                      nr, 2);
            else
                DP_FN(narrow_bt_tile)(K, d[0], d[1], d[2], d[3], d[4], d[5], Wt + jp * K, deriv,
                                      Ah + o, Zh + o, out, packed ? sums + jp : NULL, N, mr,
                                      nr, 1);
        }
    }
}

#undef DP_NR
#undef DP_DSTEP
#undef DP_STEP
#undef DP_GSTEP
#undef DP_STEP1
#undef DP_HSTEP
#undef DP_HGSTEP
#undef DP_HVT
#undef DP_HVL
#undef DP_HLOAD
#undef DP_HBCAST
#undef DP_HSET1
#undef DP_HFMADD
#undef DP_HMUL
#undef DP_HADD
#undef DP_HZERO
#undef DP_HMASKLOAD
#undef DP_HMASKSTORE
#undef DP_T
#undef DP_VT
#undef DP_VL
#undef DP_FN
#undef DP_LOAD
#undef DP_STORE
#undef DP_BCAST
#undef DP_SET1
#undef DP_FMADD
#undef DP_MUL
#undef DP_ADD
#undef DP_MAX
#undef DP_HMAX
#undef DP_SUB
#undef DP_STEP01
#undef DP_ZERO
#undef DP_MASKLOAD
#undef DP_MASKSTORE
#undef DP_MASK
#undef DP_MASKT
