import ArgumentParser
import FPStore
import Foundation

/// `StoreCrashWriter FILE`: the writer that FPStore's crash test (Tests/FPStoreTests/AtomicTests)
/// kills mid-unit. A program of its own, built beside fpsim but not installed with it.
///
/// Publishes `--units` units `/runs/uNNN` into an `fpsim/run` file, each a growable float32
/// dataset `values` written in 16 appends (value k of unit i is `i * 1_000_000 + k`) and the
/// attributes `index` and, last, `complete = 1`. With `--pause-in-unit N` it stops halfway through
/// unit N (after flushing the partial unit to disk with `--flush-partial`), prints `paused N`, and
/// waits to be killed, so the test can SIGKILL it at a known point. It prints `published N` after
/// each unit. Reopening a file discards what an earlier, killed run left under `/.incomplete`.
@main
struct StoreCrashWriter: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "StoreCrashWriter",
    abstract: "Test-only: write units into an HDF5 file, optionally pausing mid-unit to be killed.")

  @Argument var file: String
  @Option var units: Int = 3
  @Option var valuesPerUnit: Int = 65_536
  @Option var pauseInUnit: Int?
  @Flag var flushPartial = false

  func run() throws {
    let store = FileManager.default.fileExists(atPath: file)
      ? try Store.open(file, expecting: .run, mode: .readWrite).file
      : try Store.create(file, schema: .run, config: #"{"self_test": true}"#)
    for key in try store.discardIncompleteUnits() { say("discarded \(key)") }
    let runs = try store.root.requireGroup("runs")
    let first = try runs.children().count
    let parts = 16
    let perPart = max(1, valuesPerUnit / parts)
    for index in first..<(first + units) {
      try runs.publishUnit(String(format: "u%03d", index)) { unit in
        try unit.setAttribute("index", index)
        let values = try unit.createDataset("values", type: .float32, shape: [0], growable: true, chunk: [4096])
        for part in 0..<parts {
          try values.append((0..<perPart).map { Float(index * 1_000_000 + part * perPart + $0) })
          if part == parts / 2 && index == pauseInUnit {
            if flushPartial { try store.flush() }
            say("paused \(index)")
            while true { sleep(60) }
          }
        }
        try unit.setAttribute("complete", 1)
      }
      say("published \(index)")
    }
  }

  /// Unbuffered, so the test reads each line as soon as it is true.
  private func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
  }
}
