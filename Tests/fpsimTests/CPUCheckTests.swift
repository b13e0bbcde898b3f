import CCPUFeatures
import Foundation
import Testing

/// The start-up CPU check (Sources/CCPUFeatures, CPUCheck.swift): fpsim refuses, with one line and exit 2,
/// to run on a CPU that lacks a feature it was compiled for. This test module is compiled with the same
/// Swift settings as the fpsim module (Package.swift's `native`), so `fpsim_built_features()` here is the
/// binary's mask too.
@Suite struct CPUCheckTests {
  static let names: [String] = (0..<Int(FPSIM_CPU_FEATURE_COUNT)).map { String(cString: fpsim_cpu_feature_name(Int32($0))!) }

  static func mask(_ m: UInt64) -> [String] { names.indices.filter { m & (1 << UInt64($0)) != 0 }.map { names[$0] } }

  static func environment(lacking: String) -> [String: String] {
    var e = ProcessInfo.processInfo.environment
    e["FPSIM_TEST_CPU_LACKS"] = lacking
    return e
  }

  static func refusal(_ missing: [String]) -> String {
    "fpsim: error: this fpsim was built for a CPU with \(missing.joined(separator: ", ")); this CPU lacks "
      + (missing.count == 1 ? "it" : "them")
      + ": rebuild on this machine, or build a portable binary with FPSIM_PORTABLE=1 swift build -c release\n"
  }

  /// CPUID as read by the C shim against an independent reader: the kernel's flags in /proc/cpuinfo
  /// (which also drops AVX and AVX-512 when the OS does not save their registers).
  @Test func cpuFeaturesAgreeWithProcCpuinfo() throws {
    #if arch(x86_64)
    let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
    let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("flags") })
    let flags = Set(line.split(separator: ":")[1].split(separator: " ").map(String.init))
    let detected = Set(Self.mask(fpsim_cpu_features()))
    for name in Self.names {
      let kernelName = name == "sse3" ? "pni" : name  // the kernel's name for SSE3 ("Prescott New Instructions")
      #expect(detected.contains(name) == flags.contains(kernelName), "\(name): CPUID says \(detected.contains(name)), /proc/cpuinfo \(flags.contains(kernelName))")
    }
    #endif
  }

  /// The binary runs here (it was built here), and a binary built for a feature the CPU lacks refuses,
  /// naming that feature and the fix, before doing anything.
  @Test func refusesWhenABuiltForFeatureIsMissing() throws {
    let built = Self.mask(fpsim_built_features())
    #if arch(x86_64)
    #expect(built.contains("sse2"))  // every x86-64 build, the portable one too
    #endif
    guard let last = built.last else { return }  // not x86-64: nothing is checked
    let ok = try CLI.run(["formats"])
    #expect(ok.status == 0 && ok.stderr.isEmpty)

    let one = try CLI.run(["formats"], environment: Self.environment(lacking: last))
    #expect(one.status == 2)
    #expect(one.stdout.isEmpty)
    #expect(one.stderr == Self.refusal([last]))

    // Two missing, given in the other order: named in the table's order.
    let two = [built.first!, last]
    let both = try CLI.run(["quantize", "1.5", "--format", "e4m3fn"], environment: Self.environment(lacking: "\(last),\(built.first!)"))
    #expect(both.status == 2)
    #expect(both.stdout.isEmpty)
    #expect(both.stderr == Self.refusal(two))
  }

  /// Lacking a feature the build does not use is no reason to refuse.
  @Test func ignoresFeaturesItWasNotBuiltFor() throws {
    let built = Set(Self.mask(fpsim_built_features()))
    guard let unused = Self.names.first(where: { !built.contains($0) }) else { return }  // built for all of them
    let r = try CLI.run(["formats"], environment: Self.environment(lacking: unused))
    #expect(r.status == 0)
    #expect(r.stderr.isEmpty)
  }

  @Test func unknownFeatureNameInTheTestHookIsAnError() throws {
    let r = try CLI.run(["formats"], environment: Self.environment(lacking: "avx9000"))
    #expect(r.status == 2)
    #expect(r.stdout.isEmpty)
    #expect(r.stderr == "fpsim: error: FPSIM_TEST_CPU_LACKS: unknown CPU feature 'avx9000': use the names of /proc/cpuinfo, as avx512f,avx2\n")
  }
}
