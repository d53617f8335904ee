/* The two passes over W_0 of a window of per-sample SGD, as the Cython kernels take them.

   Plain per-sample sgd on dense inputs takes the first layer a window of six samples at a time
   (sgd_windows in kernels/_cython/sgd_windows.pxi): the window's forward sums are one
   register-tile product, A = b + X[idx] W_0 (deltaprop_indexed_xw of _indexed.h, six rows),
   and its updates one pass, W_0 -= sum_r (eta x_r) d_r^T (deltaprop_window_update of _rows.h).
   This program times the two functions themselves on 784 x N float32 (N = 128 unless given),
   X's rows in cache, per sample (a window's time / 6), best of 7 runs of 300 windows, with the
   mini-batch gradient product W_0 += c X[idx]^T D with beta = 1 (deltaprop_indexed_xtd) in
   place of the update for comparison. It measures the kernels' loops, not the whole kernel
   (the corrections, the upper layers and the loss are not run).

     gcc -O3 -fopenmp-simd -mavx2 -mfma -Ikernels/_cython tools/window_passes.c -lm -o /tmp/window_passes
     taskset -c 1 /tmp/window_passes [N]
*/
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef ptrdiff_t Py_ssize_t;
#include "_indexed.h"
#include "_rows.h"

#define NI 784
#define WIN 6
#define ROWS 60
#define WINDOWS 300

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* called through pointers, so that the compiler compiles them as the kernels' module does
   (not inlined into the timing loop) */
static void (*volatile forward)(Py_ssize_t, Py_ssize_t, Py_ssize_t, const float*, const Py_ssize_t*,
                                const float*, const float*, float*, float*, int,
                                deltaprop_prefetch*) = deltaprop_indexed_xwf;
static void (*volatile update)(Py_ssize_t, Py_ssize_t, float*, const float* const*, const float*,
                               const float*, float, int, float*) = deltaprop_window_updatef;
static void (*volatile gradient)(Py_ssize_t, Py_ssize_t, Py_ssize_t, const float*, const Py_ssize_t*,
                                 const float*, float*, float, float, float*, float*, float,
                                 int) = deltaprop_indexed_xtdf;

int main(int argc, char** argv) {
    int no = argc > 1 ? atoi(argv[1]) : 128;
    float* X = aligned_alloc(64, sizeof(float) * ROWS * NI);
    float* W = aligned_alloc(64, sizeof(float) * NI * no + 64);
    float* b = aligned_alloc(64, sizeof(float) * no + 64);
    float* A = aligned_alloc(64, sizeof(float) * WIN * no + 64);
    float* D = aligned_alloc(64, sizeof(float) * WIN * no + 64);
    float* c = aligned_alloc(64, sizeof(float) * WIN * NI);
    float* panel = aligned_alloc(64, DELTAPROP_PANEL_BYTES);
    Py_ssize_t idx[WINDOWS * WIN];
    const float* xs[WIN];
    const float etas[WIN] = {0.01f, 0.01f, 0.01f, 0.01f, 0.01f, 0.01f};
    srand(1);
    for (long i = 0; i < (long)ROWS * NI; i++) X[i] = (float)rand() / RAND_MAX;
    for (long i = 0; i < (long)NI * no; i++) W[i] = 0.01f * ((float)rand() / RAND_MAX - 0.5f);
    for (int i = 0; i < no; i++) b[i] = 0;
    for (int i = 0; i < WIN * no; i++) D[i] = 1e-4f * ((float)rand() / RAND_MAX - 0.5f);
    for (int i = 0; i < WINDOWS * WIN; i++) idx[i] = (i * 7) % ROWS;
    double best[3] = {1e30, 1e30, 1e30};
    for (int run = 0; run < 7; run++) {
        for (int pass = 0; pass < 3; pass++) {
            double t0 = now();
            for (int p = 0; p < WINDOWS; p++) {
                const Py_ssize_t* rows = idx + p * WIN;
                if (pass == 0) {
                    forward(WIN, NI, no, X, rows, W, b, A, panel, 0, NULL);
                } else if (pass == 1) {
                    for (int r = 0; r < WIN; r++) xs[r] = X + rows[r] * NI;
                    update(NI, no, W, xs, D, etas, 1.0f, WIN, c);
                } else {
                    gradient(WIN, NI, no, X, rows, D, W, -0.01f, 1.0f, panel, b, 1.0f, 0);
                }
            }
            double t = (now() - t0) / (WINDOWS * WIN);
            if (t < best[pass]) best[pass] = t;
        }
    }
    const char* names[3] = {"forward sums (indexed_xw, 6 rows)", "updates (window_update)",
                            "updates (indexed_xtd, beta = 1)"};
    double flop = 2.0 * NI * no;
    printf("784 x %d float32, window of %d, per sample:\n", no, WIN);
    for (int pass = 0; pass < 3; pass++)
        printf("  %-36s %6.2f us  %6.1f GFLOP/s\n", names[pass], best[pass] * 1e6, flop / best[pass] * 1e-9);
    printf("  forward + window_update              %6.2f us  (%.0fk samples/s if nothing else cost)\n",
           (best[0] + best[1]) * 1e6, 1e-3 / (best[0] + best[1]));
    return 0;
}
