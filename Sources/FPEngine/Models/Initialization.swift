import FPFormats

/// Seeded parameter initialization from counter-based random numbers: a tensor's values depend only
/// on (seed, stream, index).
public enum Initializer {
  /// x[i] ~ Normal(0, std^2) (`CounterRNG.normal`, the pair of draws 2i, 2i+1).
  public static func normal(_ x: UnsafeMutablePointer<Float>, count: Int, std: Float, seed: UInt64, stream: UInt64) {
    let rng = CounterRNG(seed: seed, stream: stream)
    for i in 0..<count { x[i] = Float(rng.normal(pair: UInt64(i), scale: Double(std))) }
  }

  /// x[i] ~ Uniform(-bound, bound).
  public static func uniform(_ x: UnsafeMutablePointer<Float>, count: Int, bound: Float, seed: UInt64, stream: UInt64) {
    let rng = CounterRNG(seed: seed, stream: stream)
    for i in 0..<count {
      x[i] = Float((2 * rng.open01(UInt64(i)) - 1) * Double(bound))
    }
  }

  public static func fill(_ x: UnsafeMutablePointer<Float>, count: Int, value: Float) {
    x.update(repeating: value, count: count)
  }
}
