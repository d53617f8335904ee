/* Can a product that reads the batch's rows through the visiting order beat "gather, then
   OpenBLAS"? A mini-batch epoch copies each batch's rows X[idx] into a buffer (the gather) and
   then multiplies; a GEMM that reads the rows through idx while it works would need no gather.
   This program times, one thread, float32, 784-128 (the first layer of 784-128-10), for a batch
   of M random rows of a 2,000-row X:

     forward   A = X[idx] W           OpenBLAS: gather + sgemm;  here: a 6x16 AVX2/FMA micro-kernel
               (BLIS loop order, W packed in panels of 16 columns), either packing X[idx] in
               micro-panels of 6 rows ("packed") or broadcasting straight from the rows ("rows");
     gradient  W += c X[idx]^T D      OpenBLAS: gather + sgemm (beta = 1); here: 6 columns of X
               by 16 of D, straight from the rows (no packing), 32 rows at a time;

   each the best of 9 runs of 100 products, with the largest difference from OpenBLAS. It
   measures an approach, not deltaprop. OpenBLAS is NumPy's own (its path is the argument):

     gcc -O3 -mavx2 -mfma tools/indexed_gemm.c -o /tmp/indexed_gemm -ldl
     LIB=$(python -c "import glob, os, numpy; print(glob.glob(os.path.join(os.path.dirname(numpy.__file__), '..', 'numpy.libs', 'libscipy_openblas*'))[0])")
     for M in 32 200; do OPENBLAS_NUM_THREADS=1 taskset -c 1 /tmp/indexed_gemm "$LIB" $M; done
*/
#include <dlfcn.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MR 6
#define NR 16
#define KC 392
#define N 128
#define K 784
#define NX 2000

typedef void (*sgemm_t)(int order, int ta, int tb, long m, long n, long k, float alpha, const float* a,
                        long lda, const float* b, long ldb, float beta, float* c, long ldc);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* rows k0..k0+kc of W (K x N) in panels of NR columns: Bp[panel][k][NR] */
static void pack_b(int kc, const float* W, float* Bp) {
    for (int jp = 0; jp < N; jp += NR)
        for (int k = 0; k < kc; k++) {
            _mm256_store_ps(Bp + (long)jp * kc + k * NR, _mm256_loadu_ps(W + (long)k * N + jp));
            _mm256_store_ps(Bp + (long)jp * kc + k * NR + 8, _mm256_loadu_ps(W + (long)k * N + jp + 8));
        }
}

/* columns k0..k0+kc of the rows X[idx[0..m)] in micro-panels of MR rows: Ap[panel][k][MR] */
static void pack_a(int m, int kc, const float* X, const long* idx, int k0, float* Ap) {
    for (int ip = 0; ip < m; ip += MR)
        for (int i = 0; i < MR; i++) {
            const float* r = ip + i < m ? X + idx[ip + i] * K + k0 : NULL;
            for (int k = 0; k < kc; k++) Ap[(long)ip * kc + k * MR + i] = r ? r[k] : 0.0f;
        }
}

#define FMA_ROW(i, a) c##i##0 = _mm256_fmadd_ps(a, b0, c##i##0); c##i##1 = _mm256_fmadd_ps(a, b1, c##i##1);
#define TILE_STORE(C, ldc, first) { \
    __m256 cc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51}; \
    for (int i = 0; i < MR; i++) for (int h = 0; h < 2; h++) { \
        float* p = C + (long)i * ldc + 8 * h; \
        _mm256_storeu_ps(p, first ? cc[2 * i + h] : _mm256_add_ps(_mm256_loadu_ps(p), cc[2 * i + h])); } }
#define TILE_ZERO __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, \
    c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;

/* C[0..6, 0..16) (+)= A-panel (kc x 6, packed) times B-panel (kc x 16, packed) */
static void kernel_packed(int kc, const float* restrict A, const float* restrict B, float* C, int first) {
    TILE_ZERO
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(B + k * NR), b1 = _mm256_load_ps(B + k * NR + 8);
        FMA_ROW(0, _mm256_broadcast_ss(A + k * MR)) FMA_ROW(1, _mm256_broadcast_ss(A + k * MR + 1))
        FMA_ROW(2, _mm256_broadcast_ss(A + k * MR + 2)) FMA_ROW(3, _mm256_broadcast_ss(A + k * MR + 3))
        FMA_ROW(4, _mm256_broadcast_ss(A + k * MR + 4)) FMA_ROW(5, _mm256_broadcast_ss(A + k * MR + 5))
    }
    TILE_STORE(C, N, first)
}

/* the same with the six rows of A read where they are */
static void kernel_rows(int kc, const float* const* R, const float* restrict B, float* C, int first) {
    const float *r0 = R[0], *r1 = R[1], *r2 = R[2], *r3 = R[3], *r4 = R[4], *r5 = R[5];
    TILE_ZERO
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(B + k * NR), b1 = _mm256_load_ps(B + k * NR + 8);
        FMA_ROW(0, _mm256_broadcast_ss(r0 + k)) FMA_ROW(1, _mm256_broadcast_ss(r1 + k))
        FMA_ROW(2, _mm256_broadcast_ss(r2 + k)) FMA_ROW(3, _mm256_broadcast_ss(r3 + k))
        FMA_ROW(4, _mm256_broadcast_ss(r4 + k)) FMA_ROW(5, _mm256_broadcast_ss(r5 + k))
    }
    TILE_STORE(C, N, first)
}

static float zero_row[K] __attribute__((aligned(64)));

/* C (m rounded up to MR, x N) = X[idx] W */
static void forward(int packed, int m, const float* X, const long* idx, const float* W, float* C, float* Ap,
                    float* Bp) {
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        pack_b(kc, W + (long)k0 * N, Bp);
        if (packed) pack_a(m, kc, X, idx, k0, Ap);
        for (int ip = 0; ip < m; ip += MR) {
            const float* R[MR];
            for (int i = 0; i < MR; i++) R[i] = ip + i < m ? X + idx[ip + i] * K + k0 : zero_row;
            for (int jp = 0; jp < N; jp += NR) {
                if (packed) kernel_packed(kc, Ap + (long)ip * kc, Bp + (long)jp * kc, C + (long)ip * N + jp, k0 == 0);
                else kernel_rows(kc, R, Bp + (long)jp * kc, C + (long)ip * N + jp, k0 == 0);
            }
        }
    }
}

/* W (K x N) += c X[idx]^T D, D (m x N), for m <= RB rows: their pieces of X stay in L2 */
static void gradient_block(int m, const float* X, const long* idx, const float* D, float* W, float c) {
    __m256 cv = _mm256_set1_ps(c);
    for (int i0 = 0; i0 < K; i0 += MR) {
        int mr = K - i0 < MR ? K - i0 : MR;
        for (int jp = 0; jp < N; jp += NR) {
            TILE_ZERO
            for (int r = 0; r < m; r++) {
                const float* x = X + idx[r] * K + i0;
                __m256 b0 = _mm256_loadu_ps(D + (long)r * N + jp), b1 = _mm256_loadu_ps(D + (long)r * N + jp + 8);
                FMA_ROW(0, _mm256_broadcast_ss(x)) FMA_ROW(1, _mm256_broadcast_ss(x + (mr > 1)))
                FMA_ROW(2, _mm256_broadcast_ss(x + 2 * (mr > 2))) FMA_ROW(3, _mm256_broadcast_ss(x + 3 * (mr > 3)))
                FMA_ROW(4, _mm256_broadcast_ss(x + 4 * (mr > 4))) FMA_ROW(5, _mm256_broadcast_ss(x + 5 * (mr > 5)))
            }
            __m256 cc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
            for (int i = 0; i < mr; i++) for (int h = 0; h < 2; h++) {
                float* p = W + (long)(i0 + i) * N + jp + 8 * h;
                _mm256_storeu_ps(p, _mm256_fmadd_ps(cv, cc[2 * i + h], _mm256_loadu_ps(p)));
            }
        }
    }
}

/* W += c X[idx]^T D in blocks of RB rows */
#define RB 32
static void gradient(int m, const float* X, const long* idx, const float* D, float* W, float c) {
    for (int r0 = 0; r0 < m; r0 += RB)
        gradient_block(m - r0 < RB ? m - r0 : RB, X, idx + r0, D + (long)r0 * N, W, c);
}

static double maxdiff(const float* a, const float* b, long n) {
    double e = 0;
    for (long i = 0; i < n; i++) { double d = a[i] - b[i]; if (d < 0) d = -d; if (d > e) e = d; }
    return e;
}

int main(int argc, char** argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s LIBOPENBLAS M\n", argv[0]); return 2; }
    void* lib = dlopen(argv[1], RTLD_NOW);
    sgemm_t sgemm = lib ? (sgemm_t)dlsym(lib, "scipy_cblas_sgemm64_") : NULL;
    if (!sgemm && lib) sgemm = (sgemm_t)dlsym(lib, "cblas_sgemm");
    if (!sgemm) { fprintf(stderr, "%s: no cblas sgemm\n", argv[1]); return 2; }
    int M = atoi(argv[2]), Mp = (M + MR - 1) / MR * MR;
    if (M < 1 || M > 256) { fprintf(stderr, "M from 1 to 256\n"); return 2; }
    float* X = aligned_alloc(64, sizeof(float) * NX * K);
    float* W = aligned_alloc(64, sizeof(float) * K * N);
    float* W2 = aligned_alloc(64, sizeof(float) * K * N);
    float* Xb = aligned_alloc(64, sizeof(float) * Mp * K);
    float* C = aligned_alloc(64, sizeof(float) * Mp * N);
    float* C2 = aligned_alloc(64, sizeof(float) * Mp * N);
    float* D = aligned_alloc(64, sizeof(float) * Mp * N);
    float* Ap = aligned_alloc(64, sizeof(float) * Mp * KC);
    float* Bp = aligned_alloc(64, sizeof(float) * KC * N);
    srand(1);
    for (long i = 0; i < (long)NX * K; i++) X[i] = rand() / (float)RAND_MAX - 0.5f;
    for (long i = 0; i < (long)K * N; i++) W[i] = rand() / (float)RAND_MAX - 0.5f;
    for (long i = 0; i < (long)Mp * N; i++) D[i] = rand() / (float)RAND_MAX - 0.5f;
    static long idx[10][256];
    for (int e = 0; e < 10; e++) for (int i = 0; i < M; i++) idx[e][i] = rand() % NX;
    double flop = 2.0 * M * N * K, best[5] = {1e9, 1e9, 1e9, 1e9, 1e9}, err[3];

    for (int i = 0; i < M; i++) memcpy(Xb + (long)i * K, X + idx[0][i] * K, sizeof(float) * K);
    sgemm(101, 111, 111, M, N, K, 1.0f, Xb, K, W, N, 0.0f, C2, N);
    forward(1, M, X, idx[0], W, C, Ap, Bp); err[0] = maxdiff(C, C2, (long)M * N);
    forward(0, M, X, idx[0], W, C, Ap, Bp); err[1] = maxdiff(C, C2, (long)M * N);
    memcpy(W2, W, sizeof(float) * K * N);
    sgemm(101, 112, 111, K, N, M, -1e-3f, Xb, K, D, N, 1.0f, W2, N);
    float* W3 = aligned_alloc(64, sizeof(float) * K * N);
    memcpy(W3, W, sizeof(float) * K * N);
    gradient(M, X, idx[0], D, W3, -1e-3f); err[2] = maxdiff(W3, W2, (long)K * N);

    for (int run = 0; run < 9; run++) {
        double t[5];
        t[0] = now();
        for (int r = 0; r < 100; r++) {
            for (int i = 0; i < M; i++) memcpy(Xb + (long)i * K, X + idx[r % 10][i] * K, sizeof(float) * K);
            sgemm(101, 111, 111, M, N, K, 1.0f, Xb, K, W, N, 0.0f, C2, N);
        }
        t[0] = now() - t[0]; t[1] = now();
        for (int r = 0; r < 100; r++) forward(1, M, X, idx[r % 10], W, C, Ap, Bp);
        t[1] = now() - t[1]; t[2] = now();
        for (int r = 0; r < 100; r++) forward(0, M, X, idx[r % 10], W, C, Ap, Bp);
        t[2] = now() - t[2]; t[3] = now();
        for (int r = 0; r < 100; r++) {
            for (int i = 0; i < M; i++) memcpy(Xb + (long)i * K, X + idx[r % 10][i] * K, sizeof(float) * K);
            sgemm(101, 112, 111, K, N, M, -1e-9f, Xb, K, D, N, 1.0f, W2, N);
        }
        t[3] = now() - t[3]; t[4] = now();
        for (int r = 0; r < 100; r++) gradient(M, X, idx[r % 10], D, W3, -1e-9f);
        t[4] = now() - t[4];
        for (int q = 0; q < 5; q++) if (t[q] / 100 < best[q]) best[q] = t[q] / 100;
    }
    static const char* names[] = {"forward, OpenBLAS (gather + sgemm)", "forward, packed X[idx]",
                                  "forward, rows of X[idx]", "gradient, OpenBLAS (gather + sgemm)",
                                  "gradient, rows of X[idx]"};
    printf("784-128 float32, batch %d of 2,000 rows, best of 9 runs of 100\n", M);
    static const int check[] = {-1, 0, 1, -1, 2};  /* which difference from OpenBLAS each row has */
    for (int q = 0; q < 5; q++) {
        printf("  %-36s %8.1f us %6.1f GFLOP/s", names[q], best[q] * 1e6, flop / best[q] * 1e-9);
        if (check[q] >= 0) printf("   %.2fx OpenBLAS, max |diff| %.1g", best[q < 3 ? 0 : 3] / best[q], err[check[q]]);
        printf("\n");
    }
    dlclose(lib);
    return 0;
}
