#include "exponent_counts.h"

#include <immintrin.h>

// Eight interleaved tables, so that runs of equal exponents do not wait on one counter (a load, an add
// and a store per value, about a cycle). They are 272 counters (1088 bytes) apart, not 256: at 1024
// bytes, tables k and k + 4 lie 4096 bytes apart, and the core takes a load from one after a store to
// the other with the same low 12 address bits for a dependency; on exponents clustered in a few values
// (activations) that ran at a third of the speed.
static void count_tables(const uint32_t *bits, size_t n, uint32_t *t) {
  enum { S = 272 };
  uint32_t s[8 * S] = {0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    s[bits[i] >> 23 & 0xFF]++;
    s[S + (bits[i + 1] >> 23 & 0xFF)]++;
    s[2 * S + (bits[i + 2] >> 23 & 0xFF)]++;
    s[3 * S + (bits[i + 3] >> 23 & 0xFF)]++;
    s[4 * S + (bits[i + 4] >> 23 & 0xFF)]++;
    s[5 * S + (bits[i + 5] >> 23 & 0xFF)]++;
    s[6 * S + (bits[i + 6] >> 23 & 0xFF)]++;
    s[7 * S + (bits[i + 7] >> 23 & 0xFF)]++;
  }
  for (; i < n; i++) s[bits[i] >> 23 & 0xFF]++;
  for (int e = 0; e < 256; e++) {
    for (int k = 0; k < 8; k++) t[e] += s[k * S + e];
  }
}

// The window [base, base + bins) of a chunk of 32 x spacing values: `below` under the largest exponent
// of 32 values sampled across the chunk (one per `spacing`; a row-major chunk spans several rows, and
// columns can differ in scale, as the query, key and value gradients of one attention projection do),
// moved down where it would pass 255. Returns how many of the sample lie outside it.
static int window(const uint32_t *bits, size_t spacing, unsigned bins, unsigned below, unsigned *base) {
  unsigned top = 0;
  for (size_t k = 0; k < 32; k++) {
    unsigned e = bits[k * spacing] >> 23 & 0xFF;
    top = e > top ? e : top;
  }
  unsigned b = top < below ? 0 : top - below;
  if (b > 256 - bins) b = 256 - bins;
  int outside = 0;
  for (size_t k = 0; k < 32; k++) outside += (unsigned)((bits[k * spacing] >> 23 & 0xFF) - b) >= bins;
  *base = b;
  return outside;
}

// The window path. Tensors' exponents crowd into a few values, so chunks of up to 255 x 32 values are
// counted against a window of BINS consecutive exponents [base, base + BINS), base = BELOW under the
// largest exponent of 32 values sampled across the chunk. Per 32 values: the exponents packed into 32
// bytes, minus base; per window exponent, one byte compare and one subtract (a compare gives -1) into a
// 32-byte counter (at most 255 per byte, hence the chunk length); at the chunk's end each counter's
// bytes are summed. Values outside the window are counted one by one from the compare mask. A chunk
// whose sample has more than 4 values outside, or the chunk after one with more than a quarter outside,
// goes to the tables instead.
//
// Measured on every operand of gpt-tiny mxfp4 steps 30 and 250 (as `fpsim train --snapshot-operands`
// stores them, one core): 5.4-7.8 G values/s, against 3.0-3.1 for the tables. Mean over step 30's
// operands for other windows (the compares are the cost; fewer bins leave more values to count one by
// one): 16 from 12 under 5.8, 12 from 10 under 7.2 (this one), 12 from 9 under 6.9, 8 from 6 under 7.0.
enum { BINS = 12, BELOW = 10 };

__attribute__((target("avx2")))
static void count_window(const uint32_t *bits, size_t n, uint32_t *t) {
  // After the two packs, byte j holds value first[j / 4] + j % 4 of the 32 (packs work per 128-bit half).
  static const uint8_t first[8] = {0, 8, 16, 24, 4, 12, 20, 28};
  const __m256i low8 = _mm256_set1_epi32(0xFF), last = _mm256_set1_epi8(BINS - 1);
  size_t i = 0;
  int spread = 0;
  while (i + 32 <= n) {
    size_t steps = (n - i) / 32;
    if (steps > 255) steps = 255;
    unsigned base;
    if (window(bits + i, steps, BINS, BELOW, &base) > 4 || spread) {
      count_tables(bits + i, steps * 32, t);
      i += steps * 32;
      spread = 0;
      continue;
    }
    const __m256i b = _mm256_set1_epi8((char)base);
    __m256i acc[BINS];
    for (int k = 0; k < BINS; k++) acc[k] = _mm256_setzero_si256();
    size_t outside = 0;
    for (size_t s = 0; s < steps; s++, i += 32) {
      const uint32_t *p = bits + i;
      // Operands come from L3 (written by their producer, then read by their rounding): fetching 2 KB
      // ahead made a 1 M-value operand evicted from L2 count at 3.8 G values/s instead of 2.6.
      // (Prefetches never fault, so running past the end is harmless.)
      _mm_prefetch((const char *)(p + 512), _MM_HINT_T0);
      _mm_prefetch((const char *)(p + 528), _MM_HINT_T0);
      __m256i a0 = _mm256_and_si256(_mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)p), 23), low8);
      __m256i a1 = _mm256_and_si256(_mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)(p + 8)), 23), low8);
      __m256i a2 = _mm256_and_si256(_mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)(p + 16)), 23), low8);
      __m256i a3 = _mm256_and_si256(_mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)(p + 24)), 23), low8);
      __m256i d = _mm256_sub_epi8(_mm256_packus_epi16(_mm256_packus_epi32(a0, a1), _mm256_packus_epi32(a2, a3)), b);
      // Bytes with d > BINS - 1 (unsigned): outside the window.
      uint32_t out = ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_max_epu8(d, last), last));
      while (out) {
        unsigned j = (unsigned)__builtin_ctz(out);
        t[p[first[j >> 2] + (j & 3)] >> 23 & 0xFF]++;
        out &= out - 1;
        outside++;
      }
#define FPSIM_BIN(k) acc[k] = _mm256_sub_epi8(acc[k], _mm256_cmpeq_epi8(d, _mm256_set1_epi8(k)));
      FPSIM_BIN(0) FPSIM_BIN(1) FPSIM_BIN(2) FPSIM_BIN(3) FPSIM_BIN(4) FPSIM_BIN(5)
      FPSIM_BIN(6) FPSIM_BIN(7) FPSIM_BIN(8) FPSIM_BIN(9) FPSIM_BIN(10) FPSIM_BIN(11)
#undef FPSIM_BIN
    }
    for (int k = 0; k < BINS; k++) {
      __m256i s = _mm256_sad_epu8(acc[k], _mm256_setzero_si256());  // four 64-bit sums of 8 bytes
      __m128i h = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      t[base + k] += (uint32_t)(_mm_cvtsi128_si64(h) + _mm_extract_epi64(h, 1));
    }
    spread = outside * 4 > steps * 32;
  }
  count_tables(bits + i, n - i, t);
}

// The one-hot path (AVX-512 with VBMI, BITALG and GFNI): a window of 16 exponents [base, base + 16),
// base = 12 under the largest of 32 values sampled across each chunk of up to 255 x 64 values, 64
// values a step, about twice count_window's speed. Per step:
// - vpmultishiftqb copies the 8 exponent bits of value v (0, 1) of each 64-bit lane of source vector s
//   (0..3, 16 values each) to byte 2 s + v of the lane: four shifts, three of them masked, fill one
//   register with 64 exponents, byte j holding value 16 (j % 8 / 2) + 2 (j / 8) + j % 2; d = e - base.
// - Two byte shuffles make each in-window d one-hot: bit d of `lo` (d < 8), bit d - 8 of `hi` (d >= 8);
//   values outside the window give zero bytes and are counted one by one from the compare mask.
// - gf2p8affineqb with the data as the matrix transposes the 8 x 8 bit matrix of each lane: byte k of
//   a lane then holds which of its 8 values lie in bin k, and vpopcntb counts them.
// Byte counters gain at most 8 a step, so every 31 steps (248) they are added into 16-bit counters
// (at most 255 x 8 = 2040 a chunk).
// Measured on the same 30 operands as count_window (one core, warm cache): 11.7-14.6 G values/s,
// against 5.4-7.8 for count_window.
enum { ONEHOT_BINS = 16, ONEHOT_BELOW = 12 };

__attribute__((target("avx512f,avx512bw,avx512vbmi,avx512bitalg,gfni")))
static void count_onehot(const uint32_t *bits, size_t n, uint32_t *t) {
  const __m512i ctrl = _mm512_set1_epi64(0x3717371737173717LL);  // bit offsets 23 and 55, repeated
  const __m512i last = _mm512_set1_epi8(ONEHOT_BINS - 1);
  // Byte shuffles look up within each 128-bit quarter, by d's low 4 bits.
  const __m512i oneHotLo = _mm512_set4_epi32(0, 0, (int)0x80402010, 0x08040201);
  const __m512i oneHotHi = _mm512_set4_epi32((int)0x80402010, 0x08040201, 0, 0);
  const __m512i transpose = _mm512_set1_epi64((long long)0x8040201008040201ULL);  // byte k = 1 << k
  size_t i = 0;
  int spread = 0;
  while (i + 64 <= n) {
    size_t steps = (n - i) / 64;
    if (steps > 255) steps = 255;
    unsigned base;
    if (window(bits + i, 2 * steps, ONEHOT_BINS, ONEHOT_BELOW, &base) > 4 || spread) {
      count_tables(bits + i, steps * 64, t);
      i += steps * 64;
      spread = 0;
      continue;
    }
    const __m512i b = _mm512_set1_epi8((char)base);
    // 16-bit counters: word w of lo0 (lo1) counts bin w % 8 in lane w / 8 (4 + w / 8); hi* likewise, bins 8-15.
    __m512i lo0 = _mm512_setzero_si512(), lo1 = lo0, hi0 = lo0, hi1 = lo0;
    size_t outside = 0;
    for (size_t s = 0; s < steps;) {
      size_t end = steps - s > 31 ? s + 31 : steps;
      __m512i lo = _mm512_setzero_si512(), hi = lo;
      for (; s < end; s++, i += 64) {
        const uint32_t *p = bits + i;
        _mm_prefetch((const char *)(p + 512), _MM_HINT_T0);  // as in count_window: 2 KB ahead
        _mm_prefetch((const char *)(p + 528), _MM_HINT_T0);
        _mm_prefetch((const char *)(p + 544), _MM_HINT_T0);
        _mm_prefetch((const char *)(p + 560), _MM_HINT_T0);
        __m512i e = _mm512_multishift_epi64_epi8(ctrl, _mm512_loadu_si512(p));
        e = _mm512_mask_multishift_epi64_epi8(e, 0x0C0C0C0C0C0C0C0CULL, ctrl, _mm512_loadu_si512(p + 16));
        e = _mm512_mask_multishift_epi64_epi8(e, 0x3030303030303030ULL, ctrl, _mm512_loadu_si512(p + 32));
        e = _mm512_mask_multishift_epi64_epi8(e, 0xC0C0C0C0C0C0C0C0ULL, ctrl, _mm512_loadu_si512(p + 48));
        __m512i d = _mm512_sub_epi8(e, b);
        uint64_t out = _mm512_cmpgt_epu8_mask(d, last);
        for (uint64_t o = out; o; o &= o - 1) {
          unsigned j = (unsigned)__builtin_ctzll(o);
          t[p[16 * ((j & 7) >> 1) + 2 * (j >> 3) + (j & 1)] >> 23 & 0xFF]++;
          outside++;
        }
        __m512i l = _mm512_maskz_shuffle_epi8(~out, oneHotLo, d), h = _mm512_maskz_shuffle_epi8(~out, oneHotHi, d);
        lo = _mm512_add_epi8(lo, _mm512_popcnt_epi8(_mm512_gf2p8affine_epi64_epi8(transpose, l, 0)));
        hi = _mm512_add_epi8(hi, _mm512_popcnt_epi8(_mm512_gf2p8affine_epi64_epi8(transpose, h, 0)));
      }
      lo0 = _mm512_add_epi16(lo0, _mm512_cvtepu8_epi16(_mm512_castsi512_si256(lo)));
      lo1 = _mm512_add_epi16(lo1, _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(lo, 1)));
      hi0 = _mm512_add_epi16(hi0, _mm512_cvtepu8_epi16(_mm512_castsi512_si256(hi)));
      hi1 = _mm512_add_epi16(hi1, _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(hi, 1)));
    }
    uint16_t w[4][32];
    _mm512_storeu_si512(w[0], lo0);
    _mm512_storeu_si512(w[1], lo1);
    _mm512_storeu_si512(w[2], hi0);
    _mm512_storeu_si512(w[3], hi1);
    for (int k = 0; k < 8; k++) {
      for (int lane = 0; lane < 4; lane++) {
        t[base + k] += (uint32_t)w[0][8 * lane + k] + w[1][8 * lane + k];
        t[base + 8 + k] += (uint32_t)w[2][8 * lane + k] + w[3][8 * lane + k];
      }
    }
    spread = outside * 4 > steps * 64;
  }
  count_tables(bits + i, n - i, t);
}

static int has_onehot(void) {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bitalg") &&
         __builtin_cpu_supports("gfni");
}

int fpsim_exponent_count_path(int requested) {
  if (requested >= 2 && has_onehot()) return 2;
  if (requested >= 1 && __builtin_cpu_supports("avx2")) return 1;
  return 0;
}

void fpsim_count_exponents(const uint32_t *bits, size_t n, uint32_t *t, int path) {
  switch (fpsim_exponent_count_path(path)) {
  case 2: count_onehot(bits, n, t); break;
  case 1: count_window(bits, n, t); break;
  default: count_tables(bits, n, t); break;
  }
}
