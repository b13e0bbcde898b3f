import Foundation  // log, cos for the Gaussian sampler

/// Counter-based random numbers: the value at `counter` depends only on (seed, stream, counter),
/// never on how work is split across threads or in which order it runs.
///
/// `bits64` uses the SplitMix64 finalizer (Steele, Lea, Flood 2014), a bijection on 64 bits with full
/// avalanche: element `i` draws `mix(key + (i + 1) * golden)`. `bits32`, which stochastic rounding
/// uses in its hot loop, is built from 32-bit multiplies only (they vectorize 4x better than 64-bit
/// ones): the counter (its high half folded in by xor) times an odd key-derived multiplier plus a key
/// offset, then a 32-bit xorshift-multiply mixer (constants from C. Wellons' hash search). Statistical quality is
/// checked by the tests (uniformity of every bit, unbiased stochastic rounding).
public struct CounterRNG: Hashable, Codable, Sendable {
  public let seed: UInt64
  public let stream: UInt64
  /// The per-(seed, stream) key that every draw starts from.
  public let key: UInt64
  let keyLow: UInt32
  let keyHigh: UInt32
  let keyMultiplier: UInt32

  static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

  public init(seed: UInt64, stream: UInt64 = 0) {
    self.seed = seed
    self.stream = stream
    self.key = CounterRNG.mix(seed ^ CounterRNG.mix(stream &+ CounterRNG.golden))
    self.keyLow = UInt32(truncatingIfNeeded: key)
    self.keyHigh = UInt32(truncatingIfNeeded: key >> 32)
    self.keyMultiplier = UInt32(truncatingIfNeeded: CounterRNG.mix(key) >> 32) | 1
  }

  @inline(__always)
  static func mix32(_ x: UInt32) -> UInt32 {
    var z = x
    z = (z ^ (z &>> 16)) &* 0x7FEB_352D
    z = (z ^ (z &>> 15)) &* 0x846C_A68B
    return z ^ (z &>> 16)
  }

  @inline(__always)
  public static func mix(_ x: UInt64) -> UInt64 {
    var z = x
    z = (z ^ (z &>> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z &>> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z &>> 31)
  }

  /// 64 random bits for element `counter`.
  @inline(__always)
  public func bits64(_ counter: UInt64) -> UInt64 {
    CounterRNG.mix(key &+ (counter &+ 1) &* CounterRNG.golden)
  }

  /// 32 random bits for element `counter`.
  @inline(__always)
  public func bits32(_ counter: UInt64) -> UInt32 {
    bits32(low: UInt32(truncatingIfNeeded: counter), high: highKey(counter))
  }

  /// The part of `bits32` that depends on the counter's high half: constant over 2^32 consecutive
  /// counters, so hot loops compute it once and run on 32-bit lanes.
  @inline(__always)
  func highKey(_ counter: UInt64) -> UInt32 {
    keyHigh ^ (UInt32(truncatingIfNeeded: counter >> 32) &* 0x9E37_79B9)
  }

  @inline(__always)
  func bits32(low: UInt32, high: UInt32) -> UInt32 {
    // An odd multiplier and an offset from the key make each (seed, stream) a different bijection of
    // the counter before the mixer, so streams are not shuffles of one another.
    CounterRNG.mix32((low ^ high) &* keyMultiplier &+ keyLow)
  }

  /// A uniform float in [0, 1) with 24 random bits for element `counter`.
  @inline(__always)
  public func uniform(_ counter: UInt64) -> Float {
    Float(bits32(counter) &>> 8) * 0x1p-24
  }
}

// The one Gaussian sampler (initialization, error analysis inputs, benchmark inputs).
extension CounterRNG {
  /// A uniform double in (0, 1) from the top 53 bits of draw `counter`: (bits + 1/2) 2^-53, never 0
  /// or 1, so its logarithm is finite.
  @inline(__always)
  public func open01(_ counter: UInt64) -> Double {
    (Double(bits64(counter) >> 11) + 0.5) * 0x1p-53
  }

  /// scale x Normal(0, 1) by Box-Muller from the pair of draws `2 pair`, `2 pair + 1`:
  /// (scale sqrt(-2 ln u1)) cos(2 pi u2), multiplied in that order.
  @inline(__always)
  public func normal(pair: UInt64, scale: Double = 1) -> Double {
    let u1 = open01(2 &* pair), u2 = open01(2 &* pair &+ 1)
    return scale * (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
  }
}
