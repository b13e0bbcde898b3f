// fpsim's own float32 GEMM kernel for AVX-512 machines, with the sums of OpenBLAS's AVX-512 sgemm
// (kernels SkylakeX and Cooperlake of OpenBLAS 0.3.21) bit for bit, so that it can replace those calls
// without changing a result. It reads A and B where they are (no packing, no zeroing pass for beta 0).
//
// Why C: a register tile of 14 rows by 32 columns (28 accumulators, 512-bit) with broadcast memory
// operands, which Swift's SIMD types do not keep in registers. Like CBF16GEMM, this file is compiled
// without -target-cpu; its AVX-512 functions carry a target attribute and run only after
// `fpsim_sgemm_available` said yes.
//
// Arithmetic, per element of C (checked against OpenBLAS in Tests/FPEngineTests/OwnSGEMMTests.swift):
//   K is cut into blocks in order, as OpenBLAS's level-3 driver cuts it with its GEMM_Q (Q) and
//   GEMM_UNROLL_M (U): while k values remain, rest = K - k0; block = Q when rest >= 2Q, else
//   ceil(rest / 2 / U) * U when rest > Q (two near-halves), else rest.
//   Per block: acc = +0; for k in the block, in order: acc = fma(op(A)(i, k), B(k, j), acc).
//   C(i, j) = C(i, j) + acc after each block, where C starts as +0 when beta is 0 (OpenBLAS zeroes C
//   first: -0 sums come out +0) and as C when beta is 1. alpha is 1. With a bias, C(i, j) + bias(j)
//   after the last block (the same addition as a pass over C after the product).
#ifndef FPSIM_SGEMM_KERNEL_H
#define FPSIM_SGEMM_KERNEL_H

#include <stddef.h>

/// 1 when this CPU and OS run AVX512-F code, else 0.
int fpsim_sgemm_available(void);

/// Rows m0 ..< m1 of C(M,N) = op(A)(M,K) B(K,N) (+ C when `accumulate`) (+ bias(N) on every row when
/// `bias` is not NULL), row-major: op(A)(i, k) is a[i * lda + k], or a[k * lda + i] when `trans_a`;
/// B(k, j) is b[k * ldb + j]; C(i, j) is c[i * ldc + j]. q and u are the K blocking above (q >= u >= 1).
void fpsim_sgemm_rows(int trans_a, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t N, ptrdiff_t K, const float *a,
                      ptrdiff_t lda, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int accumulate,
                      const float *bias, ptrdiff_t q, ptrdiff_t u);

#endif
