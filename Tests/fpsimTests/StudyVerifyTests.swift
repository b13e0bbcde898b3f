import Foundation
import Testing

/// The committed studies reproduce: each `run.sh verify` reruns one of its cells (FP8: e8m3, lr 0.03,
/// seed 0; FP4: nvfp4, lr 0.003, seed 0) and finds the committed series bit for bit; a committed file
/// changed in one value is caught.
@Suite(.serialized) struct StudyVerifyTests {
  static let experiments = URL(fileURLWithPath: dataDirectory).deletingLastPathComponent().appendingPathComponent("experiments")

  static func verify(_ study: String, results: String) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/bash")
    p.arguments = [experiments.appendingPathComponent("\(study)/run.sh").path, "verify"]
    p.environment = ProcessInfo.processInfo.environment.merging(["FPSIM": CLI.executable.path, "RESULTS": results]) { _, b in b }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, text)
  }

  /// Verifies the committed results of `study`, then a copy of `file` in which the training loss of the
  /// verified cell (label `label` on the first dimension `labels`, learning rate `lr`, seed 0, step 100)
  /// is moved by one unit in the last place: that copy must fail naming `loss`.
  static func check(_ study: String, file: String, labels: String, label: String, lr: Double) throws {
    let good = try verify(study, results: experiments.appendingPathComponent("\(study)/results").path)
    #expect(good.status == 0, "\(good.output)")
    #expect(good.output.contains("bit for bit"), "\(good.output)")

    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let copy = dir.appendingPathComponent(file).path
    try FileManager.default.copyItem(atPath: experiments.appendingPathComponent("\(study)/results/\(file)").path, toPath: copy)
    _ = try python("""
      import h5py, numpy as np
      f = h5py.File('\(copy)', 'r+')
      i = [x.decode() if isinstance(x, bytes) else x for x in f['results/\(labels)'][:]].index('\(label)')
      lr = list(f['results/lr'][:]).index(\(lr))
      loss = f['results/loss']
      v = loss[i, lr, 0, 100]
      loss[i, lr, 0, 100] = np.nextafter(v, np.float32(np.inf), dtype=np.float32)
      f.close()
      """)
    let bad = try verify(study, results: dir.path)
    #expect(bad.status == 1, "\(bad.output)")
    #expect(bad.output.contains("DIFFERENT") && bad.output.contains("loss"), "\(bad.output)")
  }

  @Test func theFP8StudysCommittedCellReproducesAndATamperedOneDoesNot() throws {
    try Self.check("fp8-and-back", file: "mantissa.h5", labels: "format", label: "e8m3", lr: 0.03)
  }

  @Test func theFP4StudysCommittedCellReproducesAndATamperedOneDoesNot() throws {
    try Self.check("fp4-design-space", file: "placement.h5", labels: "recipe", label: "nvfp4", lr: 0.003)
  }
}
