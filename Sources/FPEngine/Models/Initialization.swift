import FPFormats
import Foundation  // log, cos, sqrt for Box-Muller

/// Seeded parameter initialization from counter-based random numbers: a tensor's values depend only
/// on (seed, stream, index).
public enum Initializer {
  /// A uniform double in (0, 1) from 53 random bits (never 0, so its log is finite).
  @inline(__always)
  static func open01(_ rng: CounterRNG, _ i: UInt64) -> Double {
    (Double(rng.bits64(i) >> 11) + 0.5) * 0x1p-53
  }

  /// x[i] ~ Normal(0, std^2) by Box-Muller: z = sqrt(-2 ln u1) cos(2 pi u2), one pair of draws
  /// (counters 2i, 2i+1) per value.
  public static func normal(_ x: UnsafeMutablePointer<Float>, count: Int, std: Float, seed: UInt64, stream: UInt64) {
    let rng = CounterRNG(seed: seed, stream: stream)
    for i in 0..<count {
      let u1 = open01(rng, 2 * UInt64(i)), u2 = open01(rng, 2 * UInt64(i) + 1)
      x[i] = Float(Double(std) * (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
  }

  /// x[i] ~ Uniform(-bound, bound).
  public static func uniform(_ x: UnsafeMutablePointer<Float>, count: Int, bound: Float, seed: UInt64, stream: UInt64) {
    let rng = CounterRNG(seed: seed, stream: stream)
    for i in 0..<count {
      x[i] = Float((2 * open01(rng, UInt64(i)) - 1) * Double(bound))
    }
  }

  public static func fill(_ x: UnsafeMutablePointer<Float>, count: Int, value: Float) {
    x.update(repeating: value, count: count)
  }
}
