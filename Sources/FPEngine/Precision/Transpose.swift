import FPFormats

/// out (cols, rows) = inp (rows, cols)^T, in 8 x 8 tiles held in eight 8-lane vectors. Small tiles
/// matter: with power-of-two row lengths (2048 tokens) the 8 output rows of a tile lie 8 KB apart and
/// share one L1 set; 8 of them fit in its ways, 32 (a 32 x 32 tile) thrash it.
///
/// An 8 x 8 tile read as 64 values in row-major order has index bits (r2 r1 r0 c2 c1 c0); its transpose
/// has (c2 c1 c0 r2 r1 r0), a rotation by three bits. One perfect unshuffle (all even-indexed values,
/// then all odd ones) rotates the index right by one bit, so three unshuffles transpose the tile; each
/// is eight even/odd halves of vector pairs, which compile to two-source permutes. Edges are scalar.
/// `ldIn` / `ldOut` are the row strides of `inp` / `out` when they are pieces of wider matrices.
enum Transpose {
  static func apply(
    _ inp: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
    ldIn: Int? = nil, ldOut: Int? = nil
  ) {
    let li = ldIn ?? cols, lo = ldOut ?? rows
    let r8 = rows & ~7, c8 = cols & ~7
    let src = UnsafeRawPointer(inp), dst = UnsafeMutableRawPointer(out)
    typealias V = SIMD8<Float>
    for r0 in stride(from: 0, to: r8, by: 8) {
      for c0 in stride(from: 0, to: c8, by: 8) {
        @inline(__always) func load(_ i: Int) -> V { src.loadUnaligned(fromByteOffset: ((r0 + i) * li + c0) * 4, as: V.self) }
        var t0 = load(0), t1 = load(1), t2 = load(2), t3 = load(3), t4 = load(4), t5 = load(5), t6 = load(6), t7 = load(7)
        for _ in 0..<3 {
          let p0 = SIMD16(lowHalf: t0, highHalf: t1), p1 = SIMD16(lowHalf: t2, highHalf: t3)
          let p2 = SIMD16(lowHalf: t4, highHalf: t5), p3 = SIMD16(lowHalf: t6, highHalf: t7)
          t0 = p0.evenHalf; t1 = p1.evenHalf; t2 = p2.evenHalf; t3 = p3.evenHalf
          t4 = p0.oddHalf; t5 = p1.oddHalf; t6 = p2.oddHalf; t7 = p3.oddHalf
        }
        @inline(__always) func store(_ i: Int, _ t: V) { dst.storeBytes(of: t, toByteOffset: ((c0 + i) * lo + r0) * 4, as: V.self) }
        store(0, t0); store(1, t1); store(2, t2); store(3, t3); store(4, t4); store(5, t5); store(6, t6); store(7, t7)
      }
    }
    // Edges: the last cols % 8 columns of every row, and the last rows % 8 rows.
    for r in 0..<rows {
      let cStart = r < r8 ? c8 : 0
      for c in cStart..<cols { out[c * lo + r] = inp[r * li + c] }
    }
  }
}
