import FPEngine
import FPFormats
import Foundation

/// `fpsim bench quantize`: in-place quantization throughput next to a plain copy of the same buffer
/// (the memory-bound baseline), and optionally ml_dtypes' cast round trip, all in one run. Inputs are
/// n standard normal values (`CounterRNG.normal`, seed 12345), the distribution of weights and
/// activations; each rate is n over the median of `repeats` timed repetitions.
public struct QuantizeBenchmark: Sendable {
  public var quantizer: AnyQuantizer
  /// The format's name, for the result and the ml_dtypes peer.
  public var format: String
  public var rounding: String
  public var overflow: String
  public var n: Int
  public var threads: Int
  public var repeats: Int
  /// A random Hadamard transform of this size before quantizing, timed with it (n must be a multiple).
  public var hadamard: RandomHadamard?
  public var withMLDtypes: Bool
  /// Time the pass training's element rounding runs instead (`ElementRounding.roundLastAxis`): out of
  /// place from the source into the work buffer, counting saturations, flushes and the amax as it goes.
  /// Element formats without a Hadamard transform.
  public var counting: Bool

  public init(
    quantizer: AnyQuantizer, format: String, rounding: String, overflow: String, n: Int, threads: Int, repeats: Int,
    hadamard: RandomHadamard?, withMLDtypes: Bool, counting: Bool = false
  ) {
    self.quantizer = quantizer
    self.format = format
    self.rounding = rounding
    self.overflow = overflow
    self.n = n
    self.threads = threads
    self.repeats = repeats
    self.hadamard = hadamard
    self.withMLDtypes = withMLDtypes
    self.counting = counting
  }

  public func run() throws -> QuantizeBenchmarkResult {
    if let h = hadamard, n % h.size != 0 { throw BenchmarkError("--n \(n) must be a multiple of the Hadamard size \(h.size)") }
    var training: (ElementRounding, seed: UInt64, stream: UInt64)? = nil
    if counting {
      guard case .element(let q) = quantizer else {
        throw BenchmarkError("--counting times element formats' rounding pass; '\(format)' is a block format: drop --counting")
      }
      guard hadamard == nil else {
        throw BenchmarkError("--counting times element formats' rounding pass, which has no transform: drop --hadamard or --counting")
      }
      training = (ElementRounding(format: q.format, rounding: q.rounding, overflow: q.overflow), q.rng.seed, q.rng.stream)
    }
    let rng = CounterRNG(seed: 12345, stream: 1)
    let source = (0..<n).map { i in Float(rng.normal(pair: UInt64(i))) }
    var work = source
    var quantizeTimes: [Double] = [], copyTimes: [Double] = []
    for _ in 0..<repeats {
      work.withUnsafeMutableBufferPointer { w in
        source.withUnsafeBufferPointer { s in
          copyTimes.append(Self.seconds { _ = w.update(fromContentsOf: s) })
          quantizeTimes.append(Self.seconds {
            if let t = training {
              _ = t.0.roundLastAxis(
                s.baseAddress!, into: w.baseAddress!, rows: 1, cols: n, firstIndex: 0, firstBlock: 0, tensorAmax: nil,
                seed: t.seed, stream: t.stream, threads: threads, countEvents: true)
              return
            }
            // The transform hands the tensor's amax on, as `fpsim error` and training do.
            let amax = try? hadamard?.forward(w, rows: n / hadamard!.size, cols: hadamard!.size)
            try? quantizer.quantize(w, rows: 1, cols: n, threads: threads, tensorAmax: amax)
          })
        }
      }
    }
    let rate = Double(n) / Median.of(quantizeTimes), copyRate = Double(n) / Median.of(copyTimes)
    return QuantizeBenchmarkResult(
      format: format, rounding: rounding, overflow: overflow, n: n, threads: threads, repeats: repeats,
      hadamard: hadamard?.size, counting: counting, elementsPerSecond: rate, copyElementsPerSecond: copyRate,
      fractionOfCopy: rate / copyRate, mlDtypesElementsPerSecond: withMLDtypes ? try mlDtypesRate() : nil)
  }

  static func seconds(_ body: () -> Void) -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
  }

  /// Times `x.astype(fmt).astype(float32)` with ml_dtypes on the same number of values.
  func mlDtypesRate() throws -> Double {
    let script = """
      import sys, time, numpy as np, ml_dtypes
      dt = getattr(ml_dtypes, sys.argv[1], None) or np.dtype(sys.argv[1])
      n = int(sys.argv[2]); x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
      ts = []
      for _ in range(\(repeats)):
          t = time.perf_counter(); x.astype(dt).astype(np.float32); ts.append(time.perf_counter() - t)
      print(n / sorted(ts)[len(ts) // 2])
      """
    let text = try PythonPeer.run(script, arguments: [format, "\(n)"])
      .map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
    guard let text, let r = Double(text) else {
      throw BenchmarkError("the ml_dtypes peer failed for '\(format)': install it with `pip install ml_dtypes` and use an ml_dtypes name")
    }
    return r
  }
}

/// What `fpsim bench quantize` measures; its JSON names are these in snake_case.
public struct QuantizeBenchmarkResult: Codable, Sendable {
  public var format: String
  public var rounding: String
  public var overflow: String
  public var n: Int
  public var threads: Int
  public var repeats: Int
  public var hadamard: Int?
  /// Whether the pass timed is training's counting pass (out of place) rather than `quantize` in place.
  public var counting: Bool
  public var elementsPerSecond: Double
  public var copyElementsPerSecond: Double
  public var fractionOfCopy: Double
  public var mlDtypesElementsPerSecond: Double?
}

public struct BenchmarkError: Error, CustomStringConvertible {
  public let description: String
  init(_ text: String) { description = text }
}
