#include "bf16_gemm.h"

#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

int fpsim_bf16_gemm_available(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512bf16");
}

// The bfloat16 pair word of (even, odd): the high halves of their float32 bit patterns, even in the low half.
static inline uint32_t pair(uint32_t even, uint32_t odd) { return (odd & 0xFFFF0000u) | (even >> 16); }

static inline uint32_t bits(const float *p) {
  uint32_t u;
  __builtin_memcpy(&u, p, 4);
  return u;
}

TARGET void fpsim_bf16_pack_pairs(const float *src, ptrdiff_t ld, int k_contiguous, ptrdiff_t K, ptrdiff_t x0,
                                  ptrdiff_t x1, uint32_t *dst, ptrdiff_t ldd) {
  ptrdiff_t P = (K + 1) / 2;
  if (k_contiguous) {
    // Each column x is a row of src (a weight's K values): scalar, for the small operands that take it.
    for (ptrdiff_t x = x0; x < x1; x++) {
      const float *s = src + x * ld;
      for (ptrdiff_t p = 0; p < P; p++) {
        uint32_t odd = 2 * p + 1 < K ? bits(s + 2 * p + 1) : 0;
        dst[p * ldd + x] = pair(bits(s + 2 * p), odd);
      }
    }
    return;
  }
  // Rows k = 2p and 2p + 1 of src are contiguous in x: 16 words from one 512-bit load of each.
  const __m512i high = _mm512_set1_epi32((int)0xFFFF0000u);
  for (ptrdiff_t p = 0; p < P; p++) {
    const float *r0 = src + 2 * p * ld, *r1 = r0 + ld;
    int hasOdd = 2 * p + 1 < K;
    uint32_t *d = dst + p * ldd;
    ptrdiff_t x = x0;
    for (; x + 16 <= x1; x += 16) {
      __m512i e = _mm512_loadu_si512(r0 + x);
      __m512i o = hasOdd ? _mm512_loadu_si512(r1 + x) : _mm512_setzero_si512();
      _mm512_storeu_si512(d + x, _mm512_or_si512(_mm512_and_si512(o, high), _mm512_srli_epi32(e, 16)));
    }
    for (; x < x1; x++) d[x] = pair(bits(r0 + x), hasOdd ? bits(r1 + x) : 0);
  }
}

TARGET void fpsim_bf16_pack_rows(const float *src, ptrdiff_t ld, ptrdiff_t K, ptrdiff_t r0, ptrdiff_t r1,
                                 uint32_t *dst, ptrdiff_t ldd) {
  ptrdiff_t P = (K + 1) / 2;
  // The high 16-bit half of each of 32 floats, in order: halves 1, 3, ..., 63 of two 512-bit loads.
  __m512i odd = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33, 31, 29, 27, 25, 23,
                                 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  for (ptrdiff_t r = r0; r < r1; r++) {
    const float *s = src + r * ld;
    uint32_t *d = dst + r * ldd;
    ptrdiff_t p = 0;
    for (; 2 * p + 32 <= K; p += 16) {
      __m512i lo = _mm512_loadu_si512(s + 2 * p), hi = _mm512_loadu_si512(s + 2 * p + 16);
      _mm512_storeu_si512(d + p, _mm512_permutex2var_epi16(lo, odd, hi));
    }
    for (; p < P; p++) d[p] = pair(bits(s + 2 * p), 2 * p + 1 < K ? bits(s + 2 * p + 1) : 0);
  }
}

// One tile: rows i ..< i + R (R <= 8) by 16 * V columns (V = 1 or 2) at column j of C. The loop bounds
// are constants where the tile is whole, so the 16 accumulators live in registers.
#define TILE(NAME, R, V)                                                                                            \
  TARGET static inline void NAME(const uint32_t *a, ptrdiff_t ap, ptrdiff_t ai, const uint32_t *b, ptrdiff_t ldb, \
                                 ptrdiff_t P, float *c, ptrdiff_t ldc, __mmask16 last, __m512 alpha,           \
                                 int accumulate) {                                                               \
    __m512 acc[R][V];                                                                                               \
    for (int r = 0; r < R; r++)                                                                                     \
      for (int v = 0; v < V; v++) acc[r][v] = _mm512_setzero_ps();                                                  \
    for (ptrdiff_t p = 0; p < P; p++) {                                                                             \
      __m512bh bv[V];                                                                                               \
      for (int v = 0; v < V; v++) bv[v] = (__m512bh)_mm512_loadu_si512(b + p * ldb + 16 * v);                      \
      for (int r = 0; r < R; r++) {                                                                                 \
        __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[p * ap + r * ai]);                                         \
        for (int v = 0; v < V; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);                            \
      }                                                                                                             \
    }                                                                                                               \
    for (int r = 0; r < R; r++)                                                                                     \
      for (int v = 0; v < V; v++) {                                                                                 \
        __mmask16 m = v == V - 1 ? last : 0xFFFF;                                                                   \
        float *o = c + r * ldc + 16 * v;                                                                            \
        __m512 x = _mm512_mul_ps(alpha, acc[r][v]);                                                                 \
        if (accumulate) x = _mm512_add_ps(_mm512_maskz_loadu_ps(m, o), x);                                          \
        _mm512_mask_storeu_ps(o, m, x);                                                                             \
      }                                                                                                             \
  }

TILE(tile8x2, 8, 2)
TILE(tile8x1, 8, 1)
TILE(tile1x2, 1, 2)
TILE(tile1x1, 1, 1)

TARGET void fpsim_bf16_gemm_rows(const uint32_t *a, ptrdiff_t a_pstride, ptrdiff_t a_istride, const uint32_t *b,
                                 ptrdiff_t ldb, ptrdiff_t P, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t N, float *C,
                                 ptrdiff_t ldc, float alpha, int accumulate) {
  __m512 scale = _mm512_set1_ps(alpha);
  // Column panels of 32 outer, rows inner: a panel of B (P x 32 words, 128 KiB at K = 2048) stays in L2
  // while every row block of this range passes over it.
  for (ptrdiff_t j = 0; j < N; j += 32) {
    ptrdiff_t w = N - j < 32 ? N - j : 32;
    int wide = w > 16;
    // The columns of the panel's last 16-wide vector that exist (all 16 but at the right edge of C).
    __mmask16 last = (__mmask16)((1u << (wide ? w - 16 : w)) - 1);
    const uint32_t *bj = b + j;
    ptrdiff_t i = m0;
    for (; i + 8 <= m1; i += 8) {
      const uint32_t *ai = a + i * a_istride;
      float *c = C + i * ldc + j;
      if (wide) tile8x2(ai, a_pstride, a_istride, bj, ldb, P, c, ldc, last, scale, accumulate);
      else tile8x1(ai, a_pstride, a_istride, bj, ldb, P, c, ldc, last, scale, accumulate);
    }
    for (; i < m1; i++) {
      const uint32_t *ai = a + i * a_istride;
      float *c = C + i * ldc + j;
      if (wide) tile1x2(ai, a_pstride, a_istride, bj, ldb, P, c, ldc, last, scale, accumulate);
      else tile1x1(ai, a_pstride, a_istride, bj, ldb, P, c, ldc, last, scale, accumulate);
    }
  }
}
