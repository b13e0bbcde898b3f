// fpsim's own float32 GEMM kernel (Sources/CSGEMM) against single-threaded OpenBLAS on gpt-tiny's
// linear-layer products, one thread: the bits of C (they must be equal) and the time of each, best of
// warm repeats and mean of cold ones (a 64 MiB buffer read between calls pushes the operands out of
// the caches, as in a training step, where each product's operands were written a kernel or more
// earlier). Built and run by own_sgemm.sh.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "sgemm_kernel.h"

extern void openblas_set_num_threads(int);
extern char *openblas_get_corename(void);

static float uniform(unsigned *s) {
  *s = *s * 1664525u + 1013904223u;
  return ((int)(*s >> 8) - (1 << 23)) / (float)(1 << 23);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

// dst (cols x rows) = src (rows x cols, leading dimension lds)^T, in 16 x 16 blocks.
static void transpose(const float *src, long lds, long rows, long cols, float *dst) {
  for (long r0 = 0; r0 < rows; r0 += 16)
    for (long c0 = 0; c0 < cols; c0 += 16)
      for (long c = c0; c < c0 + 16 && c < cols; c++)
        for (long r = r0; r < r0 + 16 && r < rows; r++) dst[c * rows + r] = src[r * lds + c];
}

static volatile char *junk;
static void evict(void) {
  for (long i = 0; i < (64L << 20); i += 64) junk[i]++;
}

int main(void) {
  openblas_set_num_threads(1);
  const char *core = openblas_get_corename();
  long q = !strcmp(core, "Cooperlake") ? 320 : !strcmp(core, "SkylakeX") ? 448 : 0;
  if (!q || !fpsim_sgemm_available()) {
    printf("OpenBLAS kernel %s: fpsim's kernel does not replace it here\n", core);
    // The fpsim binary itself re-executes with OPENBLAS_CORETYPE=SkylakeX where OpenBLAS picks a kernel
    // without AVX-512 on an AVX-512 CPU (the Xeons of these machines), and then uses its own kernel.
    if (fpsim_sgemm_available() && !getenv("OPENBLAS_CORETYPE"))
      printf("training on this CPU runs with OPENBLAS_CORETYPE=SkylakeX: rerun with that set\n");
    return 2;
  }
  junk = malloc(64L << 20);
  memset((char *)junk, 1, 64L << 20);
  // M, N, K, A transposed, B transposed: per layer (c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj) the
  // forward product X W^T, the data gradient dY W and the weight gradient dY^T X (2048 tokens).
  const long shapes[][5] = {
      {2048, 384, 128, 0, 1}, {2048, 128, 128, 0, 1}, {2048, 512, 128, 0, 1}, {2048, 128, 512, 0, 1},
      {2048, 128, 384, 0, 0}, {2048, 128, 128, 0, 0}, {2048, 128, 512, 0, 0}, {2048, 512, 128, 0, 0},
      {384, 128, 2048, 1, 0}, {128, 128, 2048, 1, 0}, {512, 128, 2048, 1, 0}, {128, 512, 2048, 1, 0},
  };
  printf("OpenBLAS kernel %s (GEMM_Q %ld); times in ms, one thread\n", core, q);
  printf("%-22s %9s %9s %6s %9s %9s %6s %s\n", "M x N x K (A^T, B^T)", "warm BLAS", "warm own", "ratio",
         "cold BLAS", "cold own", "ratio", "bits");
  unsigned seed = 1;
  double total[4] = {0};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    long M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
    int ta = (int)shapes[s][3], tb = (int)shapes[s][4];
    float *A = malloc(4 * M * K), *B = malloc(4 * K * N), *C = malloc(4 * M * N), *D = malloc(4 * M * N),
          *Bt = malloc(4 * K * N);
    for (long i = 0; i < M * K; i++) A[i] = uniform(&seed);
    for (long i = 0; i < K * N; i++) B[i] = uniform(&seed);
    long lda = ta ? M : K, ldb = tb ? K : N;
    double best[2] = {1e9, 1e9}, cold[2] = {0, 0};
    const int repeats = 23, skip = 3;
    for (int r = 0; r < repeats; r++) {
      for (int which = 0; which < 2; which++) {
        int isCold = r % 2;
        if (isCold) evict();
        double t0 = now();
        if (which == 0) {
          cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1, A,
                      lda, B, ldb, 0, C, N);
        } else {
          // As GEMM.sgemm does: a transposed B (a weight) is transposed into K rows of N first (there
          // with the engine's vectorized transpose; a plain loop here).
          const float *b = B;
          if (tb) {
            transpose(B, ldb, N, K, Bt);
            b = Bt;
          }
          fpsim_sgemm_rows(ta, 0, M, N, K, A, lda, b, tb ? N : ldb, D, N, 0, NULL, q, 16);
        }
        double t = now() - t0;
        if (r < skip) continue;
        if (isCold) cold[which] += t / ((repeats - skip) / 2);
        else if (t < best[which]) best[which] = t;
      }
    }
    long differing = 0;
    for (long i = 0; i < M * N; i++) differing += memcmp(C + i, D + i, 4) != 0;
    char name[64];
    snprintf(name, sizeof name, "%ldx%ldx%ld%s%s", M, N, K, ta ? " A^T" : "", tb ? " B^T" : "");
    printf("%-22s %9.3f %9.3f %6.3f %9.3f %9.3f %6.3f %s\n", name, 1e3 * best[0], 1e3 * best[1], best[1] / best[0],
           1e3 * cold[0], 1e3 * cold[1], cold[1] / cold[0], differing ? "DIFFER" : "same");
    total[0] += best[0], total[1] += best[1], total[2] += cold[0], total[3] += cold[1];
    if (differing) return 1;
    free(A), free(B), free(C), free(D), free(Bt);
  }
  printf("%-22s %9.3f %9.3f %6.3f %9.3f %9.3f %6.3f\n", "all (one layer)", 1e3 * total[0], 1e3 * total[1],
         total[1] / total[0], 1e3 * total[2], 1e3 * total[3], total[3] / total[2]);
  return 0;
}
