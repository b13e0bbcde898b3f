import ArgumentParser
import FPFormats
import FPStudy
import Foundation

/// `fpsim bench quantize`: parses, runs `QuantizeBenchmark` (FPStudy) and prints its result.
struct BenchQuantize: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "quantize",
    abstract: "Elements per second of in-place quantization, next to a plain copy of the same buffer.")

  @OptionGroup var options: QuantizeOptions

  @Option(help: "Number of float32 values.")
  var n: Int = 10_000_000

  @Option(help: "Threads for quantization (the copy baseline uses one).")
  var threads: Int = 1

  @Option(help: "Timed repetitions; the median is reported.")
  var repeats: Int = 7

  @Option(help: "Apply a random Hadamard transform of this size before quantizing (timed with it).")
  var hadamard: Int?

  @Option(help: "Also time a peer in this run: ml_dtypes (python3 with ml_dtypes installed).")
  var peer: String?

  @Flag(help: "Time training's element rounding pass instead: out of place, counting saturations, flushes and the amax.")
  var counting = false

  @Flag(help: "Print JSON.")
  var json = false

  func validate() throws {
    guard n > 0 else { throw ValidationError("--n must be positive") }
    guard threads > 0 else { throw ValidationError("--threads must be positive") }
    guard repeats > 0 else { throw ValidationError("--repeats must be positive") }
    if let p = peer, p != "ml_dtypes" { throw ValidationError("unknown peer '\(p)': the peer is ml_dtypes") }
  }

  func run() throws {
    let format = try options.resolvedFormat()
    let r = try QuantizeBenchmark(
      quantizer: try options.quantizer(), format: format.description, rounding: "\(options.rounding)",
      overflow: options.overflow.rawValue, n: n, threads: threads, repeats: repeats,
      hadamard: try hadamard.map { try RandomHadamard(size: $0, seed: options.seed) }, withMLDtypes: peer != nil,
      counting: counting
    ).run()
    if json {
      try printJSON(r)
      return
    }
    func giga(_ rate: Double) -> String { String(format2: rate / 1e9) }
    let h = r.hadamard.map { ", \($0)-point Hadamard" } ?? ""
    print("quantize \(r.format) \(r.rounding) \(r.overflow)\(h), n=\(r.n), threads=\(r.threads), median of \(r.repeats)")
    if r.counting {
      print("  fpsim counting pass (out of place, as training): \(giga(r.elementsPerSecond)) G elements/s")
    } else {
      print("  fpsim quantize (in place): \(giga(r.elementsPerSecond)) G elements/s")
    }
    print("  plain copy (baseline):     \(giga(r.copyElementsPerSecond)) G elements/s  (quantize = \(String(format2: r.fractionOfCopy)) x copy)")
    if let p = r.mlDtypesElementsPerSecond {
      print("  ml_dtypes cast round trip: \(giga(p)) G elements/s  (fpsim = \(String(format2: r.elementsPerSecond / p)) x ml_dtypes)")
    }
  }
}
