import ArgumentParser
import FPStudy
import Foundation

/// `fpsim report FILE... --out PAGE.html`: one self-contained HTML page of grid and run files.
struct ReportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "report",
    abstract: "Draw grid and run files as one self-contained HTML page (inline SVG, no network).",
    discussion: """
      Grids: loss and validation curves per format or recipe (median over seeds, min-max band), the \
      stability map, final validation loss against bits removed with 95% intervals, paired differences \
      to the baseline, sharpness and operand telemetry. Runs: curves, telemetry and histograms of the \
      last snapshot, several runs side by side. Every plot is followed by a table of its numbers.
      """)

  @Argument(help: "Grid or run files (HDF5).")
  var files: [String]

  @Option(help: "The page to write (written atomically).")
  var out: String

  @Option(help: "Baseline format or recipe of the paired differences (default: each grid's first).")
  var baseline: String?

  @Option(help: "Tolerance in nats for the fewest-bits answer of bit-reduction grids.")
  var tolerance: Double = 0.05

  @Flag(help: "Log-scaled step axes.")
  var logSteps = false

  func validate() throws {
    guard tolerance >= 0, tolerance.isFinite else { throw CLIError("--tolerance must be a non-negative number of nats, as 0.05") }
    guard out.hasSuffix(".html") || out.hasSuffix(".htm") else { throw CLIError("--out '\(out)': give a page name ending in .html") }
  }

  func run() throws {
    let command = (["fpsim"] + CommandLine.arguments.dropFirst()).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
    let options = ReportOptions(
      logSteps: logSteps, baseline: baseline, tolerance: tolerance, command: command,
      fpsimVersion: FPSim.configuration.version)
    try Report.write(paths: files, to: out, options: options)
    let size = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
    print("\(out): \(files.count) file(s), \(size / 1024) KiB")
  }
}
