/* How fast can per-sample SGD on 784-128-10 float32 be on this core? The first layer's memory bound.

   Every sample of on-line gradient descent updates every weight of W_0 (784 x 128 float32,
   401 KB: it stays in the core's L2 cache, not in L1), so per sample the weights are read and
   written once at least. This program times, one thread, on dense rows of W_0:

     pass    w_ij -= c_i d_j over all of W_0: one read and one write of every weight, the least
             a sample's first layer can cost;
     fused   the same update, four rows at a time, each new row then summed into the next
             sample's pre-activations, a_j += y_i w_ij (the loop of deltaprop's per-sample
             kernels for W_0, _rows.h's DELTAPROP_ROWS4): twice the arithmetic of "pass";
     read    the forward sum alone, a_j += y_i w_ij (W_0 read once, nothing written);

   each the best of 7 runs of 2000 passes, in microseconds, with the arithmetic rate and the
   samples/s it would allow if nothing else cost anything; then the same two passes taken once
   per window of K = 4 and 8 samples, per sample: the forward sums of the K samples from W_0 as
   it was when the window began (each block of four rows read once for the K samples), and the
   K samples' updates in one pass, w_ij -= sum_s c_si d_sj (W_0 read and written once per
   window). That is what on-line gradient descent would cost if each sample's pre-activations
   took the window's earlier updates as a correction, a = x W_stale - sum_s (c_s . x) d_s (the
   same sums in exact arithmetic, another rounding), which this program does not compute: it
   times the passes over W_0 only. Last, the core's FMA peak (independent fused multiply-adds on
   8-float vectors, nothing loaded) and what a whole sample's arithmetic (forward, δ-recursion
   and update of every layer: 409 kFLOP) costs at that peak. It measures the machine, not
   deltaprop.

     gcc -O3 -mavx2 -mfma tools/per_sample_bound.c -o /tmp/per_sample_bound
     taskset -c 1 /tmp/per_sample_bound
     gcc -O3 -march=native ...        # the same with the CPU's widest vectors (AVX-512 here)
*/
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <immintrin.h>

#define NI 784
#define NO 128

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void pass4(long n, const float* restrict d, float* restrict r0, float* restrict r1,
                  float* restrict r2, float* restrict r3, float c0, float c1, float c2, float c3) {
    for (long j = 0; j < n; j++) {
        float dj = d[j];
        r0[j] -= c0 * dj; r1[j] -= c1 * dj; r2[j] -= c2 * dj; r3[j] -= c3 * dj;
    }
}

static void fused4(long n, const float* restrict d, float* restrict r0, float* restrict r1,
                   float* restrict r2, float* restrict r3, float c0, float c1, float c2, float c3,
                   float y0, float y1, float y2, float y3, float* restrict a) {
    for (long j = 0; j < n; j++) {
        float dj = d[j];
        float w0 = r0[j] - c0 * dj, w1 = r1[j] - c1 * dj, w2 = r2[j] - c2 * dj, w3 = r3[j] - c3 * dj;
        r0[j] = w0; r1[j] = w1; r2[j] = w2; r3[j] = w3;
        a[j] = (((a[j] + y0 * w0) + y1 * w1) + y2 * w2) + y3 * w3;
    }
}

static void read4(long n, const float* restrict r0, const float* restrict r1, const float* restrict r2,
                  const float* restrict r3, float y0, float y1, float y2, float y3, float* restrict a) {
    for (long j = 0; j < n; j++)
        a[j] = (((a[j] + y0 * r0[j]) + y1 * r1[j]) + y2 * r2[j]) + y3 * r3[j];
}

/* The forward sums of K samples from one W_0, A (K x NO) = X (K x NI) W_0, each block of four
   rows read once for the K samples; and the K samples' updates in one pass over W_0,
   w_ij -= sum_s c_si d_sj. */
#define WINDOW(K) \
static void window_read##K(const float* restrict x, const float* restrict w, float* restrict A) { \
    for (int i = 0; i < NI; i += 4) { \
        const float* r0 = w + (long)i * NO; \
        for (int s = 0; s < K; s++) { \
            const float* xs = x + s * NI + i; \
            float* restrict a = A + s * NO; \
            for (int j = 0; j < NO; j++) \
                a[j] = (((a[j] + xs[0] * r0[j]) + xs[1] * r0[NO + j]) + xs[2] * r0[2 * NO + j]) \
                       + xs[3] * r0[3 * NO + j]; \
        } \
    } \
} \
static void window_update##K(const float* restrict c, const float* restrict D, float* restrict w) { \
    for (int i = 0; i < NI; i += 4) { \
        float* restrict r0 = w + (long)i * NO; \
        float* restrict r1 = r0 + NO; \
        float* restrict r2 = r1 + NO; \
        float* restrict r3 = r2 + NO; \
        for (int j = 0; j < NO; j++) { \
            float w0 = r0[j], w1 = r1[j], w2 = r2[j], w3 = r3[j]; \
            for (int s = 0; s < K; s++) { \
                const float* cs = c + s * NI + i; \
                float ds = D[s * NO + j]; \
                w0 -= cs[0] * ds; w1 -= cs[1] * ds; w2 -= cs[2] * ds; w3 -= cs[3] * ds; \
            } \
            r0[j] = w0; r1[j] = w1; r2[j] = w2; r3[j] = w3; \
        } \
    } \
}
WINDOW(4)
WINDOW(8)

/* 12 independent chains of 8-float fused multiply-adds: the FMA units' throughput. */
static float fma_peak(long n) {
    __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define DECLARE(i) __m256 acc##i = _mm256_set1_ps((float)(i));
#define STEP(i) acc##i = _mm256_fmadd_ps(acc##i, m, c);
#define SUM(i) s = _mm256_add_ps(s, acc##i);
    CHAINS(DECLARE)
    for (long r = 0; r < n; r++) {
        CHAINS(STEP)
    }
    __m256 s = _mm256_setzero_ps();
    CHAINS(SUM)
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}

int main(void) {
    static const char* names[] = {"pass ", "fused", "read "};
    static const double flop[] = {2.0 * NI * NO, 4.0 * NI * NO, 2.0 * NI * NO};
    float* w = aligned_alloc(64, sizeof(float) * NI * NO);
    float d[NO], a[NO], x[NI];
    int reps = 2000;
    for (long i = 0; i < (long)NI * NO; i++) w[i] = 0.001f * (float)(i % 97);
    for (int j = 0; j < NO; j++) { d[j] = 1e-6f * (float)j; a[j] = 0; }
    for (int i = 0; i < NI; i++) x[i] = 0.5f + 1e-4f * (float)i;
    printf("W_0 %d x %d float32 (%.0f KB), best of 7 runs of %d passes\n", NI, NO, NI * NO * 4 / 1e3, reps);
    for (int mode = 0; mode < 3; mode++) {
        double best = 1e9;
        for (int run = 0; run < 7; run++) {
            double t0 = now();
            for (int r = 0; r < reps; r++) {
                for (int i = 0; i < NI; i += 4) {
                    float* r0 = w + (long)i * NO;
                    float c0 = 1e-3f * x[i], c1 = 1e-3f * x[i + 1], c2 = 1e-3f * x[i + 2], c3 = 1e-3f * x[i + 3];
                    if (mode == 0)
                        pass4(NO, d, r0, r0 + NO, r0 + 2 * NO, r0 + 3 * NO, c0, c1, c2, c3);
                    else if (mode == 1)
                        fused4(NO, d, r0, r0 + NO, r0 + 2 * NO, r0 + 3 * NO, c0, c1, c2, c3,
                               x[i], x[i + 1], x[i + 2], x[i + 3], a);
                    else
                        read4(NO, r0, r0 + NO, r0 + 2 * NO, r0 + 3 * NO, x[i], x[i + 1], x[i + 2], x[i + 3], a);
                }
                a[r % NO] *= 0.5f;  /* the next pass depends on this one */
            }
            double t = (now() - t0) / reps;
            if (t < best) best = t;
        }
        printf("%s %6.2f us  %6.1f GFLOP/s  at most %8.0f samples/s\n", names[mode], best * 1e6,
               flop[mode] / best * 1e-9, 1.0 / best);
    }
    float* xs = aligned_alloc(64, sizeof(float) * 8 * NI);
    float* cs = aligned_alloc(64, sizeof(float) * 8 * NI);
    float* A = aligned_alloc(64, sizeof(float) * 8 * NO);
    float* D = aligned_alloc(64, sizeof(float) * 8 * NO);
    for (long i = 0; i < 8L * NI; i++) { xs[i] = 0.5f + 1e-4f * (float)(i % 101); cs[i] = 1e-3f * xs[i]; }
    for (long i = 0; i < 8L * NO; i++) { A[i] = 0; D[i] = 1e-6f * (float)(i % 89); }
    for (int K = 4; K <= 8; K += 4) {
        double br = 1e9, bu = 1e9;
        int windows = 4000 / K;
        for (int run = 0; run < 7; run++) {
            double t0 = now();
            for (int r = 0; r < windows; r++) {
                if (K == 4) window_read4(xs, w, A); else window_read8(xs, w, A);
                A[r % NO] *= 0.5f;
            }
            double t1 = now();
            for (int r = 0; r < windows; r++) {
                if (K == 4) window_update4(cs, D, w); else window_update8(cs, D, w);
                D[r % NO] *= 0.999f;
            }
            double t2 = now();
            double tr = (t1 - t0) / (windows * K), tu = (t2 - t1) / (windows * K);
            if (tr < br) br = tr;
            if (tu < bu) bu = tu;
        }
        printf("window of %d: read %5.2f us (%5.1f GFLOP/s) + update %5.2f us (%5.1f GFLOP/s) = %5.2f us a sample\n",
               K, br * 1e6, 2.0 * NI * NO / br * 1e-9, bu * 1e6, 2.0 * NI * NO / bu * 1e-9, (br + bu) * 1e6);
    }
    long n = 2000000;
    double best = 1e9;
    float keep = A[5] + D[7];
    for (int run = 0; run < 7; run++) {
        double t0 = now();
        keep += fma_peak(n);
        double t = now() - t0;
        if (t < best) best = t;
    }
    double peak = 2.0 * 12 * 8 * n / best * 1e-9;
    double sample = 2.0 * (3.0 * (NI * NO + NO * 10) - NI * NO);
    printf("FMA peak %.1f GFLOP/s; a 784-%d-10 sample's %.0f kFLOP at the peak %.2f us (%.0f samples/s)\n",
           peak, NO, sample / 1e3, sample / peak * 1e-3, peak * 1e9 / sample);
    return a[3] == 12345.0f && keep == 0;  /* keep the results alive */
}
