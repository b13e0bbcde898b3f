import FPStore
import Foundation
import Testing

@testable import FPStudy

/// `fpsim bench grid`'s check that grids run with different worker counts hold the same `/results`:
/// the comparison is of bit patterns, so it sees what `==` on floats misses (a -0 for a +0, one NaN
/// for another) and NaNs compare equal to themselves.
@Suite(.serialized) struct GridBenchmarkTests {
  /// A file with `/results` holding the compared arrays, `loss` given, the others fixed.
  static func resultsFile(_ dir: URL, _ name: String, loss: [Float], withEval: Bool = true) throws -> H5File {
    let file = try H5File.create(dir.appendingPathComponent(name).path)
    let g = try file.root.requireGroup("results")
    for array in GridBenchmark.ResultBits.names where array != "loss" && (withEval || array != "eval_loss") {
      try g.createDataset(array, values: [Float(1.5), .nan, 2.25])
    }
    try g.createDataset("loss", values: loss)
    return file
  }

  @Test func equalBitsCompareEqualAndOneFlippedBitDoesNot() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fpsim-gridbench-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let loss: [Float] = [3.25, 0, .nan, .leastNonzeroMagnitude]
    let files = try [
      Self.resultsFile(dir, "a.h5", loss: loss),
      Self.resultsFile(dir, "same.h5", loss: loss),
      Self.resultsFile(dir, "negzero.h5", loss: [3.25, -0.0, .nan, .leastNonzeroMagnitude]),
      Self.resultsFile(dir, "ulp.h5", loss: [Float(3.25).nextUp, 0, .nan, .leastNonzeroMagnitude]),
      Self.resultsFile(dir, "noeval.h5", loss: loss, withEval: false),
    ]
    defer { for f in files { try? f.close() } }
    let bits = try files.map(GridBenchmark.ResultBits.init)
    #expect(bits[0] == bits[1])  // NaN included
    #expect(bits[0] != bits[2])  // -0 == +0 as floats, not as bits
    #expect(bits[0] != bits[3])
    #expect(bits[0] != bits[4])  // eval_loss missing in one grid
  }

  @Test func theSpecIsAGridSpecOfTheGivenSize() throws {
    let bench = GridBenchmark(
      model: "gpt-micro", recipe: "uniform:e4m3fn:stochastic", runs: 3, steps: 7, evalEvery: 2, lr: 3e-3, jobs: [1, 2],
      threads: 1, data: "/some \"quoted\" folder", directory: "/tmp", executable: "/bin/false")
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fpsim-gridbench-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("spec.toml").path
    try Data(bench.specText.utf8).write(to: URL(fileURLWithPath: path))
    let spec = try GridSpec(file: path)
    #expect(spec.runCount == 3 && spec.seeds == [0, 1, 2] && spec.lrs == [3e-3] && spec.steps == 7 && spec.evalEvery == 2)
    #expect(spec.recipes == ["uniform:e4m3fn:stochastic"] && spec.model == "gpt-micro" && spec.threads == 1)
    #expect(spec.data == "/some \"quoted\" folder")
  }
}
