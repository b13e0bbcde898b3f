import Foundation
import Testing

/// A grid whose worker `fpsim train` is SIGKILLed mid-run: the grid reports that run failed, and a
/// rerun resumes it from its units (nothing left behind blocks it) and ends with the results of a
/// grid never killed. Uses today's grid (it asks `RunFileWriter.reopen`, which now answers from
/// `TrainingRuns.state`).
@Suite(.serialized) struct GridWorkerKillTests {
  /// The pids of the children of `pid`, from /proc/<pid>/stat (field 4 is the parent pid).
  static func children(of pid: Int32) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { e -> Int32? in
      guard let child = Int32(e), let stat = try? String(contentsOfFile: "/proc/\(e)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
      else { return nil }
      let fields = stat[stat.index(after: close)...].split(separator: " ")
      return fields.count > 2 && Int32(fields[1]) == pid ? child : nil
    }
  }

  @Test func aKilledWorkerIsResumedByTheNextRun() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    func args(_ out: String) -> [String] {
      ["grid", "--model", "gpt-micro", "--formats", "e8m5,e8m3", "--rounding", "stochastic", "--lrs", "0.003", "--seeds", "0",
       "--steps", "120", "--eval-every", "40", "--checkpoint-every", "10", "--jobs", "1", "--data", dataDirectory, "--out", out]
    }
    let straight = dir.appendingPathComponent("straight.h5").path, killed = dir.appendingPathComponent("killed.h5").path
    #expect(try CLI.run(args(straight)).status == 0)

    let grid = Process()
    grid.executableURL = CLI.executable
    grid.arguments = args(killed)
    grid.standardOutput = FileHandle.nullDevice
    grid.standardError = FileHandle.nullDevice
    try grid.run()
    // Kill the first worker once it has published a few units.
    let runs = dir.appendingPathComponent("killed.runs").path
    var killedWorker = false
    while grid.isRunning && !killedWorker {
      let partial = ((try? FileManager.default.contentsOfDirectory(atPath: runs)) ?? []).filter { $0.hasSuffix(".partial") }
      let units = partial.flatMap { ((try? FileManager.default.contentsOfDirectory(atPath: runs + "/" + $0)) ?? []).filter { $0.hasPrefix("unit_") && $0.hasSuffix(".h5") } }
      if units.count >= 3, let worker = Self.children(of: grid.processIdentifier).first {
        kill(worker, SIGKILL)
        killedWorker = true
      }
      usleep(5_000)
    }
    grid.waitUntilExit()
    #expect(killedWorker, "the grid finished before its worker could be killed")
    #expect(grid.terminationStatus != 0, "a grid whose worker was killed reports the failed run")
    let rerun = try CLI.run(args(killed))
    #expect(rerun.status == 0, "\(rerun.stderr)")
    #expect(try resultsDigest(straight) == (try resultsDigest(killed)))
  }
}
