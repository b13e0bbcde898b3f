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

// MARK: The FMA path (bf16_gemm.h)

#define FMA_TARGET __attribute__((target("avx512f")))
#define FMA_K_BLOCK 448
#define UNROLL _Pragma("clang loop unroll(full)")

int fpsim_bf16_fma_preferred(void) {
  __builtin_cpu_init();
  return __builtin_cpu_is("intel");
}

// The first min(n, 16) lanes of a 512-bit vector of floats.
static inline __mmask16 firstLanes(ptrdiff_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

FMA_TARGET int fpsim_bf16_fma_scan(const float *src, ptrdiff_t ld, ptrdiff_t rows, ptrdiff_t cols) {
  // Per lane: OR of the low 16 bits (nonzero: a value that is not bfloat16) and the largest exponent field.
  __m512i low = _mm512_setzero_si512(), top = _mm512_setzero_si512();
  const __m512i lowMask = _mm512_set1_epi32(0xFFFF), field = _mm512_set1_epi32(0x7F800000);
  for (ptrdiff_t r = 0; r < rows; r++) {
    const float *s = src + r * ld;
    for (ptrdiff_t c = 0; c < cols; c += 16) {
      const __mmask16 m = firstLanes(cols - c);
      __m512i x = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, s + c));
      low = _mm512_or_si512(low, _mm512_and_si512(x, lowMask));
      top = _mm512_max_epu32(top, _mm512_and_si512(x, field));
    }
  }
  return (_mm512_reduce_or_epi32(low) != 0 ? 1 : 0) | (_mm512_reduce_max_epu32(top) == 0x7F800000u ? 2 : 0);
}

FMA_TARGET void fpsim_bf16_fma_cut(const float *src, ptrdiff_t ld, ptrdiff_t rows, ptrdiff_t cols, float *dst,
                                   ptrdiff_t ldd) {
  const __m512i high = _mm512_set1_epi32((int)0xFFFF0000u);
  for (ptrdiff_t r = 0; r < rows; r++)
    for (ptrdiff_t c = 0; c < cols; c += 16) {
      const __mmask16 m = firstLanes(cols - c);
      __m512i x = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, src + r * ld + c));
      _mm512_mask_storeu_epi32(dst + r * ldd + c, m, _mm512_and_si512(x, high));
    }
}

// MXCSR with DAZ (bit 6) and FTZ (bit 15). The asm statements have a memory clobber and take the
// address of the tile's sums, so the compiler keeps every load of A, B and C and every use of the sums
// on its side of them: the chains run flushed, alpha and C do not.
#define DAZ_FTZ 0x8040u
static inline void setMXCSR(unsigned v, const void *sums) {
  __asm__ volatile("ldmxcsr %0" : : "m"(v), "r"(sums) : "memory");
}

// One tile: rows 0 ..< R of op(A) (row r at a + r * ars, k at + k * aks) by 16 * V columns of b, the
// last 16 masked by `last`, over k < K in pairs: R * V FMA chains with DAZ and FTZ, from +0 or, when
// `resume`, from the partial sums at p (row r at p + r * ldp) that an earlier block of k left there.
// Then, when `finish`, with MXCSR as it was, alpha * sum (+ C) into c; else the partial sums back to p.
// A chain paused in p and resumed is the same chain (float32 in, float32 out, nothing rounded between).
FMA_TARGET static inline __attribute__((always_inline)) void fmaTile(const int R, const int V, const float *a,
                                                                     ptrdiff_t ars, ptrdiff_t aks, const float *b,
                                                                     ptrdiff_t ldb, ptrdiff_t K, float *c,
                                                                     ptrdiff_t ldc, __mmask16 last, __m512 alpha,
                                                                     int accumulate, unsigned csr, float *p,
                                                                     ptrdiff_t ldp, int resume, int finish) {
  float sums[14][32] __attribute__((aligned(64)));
  __m512 acc[14][2];
  setMXCSR(csr | DAZ_FTZ, sums);
  UNROLL for (int r = 0; r < R; r++)
    UNROLL for (int v = 0; v < V; v++) {
      const __mmask16 m = v == V - 1 ? last : (__mmask16)0xFFFF;
      acc[r][v] = resume ? _mm512_maskz_loadu_ps(m, p + r * ldp + 16 * v) : _mm512_setzero_ps();
    }
  // One term k of every chain. op(A) stored by k (a weight gradient's dY^T): each k reads a new line of
  // it, a row of M values away, and the hardware prefetcher is late; ask for op(A) and B 16 k ahead, as
  // CSGEMM's kernel does.
#define FMA_TERM(k)                                                                                         \
  {                                                                                                         \
    const float *bk = b + (k) * ldb, *ak = a + (k) * aks;                                                   \
    if (ars == 1) {                                                                                         \
      _mm_prefetch((const char *)(ak + 16 * aks), _MM_HINT_T0);                                            \
      _mm_prefetch((const char *)(ak + 16 * aks + R - 1), _MM_HINT_T0);                                    \
      _mm_prefetch((const char *)(bk + 16 * ldb), _MM_HINT_T0);                                            \
      if (V == 2) _mm_prefetch((const char *)(bk + 16 * ldb + 16), _MM_HINT_T0);                           \
    }                                                                                                       \
    __m512 bv[2];                                                                                           \
    UNROLL for (int v = 0; v < V; v++) bv[v] =                                                              \
        v == V - 1 ? _mm512_maskz_loadu_ps(last, bk + 16 * v) : _mm512_loadu_ps(bk + 16 * v);               \
    UNROLL for (int r = 0; r < R; r++) {                                                                    \
      __m512 s = _mm512_set1_ps(ak[r * ars]);                                                               \
      UNROLL for (int v = 0; v < V; v++) acc[r][v] = _mm512_fmadd_ps(s, bv[v], acc[r][v]);                  \
    }                                                                                                       \
  }
  // Pairs in order, the odd half first; an odd K's last pair is its zero half (+0: it turns a -0 chain
  // into +0, as VDPBF16PS does) and then K - 1. The empty asm between a pair's two terms keeps the
  // compiler from loading the second term's operands early: with 28 accumulators that spilled four of
  // them (8% slower than sgemm's tile; with it, about its speed).
  ptrdiff_t k = 0;
  for (; k + 2 <= K; k += 2) {
    FMA_TERM(k + 1)
    __asm__ volatile("" : : : "memory");
    FMA_TERM(k)
  }
  if (k < K) {
    UNROLL for (int r = 0; r < R; r++)
      UNROLL for (int v = 0; v < V; v++) acc[r][v] = _mm512_add_ps(acc[r][v], _mm512_setzero_ps());
    FMA_TERM(k)
  }
#undef FMA_TERM
  if (!finish) {
    UNROLL for (int r = 0; r < R; r++)
      UNROLL for (int v = 0; v < V; v++)
        _mm512_mask_storeu_ps(p + r * ldp + 16 * v, v == V - 1 ? last : (__mmask16)0xFFFF, acc[r][v]);
    setMXCSR(csr, sums);
    return;
  }
  UNROLL for (int r = 0; r < R; r++)
    UNROLL for (int v = 0; v < V; v++) _mm512_store_ps(sums[r] + 16 * v, acc[r][v]);
  setMXCSR(csr, sums);
  UNROLL for (int r = 0; r < R; r++) {
    float *o = c + r * ldc;
    UNROLL for (int v = 0; v < V; v++) {
      const __mmask16 m = v == V - 1 ? last : (__mmask16)0xFFFF;
      __m512 x = _mm512_mul_ps(alpha, _mm512_load_ps(sums[r] + 16 * v));
      if (accumulate) x = _mm512_add_ps(_mm512_maskz_loadu_ps(m, o + 16 * v), x);
      _mm512_mask_storeu_ps(o + 16 * v, m, x);
    }
  }
}

#define FMA_TILES(R)                                                                                              \
  FMA_TARGET static void fmaTile##R##x2(const float *a, ptrdiff_t ars, ptrdiff_t aks, const float *b,            \
                                        ptrdiff_t ldb, ptrdiff_t K, float *c, ptrdiff_t ldc, __mmask16 last,      \
                                        __m512 alpha, int accumulate, unsigned csr, float *p, ptrdiff_t ldp,     \
                                        int resume, int finish) {                                                \
    fmaTile(R, 2, a, ars, aks, b, ldb, K, c, ldc, last, alpha, accumulate, csr, p, ldp, resume, finish);         \
  }                                                                                                               \
  FMA_TARGET static void fmaTile##R##x1(const float *a, ptrdiff_t ars, ptrdiff_t aks, const float *b,            \
                                        ptrdiff_t ldb, ptrdiff_t K, float *c, ptrdiff_t ldc, __mmask16 last,      \
                                        __m512 alpha, int accumulate, unsigned csr, float *p, ptrdiff_t ldp,     \
                                        int resume, int finish) {                                                \
    fmaTile(R, 1, a, ars, aks, b, ldb, K, c, ldc, last, alpha, accumulate, csr, p, ldp, resume, finish);         \
  }
FMA_TILES(1)
FMA_TILES(2)
FMA_TILES(3)
FMA_TILES(4)
FMA_TILES(5)
FMA_TILES(6)
FMA_TILES(7)
FMA_TILES(8)
FMA_TILES(9)
FMA_TILES(10)
FMA_TILES(11)
FMA_TILES(12)
FMA_TILES(13)
FMA_TILES(14)

typedef void (*FMATile)(const float *, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, ptrdiff_t, float *, ptrdiff_t,
                        __mmask16, __m512, int, unsigned, float *, ptrdiff_t, int, int);
static const FMATile fmaTiles[2][15] = {
    {0, fmaTile1x1, fmaTile2x1, fmaTile3x1, fmaTile4x1, fmaTile5x1, fmaTile6x1, fmaTile7x1, fmaTile8x1, fmaTile9x1,
     fmaTile10x1, fmaTile11x1, fmaTile12x1, fmaTile13x1, fmaTile14x1},
    {0, fmaTile1x2, fmaTile2x2, fmaTile3x2, fmaTile4x2, fmaTile5x2, fmaTile6x2, fmaTile7x2, fmaTile8x2, fmaTile9x2,
     fmaTile10x2, fmaTile11x2, fmaTile12x2, fmaTile13x2, fmaTile14x2}};

FMA_TARGET void fpsim_bf16_fma_rows(const float *a, ptrdiff_t ars, ptrdiff_t aks, const float *b, ptrdiff_t ldb,
                                    ptrdiff_t K, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t N, float *C, ptrdiff_t ldc,
                                    float alpha, int accumulate, float *partial) {
  unsigned csr;
  __asm__ volatile("stmxcsr %0" : "=m"(csr));
  const __m512 scale = _mm512_set1_ps(alpha);
  // Blocks of at most FMA_K_BLOCK values of k (an even number: whole pairs), so that a block of B stays
  // in L2 (448 x 512 floats: 0.9 MiB) while the strips pass over it; within a block, strips of 14 rows
  // outer, 32-column panels inner, so that a strip of op(A) stays in L1 or L2.
  for (ptrdiff_t k0 = 0; k0 < K; k0 += FMA_K_BLOCK) {
    const ptrdiff_t kb = K - k0 < FMA_K_BLOCK ? K - k0 : FMA_K_BLOCK;
    const int resume = k0 > 0, finish = k0 + kb == K;
    for (ptrdiff_t i = m0; i < m1; i += 14) {
      const int R = m1 - i < 14 ? (int)(m1 - i) : 14;
      for (ptrdiff_t j = 0; j < N; j += 32) {
        const ptrdiff_t w = N - j < 32 ? N - j : 32;
        const int V = w > 16 ? 2 : 1;
        const __mmask16 last = firstLanes(w > 16 ? w - 16 : w);
        fmaTiles[V - 1][R](a + i * ars + k0 * aks, ars, aks, b + k0 * ldb + j, ldb, kb, C + i * ldc + j, ldc, last,
                           scale, accumulate, csr, partial + i * N + j, N, resume, finish);
      }
    }
  }
}
