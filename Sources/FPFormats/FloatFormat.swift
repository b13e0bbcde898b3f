import Foundation  // log2 only; this layer does no I/O

/// What a format does with its top codes: the special-value policy.
///
/// - `ieee`: the all-ones exponent field holds Inf (mantissa 0) and NaN (mantissa non-zero).
/// - `fn`: finite with NaN; only the all-ones code (exponent and mantissa) is NaN, no Inf (`float8_e4m3fn`).
/// - `fnuz`: finite, NaN is the negative-zero code, so there is no -0 and no Inf (`float8_e4m3fnuz`).
/// - `finite`: no Inf and no NaN; every code is a number (`float4_e2m1fn`, integers).
public enum SpecialPolicy: String, Codable, Sendable, CaseIterable {
  case ieee, fn, fnuz, finite
}

/// A binary floating-point format simulated in float32, described as data.
///
/// A code is `sign | exponent field | mantissa`. With field `f` and mantissa `t` (an integer of
/// `mantissaBits` bits), the value is `(1 + t/2^M) * 2^(f - bias)` for a normal field, and
/// `(t/2^M) * 2^(emin)` for the subnormal field 0, where `emin = 1 - bias`. Formats without a zero
/// (`hasZero == false`, as OCP E8M0) treat field 0 as a normal binade, so `emin = -bias`.
///
/// Every derived property (max, smallest subnormal, NaN codes, ...) is computed from these fields.
/// Anything representable in float32 is simulable exactly: at most 8 exponent and 23 mantissa bits,
/// and the smallest positive value must be a float32 (2^-149 or larger).
public struct FloatFormat: Hashable, Codable, Sendable, CustomStringConvertible {
  /// Canonical name: the ml_dtypes or OCP name when one is shared, else the generic grammar.
  public var name: String
  public var exponentBits: Int
  public var mantissaBits: Int
  public var bias: Int
  public var signed: Bool
  public var subnormals: Bool
  public var policy: SpecialPolicy
  /// False only for formats whose field 0 is a normal binade (OCP E8M0: 2^-127 is the smallest value).
  public var hasZero: Bool
  /// Integer formats are floats with no exponent bits and a bias making the quantum 1
  /// (`int8` = sign-magnitude e0m7, values -127...127: symmetric, as FP-versus-INT studies use).
  public var isInteger: Bool

  public init(
    name: String? = nil, exponentBits: Int, mantissaBits: Int, bias: Int? = nil, signed: Bool = true,
    subnormals: Bool = true, policy: SpecialPolicy = .ieee, hasZero: Bool = true, isInteger: Bool = false
  ) throws {
    let e = exponentBits, m = mantissaBits
    guard (0...8).contains(e) else {
      throw FormatError.tooWide("\(e) exponent bits: float32 holds at most 8, so fpsim cannot simulate it exactly")
    }
    guard (0...23).contains(m) else {
      throw FormatError.tooWide("\(m) mantissa bits: float32 holds at most 23, so fpsim cannot simulate it exactly")
    }
    self.name = ""
    self.exponentBits = e
    self.mantissaBits = m
    self.bias = bias ?? FloatFormat.defaultBias(exponentBits: e, mantissaBits: m, policy: policy)
    self.signed = signed
    self.subnormals = subnormals && m > 0 && hasZero
    self.policy = policy
    self.hasZero = hasZero
    self.isInteger = isInteger
    if e == 0 && policy != .finite {
      throw FormatError.invalid("a format with 0 exponent bits has no special codes: use the finite policy")
    }
    if policy == .fnuz && !signed {
      throw FormatError.invalid("fnuz keeps NaN in the negative-zero code, which an unsigned format lacks: use fn or finite")
    }
    if policy == .ieee && e == 1 {
      throw FormatError.invalid("an IEEE format with 1 exponent bit has no normal numbers: use fn or finite")
    }
    if bitCount > 32 { throw FormatError.tooWide("\(bitCount) bits") }
    // Every spacing of the format, down to 2^(emin - M) in its lowest binade, and its largest binade
    // must be float32 numbers for the simulation to be exact.
    guard emin - m >= -149 else {
      throw FormatError.tooWide(
        "bias \(self.bias): the finest spacing 2^\(emin - m) is below float32's 2^-149, so fpsim cannot simulate it exactly")
    }
    guard emaxFinite <= 127 else {
      throw FormatError.tooWide(
        "bias \(self.bias): the largest binade 2^\(emaxFinite) is above float32's 2^127, so fpsim cannot simulate it exactly")
    }
    self.name = name ?? genericName
  }

  public var description: String { name }

  /// Two formats are equal when they hold the same codes with the same values, whatever their names.
  public static func == (a: FloatFormat, b: FloatFormat) -> Bool {
    a.exponentBits == b.exponentBits && a.mantissaBits == b.mantissaBits && a.bias == b.bias
      && a.signed == b.signed && a.subnormals == b.subnormals && a.policy == b.policy
      && a.hasZero == b.hasZero && a.isInteger == b.isInteger
  }
  public func hash(into h: inout Hasher) {
    h.combine(exponentBits); h.combine(mantissaBits); h.combine(bias); h.combine(signed)
    h.combine(subnormals); h.combine(policy); h.combine(hasZero); h.combine(isInteger)
  }

  // MARK: Derived properties

  /// Total storage bits: sign (when signed) + exponent + mantissa.
  public var bitCount: Int { (signed ? 1 : 0) + exponentBits + mantissaBits }
  /// Number of distinct codes, 2^bits.
  public var codeCount: Int { 1 << bitCount }
  /// Unbiased exponent of the smallest normal binade (or of the subnormal quantum scale).
  public var emin: Int { hasZero ? 1 - bias : -bias }
  /// Largest exponent field that holds finite numbers.
  var maxFiniteField: Int {
    let top = (1 << exponentBits) - 1
    switch policy {
    case .ieee: return top - 1
    case .fn: return mantissaBits == 0 ? top - 1 : top
    case .fnuz, .finite: return max(top, 0)
    }
  }
  /// Largest mantissa integer in the largest finite field.
  var maxFiniteMantissa: Int {
    let all = (1 << mantissaBits) - 1
    return (policy == .fn && mantissaBits > 0) ? all - 1 : all
  }
  /// Unbiased exponent of the largest finite binade.
  public var emaxFinite: Int { exponentBits == 0 ? emin : maxFiniteField - bias }

  /// The largest finite value.
  public var maxFinite: Float {
    if exponentBits == 0 {
      return Float(maxFiniteMantissa) * pow2(emin - mantissaBits)
    }
    return Float(maxFiniteMantissa + (1 << mantissaBits)) * pow2(emaxFinite - mantissaBits)
  }
  /// max + half the top binade's spacing: values at or above it only reach max by clamping (under
  /// round-to-nearest they would have rounded past max). Telemetry counts those as saturated.
  public var overflowThreshold: Float {
    let top = exponentBits == 0 ? emin - mantissaBits : emaxFinite - mantissaBits
    return maxFinite + Float(sign: .plus, exponent: top - 1, significand: 1)
  }

  /// The smallest positive normal value, 2^emin (nil for integer formats, which have no normals).
  public var minNormal: Float? { exponentBits == 0 ? nil : pow2(emin) }
  /// The smallest positive subnormal value, 2^(emin - M) (nil when the format has no subnormals).
  public var minSubnormal: Float? { subnormals ? pow2(emin - mantissaBits) : nil }
  /// The smallest positive value: the smallest subnormal, else the smallest normal.
  public var minPositive: Float { minSubnormal ?? minNormal ?? 1 }
  /// Machine epsilon: the distance from 1 to the next larger value in a normal binade, 2^-M.
  public var epsilon: Float { pow2(-mantissaBits) }
  /// Dynamic range in binades: log2(max / smallest positive value).
  public var dynamicRangeBinades: Double { log2(Double(maxFinite) / Double(minPositive)) }
  public var hasInfinity: Bool { policy == .ieee }
  public var hasNaN: Bool {
    switch policy {
    case .ieee: return mantissaBits > 0
    case .fn, .fnuz: return true
    case .finite: return false
    }
  }
  /// Whether -0 has its own code (fnuz spends it on NaN; unsigned formats have no sign).
  public var hasNegativeZero: Bool { signed && hasZero && policy != .fnuz }

  /// 2^(E-1) - 1, one more for fnuz (as ml_dtypes); with no exponent bits, the bias that makes the
  /// spacing 1 (integers).
  public static func defaultBias(exponentBits e: Int, mantissaBits m: Int, policy: SpecialPolicy) -> Int {
    e == 0 ? 1 - m : (1 << (e - 1)) - 1 + (policy == .fnuz ? 1 : 0)
  }

  /// The generic-grammar spelling of this format (see `FloatFormat(parsing:)`).
  public var genericName: String {
    if isInteger { return "int\(bitCount)" }
    var s = (signed ? "" : "u") + "e\(exponentBits)m\(mantissaBits)"
    if bias != FloatFormat.defaultBias(exponentBits: exponentBits, mantissaBits: mantissaBits, policy: policy) {
      s += "b\(bias)"
    }
    if policy != .ieee { s += policy.rawValue }
    if !hasZero { s += "-nozero" }
    if !subnormals && mantissaBits > 0 && hasZero { s += "-nosub" }
    return s
  }
}

/// Errors from naming or building a format; each description is one line that names the fix.
public enum FormatError: Error, CustomStringConvertible, Equatable {
  case tooWide(String)
  case invalid(String)
  case unknownName(String, suggestions: [String])

  public var description: String {
    switch self {
    case .tooWide(let why): return "format too wide: \(why)"
    case .invalid(let why): return "invalid format: \(why)"
    case .unknownName(let name, let suggestions):
      let hint = suggestions.isEmpty ? "" : "; did you mean \(suggestions.joined(separator: ", "))?"
      return "unknown format '\(name)'\(hint) (see `fpsim formats` and the format grammar in the README)"
    }
  }
}

/// 2^k as a float32 for k in -149...127, built from its bits (exact, no libm).
@inline(__always)
func pow2(_ k: Int) -> Float {
  if k >= -126 { return Float(bitPattern: UInt32(k + 127) << 23) }
  return Float(bitPattern: UInt32(1) << UInt32(k + 149))
}
