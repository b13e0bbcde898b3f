import ArgumentParser
import FPFormats
import FPStudy
import Foundation

/// `fpsim bench quantize`: in-place quantization throughput next to a plain copy of the same buffer
/// (the memory-bound baseline), and optionally ml_dtypes' cast round trip, all in one run.
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

  @Flag(help: "Print JSON.")
  var json = false

  func validate() throws {
    guard n > 0 else { throw ValidationError("--n must be positive") }
    guard threads > 0 else { throw ValidationError("--threads must be positive") }
    guard repeats > 0 else { throw ValidationError("--repeats must be positive") }
    if let p = peer, p != "ml_dtypes" { throw ValidationError("unknown peer '\(p)': the peer is ml_dtypes") }
  }

  func run() throws {
    let quantizer = try options.quantizer()
    let format = try options.resolvedFormat()
    let transform = try hadamard.map { try RandomHadamard(size: $0, seed: options.seed) }
    if let h = hadamard, n % h != 0 { throw CLIError("--n \(n) must be a multiple of the Hadamard size \(h)") }
    // Inputs: standard normal values (Box-Muller on the counter-based generator), the distribution
    // of weights and activations and the one the ml_dtypes peer is timed on.
    let rng = CounterRNG(seed: 12345, stream: 1)
    let source = (0..<n).map { i in Float(rng.normal(pair: UInt64(i))) }
    var work = source
    var quantizeTimes: [Double] = []
    var copyTimes: [Double] = []
    for _ in 0..<repeats {
      work.withUnsafeMutableBufferPointer { w in
        source.withUnsafeBufferPointer { s in
          copyTimes.append(seconds { _ = w.update(fromContentsOf: s) })
          quantizeTimes.append(seconds {
            // The transform hands the tensor's amax on, as `fpsim error` and training do.
            let amax = try? transform?.forward(w, rows: n / transform!.size, cols: transform!.size)
            try? quantizer.quantize(w, rows: 1, cols: n, threads: threads, tensorAmax: amax)
          })
        }
      }
    }
    let rate = Double(n) / Median.of(quantizeTimes)
    let copyRate = Double(n) / Median.of(copyTimes)
    var peerRate: Double? = nil
    if peer != nil { peerRate = try mlDtypesRate(format: format.description, n: n) }

    if json {
      var fields = [
        "\"format\": \"\(format)\"", "\"rounding\": \"\(options.rounding)\"",
        "\"overflow\": \"\(options.overflow.rawValue)\"", "\"n\": \(n)", "\"threads\": \(threads)",
        "\"repeats\": \(repeats)", "\"hadamard\": \(hadamard.map(String.init) ?? "null")",
        "\"elements_per_second\": \(Int(rate))",
        "\"copy_elements_per_second\": \(Int(copyRate))",
        "\"fraction_of_copy\": \(String(format2: rate / copyRate))",
      ]
      if let p = peerRate { fields.append("\"ml_dtypes_elements_per_second\": \(Int(p))") }
      print("{" + fields.joined(separator: ", ") + "}")
    } else {
      let h = hadamard.map { ", \($0)-point Hadamard" } ?? ""
      print("quantize \(format) \(options.rounding) \(options.overflow.rawValue)\(h), n=\(n), threads=\(threads), median of \(repeats)")
      print("  fpsim quantize (in place): \(giga(rate)) G elements/s")
      print("  plain copy (baseline):     \(giga(copyRate)) G elements/s  (quantize = \(String(format2: rate / copyRate)) x copy)")
      if let p = peerRate {
        print("  ml_dtypes cast round trip: \(giga(p)) G elements/s  (fpsim = \(String(format2: rate / p)) x ml_dtypes)")
      }
    }
  }

  private func giga(_ r: Double) -> String { String(format2: r / 1e9) }

  private func seconds(_ body: () -> Void) -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
  }


  /// Times `x.astype(fmt).astype(float32)` with ml_dtypes on the same number of values.
  private func mlDtypesRate(format: String, n: Int) throws -> Double {
    let script = """
      import sys, time, numpy as np, ml_dtypes
      dt = getattr(ml_dtypes, sys.argv[1], None) or np.dtype(sys.argv[1])
      n = int(sys.argv[2]); x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
      ts = []
      for _ in range(\(repeats)):
          t = time.perf_counter(); x.astype(dt).astype(np.float32); ts.append(time.perf_counter() - t)
      print(n / sorted(ts)[len(ts) // 2])
      """
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script, format, "\(n)"]
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    guard p.terminationStatus == 0, let r = Double(text) else {
      throw CLIError("the ml_dtypes peer failed for '\(format)': install it with `pip install ml_dtypes` and use an ml_dtypes name")
    }
    return r
  }
}
