#include "sgemm_kernel.h"

#include <immintrin.h>

#define TARGET __attribute__((target("avx512f")))
// Loops over a tile's rows and vectors run fully unrolled, so that the accumulators are registers.
#define UNROLL _Pragma("clang loop unroll(full)")

int fpsim_sgemm_available(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
}

// One tile: rows 0 ..< R of a (row r of op(A) at a + r * ars, k at + k * aks) by 16 * V columns of b,
// the last 16 masked by `last`, over k < K. Accumulators start at +0; each is one fused multiply-add
// chain in k order. The result is added to c (or to +0 when `fresh`), then bias[column] to that sum
// when `bias` is given. R and V are constants where the function is instantiated, so the R * V
// accumulators stay in registers.
TARGET static inline __attribute__((always_inline)) void tile(const int R, const int V, const float *a, ptrdiff_t ars,
                                                              ptrdiff_t aks, const float *b, ptrdiff_t ldb, ptrdiff_t K,
                                                              float *c, ptrdiff_t ldc, __mmask16 last, int fresh,
                                                              const float *bias) {
  __m512 acc[14][2];
  UNROLL for (int r = 0; r < R; r++)
    UNROLL for (int v = 0; v < V; v++) acc[r][v] = _mm512_setzero_ps();
  for (ptrdiff_t k = 0; k < K; k++) {
    const float *bk = b + k * ldb, *ak = a + k * aks;
    // A transposed (a weight gradient's dY^T): each k reads R adjacent values of a row of dY, a new line
    // for every k, which the hardware prefetcher fetches too late when dY comes from memory; and B (X,
    // up to 512 columns wide) is read 32 columns of a row at a time. Ask for both 16 rows ahead
    // (measured on cold operands: weight gradients 8-25% faster alone; docs/benchmarks.md).
    if (ars == 1) {
      _mm_prefetch((const char *)(ak + 16 * aks), _MM_HINT_T0);
      _mm_prefetch((const char *)(ak + 16 * aks + R - 1), _MM_HINT_T0);
      _mm_prefetch((const char *)(bk + 16 * ldb), _MM_HINT_T0);
      if (V == 2) _mm_prefetch((const char *)(bk + 16 * ldb + 16), _MM_HINT_T0);
    }
    __m512 bv[2];
    UNROLL for (int v = 0; v < V; v++)
      bv[v] = v == V - 1 ? _mm512_maskz_loadu_ps(last, bk + 16 * v) : _mm512_loadu_ps(bk + 16 * v);
    UNROLL for (int r = 0; r < R; r++) {
      __m512 s = _mm512_set1_ps(ak[r * ars]);
      UNROLL for (int v = 0; v < V; v++) acc[r][v] = _mm512_fmadd_ps(bv[v], s, acc[r][v]);
    }
  }
  UNROLL for (int r = 0; r < R; r++) {
    float *o = c + r * ldc;
    UNROLL for (int v = 0; v < V; v++) {
      __mmask16 m = v == V - 1 ? last : (__mmask16)0xFFFF;
      __m512 old = fresh ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, o + 16 * v);
      __m512 sum = _mm512_add_ps(old, acc[r][v]);
      if (bias) sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(m, bias + 16 * v));
      _mm512_mask_storeu_ps(o + 16 * v, m, sum);
    }
  }
}

#define TILES(R)                                                                                                  \
  TARGET static void tile##R##x2(const float *a, ptrdiff_t ars, ptrdiff_t aks, const float *b, ptrdiff_t ldb,    \
                                 ptrdiff_t K, float *c, ptrdiff_t ldc, __mmask16 last, int fresh,                \
                                 const float *bias) {                                                            \
    tile(R, 2, a, ars, aks, b, ldb, K, c, ldc, last, fresh, bias);                                                \
  }                                                                                                               \
  TARGET static void tile##R##x1(const float *a, ptrdiff_t ars, ptrdiff_t aks, const float *b, ptrdiff_t ldb,    \
                                 ptrdiff_t K, float *c, ptrdiff_t ldc, __mmask16 last, int fresh,                \
                                 const float *bias) {                                                            \
    tile(R, 1, a, ars, aks, b, ldb, K, c, ldc, last, fresh, bias);                                                \
  }
TILES(1)
TILES(2)
TILES(3)
TILES(4)
TILES(5)
TILES(6)
TILES(7)
TILES(8)
TILES(9)
TILES(10)
TILES(11)
TILES(12)
TILES(13)
TILES(14)

typedef void (*Tile)(const float *, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, ptrdiff_t, float *, ptrdiff_t,
                     __mmask16, int, const float *);
static const Tile tiles[2][15] = {
    {0, tile1x1, tile2x1, tile3x1, tile4x1, tile5x1, tile6x1, tile7x1, tile8x1, tile9x1, tile10x1, tile11x1, tile12x1,
     tile13x1, tile14x1},
    {0, tile1x2, tile2x2, tile3x2, tile4x2, tile5x2, tile6x2, tile7x2, tile8x2, tile9x2, tile10x2, tile11x2, tile12x2,
     tile13x2, tile14x2}};

TARGET void fpsim_sgemm_rows(int trans_a, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t N, ptrdiff_t K, const float *a,
                             ptrdiff_t lda, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int accumulate,
                             const float *bias, ptrdiff_t q, ptrdiff_t u) {
  const ptrdiff_t ars = trans_a ? 1 : lda, aks = trans_a ? lda : 1;
  for (ptrdiff_t k0 = 0; k0 < K;) {
    ptrdiff_t block = K - k0;
    if (block >= 2 * q) block = q;
    else if (block > q) block = (block / 2 + u - 1) / u * u;
    const int fresh = k0 == 0 && !accumulate, lastBlock = k0 + block == K;
    for (ptrdiff_t i = m0; i < m1; i += 14) {
      const int R = m1 - i < 14 ? (int)(m1 - i) : 14;
      for (ptrdiff_t j = 0; j < N; j += 32) {
        const ptrdiff_t w = N - j < 32 ? N - j : 32;
        const int V = w > 16 ? 2 : 1;
        const __mmask16 last = (__mmask16)(w % 16 == 0 ? 0xFFFF : (1u << (w % 16)) - 1);
        tiles[V - 1][R](a + i * ars + k0 * aks, ars, aks, b + k0 * ldb + j, ldb, block, c + i * ldc + j, ldc, last,
                        fresh, bias && lastBlock ? bias + j : 0);
      }
    }
    k0 += block;
  }
}
