import Foundation
import Testing

/// The committed FP8 study reproduces: `run.sh verify` reruns one of its cells (e8m3, lr 0.03, seed 0)
/// and finds the committed series bit for bit; a committed file changed in one value is caught.
@Suite(.serialized) struct StudyVerifyTests {
  static let study = URL(fileURLWithPath: dataDirectory).deletingLastPathComponent().appendingPathComponent("experiments/fp8-and-back")

  static func verify(results: String) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/bash")
    p.arguments = [study.appendingPathComponent("run.sh").path, "verify"]
    p.environment = ProcessInfo.processInfo.environment.merging(["FPSIM": CLI.executable.path, "RESULTS": results]) { _, b in b }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, text)
  }

  @Test func theCommittedCellReproducesAndATamperedOneDoesNot() throws {
    let good = try Self.verify(results: Self.study.appendingPathComponent("results").path)
    #expect(good.status == 0, "\(good.output)")
    #expect(good.output.contains("bit for bit"), "\(good.output)")

    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let copy = dir.appendingPathComponent("mantissa.h5").path
    try FileManager.default.copyItem(atPath: Self.study.appendingPathComponent("results/mantissa.h5").path, toPath: copy)
    // One training loss of the verified cell, moved by one unit in the last place.
    _ = try python("""
      import h5py, numpy as np
      f = h5py.File('\(copy)', 'r+')
      fmt = [x.decode() if isinstance(x, bytes) else x for x in f['results/format'][:]].index('e8m3')
      lr = list(f['results/lr'][:]).index(0.03)
      loss = f['results/loss']
      v = loss[fmt, lr, 0, 100]
      loss[fmt, lr, 0, 100] = np.nextafter(v, np.float32(np.inf), dtype=np.float32)
      f.close()
      """)
    let bad = try Self.verify(results: dir.path)
    #expect(bad.status == 1, "\(bad.output)")
    #expect(bad.output.contains("DIFFERENT") && bad.output.contains("loss"), "\(bad.output)")
  }
}
