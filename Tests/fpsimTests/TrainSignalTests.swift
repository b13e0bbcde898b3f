import Foundation
import Testing

/// SIGTERM, which Slurm sends to every process of a job at `scancel` and at its time limit, stops
/// `fpsim train` after its current step like Ctrl-C: exit 130, the run file intact, and the resumed run ends
/// bit for bit where a run never stopped ends.
@Suite struct TrainSignalTests {
  @Test func sigtermStopsCleanlyAndTheRunResumes() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let a = dir.appendingPathComponent("a.h5").path, b = dir.appendingPathComponent("b.h5").path
    let common = ["train", "--model", "gpt-micro", "--recipe", "uniform:e4m3fn", "--lr", "3e-3", "--seed", "2",
                  "--steps", "300", "--eval-every", "100", "--checkpoint-every", "100", "--data", dataDirectory]
    let straight = try CLI.run(common + ["--out", a])
    #expect(straight.status == 0, "\(straight.stderr)")

    // Start the same run; SIGTERM once its progress passes step 150 (one checkpoint written).
    let p = Process()
    p.executableURL = CLI.executable
    p.arguments = common + ["--out", b]
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    var seen = "", sent = false
    while true {
      let chunk = err.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      seen += String(decoding: chunk, as: UTF8.self)
      let steps = seen.split(separator: "\n").compactMap { line -> Int? in
        guard let r = line.range(of: "step ") else { return nil }
        return Int(line[r.upperBound...].prefix { $0.isNumber })
      }
      if !sent && (steps.last ?? 0) >= 150 {
        kill(p.processIdentifier, SIGTERM)
        sent = true
      }
    }
    p.waitUntilExit()
    #expect(sent, "the run finished before it could be signalled: \(seen)")
    #expect(p.terminationReason == .exit && p.terminationStatus == 130, "ended \(p.terminationReason) \(p.terminationStatus): \(seen)")
    #expect(seen.contains("fpsim: interrupted; continue with: fpsim train --resume \(b)"))

    let resumed = try CLI.run(["train", "--resume", b])
    #expect(resumed.status == 0, "\(resumed.stderr)")
    #expect(resumed.stdout.contains("completed after 300 steps"))
    let same = try python("""
      import h5py
      ra, rb = h5py.File('\(a)', 'r')['runs/run'], h5py.File('\(b)', 'r')['runs/run']
      bad = []
      def visit(name, obj):
          if isinstance(obj, h5py.Dataset) and not name.endswith('step_seconds'):
              x, y = obj[()], rb[name][()]
              if x.shape != y.shape or x.tobytes() != y.tobytes(): bad.append(name)
      ra.visititems(visit)
      print(ra['metrics/train_loss'].shape[0], bad)
      """)
    #expect(same.trimmingCharacters(in: .whitespacesAndNewlines) == "300 []")
  }
}
