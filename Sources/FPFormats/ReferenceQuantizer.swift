import Foundation  // frexp, scalbn, floor on Double

/// The scalar reference for `Quantizer`: the same semantics written as plainly as possible, in Double
/// arithmetic (every float32 and every product of a float32 by a power of two is exact in Double).
/// It shares no code with the fast kernel beyond the format's properties and the random numbers, and
/// the tests require the two to agree bit for bit.
public struct ReferenceQuantizer: Sendable {
  public let format: FloatFormat
  public let rounding: RoundingMode
  public let overflow: Overflow
  public let rng: CounterRNG

  public init(
    format: FloatFormat, rounding: RoundingMode = .rne, overflow: Overflow = .saturate,
    seed: UInt64 = 0, stream: UInt64 = 0
  ) {
    self.format = format
    self.rounding = rounding
    self.overflow = overflow
    self.rng = CounterRNG(seed: seed, stream: stream)
  }

  public func quantize(_ x: Float, index: Int = 0) -> Float {
    let f = format
    let negative = x.sign == .minus
    let nan = Float(bitPattern: 0x7FC0_0000)
    let smallest = Float(sign: .plus, exponent: f.emin, significand: 1)

    if x.isNaN {
      if f.hasNaN { return f.policy == .fnuz || (negative && f.signed) ? -nan : nan }
      return f.signed ? (negative ? 0 : -0.0) : 0  // ml_dtypes: the zero of the opposite sign
    }
    if !f.signed && negative && x != 0 {
      if overflow == .ieee && f.hasNaN { return nan }
      return f.hasZero ? 0 : smallest
    }
    if x == 0 {
      if f.hasZero { return f.hasNegativeZero ? x : 0 }
      return overflow == .ieee && f.hasNaN ? nan : smallest
    }
    if x.isInfinite {
      return signed(negative, overflow == .saturate ? f.maxFinite : beyondMax, f)
    }

    // |x| = y * 2^q exactly, with 2^q the format's spacing at |x|.
    let ax = Double(x).magnitude
    let e = frexp(ax).1 - 1  // floor(log2 |x|)
    let inNormalBinade = e >= f.emin && f.exponentBits > 0  // integers have no normal binades
    let q = inNormalBinade ? e - f.mantissaBits : (f.subnormals ? f.emin - f.mantissaBits : f.emin)
    let y = scalbn(ax, -q)
    let lower = y.rounded(.down)
    let frac = y - lower
    let up: Bool
    switch rounding {
    case .rtz: up = false
    case .up: up = frac > 0 && !negative
    case .down: up = frac > 0 && negative
    case .rna: up = frac >= 0.5
    case .rne:
      up = frac > 0.5 || (frac == 0.5 && codeIsOdd(scalbn(lower, q)))
    case .odd:
      up = frac > 0 && !codeIsOdd(scalbn(lower, q))
    case .stochastic(let bits):
      let kept = (frac * Double(sign: .plus, exponent: bits, significand: 1)).rounded(.down)
      let u = Double(rng.bits32(UInt64(index)) >> UInt32(32 - bits))
      up = kept + u >= Double(sign: .plus, exponent: bits, significand: 1)
    }
    var result = scalbn(up ? lower + 1 : lower, q)
    if !f.hasZero && result == 0 { result = Double(smallest) }
    if result > Double(f.maxFinite) {
      let awayFromZero: Bool
      switch rounding {
      case .rtz, .odd: awayFromZero = false
      case .up: awayFromZero = !negative
      case .down: awayFromZero = negative
      case .rne, .rna, .stochastic: awayFromZero = true
      }
      let v = overflow == .ieee && awayFromZero ? beyondMax : f.maxFinite
      return signed(negative, v, f)
    }
    return signed(negative, Float(result), f)
  }

  /// What a finite overflow or an infinity becomes under `ieee`: Inf, else NaN, else max.
  private var beyondMax: Float {
    format.hasInfinity ? .infinity : (format.hasNaN ? Float(bitPattern: 0x7FC0_0000) : format.maxFinite)
  }

  private func signed(_ negative: Bool, _ magnitude: Float, _ f: FloatFormat) -> Float {
    if magnitude.isNaN { return f.policy == .fnuz || (negative && f.signed) ? -magnitude : magnitude }
    if magnitude == 0 { return negative && f.hasNegativeZero ? -0.0 : 0 }
    return negative ? -magnitude : magnitude
  }

  /// The lowest bit of the code of the non-negative value `v` (a representable magnitude, or one
  /// spacing above the largest binade): the mantissa's last bit, or the exponent field's when M = 0.
  private func codeIsOdd(_ v: Double) -> Bool {
    let f = format
    // Zero is even; beyond the largest value the result overflows whichever neighbour is chosen.
    if v == 0 || v > Double(f.maxFinite) { return false }
    let e = frexp(v).1 - 1
    if e >= f.emin && f.exponentBits > 0 {
      if f.mantissaBits == 0 { return (e + f.bias) & 1 == 1 }
      let mantissa = Int(scalbn(v, f.mantissaBits - e)) - (1 << f.mantissaBits)
      return mantissa & 1 == 1
    }
    let quantum = f.subnormals ? f.emin - f.mantissaBits : f.emin
    return Int(scalbn(v, -quantum)) & 1 == 1
  }
}
