import Foundation
import Testing

/// The repository root (for scripts/ and data/).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
  .deletingLastPathComponent().path

/// Compares fpsim files pairwise with scripts/compare_runs.py (h5py: every dataset's bytes, dtype, shape,
/// chunks and filters, every attribute, except wall times and `created`); one line per pair.
func compareRuns(_ pairs: [(String, String)]) throws -> [String] {
  let p = Process()
  p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  p.arguments = ["python3", repositoryRoot + "/scripts/compare_runs.py"] + pairs.flatMap { [$0.0, $0.1] }
  let out = Pipe(), err = Pipe()
  p.standardOutput = out
  p.standardError = err
  try p.run()
  let data = out.fileHandleForReading.readDataToEndOfFile()
  let errData = err.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
  guard lines.count == pairs.count else {
    throw CLIError("compare_runs.py failed (pip install h5py numpy): \(String(decoding: errData, as: UTF8.self))")
  }
  return lines
}

/// Crash tests in the spirit of SQLite's: `fpsim train` is SIGKILLed at seeded random moments (while
/// it starts, trains, writes a unit, publishes the file; during a resume, and a second time during a
/// resume), then resumed until it finishes. The finished file must equal, in every dataset and
/// attribute except wall times, the file of a run never killed; and after every kill the `--out` path
/// must hold nothing or a finished run.
@Suite(.serialized) struct CrashTests {
  struct Case: Sendable, CustomTestStringConvertible {
    let name: String
    let arguments: [String]
    let trials: Int
    var testDescription: String { name }
  }

  static let cases: [Case] = [
    // Small and fast: many trials. Stochastic rounding, so a wrong restore shows in the bits.
    Case(name: "mlp", arguments: ["--model", "mlp", "--recipe", "uniform:e4m3fn:stochastic", "--steps", "60",
                                  "--checkpoint-every", "4", "--snapshot-every", "10", "--eval-every", "15", "--seed", "3"],
         trials: 8),
    Case(name: "gpt-micro", arguments: ["--model", "gpt-micro", "--recipe", "uniform:e4m3fn:stochastic", "--steps", "40",
                                        "--checkpoint-every", "7", "--snapshot-every", "10", "--snapshot-tensors", "transformer.wte.weight,grad/transformer.h.0.attn.c_attn.weight",
                                        "--eval-every", "20"],
         trials: 3),
    // Diverges at step 21 and stops at step 31, after its last evaluation at 25.
    Case(name: "gpt-micro diverging", arguments: ["--model", "gpt-micro", "--recipe", "uniform:e5m2", "--lr", "3", "--steps", "200",
                                                  "--checkpoint-every", "5", "--eval-every", "25", "--divergence-patience", "10"],
         trials: 2),
  ]

  /// The steps of the units in a run's folder.
  static func unitSteps(_ folder: String) -> [Int] {
    ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).compactMap { name in
      name.hasPrefix("unit_") && name.hasSuffix(".h5") ? Int(name.dropFirst(5).dropLast(3)) : nil
    }
  }

  /// Starts fpsim and SIGKILLs it `microseconds` after it started, or, with `afterNewUnitIn`, that long
  /// after a unit newer than those already in the folder appears (so a resume is killed while it
  /// works, not only while it starts); returns whether it was killed (false: it ended first).
  static func startAndKill(_ arguments: [String], after microseconds: Int, afterNewUnitIn folder: String? = nil) throws -> Bool {
    let p = Process()
    p.executableURL = CLI.executable
    p.arguments = arguments
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    p.standardInput = FileHandle.nullDevice
    let newest = folder.map { Self.unitSteps($0).max() ?? 0 } ?? 0
    try p.run()
    if let folder {
      while p.isRunning && (Self.unitSteps(folder).max() ?? 0) <= newest { usleep(500) }
    }
    let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(microseconds) * 1000
    while p.isRunning && DispatchTime.now().uptimeNanoseconds < deadline { usleep(1000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
    return p.terminationReason == .uncaughtSignal
  }

  @Test(arguments: cases)
  func killedAtRandomMomentsAndResumedEqualsAnUninterruptedRun(_ c: Case) throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let base = ["train"] + c.arguments + ["--data", dataDirectory]
    let reference = dir.appendingPathComponent("reference.h5").path
    let started = DispatchTime.now().uptimeNanoseconds
    let straight = try CLI.run(base + ["--out", reference])
    try #require(straight.status == 0, "\(straight.stderr)")
    // Kill moments are spread over 1.2 times the duration of this run (only to aim the kills: the
    // assertions below hold whenever a kill lands).
    let span = max(20_000, Int((DispatchTime.now().uptimeNanoseconds - started) / 1000) * 6 / 5)

    var pairs: [(String, String)] = []
    var kills = 0, killsDuringResume = 0
    for trial in 0..<c.trials {
      var rng = SeededRandom(seed: UInt64(trial) &* 7919 &+ UInt64(c.name.utf8.count))
      let out = dir.appendingPathComponent("t\(trial).h5").path
      let unit0 = out + ".partial/unit_000000000.h5"
      let plannedKills = 2 + Int(rng.next() % 2)  // the first while starting, the others while resuming
      for k in 0..<plannedKills {
        if FileManager.default.fileExists(atPath: out) { break }  // finished before it could be killed
        let resuming = FileManager.default.fileExists(atPath: unit0)
        let arguments = resuming ? ["train", "--resume", out] : base + ["--out", out]
        // Early kills are over-represented: starting and the first units are where writes cluster.
        // A resume is killed within 30 ms of publishing its first unit of this session, or while starting.
        // The first trial's first kill lands within 5 ms of the start, before any run could finish
        // (the re-exec for the BLAS kernel alone takes longer), so every case kills at least once
        // however fast the machine runs.
        let moment = trial == 0 && k == 0 ? Int(rng.next() % 5_000)
          : k == 0 && rng.next() % 4 == 0 ? Int(rng.next() % 30_000)
          : resuming ? Int(rng.next() % 30_000) : Int(rng.next() % UInt64(span))
        let watch = resuming && rng.next() % 4 != 0 ? out + ".partial" : nil
        if try Self.startAndKill(arguments, after: moment, afterNewUnitIn: watch) {
          kills += 1
          if resuming { killsDuringResume += 1 }
        }
        // Whenever the kill landed, the --out name holds nothing or a finished run.
        if FileManager.default.fileExists(atPath: out) {
          let r = try CLI.run(["train", "--resume", out])
          #expect(r.status == 2 && r.stderr.contains("no unfinished run"), "trial \(trial): \(r.stderr)")
        }
      }
      if !FileManager.default.fileExists(atPath: out) {
        // A run killed before its first unit was published cannot be resumed (its configuration is
        // not on disk yet): it is started again, and the broken folder is set aside.
        let resuming = FileManager.default.fileExists(atPath: unit0)
        let r = try CLI.run(resuming ? ["train", "--resume", out] : base + ["--out", out])
        #expect(r.status == 0, "trial \(trial) (\(resuming ? "resume" : "restart")): \(r.stderr)")
      }
      #expect(!FileManager.default.fileExists(atPath: out + ".partial"), "trial \(trial): the folder outlived the run")
      let leftovers = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasPrefix("t\(trial).h5.tmp-") }
      #expect(leftovers.isEmpty, "trial \(trial): \(leftovers)")
      pairs.append((reference, out))
    }
    for (i, line) in try compareRuns(pairs).enumerated() {
      #expect(line.hasPrefix("same"), "trial \(i) of \(c.name): \(line)")
    }
    print("\(c.name): \(c.trials) trials, \(kills) kills (\(killsDuringResume) during a resume)")
    #expect(kills > 0, "no run was killed: the harness tested nothing")
  }
}
