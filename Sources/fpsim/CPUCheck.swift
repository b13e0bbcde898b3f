import CCPUFeatures

/// The start-up check that this CPU can run this binary (cpu_features.h).
///
/// Release builds use `-target-cpu native` (Package.swift): moved to an older node of a cluster, the
/// binary would die with SIGILL in the middle of a run. `require()` compares the features this module was
/// compiled for with the running CPU's (CPUID, in baseline C) and, if any is missing, prints one line
/// naming them and the fix (`FPSIM_PORTABLE=1 swift build -c release`) and exits 2.
///
/// Test-only: `FPSIM_TEST_CPU_LACKS=avx512f,avx2` pretends the CPU lacks those features, so that the
/// refusal can be tested on a machine that has them (Tests/fpsimTests/CPUCheckTests.swift).
enum CPUCheck {
  /// Call first thing in `main`, before any code that may use the built-for instructions. The mask is a
  /// constant folded in here (the header's `#ifdef`s, seen with this module's target CPU); the rest is C.
  static func require() {
    fpsim_require_cpu_features(fpsim_built_features())
  }
}
