import Foundation  // log, cos, log10

/// Synthetic value distributions for comparing formats before training with them.
/// A distribution name that does not parse; the description names it and lists the valid ones.
public struct DistributionError: Error, CustomStringConvertible, Equatable {
  public let description: String
}

public enum Distribution: Hashable, Sendable, CustomStringConvertible {
  /// N(0, 1).
  case gaussian
  /// Laplace with scale 1 (variance 2).
  case laplace
  /// Uniform on [-1, 1].
  case uniform
  /// Student's t with an integer number of degrees of freedom (heavy tails).
  case studentT(Int)
  /// N(0, 1) with a fraction of values multiplied by `scale` (outlier channels).
  case outliers(fraction: Double, scale: Double)

  public var description: String {
    switch self {
    case .gaussian: return "gaussian"
    case .laplace: return "laplace"
    case .uniform: return "uniform"
    case .studentT(let v): return "student-t:\(v)"
    case .outliers(let f, let s): return "outliers:\(f):\(s)"
    }
  }

  /// `gaussian`, `laplace`, `uniform`, `student-t:NU` (NU = 1...100), `outliers[:FRACTION[:SCALE]]`
  /// (default 0.001 of the values times 100).
  public init(parsing text: String) throws {
    let parts = text.lowercased().split(separator: ":", omittingEmptySubsequences: false).map(String.init)
    switch (parts.first ?? "", parts.count) {
    case ("gaussian", 1), ("normal", 1): self = .gaussian
    case ("laplace", 1): self = .laplace
    case ("uniform", 1): self = .uniform
    case ("student-t", 2):
      guard let v = Int(parts[1]), (1...100).contains(v) else {
        throw DistributionError(description: "student-t takes integer degrees of freedom 1...100, as student-t:3, not '\(parts[1])'")
      }
      self = .studentT(v)
    case ("outliers", 1...3):
      let f = parts.count > 1 ? Double(parts[1]) : 0.001
      let s = parts.count > 2 ? Double(parts[2]) : 100
      guard let f, let s, f >= 0, f <= 1, s > 0, s.isFinite else {
        throw DistributionError(description: "outliers takes a fraction in [0, 1] and a positive finite scale, as outliers:0.001:100")
      }
      self = .outliers(fraction: f, scale: s)
    default:
      throw DistributionError(
        description: "unknown distribution '\(text)': use gaussian, laplace, uniform, student-t:NU or outliers[:FRACTION[:SCALE]]")
    }
  }

  /// n seeded samples; sample i depends only on (seed, i).
  public func sample(_ n: Int, seed: UInt64) -> [Float] {
    let rng = CounterRNG(seed: seed, stream: 0x5A3D)
    // Sample i uses the draws 64 i ... 64 i + 63: uniform k, or normal k from the pair (2k, 2k + 1).
    func u(_ i: Int, _ k: Int) -> Double { rng.open01(UInt64(i) &* 64 &+ UInt64(k)) }
    func normal(_ i: Int, _ k: Int) -> Double { rng.normal(pair: UInt64(i) &* 32 &+ UInt64(k)) }
    return (0..<n).map { i -> Float in
      switch self {
      case .gaussian: return Float(normal(i, 0))
      case .laplace:
        let v = u(i, 0) - 0.5
        return Float(-(v < 0 ? -1.0 : 1.0) * log(1 - 2 * abs(v)))
      case .uniform: return Float(2 * u(i, 0) - 1)
      case .studentT(let nu):
        var chi2 = 0.0
        for k in 1...nu { let z = normal(i, k); chi2 += z * z }
        return Float(normal(i, 0) / (chi2 / Double(nu)).squareRoot())
      case .outliers(let f, let s):
        let z = normal(i, 0)
        return Float(u(i, 20) < f ? z * s : z)
      }
    }
  }
}

/// How much a format loses on a distribution: x are the samples, q their quantized values.
public struct ErrorMetrics: Sendable, Codable {
  public var format: String
  public var distribution: String
  /// Hadamard size applied before quantization and undone after (nil: none).
  public var hadamard: Int?
  /// mean((q - x)^2)
  public var mse: Double
  /// Signal-to-quantization-noise ratio, 10 log10(sum x^2 / sum (q - x)^2), in dB.
  public var sqnrDB: Double
  /// Fractions of the values that saturated (clamped at the element max) and that were flushed to zero.
  public var saturatedFraction: Double
  public var flushedFraction: Double
  /// Storage bits per value, scales included.
  public var bitsPerValue: Double
  public var count: Int
}

public enum ErrorAnalysis {
  /// Rows of this many values hold the samples; blocks and Hadamard groups run along them.
  public static let rowLength = 1024

  /// Quantizes `count` samples (rounded up to whole rows) of `distribution` to `format`, optionally
  /// through a random Hadamard transform of size `hadamard` (inverted after quantization), and
  /// measures the error.
  public static func measure(
    format: AnyFormat, distribution: Distribution, count: Int, seed: UInt64, hadamard: Int? = nil,
    rounding: RoundingMode = .rne
  ) throws -> ErrorMetrics {
    let cols = rowLength
    let rows = max(1, (count + cols - 1) / cols)
    let x = distribution.sample(rows * cols, seed: seed)
    var q = x
    var stats = QuantizationStats()
    let transform = try hadamard.map { try RandomHadamard(size: $0, seed: seed, stream: 0x4AD) }
    try q.withUnsafeMutableBufferPointer { b in
      let amax = try transform?.forward(b, rows: rows, cols: cols)
      try AnyQuantizer(format: format, rounding: rounding, seed: seed).quantize(
        b, rows: rows, cols: cols, tensorAmax: amax, stats: &stats)
      try transform?.inverse(b, rows: rows, cols: cols)
    }
    var signal = 0.0, noise = 0.0
    for (a, b) in zip(x, q) {
      signal += Double(a) * Double(a)
      noise += (Double(b) - Double(a)) * (Double(b) - Double(a))
    }
    let n = Double(x.count)
    let bits: Double
    switch format {
    case .element(let f): bits = Double(f.bitCount)
    case .scaled(let s):
      let blockSize: Int
      switch s.block {
      case .vector(let k): blockSize = min(k, cols)
      case .tile(let r, let c): blockSize = r * c
      case .row: blockSize = cols
      case .tensor: blockSize = x.count
      }
      bits = s.bitsPerValue(count: x.count, blockSize: blockSize)
    }
    return ErrorMetrics(
      format: format.description, distribution: distribution.description, hadamard: hadamard,
      mse: noise / n, sqnrDB: 10 * log10(signal / noise),
      saturatedFraction: Double(stats.saturated) / n, flushedFraction: Double(stats.flushedToZero) / n,
      bitsPerValue: bits, count: x.count)
  }
}
