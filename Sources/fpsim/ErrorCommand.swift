import ArgumentParser
import FPFormats
import Foundation

/// `fpsim error`: which format loses least on a distribution, before spending hours on training.
struct ErrorCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "error",
    abstract: "Quantization error (MSE, SQNR, saturation, flushes, bits per value) of formats on synthetic distributions.")

  @Option(help: "Comma-separated formats: element formats, block formats ELEM/SCALE/BLOCK, presets.")
  var formats: String

  @Option(help: "Comma-separated distributions: gaussian, laplace, uniform, student-t:NU, outliers[:FRACTION[:SCALE]].")
  var dist: String = "gaussian"

  @Option(help: "Apply a random Hadamard transform of this size (a power of two) before quantizing.")
  var hadamard: Int?

  @Option(help: "Samples per (format, distribution).")
  var n: Int = 262_144

  @Option(help: "Seed of the samples, the Hadamard signs and stochastic rounding.")
  var seed: UInt64 = 0

  @Option(help: "Element rounding.")
  var rounding: String = "rne"

  @Flag(help: "Print JSON.")
  var json = false

  func run() throws {
    guard n > 0 else { throw CLIError("--n must be positive") }
    let fs = try formats.split(separator: ",").map { try AnyFormat(parsing: String($0)) }
    let ds = try dist.split(separator: ",").map { try Distribution(parsing: String($0)) }
    let r = try RoundingMode(parsing: rounding)
    if let h = hadamard { _ = try RandomHadamard(size: h) }
    var results: [ErrorMetrics] = []
    for d in ds {
      for f in fs {
        results.append(try ErrorAnalysis.measure(format: f, distribution: d, count: n, seed: seed, hadamard: hadamard, rounding: r))
      }
    }
    if json {
      try printJSON(results, pretty: true)
      return
    }
    let rows = results.map { m -> [String] in
      [m.distribution, m.format, m.hadamard.map(String.init) ?? "-", String(format2: m.sqnrDB),
       "\(Float(m.mse))", String(format2: 100 * m.saturatedFraction) + "%",
       String(format2: 100 * m.flushedFraction) + "%", String(format2: m.bitsPerValue)]
    }
    print(TextTable.render(
      header: ["distribution", "format", "hadamard", "SQNR dB", "MSE", "saturated", "flushed", "bits/value"], rows: rows),
      terminator: "")
  }
}
