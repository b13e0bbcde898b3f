/// Storage codes: `sign | exponent field | mantissa` in the low `bitCount` bits of a UInt32
/// (the sign, when the format has one, is bit `bitCount - 1`: 0x8 for a 4-bit format).
/// Integer formats are sign-magnitude (`int8` code 0x81 is -1), as their symmetric range -127...127 is.
extension FloatFormat {
  /// The value of a code, as float32. NaN codes give a quiet NaN with the code's sign
  /// (fnuz: -NaN). Unused codes (subnormal codes of a format without subnormals) decode as subnormals.
  public func decode(_ code: UInt32) -> Float {
    let m = mantissaBits
    let magnitudeBits = exponentBits + m
    let negative = signed && (code >> UInt32(magnitudeBits)) & 1 == 1
    let rest = Int(code & ((1 << UInt32(magnitudeBits)) - 1))
    let field = rest >> m
    let mantissa = rest & ((1 << m) - 1)
    let top = (1 << exponentBits) - 1
    let nan = Float(bitPattern: negative ? 0xFFC0_0000 : 0x7FC0_0000)

    if policy == .fnuz && negative && rest == 0 { return nan }
    if exponentBits > 0 && field == top {
      switch policy {
      case .ieee: return mantissa == 0 ? (negative ? -.infinity : .infinity) : nan
      case .fn where mantissa == (1 << m) - 1: return nan
      default: break
      }
    }
    let magnitude: Float
    if field == 0 && hasZero {
      magnitude = Float(mantissa) * pow2(emin - m)
    } else {
      magnitude = Float((1 << m) + mantissa) * pow2(field - bias - m)
    }
    return negative ? -magnitude : magnitude
  }

  /// The code of a value that the format represents (a NaN maps to the format's NaN code, or to the
  /// code ml_dtypes uses when it has none). Round first with a `Quantizer` for arbitrary inputs: see
  /// `encode(_:with:)`.
  public func code(ofRepresentable v: Float) -> UInt32 {
    let m = mantissaBits
    let signBit: UInt32 = signed ? 1 << UInt32(exponentBits + m) : 0
    let negative = v.sign == .minus
    let top = UInt32((1 << exponentBits) - 1)
    if v.isNaN {
      switch policy {
      case .ieee: return (negative ? signBit : 0) | top << UInt32(m) | 1 << UInt32(m - 1)
      case .fn: return (negative ? signBit : 0) | UInt32((1 << (exponentBits + m)) - 1)
      case .fnuz: return signBit
      case .finite: return negative ? 0 : signBit  // the value v carries is a zero here
      }
    }
    let s = negative && (v != 0 || hasNegativeZero) ? signBit : 0
    if v.isInfinite { return s | top << UInt32(m) }
    if v == 0 { return s }
    let a = v.magnitude
    let e = a.exponent  // floor(log2), exact for subnormal float32 too
    if e >= emin && exponentBits > 0 {
      let field = UInt32(e + bias)
      let mantissa = UInt32(a / pow2(e - m)) - (1 << UInt32(m))  // exact: a power-of-two division
      return s | field << UInt32(m) | mantissa
    }
    return s | UInt32(a / pow2(emin - m))
  }

  /// Rounds `x` with `quantizer` (which must be for this format) and returns the code.
  public func encode(_ x: Float, with quantizer: Quantizer, index: Int = 0) -> UInt32 {
    code(ofRepresentable: quantizer.quantize(x, index: index))
  }

  /// Whether `decode` of this code is a value `Quantizer` can produce, so that
  /// `code(ofRepresentable: decode(c)) == c` must hold: not NaN, not a subnormal code of a format
  /// without subnormals.
  public func isCanonicalNumber(_ code: UInt32) -> Bool {
    let v = decode(code)
    if v.isNaN { return false }
    if !subnormals && hasZero && exponentBits > 0 {
      let rest = code & ((1 << UInt32(exponentBits + mantissaBits)) - 1)
      if rest >> UInt32(mantissaBits) == 0 && rest != 0 { return false }
    }
    return true
  }

  /// Classifies a code for `fpsim formats --values`.
  public func codeClass(_ code: UInt32) -> String {
    let v = decode(code)
    if v.isNaN { return "nan" }
    if v.isInfinite { return "inf" }
    if v == 0 { return "zero" }
    if exponentBits == 0 { return "integer" }
    let rest = code & ((1 << UInt32(exponentBits + mantissaBits)) - 1)
    return rest >> UInt32(mantissaBits) == 0 && hasZero ? "subnormal" : "normal"
  }
}
