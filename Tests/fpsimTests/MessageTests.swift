import Foundation
import Testing

/// One-line errors that name the problem and the fix.
@Suite struct MessageTests {
  static func expectOneLineError(_ r: CLIResult, containing message: String) {
    #expect(r.status == 2)
    #expect(r.stdout.isEmpty)
    #expect(r.stderr.hasPrefix("fpsim: error: ") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    #expect(r.stderr.contains(message), "\(r.stderr)")
  }

  /// A bit pattern given as a value is refused with the flag that reads it, not read as the integer
  /// 1065353216 that its hex digits spell; with --from bits the same token is 1.0.
  @Test(arguments: ["0x3f800000", "1.5 0X3F800000", "-0x1p3"])
  func hexWithoutFromBitsIsRefusedWithTheHint(input: String) throws {
    let token = input.split(separator: " ").last!
    Self.expectOneLineError(
      try CLI.run(["quantize", "--format", "e4m3fn"], stdin: input),
      containing: "'\(token)' looks like a bit pattern: add --from bits")
  }

  /// The kernel-picking variables (benchmark knobs whose two kernels give the same bits) refuse a value
  /// that names no kernel, before any work, instead of silently timing the default kernel.
  @Test(arguments: [("FPSIM_BF16_KERNEL", "fmaa", "dpbf16 or fma"), ("FPSIM_SGEMM", "OpenBLAS", "openblas")])
  func aKernelVariableThatNamesNoKernelIsRefused(variable: String, value: String, values: String) throws {
    var environment = ProcessInfo.processInfo.environment
    environment[variable] = value
    Self.expectOneLineError(
      try CLI.run(["quantize", "--format", "e4m3fn"], stdin: "1.5", environment: environment),
      containing: "\(variable)=\(value) names no kernel: set it to \(values), or unset it")
    environment[variable] = values.components(separatedBy: " or ").last!
    let r = try CLI.run(["quantize", "--format", "e4m3fn"], stdin: "1.5", environment: environment)
    #expect(r.status == 0 && r.stdout == "1.5\n", "\(r.stderr)")
  }

  @Test func hexWithFromBitsReadsTheBitPattern() throws {
    let r = try CLI.run(["quantize", "--format", "e4m3fn", "--from", "bits"], stdin: "0x3f800000")
    #expect(r.status == 0 && r.stdout == "1.0\n", "\(r.stderr)")
  }

  @Test func aListOfLearningRatesPointsToGridLrs() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("x.h5").path
    let r = try CLI.run(["train", "--lr", "1e-3,3e-3", "--model", "linreg", "--steps", "2", "--out", out])
    Self.expectOneLineError(r, containing: "use fpsim grid --lrs 1e-3,3e-3")
    #expect(!FileManager.default.fileExists(atPath: out))
    Self.expectOneLineError(
      try CLI.run(["train", "--lr", "fast", "--model", "linreg", "--out", out]), containing: "write one number")
  }

  /// The documented synonyms work wherever a rounding is taken (README "Rounding and overflow").
  @Test(arguments: [("nearest", "rne"), ("truncate", "rtz"), ("SR", "stochastic"), ("sr:8", "stochastic:8")])
  func roundingSynonymsRoundAsTheirModes(synonym: String, mode: String) throws {
    let input = String(repeating: "1.3 1.0625 -2.7 ", count: 20)
    let a = try CLI.run(["quantize", "--format", "e4m3fn", "--rounding", synonym, "--seed", "5"], stdin: input)
    let b = try CLI.run(["quantize", "--format", "e4m3fn", "--rounding", mode, "--seed", "5"], stdin: input)
    #expect(a.status == 0 && a.stdout == b.stdout, "\(a.stderr)")
  }
}
