// The running CPU's features (CPUID + XGETBV) and the start-up check; see cpu_features.h.
// This file is compiled without -target-cpu: baseline x86-64, so it runs on the CPUs it refuses.
#include "cpu_features.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

static const char *const names[FPSIM_CPU_FEATURE_COUNT] = {
    [FPSIM_CPU_SSE] = "sse",
    [FPSIM_CPU_SSE2] = "sse2",
    [FPSIM_CPU_SSE3] = "sse3",
    [FPSIM_CPU_SSSE3] = "ssse3",
    [FPSIM_CPU_SSE4_1] = "sse4_1",
    [FPSIM_CPU_SSE4_2] = "sse4_2",
    [FPSIM_CPU_POPCNT] = "popcnt",
    [FPSIM_CPU_CX16] = "cx16",
    [FPSIM_CPU_PCLMUL] = "pclmulqdq",
    [FPSIM_CPU_AES] = "aes",
    [FPSIM_CPU_MOVBE] = "movbe",
    [FPSIM_CPU_AVX] = "avx",
    [FPSIM_CPU_F16C] = "f16c",
    [FPSIM_CPU_FMA] = "fma",
    [FPSIM_CPU_AVX2] = "avx2",
    [FPSIM_CPU_BMI] = "bmi1",
    [FPSIM_CPU_BMI2] = "bmi2",
    [FPSIM_CPU_LZCNT] = "abm",
    [FPSIM_CPU_ADX] = "adx",
    [FPSIM_CPU_SHA] = "sha_ni",
    [FPSIM_CPU_AVXVNNI] = "avx_vnni",
    [FPSIM_CPU_AVX512F] = "avx512f",
    [FPSIM_CPU_AVX512CD] = "avx512cd",
    [FPSIM_CPU_AVX512DQ] = "avx512dq",
    [FPSIM_CPU_AVX512BW] = "avx512bw",
    [FPSIM_CPU_AVX512VL] = "avx512vl",
    [FPSIM_CPU_AVX512IFMA] = "avx512ifma",
    [FPSIM_CPU_AVX512VBMI] = "avx512vbmi",
    [FPSIM_CPU_AVX512VBMI2] = "avx512_vbmi2",
    [FPSIM_CPU_AVX512VNNI] = "avx512_vnni",
    [FPSIM_CPU_AVX512BITALG] = "avx512_bitalg",
    [FPSIM_CPU_AVX512VPOPCNTDQ] = "avx512_vpopcntdq",
    [FPSIM_CPU_AVX512BF16] = "avx512_bf16",
    [FPSIM_CPU_GFNI] = "gfni",
    [FPSIM_CPU_VAES] = "vaes",
    [FPSIM_CPU_VPCLMULQDQ] = "vpclmulqdq",
};

const char *fpsim_cpu_feature_name(int f) {
  return f >= 0 && f < FPSIM_CPU_FEATURE_COUNT ? names[f] : NULL;
}

#if defined(__x86_64__)
// XCR0, the register state the OS saves on a context switch (valid only when CPUID says OSXSAVE).
static uint64_t xgetbv0(void) {
  uint32_t lo, hi;
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));  // xgetbv, for old assemblers
  return ((uint64_t)hi << 32) | lo;
}
#endif

uint64_t fpsim_cpu_features(void) {
  uint64_t m = 0;
#if defined(__x86_64__)
  unsigned a, b, c, d;
#define SET(cond, f) \
  if (cond) m |= FPSIM_BIT(f)
  unsigned max = __get_cpuid_max(0, 0);
  if (max < 1) return 0;
  __cpuid(1, a, b, c, d);
  unsigned c1 = c;
  SET(d & (1u << 25), FPSIM_CPU_SSE);
  SET(d & (1u << 26), FPSIM_CPU_SSE2);
  SET(c & (1u << 0), FPSIM_CPU_SSE3);
  SET(c & (1u << 1), FPSIM_CPU_PCLMUL);
  SET(c & (1u << 9), FPSIM_CPU_SSSE3);
  SET(c & (1u << 13), FPSIM_CPU_CX16);
  SET(c & (1u << 19), FPSIM_CPU_SSE4_1);
  SET(c & (1u << 20), FPSIM_CPU_SSE4_2);
  SET(c & (1u << 22), FPSIM_CPU_MOVBE);
  SET(c & (1u << 23), FPSIM_CPU_POPCNT);
  SET(c & (1u << 25), FPSIM_CPU_AES);
  // AVX and everything on top of it needs the OS to save the YMM state (XCR0 bits 1, 2); AVX-512 also
  // the opmask and ZMM state (bits 5, 6, 7).
  uint64_t xcr0 = (c1 & (1u << 27)) ? xgetbv0() : 0;
  int ymm = (xcr0 & 0x6) == 0x6;
  int zmm = ymm && (xcr0 & 0xe0) == 0xe0;
  SET(ymm && (c & (1u << 28)), FPSIM_CPU_AVX);
  SET(ymm && (c & (1u << 29)), FPSIM_CPU_F16C);
  SET(ymm && (c & (1u << 12)), FPSIM_CPU_FMA);
  if (__get_cpuid_max(0x80000000, 0) >= 0x80000001) {
    __cpuid(0x80000001, a, b, c, d);
    SET(c & (1u << 5), FPSIM_CPU_LZCNT);
  }
  if (max >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    unsigned leaf7max = a;
    SET(ymm && (b & (1u << 5)), FPSIM_CPU_AVX2);
    SET(b & (1u << 3), FPSIM_CPU_BMI);
    SET(b & (1u << 8), FPSIM_CPU_BMI2);
    SET(b & (1u << 19), FPSIM_CPU_ADX);
    SET(b & (1u << 29), FPSIM_CPU_SHA);
    SET(zmm && (b & (1u << 16)), FPSIM_CPU_AVX512F);
    SET(zmm && (b & (1u << 17)), FPSIM_CPU_AVX512DQ);
    SET(zmm && (b & (1u << 21)), FPSIM_CPU_AVX512IFMA);
    SET(zmm && (b & (1u << 28)), FPSIM_CPU_AVX512CD);
    SET(zmm && (b & (1u << 30)), FPSIM_CPU_AVX512BW);
    SET(zmm && (b & (1u << 31)), FPSIM_CPU_AVX512VL);
    SET(zmm && (c & (1u << 1)), FPSIM_CPU_AVX512VBMI);
    SET(zmm && (c & (1u << 6)), FPSIM_CPU_AVX512VBMI2);
    SET(c & (1u << 8), FPSIM_CPU_GFNI);
    SET(ymm && (c & (1u << 9)), FPSIM_CPU_VAES);
    SET(ymm && (c & (1u << 10)), FPSIM_CPU_VPCLMULQDQ);
    SET(zmm && (c & (1u << 11)), FPSIM_CPU_AVX512VNNI);
    SET(zmm && (c & (1u << 12)), FPSIM_CPU_AVX512BITALG);
    SET(zmm && (c & (1u << 14)), FPSIM_CPU_AVX512VPOPCNTDQ);
    if (leaf7max >= 1) {
      __cpuid_count(7, 1, a, b, c, d);
      SET(ymm && (a & (1u << 4)), FPSIM_CPU_AVXVNNI);
      SET(zmm && (a & (1u << 5)), FPSIM_CPU_AVX512BF16);
    }
  }
#undef SET
#endif
  return m;
}

// The names in FPSIM_TEST_CPU_LACKS as a mask; exits 2 on an unknown name.
static uint64_t pretended_missing(void) {
  const char *text = getenv("FPSIM_TEST_CPU_LACKS");
  if (text == NULL || *text == 0) return 0;
  uint64_t m = 0;
  const char *p = text;
  while (*p) {
    size_t n = strcspn(p, ",");
    int found = 0;
    for (int f = 0; f < FPSIM_CPU_FEATURE_COUNT; f++) {
      if (strlen(names[f]) == n && strncmp(names[f], p, n) == 0) {
        m |= FPSIM_BIT(f);
        found = 1;
      }
    }
    if (!found && n > 0) {
      fprintf(stderr, "fpsim: error: FPSIM_TEST_CPU_LACKS: unknown CPU feature '%.*s': use the names of /proc/cpuinfo, as avx512f,avx2\n", (int)n, p);
      exit(2);
    }
    p += n;
    if (*p == ',') p++;
  }
  return m;
}

void fpsim_require_cpu_features(uint64_t built) {
  uint64_t missing = built & ~(fpsim_cpu_features() & ~pretended_missing());
  if (missing == 0) return;
  // "avx512f, avx512bw" (the names fit easily: at most 36 of at most 17 characters).
  char list[1024] = "";
  int count = 0;
  for (int f = 0; f < FPSIM_CPU_FEATURE_COUNT; f++) {
    if (!(missing & FPSIM_BIT(f))) continue;
    if (count++) strcat(list, ", ");
    strcat(list, names[f]);
  }
  fprintf(stderr,
          "fpsim: error: this fpsim was built for a CPU with %s; this CPU lacks %s: rebuild on this machine, "
          "or build a portable binary with FPSIM_PORTABLE=1 swift build -c release\n",
          list, count == 1 ? "it" : "them");
  exit(2);
}
