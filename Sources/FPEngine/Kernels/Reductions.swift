/// Sums that vectorize. LLVM keeps a plain `s += x[i]` loop scalar (float addition is not associative
/// and Swift allows no reassociation), which makes every row sum a chain of dependent adds. These
/// keep 16 partial sums in a SIMD register; the order is fixed, so results are deterministic.
enum Reduce {
  @inline(__always)
  static func load16(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD16<Float> {
    UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
  }

  /// sum_i x[i]
  @inline(__always)
  static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD16<Float>()
    var i = 0
    while i + 16 <= n { acc += load16(x, i); i += 16 }
    var s = acc.sum()
    while i < n { s += x[i]; i += 1 }
    return s
  }

  /// sum_i x[i] * y[i]
  @inline(__always)
  static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD16<Float>()
    var i = 0
    while i + 16 <= n { acc += load16(x, i) * load16(y, i); i += 16 }
    var s = acc.sum()
    while i < n { s += x[i] * y[i]; i += 1 }
    return s
  }

  /// sum_i (x[i] - m)^2
  @inline(__always)
  static func squaredDeviation(_ x: UnsafePointer<Float>, _ m: Float, _ n: Int) -> Float {
    var acc = SIMD16<Float>()
    let mv = SIMD16<Float>(repeating: m)
    var i = 0
    while i + 16 <= n { let d = load16(x, i) - mv; acc += d * d; i += 16 }
    var s = acc.sum()
    while i < n { let d = x[i] - m; s += d * d; i += 1 }
    return s
  }

  /// The largest non-NaN value of x[0 ..< n] (+0 counted above -0), -Inf when there is none: what the
  /// loop `m = max(m, x[i])` from m = -Inf computes, up to the sign of a zero maximum. That loop stays
  /// scalar (Swift's float `max` is not associative in LLVM's eyes); this one compares integer keys,
  /// which vectorizes: key(b) = b for b >= 0, b ^ 0x7FFFFFFF for negative b (as Int32; the keys order
  /// as the floats), and Int32.min for NaN so that it never wins.
  @inline(__always)
  static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    let bits = UnsafeRawPointer(x).assumingMemoryBound(to: Int32.self)
    var m = orderKey(Int32(bitPattern: (-Float.infinity).bitPattern))
    for i in 0..<n {
      let b = bits[i]
      let nan = (0x7F80_0000 &- (b & 0x7FFF_FFFF)) &>> 31  // -1 when |b| is above Inf's bits
      m = Swift.max(m, (orderKey(b) & ~nan) | (Int32.min & nan))
    }
    return Float(bitPattern: UInt32(bitPattern: orderKey(m)))  // the map is its own inverse
  }

  /// The order key of float bits b (as Int32): b for b >= 0, b ^ 0x7FFFFFFF for negative b.
  @inline(__always)
  static func orderKey(_ b: Int32) -> Int32 { b ^ ((b &>> 31) & 0x7FFF_FFFF) }
}
