// What the bf16 GEMM mode can get from this CPU: the rate of its instruction, AVX512-BF16's VDPBF16PS,
// against float32 FMA (sgemm's), and, where the CPU has AMX-BF16, the rate of TDPBF16PS and whether its
// sums are the mode's. Built and run by bf16_instructions.sh.
//
// Rates: 24 independent accumulator chains of one instruction on 512-bit registers, 10^8 rounds, best of
// three; FLOP counts 2 per multiply-add (VFMADD231PS 16 multiply-adds, VDPBF16PS 32, TDPBF16PS on full
// 16 x 64-byte tiles 16 * 16 * 32).
//
// Sums: random bfloat16 A (16 x 2P) and B (2P x 16), values with 8 significant bits over 8 binades, and a
// float32 C, through one TDPBF16PS per 16 pairs; each output compared with the mode's definition (per pair
// p: acc = fl(acc + a[2p+1] b[2p+1]); acc = fl(acc + a[2p] b[2p])) and with fl(acc + fl(a[2p] b[2p] +
// a[2p+1] b[2p+1])), the pair's sum rounded first. No value here is subnormal, so flushing plays no part.
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 100000000L

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

// The empty asm keeps the operand in a register the compiler cannot see through, so the chains stay.
__attribute__((target("avx512f"))) static float fmaChains(long n) {
  __m512 acc[24], x = _mm512_set1_ps(1.0f), y = _mm512_set1_ps(0.0f);
  for (int i = 0; i < 24; i++) acc[i] = _mm512_setzero_ps();
  for (long k = 0; k < n; k++) {
    for (int i = 0; i < 24; i++) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    __asm__ volatile("" : "+v"(x));
  }
  __m512 s = acc[0];
  for (int i = 1; i < 24; i++) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx512f,avx512bf16"))) static float dpbf16Chains(long n) {
  __m512 acc[24];
  __m512bh x = (__m512bh)_mm512_set1_epi32(0x3F803F80), y = (__m512bh)_mm512_set1_epi32(0);
  for (int i = 0; i < 24; i++) acc[i] = _mm512_setzero_ps();
  for (long k = 0; k < n; k++) {
    for (int i = 0; i < 24; i++) acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
    __asm__ volatile("" : "+v"(x));
  }
  __m512 s = acc[0];
  for (int i = 1; i < 24; i++) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

// Palette 1 tile configuration: tiles 0-3 accumulators (16 rows of 64 bytes), 4-5 A, 6-7 B.
typedef struct {
  uint8_t palette, start;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} TileConfig;

static int amxUsable(void) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("amx-bf16")) return 0;
  // Linux hands out the tile state only on request (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA).
  return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

__attribute__((target("amx-tile,amx-bf16"))) static void configure(int pairs) {
  TileConfig c;
  memset(&c, 0, sizeof c);
  c.palette = 1;
  for (int t = 0; t < 8; t++) c.rows[t] = 16, c.colsb[t] = 64;
  c.colsb[4] = c.colsb[5] = (uint16_t)(4 * pairs);
  c.rows[6] = c.rows[7] = (uint8_t)pairs;
  _tile_loadconfig(&c);
}

__attribute__((target("amx-tile,amx-bf16"))) static double amxRate(void) {
  static uint16_t a[16 * 32], b[16 * 32];
  static float c[16 * 16];
  configure(16);
  _tile_loadd(4, a, 64), _tile_loadd(5, a, 64), _tile_loadd(6, b, 64), _tile_loadd(7, b, 64);
  _tile_loadd(0, c, 64), _tile_loadd(1, c, 64), _tile_loadd(2, c, 64), _tile_loadd(3, c, 64);
  const long n = ROUNDS / 100;
  double t0 = now();
  for (long k = 0; k < n; k++) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, 64);
  double t = now() - t0;
  _tile_release();
  return 4.0 * n * 16 * 16 * 32 * 2 / t / 1e9;
}

static uint64_t state = 0x9E3779B97F4A7C15u;
static uint64_t next(void) {
  state ^= state << 13, state ^= state >> 7, state ^= state << 17;
  return state;
}

// A bfloat16 value 1.m * 2^e, m 7 random bits, e in [-4, 4), random sign; as its 16 bits.
static uint16_t randomBF16(void) {
  uint32_t e = 127 - 4 + (uint32_t)(next() % 8), m = (uint32_t)(next() % 128), s = (uint32_t)(next() & 1);
  return (uint16_t)(s << 15 | e << 7 | m);
}

static float widen(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

__attribute__((target("amx-tile,amx-bf16"))) static void amxProduct(const uint16_t *a, const uint32_t *b, float *c,
                                                                     int pairs) {
  configure(pairs);
  _tile_loadd(0, c, 64);
  _tile_loadd(4, a, 4 * pairs);
  _tile_loadd(6, b, 64);
  _tile_dpbf16ps(0, 4, 6);
  _tile_stored(0, c, 64);
  _tile_release();
}

// Outputs of `trials` random products of `pairs` pairs that differ from the mode's sums, and from the
// pair-sum-first sums.
static void amxSums(int pairs, int trials, long *differMode, long *differPairFirst, long *outputs) {
  static uint16_t a[16 * 32];
  static uint32_t b[16 * 16];
  static float c[16 * 16], c0[16 * 16];
  for (int trial = 0; trial < trials; trial++) {
    for (int i = 0; i < 16 * 2 * pairs; i++) a[i] = randomBF16();
    for (int i = 0; i < pairs * 16; i++) b[i] = (uint32_t)randomBF16() << 16 | randomBF16();
    for (int i = 0; i < 256; i++) c0[i] = trial % 2 ? 0 : widen(randomBF16()) * 1.37f;
    memcpy(c, c0, sizeof c);
    amxProduct(a, b, c, pairs);
    for (int i = 0; i < 16; i++)
      for (int j = 0; j < 16; j++) {
        float mode = c0[i * 16 + j], pairFirst = mode;
        for (int p = 0; p < pairs; p++) {
          float p0 = widen(a[i * 2 * pairs + 2 * p]) * widen((uint16_t)b[p * 16 + j]);
          float p1 = widen(a[i * 2 * pairs + 2 * p + 1]) * widen((uint16_t)(b[p * 16 + j] >> 16));
          mode = mode + p1;
          mode = mode + p0;
          pairFirst = pairFirst + (p0 + p1);
        }
        *differMode += memcmp(&mode, c + i * 16 + j, 4) != 0;
        *differPairFirst += memcmp(&pairFirst, c + i * 16 + j, 4) != 0;
        (*outputs)++;
      }
  }
}

int main(void) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bf16")) {
    printf("this CPU lacks AVX512-BF16: the bf16 GEMM mode does not run here\n");
    return 2;
  }
  double fma = 0, dp = 0;
  for (int r = 0; r < 3; r++) {
    double t0 = now();
    volatile float u = fmaChains(ROUNDS);
    double t1 = now();
    volatile float v = dpbf16Chains(ROUNDS);
    double t2 = now();
    (void)u, (void)v;
    double f = 24.0 * ROUNDS / (t1 - t0) / 1e9, d = 24.0 * ROUNDS / (t2 - t1) / 1e9;
    if (f > fma) fma = f;
    if (d > dp) dp = d;
  }
  printf("one core, 512-bit registers, 24 independent chains (best of 3):\n");
  printf("  VFMADD231PS  %.2f G instructions/s, %6.1f GFLOP/s (sgemm)\n", fma, fma * 32);
  printf("  VDPBF16PS    %.2f G instructions/s, %6.1f GFLOP/s (--gemm bf16): %.2fx the FMA arithmetic\n", dp,
         dp * 64, dp * 64 / (fma * 32));
  if (!amxUsable()) {
    printf("  AMX-BF16: not on this CPU (or not granted by the OS)\n");
    return 0;
  }
  printf("  TDPBF16PS    %6.1f GFLOP/s (AMX, four 16 x 16 accumulator tiles)\n", amxRate());
  printf("TDPBF16PS sums against the mode's (random bfloat16 products, 8 binades, no subnormals):\n");
  for (int pairs = 1; pairs <= 16; pairs *= 4) {
    long mode = 0, pairFirst = 0, outputs = 0;
    amxSums(pairs, 2000, &mode, &pairFirst, &outputs);
    printf("  %2d pair%s per instruction: %ld outputs, %5.2f%% differ from the mode's sums, %5.2f%% from the "
           "pair's sum rounded first\n",
           pairs, pairs > 1 ? "s" : " ", outputs, 100.0 * mode / outputs, 100.0 * pairFirst / outputs);
  }
  return 0;
}
