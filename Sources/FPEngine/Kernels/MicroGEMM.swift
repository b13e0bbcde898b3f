import FPFormats

/// A register-blocked block product for the small, causal matrix products of attention (T x T by
/// T x hs per head), where a BLAS call per head costs more in overhead and wasted upper-triangle work
/// than the arithmetic itself:
///
///     out[r][c] = sum_{j < K} A(r, j) * B[j][c]    for r < R <= 4, c < W, W a multiple of 16
///
/// with A(r, j) = a[r * lda + j], or a[j * lda + r] when `aTransposed`, and B's rows at b + j * ldb.
/// Four rows by 32 columns of accumulators (eight 16-wide vectors) stay in registers over the whole j
/// loop where the module is compiled for AVX-512 (32 vector registers), four rows by 16 columns
/// elsewhere: with 256-bit registers, 32 columns' accumulators take all sixteen, and five of them were
/// spilled to the stack and reloaded on every step of the sum. The summation order over j is fixed,
/// whatever the width: results do not depend on it or on how callers split their work.
enum MicroGEMM {
  typealias V16 = SIMD16<Float>

  @inline(__always)
  static func load(_ p: UnsafePointer<Float>) -> V16 { UnsafeRawPointer(p).loadUnaligned(as: V16.self) }

  @inline(__always)
  static func store(_ p: UnsafeMutablePointer<Float>, _ v: V16) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: V16.self)
  }

  @inline(__always)
  static func rows4(
    out: UnsafeMutablePointer<Float>, ldo: Int, a: UnsafePointer<Float>, lda: Int, aTransposed: Bool,
    b: UnsafePointer<Float>, ldb: Int, R: Int, K: Int, W: Int, wide: Bool = BuiltFor.avx512
  ) {
    // Rows beyond R read row R-1 again (in bounds) and are not stored.
    let r1 = min(1, R - 1), r2 = min(2, R - 1), r3 = min(3, R - 1)
    // Offsets of A(r, j) = a[j * js + r * rs].
    let js = aTransposed ? lda : 1, rs = aTransposed ? 1 : lda
    let o1 = r1 * rs, o2 = r2 * rs, o3 = r3 * rs
    var c = 0
    while wide && c + 32 <= W {
      var x0 = V16(), y0 = V16(), x1 = V16(), y1 = V16(), x2 = V16(), y2 = V16(), x3 = V16(), y3 = V16()
      for j in 0..<K {
        let bj = b + j &* ldb + c, aj = a + j &* js
        let u = load(bj), v = load(bj + 16)
        let a0 = V16(repeating: aj[0]), a1 = V16(repeating: aj[o1])
        let a2 = V16(repeating: aj[o2]), a3 = V16(repeating: aj[o3])
        x0 = x0.addingProduct(u, a0); y0 = y0.addingProduct(v, a0)
        x1 = x1.addingProduct(u, a1); y1 = y1.addingProduct(v, a1)
        x2 = x2.addingProduct(u, a2); y2 = y2.addingProduct(v, a2)
        x3 = x3.addingProduct(u, a3); y3 = y3.addingProduct(v, a3)
      }
      put(out + c, ldo, R, x0, x1, x2, x3)
      put(out + c + 16, ldo, R, y0, y1, y2, y3)
      c += 32
    }
    while c < W {
      var x0 = V16(), x1 = V16(), x2 = V16(), x3 = V16()
      for j in 0..<K {
        let u = load(b + j &* ldb + c), aj = a + j &* js
        x0 = x0.addingProduct(u, V16(repeating: aj[0])); x1 = x1.addingProduct(u, V16(repeating: aj[o1]))
        x2 = x2.addingProduct(u, V16(repeating: aj[o2])); x3 = x3.addingProduct(u, V16(repeating: aj[o3]))
      }
      put(out + c, ldo, R, x0, x1, x2, x3)
      c += 16
    }
  }

  /// `rows4` for R <= 8 rows. Where the module is compiled for AVX-512, eight rows by 32 columns of
  /// accumulators (sixteen vectors) stay in registers: each step of the sum loads two vectors of B and
  /// eight values of A for sixteen fused multiply-adds, against two and four for eight in `rows4`, and
  /// sixteen independent chains cover the multiply-add's latency with room to spare. Elsewhere, and for
  /// R <= 4, it is `rows4` on each four rows. Every output is the same chain over j either way.
  @inline(__always)
  static func rows8(
    out: UnsafeMutablePointer<Float>, ldo: Int, a: UnsafePointer<Float>, lda: Int, aTransposed: Bool,
    b: UnsafePointer<Float>, ldb: Int, R: Int, K: Int, W: Int, wide: Bool = BuiltFor.avx512
  ) {
    let js = aTransposed ? lda : 1, rs = aTransposed ? 1 : lda
    guard wide && R > 4 else {
      for r0 in stride(from: 0, to: R, by: 4) {
        rows4(
          out: out + r0 * ldo, ldo: ldo, a: a + r0 * rs, lda: lda, aTransposed: aTransposed, b: b, ldb: ldb,
          R: min(4, R - r0), K: K, W: W, wide: wide)
      }
      return
    }
    // Rows beyond R read row R-1 again (in bounds) and are not stored; rows 0 ..< 5 exist.
    let o1 = rs, o2 = 2 * rs, o3 = 3 * rs, o4 = 4 * rs
    let o5 = min(5, R - 1) * rs, o6 = min(6, R - 1) * rs, o7 = min(7, R - 1) * rs
    var c = 0
    while c + 32 <= W {
      var x0 = V16(), y0 = V16(), x1 = V16(), y1 = V16(), x2 = V16(), y2 = V16(), x3 = V16(), y3 = V16()
      var x4 = V16(), y4 = V16(), x5 = V16(), y5 = V16(), x6 = V16(), y6 = V16(), x7 = V16(), y7 = V16()
      for j in 0..<K {
        let bj = b + j &* ldb + c, aj = a + j &* js
        let u = load(bj), v = load(bj + 16)
        var e = V16(repeating: aj[0])
        x0 = x0.addingProduct(u, e); y0 = y0.addingProduct(v, e)
        e = V16(repeating: aj[o1]); x1 = x1.addingProduct(u, e); y1 = y1.addingProduct(v, e)
        e = V16(repeating: aj[o2]); x2 = x2.addingProduct(u, e); y2 = y2.addingProduct(v, e)
        e = V16(repeating: aj[o3]); x3 = x3.addingProduct(u, e); y3 = y3.addingProduct(v, e)
        e = V16(repeating: aj[o4]); x4 = x4.addingProduct(u, e); y4 = y4.addingProduct(v, e)
        e = V16(repeating: aj[o5]); x5 = x5.addingProduct(u, e); y5 = y5.addingProduct(v, e)
        e = V16(repeating: aj[o6]); x6 = x6.addingProduct(u, e); y6 = y6.addingProduct(v, e)
        e = V16(repeating: aj[o7]); x7 = x7.addingProduct(u, e); y7 = y7.addingProduct(v, e)
      }
      put(out + c, ldo, 4, x0, x1, x2, x3)
      put(out + c + 16, ldo, 4, y0, y1, y2, y3)
      put(out + 4 * ldo + c, ldo, R - 4, x4, x5, x6, x7)
      put(out + 4 * ldo + c + 16, ldo, R - 4, y4, y5, y6, y7)
      c += 32
    }
    if c < W {
      for r0 in stride(from: 0, to: 8, by: 4) {
        rows4(
          out: out + r0 * ldo + c, ldo: ldo, a: a + r0 * rs, lda: lda, aTransposed: aTransposed, b: b + c, ldb: ldb,
          R: min(4, R - r0), K: K, W: W - c, wide: wide)
      }
    }
  }

  @inline(__always)
  static func put(_ o: UnsafeMutablePointer<Float>, _ ldo: Int, _ R: Int, _ x0: V16, _ x1: V16, _ x2: V16, _ x3: V16) {
    store(o, x0)
    if R > 1 { store(o + ldo, x1) }
    if R > 2 { store(o + 2 * ldo, x2) }
    if R > 3 { store(o + 3 * ldo, x3) }
  }
}
