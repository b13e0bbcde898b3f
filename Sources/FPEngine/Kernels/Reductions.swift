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
}
