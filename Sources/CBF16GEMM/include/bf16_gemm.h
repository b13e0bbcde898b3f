// The bfloat16 GEMM of fpsim's explicit `--gemm bf16` mode: float32 operands whose values are exactly
// bfloat16 (8 significant bits, as every operand a recipe has rounded to a format of at most 7 mantissa
// bits), multiplied with AVX512-BF16's VDPBF16PS, accumulating in float32.
//
// Why C: the kernel is a run of VDPBF16PS instructions with broadcast memory operands, which Swift cannot
// spell. This file is compiled without -target-cpu (like CExponentCounts); its AVX-512 functions carry a
// target attribute and run only after `fpsim_bf16_gemm_available` said yes.
//
// Arithmetic, per output element (the hardware's, and the Swift reference `BF16GEMM.reference`'s):
//   words: the K values of a row of op(A) (and a column of op(B)) as bfloat16 pairs (k = 2p, 2p + 1),
//          each float32 cut to its high 16 bits (exact for bfloat16 values); an odd K gets a zero pair half.
//   acc = +0; for p in 0 ..< ceil(K/2):  acc = fma(a[2p+1], b[2p+1], acc);  acc = fma(a[2p], b[2p], acc)
//   each a fused multiply-add: the exact product (never rounded or flushed on its own) added to acc and
//   rounded once to nearest even; subnormal inputs read as zero and subnormal sums flushed to zero
//   (VDPBF16PS ignores MXCSR: DAZ and FTZ). Intel's manual: "round to nearest even is used when doing
//   each accumulation of the FMA"; checked on an Intel Xeon against an FMA chain with DAZ and FTZ,
//   3.2 million outputs per exponent range, including subnormal, overflowing, Inf and NaN inputs.
//   C = alpha acc (beta 0) or C + alpha acc (beta 1), alpha acc rounded to nearest even (not flushed;
//   alpha = 1 leaves acc as it is). alpha carries the float32 tensor scales that NVFP4 and `tensor-scale`
//   operands leave out of their values in this mode.
// The order of the sums is fixed by the data's K order alone, so results do not depend on threads.
#ifndef FPSIM_BF16_GEMM_H
#define FPSIM_BF16_GEMM_H

#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU and OS run AVX512-F, AVX512-BW and AVX512-BF16 code, else 0.
int fpsim_bf16_gemm_available(void);

/// Pair-major words of a K x X matrix view: dst[p * ldd + x] holds (k = 2p, 2p + 1) of column x, for
/// columns x0 ..< x1 and p < ceil(K/2). Element (k, x) is src[k * ld + x] (`k_contiguous` 0) or
/// src[x * ld + k] (`k_contiguous` 1).
void fpsim_bf16_pack_pairs(const float *src, ptrdiff_t ld, int k_contiguous, ptrdiff_t K, ptrdiff_t x0,
                           ptrdiff_t x1, uint32_t *dst, ptrdiff_t ldd);

/// Row-major words of an R x K matrix with K contiguous (src[r * ld + k]): dst[r * ldd + p] holds
/// (k = 2p, 2p + 1) of row r, for rows r0 ..< r1 and p < ceil(K/2).
void fpsim_bf16_pack_rows(const float *src, ptrdiff_t ld, ptrdiff_t K, ptrdiff_t r0, ptrdiff_t r1, uint32_t *dst,
                          ptrdiff_t ldd);

/// Rows m0 ..< m1 of C (M x N, leading dimension ldc) from packed words: row i's pair p of op(A) at
/// a[p * a_pstride + i * a_istride], column j's pair p of op(B) at b[p * ldb + j] (ldb >= N rounded up to a
/// multiple of 32: the last panel reads, and ignores, words up to there), P = ceil(K/2) pairs. C = alpha acc when `accumulate` is 0, C + alpha acc otherwise.
void fpsim_bf16_gemm_rows(const uint32_t *a, ptrdiff_t a_pstride, ptrdiff_t a_istride, const uint32_t *b,
                          ptrdiff_t ldb, ptrdiff_t P, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t N, float *C,
                          ptrdiff_t ldc, float alpha, int accumulate);

// The FMA path: the same arithmetic with float32 fused multiply-adds, for CPUs where VDPBF16PS runs at
// half the FMA rate or less (the Intel Xeons of these machines: 0.48x the FMA arithmetic). VDPBF16PS is
// itself a chain of FMAs (each product exact and unrounded, each sum rounded once) with DAZ and FTZ, so
// MXCSR's DAZ and FTZ on float32 FMAs give its bits: one FMA chain per output from +0, over the pairs in
// order, the odd half of each first (an odd K's zero half too: +0 + a product of -0 is +0, where the
// chain without it would keep -0). alpha and C are applied with MXCSR as it was. The kernel reads the
// operands where they are when a scan finds them bfloat16 already (as the mode's operands are), else a
// copy cut to bfloat16. The one difference is which NaN an output carries when inputs hold NaNs (the
// compiler may swap an FMA's multiplicands), so operands with Inf or NaN run on VDPBF16PS.

/// Over rows x cols values (row r at src + r * ld): bit 0 set when a value is not bfloat16 (nonzero low
/// 16 bits), bit 1 when one is Inf or NaN.
int fpsim_bf16_fma_scan(const float *src, ptrdiff_t ld, ptrdiff_t rows, ptrdiff_t cols);

/// dst (row r at dst + r * ldd) = src cut to bfloat16, rows x cols values; dst may be src.
void fpsim_bf16_fma_cut(const float *src, ptrdiff_t ld, ptrdiff_t rows, ptrdiff_t cols, float *dst, ptrdiff_t ldd);

/// Rows m0 ..< m1 of C (M x N) = alpha acc (+ C when `accumulate`) with op(A)(i, k) at a[i * ars + k *
/// aks] and B(k, j) at b[k * ldb + j], values bfloat16, none Inf or NaN. `partial` (M x N floats, row i
/// at partial + i * N; only rows m0 ..< m1 are used) holds the chains between blocks of k when K is more
/// than 448.
void fpsim_bf16_fma_rows(const float *a, ptrdiff_t ars, ptrdiff_t aks, const float *b, ptrdiff_t ldb, ptrdiff_t K,
                         ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t N, float *C, ptrdiff_t ldc, float alpha, int accumulate,
                         float *partial);

/// 1 on Intel CPUs, where the FMA path is taken to be the faster one (VDPBF16PS ran at half the FMA rate
/// on the Xeons measured; other Intel generations were not); both give the same bits.
int fpsim_bf16_fma_preferred(void);

#endif
