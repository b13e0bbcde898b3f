/// Everything the kernel needs, precomputed from (format, rounding, overflow) as plain integers.
struct KernelConstants: Sendable {
  var m: Int32  // mantissa bits
  var emin: Int32  // unbiased exponent of the lowest normal binade
  var bias: Int32
  var qLow: Int32  // spacing exponent below emin: emin - M with subnormals, else emin
  var fieldParity: UInt32  // 1 when M == 0: "even" is then the parity of the exponent field
  var minN: UInt32  // 1 when the format has no zero (E8M0): nothing rounds below 2^emin
  var maxBits: UInt32  // float32 bits of the largest finite value
  var overflowPositive: UInt32  // magnitude bits after overflow of a positive / negative value
  var overflowNegative: UInt32
  var infinity: UInt32  // magnitude bits for an infinite input
  var unsignedMask: UInt32  // the sign bit for unsigned formats (negative inputs are special), else 0
  var zeroSignMask: UInt32  // the sign bit when -0 exists, else 0
  var nanPositive: UInt32  // full bits for a NaN input with sign + / -
  var nanNegative: UInt32
  var zeroInput: UInt32  // full bits for +-0 input, sign added when -0 exists
  var negativeUnsigned: UInt32  // full bits for a negative input to an unsigned format
  // The float kernel (`fastPath`): formats with M >= 1 whose lowest binade is a float32 normal one.
  var fastPath: Bool
  var eminField: UInt32  // float32 exponent field of 2^emin, in place (<< 23)
  var yField: UInt32  // float32 exponent field of 2^M, in place: |x| in a normal binade maps to [2^M, 2^(M+1))
  var subScale1: Float  // 2^-qLow = subScale1 * subScale2 (split when it exceeds float32's range)
  var subScale2: Float
  var lowSpacing: Float  // 2^qLow = lowSpacing * 2^-24; kept a float32 normal, as a subnormal operand
  // would send every multiplication through the CPU's slow microcode path
  /// Saturating overflow into a signed format with a zero: then overflow, infinity and zero inputs all
  /// reduce to min(rounded, max) and the sign (`SaturatingFinish`).
  var saturatingSigned: Bool
  /// `SpacingMap` applies: formats with subnormals whose 2^qLow and 2^-qLow are float32 normals.
  var spacingMap: Bool
  var mField: UInt32  // M << 23: dividing a power of two by 2^M on its bits

  /// `SignedSaturatingFinish` applies (with `saturatingSigned`): -0 exists and the NaN result is the
  /// input's sign xor-ed onto nanPositive.
  var signXorEnding: Bool { zeroSignMask == 0x8000_0000 && nanNegative == nanPositive ^ 0x8000_0000 }

  @inline(never)
  static func freshCopy(_ k: KernelConstants) -> KernelConstants { k }

  init(_ f: FloatFormat, _ rounding: RoundingMode, _ overflow: Overflow) {
    m = Int32(f.mantissaBits)
    emin = Int32(f.emin)
    bias = Int32(f.bias)
    qLow = Int32(f.subnormals ? f.emin - f.mantissaBits : f.emin)
    fieldParity = f.mantissaBits == 0 ? 1 : 0
    minN = f.hasZero ? 0 : 1
    maxBits = f.maxFinite.bitPattern
    let nan: UInt32 = 0x7FC0_0000
    // fnuz's only NaN code is the negative-zero code: its NaN decodes to -NaN whatever the sign.
    let fnuzNaN: UInt32 = 0xFFC0_0000
    let beyond: UInt32 = f.hasInfinity ? 0x7F80_0000 : (f.hasNaN ? (f.policy == .fnuz ? fnuzNaN : nan) : maxBits)
    switch overflow {
    case .saturate:
      overflowPositive = maxBits; overflowNegative = maxBits; infinity = maxBits
    case .ieee:
      infinity = beyond
      switch rounding {
      case .rtz, .odd: overflowPositive = maxBits; overflowNegative = maxBits
      case .up: overflowPositive = beyond; overflowNegative = maxBits
      case .down: overflowPositive = maxBits; overflowNegative = beyond
      case .rne, .rna, .stochastic: overflowPositive = beyond; overflowNegative = beyond
      }
    }
    unsignedMask = f.signed ? 0 : 0x8000_0000
    zeroSignMask = f.hasNegativeZero ? 0x8000_0000 : 0
    let minBits = pow2(f.emin).bitPattern
    if f.hasNaN {
      nanPositive = f.policy == .fnuz ? fnuzNaN : nan
      nanNegative = f.signed ? 0xFFC0_0000 : nan
    } else {
      // ml_dtypes maps NaN into a format without NaN to the zero of the opposite sign.
      nanPositive = f.signed ? 0x8000_0000 : 0
      nanNegative = 0
    }
    let noValue = overflow == .ieee && f.hasNaN ? nan : (f.hasZero ? 0 : minBits)
    zeroInput = f.hasZero ? 0 : noValue
    negativeUnsigned = noValue

    saturatingSigned = overflow == .saturate && f.signed && f.hasZero
    fastPath = f.mantissaBits >= 1 && f.emin >= -126 && f.exponentBits >= 1
    eminField = fastPath ? UInt32(f.emin + 127) << 23 : 0
    yField = UInt32(127 + f.mantissaBits) << 23
    let up = -Int(qLow)  // <= 149
    subScale1 = pow2(min(up, 127))
    subScale2 = pow2(up - min(up, 127))
    lowSpacing = pow2(Int(qLow) + 24)
    spacingMap = fastPath && f.subnormals && qLow >= -126
    mField = UInt32(f.mantissaBits) << 23
  }
}

/// One specialised kernel: maps a float32 bit pattern to the bit pattern of its rounded value.
protocol Kernel {
  static var usesRandom: Bool { get }
  func apply(_ a: UInt32, _ k: KernelConstants, _ random: UInt32) -> UInt32
}

/// Shared ending of both kernels: overflow, then the special inputs (NaN, Inf, zero, negative input
/// to an unsigned format) and the sign. `out` is the rounded magnitude's bits.
@inline(__always)
func finish(_ sign: UInt32, _ mag: UInt32, _ rounded: UInt32, _ k: KernelConstants) -> UInt32 {
  let out = rounded > k.maxBits ? (sign != 0 ? k.overflowNegative : k.overflowPositive) : rounded
  var res = out == 0 ? (sign & k.zeroSignMask) : sign | out
  res = mag == 0x7F80_0000 ? sign | k.infinity : res
  res = mag == 0 ? (sign & k.zeroSignMask) | k.zeroInput : res
  res = sign & k.unsignedMask != 0 ? (mag != 0 ? k.negativeUnsigned : k.zeroInput) : res
  res = mag > 0x7F80_0000 ? (sign != 0 ? k.nanNegative : k.nanPositive) : res
  return res
}

/// The integer kernel on one float32 bit pattern, for every format and rounding. Branch-free (selects and integer masks only, no `&&` or
/// `||`, whose short-circuit control flow kept LLVM from vectorizing the loop) so the loop vectorizes.
///
/// For |x| = s * 2^lsb (s the 24-bit significand, lsb the exponent of a float32 ulp at x) with
/// E = floor(log2 |x|), the format's spacing at x is 2^Q with Q = E - M in a normal binade and
/// Q = qLow below it. The d = Q - lsb low bits of s are dropped (q = s >> d, remainder r), the rule
/// decides the increment, and the result is (q + inc) * 2^Q, exact in float32.
@inline(__always)
func quantizeBits<R: RoundingRule>(_ a: UInt32, _ rule: R, _ k: KernelConstants, _ random: UInt32) -> UInt32 {
  let sign = a & 0x8000_0000
  let mag = a & 0x7FFF_FFFF
  let eb = Int32(bitPattern: mag &>> 23)
  let mant = mag & 0x7F_FFFF
  let isSub = eb == 0
  // floor(log2) of a float32 subnormal, from the exponent of its mantissa converted to float (exact).
  let ebOfMant = Int32(bitPattern: Float(Int32(bitPattern: mant)).bitPattern &>> 23)
  let e = isSub ? ebOfMant &- 276 : eb &- 127
  let lsb = (isSub ? 1 : eb) &- 150
  let s = isSub ? mant : mant | 0x80_0000
  let normal = e >= k.emin
  let q2 = normal ? e &- k.m : k.qLow
  let d = q2 &- lsb
  let shift = UInt32(bitPattern: d < 31 ? d : 31)
  let one: UInt32 = 1
  let q = s &>> shift
  let r = s & ((one &<< shift) &- 1)
  let half = (one &<< shift) &>> 1
  let useField = normal ? k.fieldParity : 0
  let parity = useField != 0 ? UInt32(bitPattern: e &+ k.bias) & 1 : q & 1
  let inc = rule.increment(r: r, half: half, parity: parity, sign: sign, d: d, random: random)
  var nq = q &+ inc
  nq = nq > k.minN ? nq : k.minN
  let p2 = q2 >= -126 ? UInt32(bitPattern: q2 &+ 127) &<< 23 : one &<< UInt32(bitPattern: q2 &+ 149)
  return finish(sign, mag, (Float(Int32(bitPattern: nq)) * Float(bitPattern: p2)).bitPattern, k)
}

/// Decides whether to add one spacing to the magnitude truncated toward zero (returns 0 or 1).
/// r: the dropped bits (d of them, r < 2^min(d,31)); half = 2^(d-1) (0 when d = 0); parity: the
/// lowest bit of the truncated result's code; sign: the input's sign bit.
protocol RoundingRule: Kernel {
  func increment(r: UInt32, half: UInt32, parity: UInt32, sign: UInt32, d: Int32, random: UInt32) -> UInt32
}

extension RoundingRule {
  static var usesRandom: Bool { false }
  @inline(__always)
  func apply(_ a: UInt32, _ k: KernelConstants, _ random: UInt32) -> UInt32 { quantizeBits(a, self, k, random) }
}

struct NearestEven: RoundingRule {
  @inline(__always)
  func increment(r: UInt32, half: UInt32, parity: UInt32, sign: UInt32, d: Int32, random: UInt32) -> UInt32 {
    (r != 0 ? 1 : 0) & ((r > half ? 1 : 0) | (r == half ? parity : 0))
  }
}

struct NearestAway: RoundingRule {
  @inline(__always)
  func increment(r: UInt32, half: UInt32, parity: UInt32, sign: UInt32, d: Int32, random: UInt32) -> UInt32 {
    (r != 0 ? 1 : 0) & (r >= half ? 1 : 0)
  }
}

struct TowardZero: RoundingRule {
  @inline(__always)
  func increment(r: UInt32, half: UInt32, parity: UInt32, sign: UInt32, d: Int32, random: UInt32) -> UInt32 {
    0
  }
}

/// Toward +Inf or -Inf: away from zero when inexact and the sign is `awaySign`.
struct Directed: RoundingRule {
  let awaySign: UInt32
  init(towardPositive: Bool) { awaySign = towardPositive ? 0 : 0x8000_0000 }
  @inline(__always)
  func increment(r: UInt32, half: UInt32, parity: UInt32, sign: UInt32, d: Int32, random: UInt32) -> UInt32 {
    (r != 0 ? 1 : 0) & (sign == awaySign ? 1 : 0)
  }
}

struct ToOdd: RoundingRule {
  @inline(__always)
  func increment(r: UInt32, half: UInt32, parity: UInt32, sign: UInt32, d: Int32, random: UInt32) -> UInt32 {
    (r != 0 ? 1 : 0) & (parity ^ 1)
  }
}

/// Away from zero when floor(r * 2^R / 2^d) + u >= 2^R, u the top R bits of the 32 random bits.
struct Stochastic: RoundingRule {
  let bits: UInt64
  static var usesRandom: Bool { true }
  @inline(__always)
  func increment(r: UInt32, half: UInt32, parity: UInt32, sign: UInt32, d: Int32, random: UInt32) -> UInt32 {
    let dd = UInt64(UInt32(bitPattern: d < 63 ? d : 63))
    let frac = (UInt64(r) &<< bits) &>> dd
    let u = UInt64(random &>> UInt32(32 &- bits))
    return frac &+ u >= (1 &<< bits) ? 1 : 0
  }
}

// MARK: The float kernel

/// The float kernel, about 4x faster than the integer one: for formats with M >= 1 and emin >= -126
/// and the roundings that float32 hardware rounding (or a few exact float operations) can express.
///
/// |x| is divided by the format's spacing there, 2^Q with Q = max(E, emin) - M (E = floor(log2 |x|);
/// Q = emin below 2^emin in formats without subnormals): y = |x| / 2^Q lies in [2^M, 2^(M+1)) in a
/// normal binade and below 2^M (or 1) under 2^emin, and the division by a power of two is exact.
/// y is rounded to an integer n (`FastRule`; exact: y < 2^24) and n * 2^Q is the result, also exact
/// (a carry to 2^(M+1) lands in the next binade by itself). Results equal the integer kernel's bit
/// for bit; the tests check both against `ReferenceQuantizer`. Two ways to divide and multiply back
/// (`MagnitudeMap`): `SpacingMap` where 2^Q and 2^-Q are float32 normals, `BinadeMap` for formats
/// reaching further down (bf16, tf32, E8Mx) or without subnormals.
protocol FastRule {
  static var usesRandom: Bool { get }
  /// Rounds the non-negative integer-or-not `y` (< 2^24) to an integer.
  func round(_ y: Float, sign: UInt32, random: UInt32) -> Float
}

extension FastRule {
  static var usesRandom: Bool { false }
}

/// |x| -> y = |x| / 2^Q, the rule's rounding, and back to the rounded magnitude's bits (before
/// overflow and special values, which the endings decide).
protocol MagnitudeMap {
  static func rounded<R: FastRule>(_ rule: R, _ a: UInt32, _ k: KernelConstants, _ random: UInt32) -> UInt32
}

/// For formats with subnormals: 2^Q from the exponent field max(field(|x|), field(2^emin)) minus M,
/// 2^-Q from 254 minus that (IEEE biases: e + 127 and -e + 127): two multiplies, nine vector
/// operations per 16 values instead of fourteen. Inf and NaN give Inf or NaN here (an M = 1 format
/// divides Inf by 2^127, whose inverse is 0, and gets NaN): above max either way, and the endings
/// look at the input for them.
struct SpacingMap: MagnitudeMap {
  @inline(__always)
  static func rounded<R: FastRule>(_ rule: R, _ a: UInt32, _ k: KernelConstants, _ random: UInt32) -> UInt32 {
    let mag = a & 0x7FFF_FFFF
    let spacing = max(mag & 0x7F80_0000, k.eminField) &- k.mField
    let y = Float(bitPattern: mag) * Float(bitPattern: (254 << 23) &- spacing)
    return (rule.round(y, sign: a & 0x8000_0000, random: random) * Float(bitPattern: spacing)).bitPattern
  }
}

/// In a normal binade y takes |x|'s mantissa under the exponent of 2^M, and n goes back by adding the
/// exponent difference to its bits; below 2^emin y = |x| * 2^-qLow in two factors (2^-qLow may exceed
/// float32's range) and n * 2^qLow is computed as n * 2^(qLow + 24) * 2^-24, keeping every operand a
/// normal float (a subnormal operand sends the multiplication to the CPU's slow microcode path).
struct BinadeMap: MagnitudeMap {
  @inline(__always)
  static func rounded<R: FastRule>(_ rule: R, _ a: UInt32, _ k: KernelConstants, _ random: UInt32) -> UInt32 {
    let mag = a & 0x7FFF_FFFF
    let field = mag & 0x7F80_0000
    let normal = field >= k.eminField
    let yNormal = Float(bitPattern: (mag & 0x7F_FFFF) | k.yField)
    let ySub = Float(bitPattern: mag) * k.subScale1 * k.subScale2
    let n = rule.round(normal ? yNormal : ySub, sign: a & 0x8000_0000, random: random)
    let outNormal = n.bitPattern &+ (field &- k.yField)
    let outSub = (n * k.lowSpacing * 0x1p-24).bitPattern
    return normal ? outNormal : outSub
  }
}

/// The float kernel with the general ending `finish`.
struct FastKernel<R: FastRule, M: MagnitudeMap>: Kernel {
  let rule: R
  static var usesRandom: Bool { R.usesRandom }
  @inline(__always)
  func apply(_ a: UInt32, _ k: KernelConstants, _ random: UInt32) -> UInt32 {
    finish(a & 0x8000_0000, a & 0x7FFF_FFFF, M.rounded(rule, a, k, random), k)
  }
}

/// A float kernel with the short ending `finish` reduces to when `saturatingSigned` holds: about ten
/// fewer vector operations per 16 values. Equal to `finish` there, case by case: overflow and
/// infinity (mapped by the float kernel to a magnitude above max) saturate to max; a zero input
/// rounds to 0 and keeps its sign when -0 exists (zeroInput is 0 with a zero); no input is negative
/// to an unsigned format; NaN is decided last, as in `finish`.
struct SaturatingFinish<R: FastRule, M: MagnitudeMap>: Kernel {
  let rule: R
  static var usesRandom: Bool { R.usesRandom }
  @inline(__always)
  func apply(_ a: UInt32, _ k: KernelConstants, _ random: UInt32) -> UInt32 {
    let sign = a & 0x8000_0000, mag = a & 0x7FFF_FFFF
    let out = min(M.rounded(rule, a, k, random), k.maxBits)
    let res = out == 0 ? sign & k.zeroSignMask : sign | out
    return mag > 0x7F80_0000 ? (sign != 0 ? k.nanNegative : k.nanPositive) : res
  }
}

/// `SaturatingFinish` for signed formats with -0 whose NaN result is the input's sign xor-ed onto
/// one pattern (nanNegative = nanPositive ^ sign bit; `KernelConstants.signXorEnding`): IEEE-like formats with NaN (fn and IEEE ExMy,
/// bf16, fp16) keep the sign, formats without NaN (E2M1, E2M3, E3M2) give the zero of the opposite
/// sign. Every result is then sign ^ (NaN ? nanPositive : magnitude): five vector operations per 16
/// values instead of eight.
struct SignedSaturatingFinish<R: FastRule, M: MagnitudeMap>: Kernel {
  let rule: R
  static var usesRandom: Bool { R.usesRandom }
  @inline(__always)
  func apply(_ a: UInt32, _ k: KernelConstants, _ random: UInt32) -> UInt32 {
    let out = min(M.rounded(rule, a, k, random), k.maxBits)
    return (a & 0x8000_0000) ^ (a & 0x7FFF_FFFF > 0x7F80_0000 ? k.nanPositive : out)
  }
}

struct FastNearestEven: FastRule {
  @inline(__always)
  func round(_ y: Float, sign: UInt32, random: UInt32) -> Float { y.rounded(.toNearestOrEven) }
}

struct FastTowardZero: FastRule {
  @inline(__always)
  func round(_ y: Float, sign: UInt32, random: UInt32) -> Float { y.rounded(.towardZero) }
}

/// Up for positive inputs is away from zero (ceil of the magnitude), down is toward it (floor).
struct FastDirected: FastRule {
  let awaySign: UInt32
  init(towardPositive: Bool) { awaySign = towardPositive ? 0 : 0x8000_0000 }
  @inline(__always)
  func round(_ y: Float, sign: UInt32, random: UInt32) -> Float {
    sign == awaySign ? y.rounded(.up) : y.rounded(.down)
  }
}

/// Ties away: t = trunc(y), plus one when the exact remainder y - t is at least 1/2.
struct FastNearestAway: FastRule {
  @inline(__always)
  func round(_ y: Float, sign: UInt32, random: UInt32) -> Float {
    let t = y.rounded(.towardZero)
    return y - t >= 0.5 ? t + 1 : t
  }
}

/// Away from zero when floor(f * 2^R) + u >= 2^R, f = y - trunc(y): as u and 2^R are integers, that
/// is f >= 1 - u / 2^R, compared exactly in float arithmetic for R <= 24. With U = u * 2^(32-R) (the
/// random bits with the low 32 - R cleared, at most 24 significant bits, so exact as a float),
/// 1 - U * 2^-32 is a multiple of 2^-R in (0, 1], exact, and one fused multiply-add gives it.
/// U enters as the signed integer U / 2 (its lowest bit is clear, so exact) times 2^-31: AVX2 has no
/// unsigned-to-float conversion, and LLVM emulated one in five instructions and two constants.
struct FastStochastic: FastRule {
  let topBits: UInt32  // the top R of 32 bits
  init(bits: Int) { topBits = UInt32.max << UInt32(32 - bits) }
  static var usesRandom: Bool { true }
  @inline(__always)
  func round(_ y: Float, sign: UInt32, random: UInt32) -> Float {
    let t = y.rounded(.towardZero)
    let threshold = Float(1).addingProduct(-Float(Int32(bitPattern: (random & topBits) &>> 1)), 0x1p-31)
    return y - t >= threshold ? t + 1 : t
  }
}
