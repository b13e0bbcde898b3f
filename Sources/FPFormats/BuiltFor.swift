import CCPUFeatures

/// The CPU features this code was compiled for (Package.swift's `-target-cpu`), as constants once
/// compiled: `fpsim_built_features` is a static inline C function, compiled with the CPU flags of the
/// Swift module that inlines it, so a kernel can choose its form for the instructions it will have.
public enum BuiltFor {
  /// AVX-512 (F): 32 vector registers of 512 bits, and comparisons into mask registers.
  @inlinable public static var avx512: Bool {
    fpsim_built_features() & (UInt64(1) << UInt64(FPSIM_CPU_AVX512F)) != 0
  }
}
