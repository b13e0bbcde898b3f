// Counts of lanes meeting a float comparison, for the block loops' telemetry (FPFormats' EventLanes).
//
// Swift has no way to turn a SIMD comparison into a bit mask: counted through its lanes, each count
// took a compare, a widening of the mask and a vector add, 512-bit work on the vector ports that the
// rounding itself saturates. Here each count is a compare into a mask register and a `popcnt` of it,
// on the integer ports, which those loops leave idle. `static inline`: compiled into the calling
// Swift module with its target's features (the `__AVX512F__` branch in AVX-512 builds) and inlined.
#ifndef FPSIM_MASK_COUNT_H
#define FPSIM_MASK_COUNT_H

#include <stdint.h>

typedef float fpsim_float32x16 __attribute__((ext_vector_type(16)));

#if defined(__AVX512F__)
#include <immintrin.h>

// Lanes with a > b (ordered: false where either is NaN).
static inline uint32_t fpsim_count_greater(fpsim_float32x16 a, fpsim_float32x16 b) {
  return (uint32_t)__builtin_popcount(_mm512_cmp_ps_mask((__m512)a, (__m512)b, _CMP_GT_OQ));
}

// Lanes with x non-zero and not NaN, and o == +-0.
static inline uint32_t fpsim_count_zeroed(fpsim_float32x16 x, fpsim_float32x16 o) {
  __mmask16 live = _mm512_cmp_ps_mask((__m512)x, _mm512_setzero_ps(), _CMP_NEQ_OQ);
  return (uint32_t)__builtin_popcount(_mm512_mask_cmp_ps_mask(live, (__m512)o, _mm512_setzero_ps(), _CMP_EQ_OQ));
}
#else
// The same counts lane by lane (builds without AVX-512 count with sign masks in Swift instead).
static inline uint32_t fpsim_count_greater(fpsim_float32x16 a, fpsim_float32x16 b) {
  uint32_t n = 0;
  for (int i = 0; i < 16; i++) n += a[i] > b[i];
  return n;
}

static inline uint32_t fpsim_count_zeroed(fpsim_float32x16 x, fpsim_float32x16 o) {
  uint32_t n = 0;
  for (int i = 0; i < 16; i++) n += x[i] != 0 && x[i] == x[i] && o[i] == 0;
  return n;
}
#endif

#endif
