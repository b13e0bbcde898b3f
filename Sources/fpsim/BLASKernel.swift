import FPEngine
import Foundation

/// Which OpenBLAS kernel the GEMMs run on, and the one-time re-exec that picks a fast one.
///
/// Debian's OpenBLAS 0.3.21 is built with DYNAMIC_ARCH: its load-time constructor picks a kernel from
/// CPUID, before `main`. It does not know the AVX-512 Xeons of these machines and falls back to the
/// generic "Prescott" (SSE3) kernel: sgemm 1024^3 at 20-30 GFLOP/s on one core instead of 80-130 with
/// the SkylakeX kernel. The constructor also reads `OPENBLAS_CORETYPE`, so the only remedy from inside
/// the process is to set that variable and exec the same binary again, which `ensureTuned` does.
///
/// Determinism: the kernel is a function of the CPU's flags, the OpenBLAS build and the environment,
/// all fixed for a given machine and binary, so every run there uses the same kernel and the same
/// summation order. A different kernel (another machine, `FPSIM_NO_BLAS_TUNING=1`, an explicit
/// `OPENBLAS_CORETYPE`) may change float32 GEMM results in the last bits; `describe()` names the kernel
/// so that outputs can record it.
enum BLASKernel {
  /// OpenBLAS's override of its CPU detection, read once when the library loads.
  static let coreTypeVariable = "OPENBLAS_CORETYPE"
  /// Set to 1 to keep whatever kernel OpenBLAS detects.
  static let optOutVariable = "FPSIM_NO_BLAS_TUNING"
  /// Set by `ensureTuned` on the re-exec, so that it happens at most once.
  static let reexecMarker = "FPSIM_BLAS_REEXEC"
  /// The kernel chosen on CPUs with AVX-512 F, BW, DQ and VL.
  static let avx512Kernel = "SkylakeX"
  /// OpenBLAS kernels that already use AVX-512: never replaced.
  static let avx512Kernels: Set<String> = ["SkylakeX", "Cooperlake", "SapphireRapids"]

  /// The kernel to force with `OPENBLAS_CORETYPE`, or nil to leave OpenBLAS alone: only when the user
  /// set neither the variable nor the opt-out, this is not already the re-exec, OpenBLAS is loaded
  /// (`detected` is its core name) and chose a kernel without AVX-512 on a CPU that has it.
  static func coreTypeToForce(environment: [String: String], cpuFlags: Set<String>, detected: String?) -> String? {
    if environment[coreTypeVariable] != nil || environment[reexecMarker] != nil { return nil }
    if let v = environment[optOutVariable], !v.isEmpty, v != "0" { return nil }
    guard let detected, !avx512Kernels.contains(detected) else { return nil }
    let needed: Set<String> = ["avx512f", "avx512bw", "avx512dq", "avx512vl"]
    return needed.isSubset(of: cpuFlags) ? avx512Kernel : nil
  }

  /// Call first thing in `main`. Re-execs this binary with `OPENBLAS_CORETYPE=SkylakeX` when
  /// `coreTypeToForce` says so; returns normally otherwise (or if the exec fails, running untuned).
  /// Costs one `dlsym` and one read of /proc/cpuinfo; the re-exec about 10 ms.
  static func ensureTuned() {
    let env = ProcessInfo.processInfo.environment
    // Cheap exits first: no /proc read when the answer does not depend on the CPU.
    if env[coreTypeVariable] != nil || env[reexecMarker] != nil { return }
    let detected = GEMM.openBLASCoreName()
    guard let kernel = coreTypeToForce(environment: env, cpuFlags: cpuFlags(), detected: detected) else { return }
    setenv(coreTypeVariable, kernel, 1)
    setenv(reexecMarker, "1", 1)
    // The GEMMs run OpenBLAS on one thread each (GEMM.swift); without this its own thread pool would
    // start at load and spin for a while on the other cores.
    if env["OPENBLAS_NUM_THREADS"] == nil { setenv("OPENBLAS_NUM_THREADS", "1", 1) }
    execv("/proc/self/exe", CommandLine.unsafeArgv)
    // Only reached if exec failed: carry on with the detected kernel (the library is already loaded).
    unsetenv(coreTypeVariable)
  }

  /// The kernel in effect and how it was chosen, e.g. `SkylakeX (set by fpsim)`, `Haswell
  /// (OPENBLAS_CORETYPE)`, `Prescott (detected)`, or `unknown (not OpenBLAS)`; with `; fpsim's kernel,
  /// same sums` inside the parentheses where fpsim's own kernel computes the products with that
  /// kernel's sums (`GEMM.sgemm`). Readers take the name before ` (`.
  static func describe() -> String {
    guard let name = GEMM.openBLASCoreName() else { return "unknown (not OpenBLAS)" }
    let env = ProcessInfo.processInfo.environment
    let how =
      if env[reexecMarker] != nil && env[coreTypeVariable] != nil { "set by fpsim" }
      else if env[coreTypeVariable] != nil { coreTypeVariable }
      else { "detected" }
    return "\(name) (\(how)\(GEMM.usesOwnKernel ? "; fpsim's kernel, same sums" : ""))"
  }

  /// OpenBLAS's current thread count, or nil when the BLAS is not OpenBLAS.
  static func threads() -> Int? {
    GEMM.openBLASFunction("openblas_get_num_threads", as: (@convention(c) () -> Int32).self).map { Int($0()) }
  }

  /// The `flags` line of /proc/cpuinfo's first processor (empty if unreadable).
  static func cpuFlags() -> Set<String> {
    guard let file = fopen("/proc/cpuinfo", "r") else { return [] }
    defer { fclose(file) }
    var line: UnsafeMutablePointer<CChar>? = nil
    var capacity = 0
    defer { free(line) }
    while getline(&line, &capacity, file) > 0, let line {
      let text = String(cString: line)
      guard text.hasPrefix("flags") || text.hasPrefix("Features"), let colon = text.firstIndex(of: ":") else { continue }
      return Set(text[text.index(after: colon)...].split(whereSeparator: \.isWhitespace).map(String.init))
    }
    return []
  }
}
