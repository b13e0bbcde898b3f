// The bf16 GEMM mode's two kernels (Sources/CBF16GEMM) against fpsim's float32 kernel (Sources/CSGEMM)
// on gpt-tiny's linear-layer products, one thread, warm operands: the time of each, packing apart, and
// whether the two bf16 kernels give the same bits (they must). Built and run by bf16_kernels.sh.
//
// Operands are bfloat16 values over 16 binades. sgemm and the FMA kernel read op(B) as K rows of N (a
// weight's transpose, which training makes before the call, is made here outside the timing); the FMA
// kernel reads both operands in place after a scan that finds them bfloat16, and VDPBF16PS's kernel
// packs them as bfloat16 pairs, as in training; the scan and the packing are timed ("prep").
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bf16_gemm.h"
#include "sgemm_kernel.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static unsigned state = 1;
// A bfloat16 value 1.m * 2^e, e in [-8, 8), random sign and 7-bit m.
static float value(void) {
  state = state * 1664525u + 1013904223u;
  unsigned bits = (state >> 31) << 31 | (127 - 8 + (state >> 8) % 16) << 23 | ((state >> 12) & 0x7F) << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

int main(void) {
  if (!fpsim_sgemm_available() || !fpsim_bf16_gemm_available()) {
    printf("this CPU lacks AVX512-BF16: the bf16 GEMM mode does not run here\n");
    return 2;
  }
  // M, N, K, A transposed, B transposed: per layer (c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj) the
  // forward product X W^T, the data gradient dY W and the weight gradient dY^T X (2048 tokens).
  const long shapes[][5] = {
      {2048, 384, 128, 0, 1}, {2048, 128, 128, 0, 1}, {2048, 512, 128, 0, 1}, {2048, 128, 512, 0, 1},
      {2048, 128, 384, 0, 0}, {2048, 128, 128, 0, 0}, {2048, 128, 512, 0, 0}, {2048, 512, 128, 0, 0},
      {384, 128, 2048, 1, 0}, {128, 128, 2048, 1, 0}, {512, 128, 2048, 1, 0}, {128, 512, 2048, 1, 0},
  };
  printf("fma kernel preferred on this CPU: %s; times in ms, best of 15, one thread\n",
         fpsim_bf16_fma_preferred() ? "yes" : "no");
  printf("%-22s %7s | %7s %7s %7s | %7s %7s %7s | %s\n", "M x N x K (A^T, B^T)", "sgemm", "fma", "prep",
         "total", "dpbf16", "prep", "total", "bits");
  double sum[5] = {0};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    long M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
    int ta = (int)shapes[s][3], tb = (int)shapes[s][4];
    long lda = ta ? M : K, ldb = tb ? K : N, P = (K + 1) / 2;
    long ldw = (N + 31) / 32 * 32;
    float *A = malloc(4 * M * K), *B = malloc(4 * K * N), *Bt = malloc(4 * K * N), *C = malloc(4 * M * N),
          *D = malloc(4 * M * N), *E = malloc(4 * M * N);
    float *partial = malloc(4 * M * N);
    uint32_t *wa = malloc(4 * P * M), *wb = malloc(4 * P * ldw);
    for (long i = 0; i < M * K; i++) A[i] = value();
    for (long i = 0; i < K * N; i++) B[i] = value();
    // op(B) as K rows of N for sgemm.
    for (long k = 0; k < K; k++)
      for (long j = 0; j < N; j++) Bt[k * N + j] = tb ? B[j * ldb + k] : B[k * ldb + j];
    double best[5] = {1e9, 1e9, 1e9, 1e9, 1e9};
    for (int r = 0; r < 15; r++) {
      double t0 = now();
      fpsim_sgemm_rows(ta, 0, M, N, K, A, lda, Bt, N, C, N, 0, NULL, 448, 16);
      double t1 = now();
      // The scans that let the kernel read the operands in place (bfloat16 values, no Inf or NaN).
      if (fpsim_bf16_fma_scan(A, lda, ta ? K : M, ta ? M : K) | fpsim_bf16_fma_scan(Bt, N, K, N)) return 3;
      double t2 = now();
      fpsim_bf16_fma_rows(A, ta ? 1 : lda, ta ? lda : 1, Bt, N, K, 0, M, N, D, N, 1, 0, partial);
      double t3 = now();
      if (ta) fpsim_bf16_pack_pairs(A, lda, 0, K, 0, M, wa, M);
      else fpsim_bf16_pack_rows(A, lda, K, 0, M, wa, P);
      fpsim_bf16_pack_pairs(B, ldb, tb, K, 0, N, wb, ldw);
      double t4 = now();
      fpsim_bf16_gemm_rows(wa, ta ? M : 1, ta ? 1 : P, wb, ldw, P, 0, M, N, E, N, 1, 0);
      double t5 = now();
      double t[5] = {t1 - t0, t3 - t2, t2 - t1, t5 - t4, t4 - t3};
      for (int i = 0; i < 5; i++)
        if (t[i] < best[i]) best[i] = t[i];
    }
    long differing = 0;
    for (long i = 0; i < M * N; i++) differing += memcmp(D + i, E + i, 4) != 0;
    char name[64];
    snprintf(name, sizeof name, "%ldx%ldx%ld%s%s", M, N, K, ta ? " A^T" : "", tb ? " B^T" : "");
    printf("%-22s %7.3f | %7.3f %7.3f %7.3f | %7.3f %7.3f %7.3f | %s\n", name, 1e3 * best[0], 1e3 * best[1],
           1e3 * best[2], 1e3 * (best[1] + best[2]), 1e3 * best[3], 1e3 * best[4], 1e3 * (best[3] + best[4]),
           differing ? "DIFFER" : "same");
    for (int i = 0; i < 5; i++) sum[i] += best[i];
    free(A), free(B), free(Bt), free(C), free(D), free(E), free(partial), free(wa), free(wb);
    if (differing) return 1;
  }
  printf("%-22s %7.3f | %7.3f %7.3f %7.3f | %7.3f %7.3f %7.3f\n", "all (one layer)", 1e3 * sum[0], 1e3 * sum[1],
         1e3 * sum[2], 1e3 * (sum[1] + sum[2]), 1e3 * sum[3], 1e3 * sum[4], 1e3 * (sum[3] + sum[4]));
  return 0;
}
