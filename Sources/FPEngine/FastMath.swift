/// Elementwise transcendental functions written so that LLVM vectorizes the loops that call them
/// (glibc's `expf`/`erff` are opaque calls and keep a loop scalar).
///
/// Accuracy (checked against Foundation in double by the tests): `fastExp` within 2 ulp,
/// `normalCDF` within 3e-7 absolute everywhere, 1e-6 relative down to x = -5, 4e-6 down to -9.
public enum FastMath {
  /// e^x for x in float32. Range reduction x = n ln2 + r with |r| <= ln2/2 (ln2 split in a high part
  /// exact in float32 and a low correction, Cody-Waite), then the degree-7 Taylor polynomial of e^r
  /// (truncation error r^8/8! < 6e-9 relative), scaled by 2^n in two factors 2^(n/2) 2^(n - n/2),
  /// each a normal float built from its bit pattern (n reaches 128 just below the overflow threshold).
  /// n is rounded with the 1.5 * 2^23 trick, which leaves it in the low mantissa bits and, unlike a
  /// float-to-integer conversion, cannot trap on NaN. Below -87.3 the result is 0, above 88.72 +Inf;
  /// NaN gives NaN.
  @inline(__always)
  public static func exp(_ x: Float) -> Float {
    let xc = min(max(x, -87.3), 88.72)
    let shifted = xc * 1.442_695_04 + 0x1.8p23
    let n = shifted - 0x1.8p23
    let k = Int32(bitPattern: shifted.bitPattern) &- 0x4B40_0000
    let r = (xc - n * 0.693_145_75) - n * 1.428_606_8e-6
    var p: Float = 1.0 / 5040
    p = fma(p, r, 1.0 / 720)
    p = fma(p, r, 1.0 / 120)
    p = fma(p, r, 1.0 / 24)
    p = fma(p, r, 1.0 / 6)
    p = fma(p, r, 0.5)
    p = fma(p, r, 1)
    p = fma(p, r, 1)
    let k1 = k &>> 1, k2 = k &- k1
    let s1 = Float(bitPattern: UInt32(bitPattern: (k1 &+ 127) &<< 23))
    let s2 = Float(bitPattern: UInt32(bitPattern: (k2 &+ 127) &<< 23))
    let y = p * s1 * s2
    return x < -87.3 ? 0 : (x > 88.72 ? .infinity : (x.isNaN ? x : y))
  }

  /// Phi(x) = P(Z <= x) for a standard normal Z = 0.5 * erfc(-x / sqrt 2).
  /// erfc(z) for z >= 0 uses the Chebyshev-fitted form t * exp(-z^2 - 1.26551223 + t * P(t)),
  /// t = 1 / (1 + z/2), whose fractional error is below 1.2e-7 for every z >= 0 (Press et al.,
  /// Numerical Recipes, erfcc). Phi(x) = 1 - erfc(|x|/sqrt 2)/2 for x >= 0, erfc(|x|/sqrt 2)/2 otherwise,
  /// so the small tail values for negative x keep their relative accuracy.
  /// It is `normalCDFTail(x, t, exp(exponent))` of `(t, exponent) = normalCDFHead(x)`: a loop that
  /// splits there, the exponential in its second pass, runs faster (GELU.forward) with the same bits.
  @inline(__always)
  public static func normalCDF(_ x: Float) -> Float {
    let (t, exponent) = normalCDFHead(x)
    return normalCDFTail(x, t: t, exp: exp(exponent))
  }

  /// t = 1 / (1 + |x| / (2 sqrt 2)) and the exponent -1.26551223 + t P(t) - x^2/2 of `normalCDF`.
  @inline(__always)
  public static func normalCDFHead(_ x: Float) -> (t: Float, exponent: Float) {
    let z = abs(x) * 0.707_106_77
    let t = 1 / (1 + 0.5 * z)
    var p: Float = 0.170_872_77
    p = fma(p, t, -0.822_152_23)
    p = fma(p, t, 1.488_515_87)
    p = fma(p, t, -1.135_203_98)
    p = fma(p, t, 0.278_868_07)
    p = fma(p, t, -0.186_288_06)
    p = fma(p, t, 0.096_784_18)
    p = fma(p, t, 0.374_091_96)
    p = fma(p, t, 1.000_023_68)
    p = fma(p, t, -1.265_512_23)
    return (t, p - 0.5 * (x * x))
  }

  /// Phi(x) from `normalCDFHead(x)`'s t and the exponential of its exponent.
  @inline(__always)
  public static func normalCDFTail(_ x: Float, t: Float, exp e: Float) -> Float {
    // z^2 = x^2 / 2 carried exactly as hi + lo (lo from a fused multiply-add), so that the tail keeps
    // its relative accuracy: a rounded z^2 of ~40 would cost 40 * 2^-24 relative in exp(-z^2).
    let x2 = x * x
    let x2lo = (-x2).addingProduct(x, x)
    let half = 0.5 * t * e * (1 - 0.5 * x2lo)
    return x >= 0 ? 1 - half : half
  }

  /// a * b + c with one rounding (a fused multiply-add instruction): the polynomials above are
  /// evaluated in Horner form with it, half the instructions of a multiply then an add.
  @inline(__always)
  static func fma(_ a: Float, _ b: Float, _ c: Float) -> Float { c.addingProduct(a, b) }

  /// phi(x) = exp(-x^2/2) / sqrt(2 pi), the standard normal density.
  @inline(__always)
  public static func normalPDF(_ x: Float) -> Float {
    0.398_942_28 * exp(-0.5 * x * x)
  }
}
