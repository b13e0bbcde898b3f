import Foundation
import Testing

/// `fpsim bench attention` through the built binary, at small shapes (the times themselves are not
/// checked: no wall-clock assertions).
@Suite struct BenchAttentionCommandTests {
  /// The GFLOP are the closed form of the causal products (2 T (T + 1) hs per pair forward, twice that
  /// backward); `blocked` says whether the head size lets the blocked kernels run.
  @Test(arguments: [(T: 13, C: 48, NH: 3, blocked: true), (T: 9, C: 30, NH: 3, blocked: false)])
  func reportsTheCausalWorkAndBothKernelsTimes(shape: (T: Int, C: Int, NH: Int, blocked: Bool)) throws {
    let r = try CLI.run([
      "bench", "attention", "--batch", "2", "--context", "\(shape.T)", "--width", "\(shape.C)", "--heads", "\(shape.NH)",
      "--threads", "2", "--repeats", "3", "--json",
    ])
    #expect(r.status == 0, "\(r.stderr)")
    let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    let pairs = 2 * shape.NH, hs = shape.C / shape.NH
    let forward = Double(2 * shape.T * (shape.T + 1) * hs * pairs) / 1e9
    #expect(abs((json["forward_gflop"] as? Double ?? 0) - forward) <= 1e-12 * forward)
    #expect(abs((json["backward_gflop"] as? Double ?? 0) - 2 * forward) <= 1e-12 * forward)
    #expect(json["blocked"] as? Bool == shape.blocked)
    #expect(json["context"] as? Int == shape.T && json["threads"] as? Int == 2 && json["repeats"] as? Int == 3)
    for key in ["forward_ms", "backward_ms", "reference_forward_ms", "reference_backward_ms"] {
      #expect((json[key] as? Double ?? 0) > 0, "\(key)")
    }
  }

  @Test func theTableNamesTheShapeAndBothKernels() throws {
    let r = try CLI.run(["bench", "attention", "--batch", "1", "--context", "16", "--width", "32", "--heads", "2", "--repeats", "1"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.hasPrefix("attention B=1 T=16 C=32 heads=2, threads=1, median of 1\n"))
    #expect(r.stdout.contains("  forward: ") && r.stdout.contains("  backward:") && r.stdout.contains("reference"))
  }

  @Test(arguments: [
    (["--width", "100", "--heads", "3"], "--width"), (["--heads", "0"], "--heads"), (["--repeats", "0"], "--repeats"),
    (["--context", "-1"], "--context"), (["--threads", "0"], "--threads"),
  ])
  func badInputIsOneLineAndExitStatus2(extra: [String], named: String) throws {
    let r = try CLI.run(["bench", "attention"] + extra)
    #expect(r.status == 2)
    #expect(r.stdout.isEmpty)
    let lines = r.stderr.split(separator: "\n")
    #expect(lines.count == 1 && lines[0].contains(named), "\(r.stderr)")
  }
}
