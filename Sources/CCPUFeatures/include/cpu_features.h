// The CPU features a binary was compiled for, and the start-up check that the running CPU has them.
//
// Release builds use `-target-cpu native` (Package.swift), so the Swift code may contain AVX2 or AVX-512
// instructions that an older node of a cluster cannot execute: it would die with SIGILL somewhere in the
// middle of a run. `fpsim_require_cpu_features(fpsim_built_features())`, called first thing in `main`,
// turns that into one line and exit status 2.
//
// How the two halves learn their answers:
// - `fpsim_built_features` is `static inline`, so it is compiled into the *calling* Swift module, whose
//   Clang importer sees the Swift target's CPU: the `__AVX512F__`-style macros below are the ones that the
//   Swift code was compiled with (checked by the test CPUFeatureCheckTests, which builds this header into a
//   module of the same flags, and by a portable build, whose mask is SSE/SSE2 only).
// - `fpsim_cpu_features` and `fpsim_require_cpu_features` live in cpu_features.c, a C target that gets no
//   `-target-cpu` flag: baseline x86-64 code, safe to run on any x86-64 CPU. They read CPUID and XGETBV
//   (the OS must also save the AVX / AVX-512 register state for those features to be usable).
#ifndef FPSIM_CPU_FEATURES_H
#define FPSIM_CPU_FEATURES_H

#include <stdint.h>

// One bit per feature; the names (lower case, as in /proc/cpuinfo, except sse3, "pni" there) are in
// cpu_features.c.
enum {
  FPSIM_CPU_SSE = 0,
  FPSIM_CPU_SSE2,
  FPSIM_CPU_SSE3,
  FPSIM_CPU_SSSE3,
  FPSIM_CPU_SSE4_1,
  FPSIM_CPU_SSE4_2,
  FPSIM_CPU_POPCNT,
  FPSIM_CPU_CX16,
  FPSIM_CPU_PCLMUL,
  FPSIM_CPU_AES,
  FPSIM_CPU_MOVBE,
  FPSIM_CPU_AVX,
  FPSIM_CPU_F16C,
  FPSIM_CPU_FMA,
  FPSIM_CPU_AVX2,
  FPSIM_CPU_BMI,
  FPSIM_CPU_BMI2,
  FPSIM_CPU_LZCNT,
  FPSIM_CPU_ADX,
  FPSIM_CPU_SHA,
  FPSIM_CPU_AVXVNNI,
  FPSIM_CPU_AVX512F,
  FPSIM_CPU_AVX512CD,
  FPSIM_CPU_AVX512DQ,
  FPSIM_CPU_AVX512BW,
  FPSIM_CPU_AVX512VL,
  FPSIM_CPU_AVX512IFMA,
  FPSIM_CPU_AVX512VBMI,
  FPSIM_CPU_AVX512VBMI2,
  FPSIM_CPU_AVX512VNNI,
  FPSIM_CPU_AVX512BITALG,
  FPSIM_CPU_AVX512VPOPCNTDQ,
  FPSIM_CPU_AVX512BF16,
  FPSIM_CPU_GFNI,
  FPSIM_CPU_VAES,
  FPSIM_CPU_VPCLMULQDQ,
  FPSIM_CPU_FEATURE_COUNT
};

#define FPSIM_BIT(f) (UINT64_C(1) << (f))

/// The features enabled where this header is compiled: in a Swift module, its `-target-cpu`.
static inline uint64_t fpsim_built_features(void) {
  uint64_t m = 0;
#if defined(__x86_64__)
#ifdef __SSE__
  m |= FPSIM_BIT(FPSIM_CPU_SSE);
#endif
#ifdef __SSE2__
  m |= FPSIM_BIT(FPSIM_CPU_SSE2);
#endif
#ifdef __SSE3__
  m |= FPSIM_BIT(FPSIM_CPU_SSE3);
#endif
#ifdef __SSSE3__
  m |= FPSIM_BIT(FPSIM_CPU_SSSE3);
#endif
#ifdef __SSE4_1__
  m |= FPSIM_BIT(FPSIM_CPU_SSE4_1);
#endif
#ifdef __SSE4_2__
  m |= FPSIM_BIT(FPSIM_CPU_SSE4_2);
#endif
#ifdef __POPCNT__
  m |= FPSIM_BIT(FPSIM_CPU_POPCNT);
#endif
#ifdef __GCC_HAVE_SYNC_COMPARE_AND_SWAP_16
  m |= FPSIM_BIT(FPSIM_CPU_CX16);
#endif
#ifdef __PCLMUL__
  m |= FPSIM_BIT(FPSIM_CPU_PCLMUL);
#endif
#ifdef __AES__
  m |= FPSIM_BIT(FPSIM_CPU_AES);
#endif
#ifdef __MOVBE__
  m |= FPSIM_BIT(FPSIM_CPU_MOVBE);
#endif
#ifdef __AVX__
  m |= FPSIM_BIT(FPSIM_CPU_AVX);
#endif
#ifdef __F16C__
  m |= FPSIM_BIT(FPSIM_CPU_F16C);
#endif
#ifdef __FMA__
  m |= FPSIM_BIT(FPSIM_CPU_FMA);
#endif
#ifdef __AVX2__
  m |= FPSIM_BIT(FPSIM_CPU_AVX2);
#endif
#ifdef __BMI__
  m |= FPSIM_BIT(FPSIM_CPU_BMI);
#endif
#ifdef __BMI2__
  m |= FPSIM_BIT(FPSIM_CPU_BMI2);
#endif
#ifdef __LZCNT__
  m |= FPSIM_BIT(FPSIM_CPU_LZCNT);
#endif
#ifdef __ADX__
  m |= FPSIM_BIT(FPSIM_CPU_ADX);
#endif
#ifdef __SHA__
  m |= FPSIM_BIT(FPSIM_CPU_SHA);
#endif
#ifdef __AVXVNNI__
  m |= FPSIM_BIT(FPSIM_CPU_AVXVNNI);
#endif
#ifdef __AVX512F__
  m |= FPSIM_BIT(FPSIM_CPU_AVX512F);
#endif
#ifdef __AVX512CD__
  m |= FPSIM_BIT(FPSIM_CPU_AVX512CD);
#endif
#ifdef __AVX512DQ__
  m |= FPSIM_BIT(FPSIM_CPU_AVX512DQ);
#endif
#ifdef __AVX512BW__
  m |= FPSIM_BIT(FPSIM_CPU_AVX512BW);
#endif
#ifdef __AVX512VL__
  m |= FPSIM_BIT(FPSIM_CPU_AVX512VL);
#endif
#ifdef __AVX512IFMA__
  m |= FPSIM_BIT(FPSIM_CPU_AVX512IFMA);
#endif
#ifdef __AVX512VBMI__
  m |= FPSIM_BIT(FPSIM_CPU_AVX512VBMI);
#endif
#ifdef __AVX512VBMI2__
  m |= FPSIM_BIT(FPSIM_CPU_AVX512VBMI2);
#endif
#ifdef __AVX512VNNI__
  m |= FPSIM_BIT(FPSIM_CPU_AVX512VNNI);
#endif
#ifdef __AVX512BITALG__
  m |= FPSIM_BIT(FPSIM_CPU_AVX512BITALG);
#endif
#ifdef __AVX512VPOPCNTDQ__
  m |= FPSIM_BIT(FPSIM_CPU_AVX512VPOPCNTDQ);
#endif
#ifdef __AVX512BF16__
  m |= FPSIM_BIT(FPSIM_CPU_AVX512BF16);
#endif
#ifdef __GFNI__
  m |= FPSIM_BIT(FPSIM_CPU_GFNI);
#endif
#ifdef __VAES__
  m |= FPSIM_BIT(FPSIM_CPU_VAES);
#endif
#ifdef __VPCLMULQDQ__
  m |= FPSIM_BIT(FPSIM_CPU_VPCLMULQDQ);
#endif
#endif
  return m;
}

/// The features of the running CPU that the OS also enables (CPUID, and XGETBV for the AVX and AVX-512
/// register state). 0 off x86-64, where nothing is checked.
uint64_t fpsim_cpu_features(void);

/// The name of feature bit `f` (as in /proc/cpuinfo, except sse3), or NULL past the end.
const char *fpsim_cpu_feature_name(int f);

/// The start-up check. The running CPU's features, less those named in the test-only environment variable
/// FPSIM_TEST_CPU_LACKS (a comma-separated list of names, "avx512f,avx2": it pretends this CPU lacks
/// them, so that the refusal can be tested on a machine that has everything), must include `built`.
/// Otherwise prints one line `fpsim: error: this fpsim was built for a CPU with ...; this CPU lacks ...`
/// with the fix on standard error and exits 2. An unknown name in FPSIM_TEST_CPU_LACKS exits 2 as well.
/// Baseline code only, so it runs on any x86-64 CPU.
void fpsim_require_cpu_features(uint64_t built);

#endif
