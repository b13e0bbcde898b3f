@testable import FPEngine
import Testing

@Suite struct MicroGEMMTests {
  /// `MicroGEMM.rows4` and `rows8` at both widths (32 columns at a time, as on AVX-512, and 16, as
  /// elsewhere) against a plain loop of the same fused multiply-adds in the same order over j, bit for
  /// bit: every row count R, A plain and transposed, widths W of 16 to 80 columns; the rows and columns
  /// outside R x W keep what was there.
  @Test func bothWidthsHaveTheBitsOfThePlainLoop() {
    var rng = TestRNG(17)
    let K = 37, lda = 41, ldb = 90, ldo = 85
    let a = rng.floats(lda * 45, scale: 2), b = rng.floats(ldb * K, scale: 2), start = rng.floats(8 * ldo, scale: 1)
    for aTransposed in [false, true] {
      for R in 1...8 {
        for W in [16, 32, 48, 64, 80] {
          var want = start
          for r in 0..<R {
            for c in 0..<W {
              var acc: Float = 0
              for j in 0..<K { acc = acc.addingProduct(b[j * ldb + c], aTransposed ? a[j * lda + r] : a[r * lda + j]) }
              want[r * ldo + c] = acc
            }
          }
          for wide in [false, true] {
            for eight in R > 4 ? [true] : [false, true] {
              var got = start
              got.withUnsafeMutableBufferPointer { o in
                if eight {
                  MicroGEMM.rows8(
                    out: o.baseAddress!, ldo: ldo, a: a, lda: lda, aTransposed: aTransposed, b: b, ldb: ldb, R: R, K: K,
                    W: W, wide: wide)
                } else {
                  MicroGEMM.rows4(
                    out: o.baseAddress!, ldo: ldo, a: a, lda: lda, aTransposed: aTransposed, b: b, ldb: ldb, R: R, K: K,
                    W: W, wide: wide)
                }
              }
              #expect(
                got.map(\.bitPattern) == want.map(\.bitPattern),
                "rows\(eight ? 8 : 4) wide \(wide) R \(R) W \(W) aT \(aTransposed)")
            }
          }
        }
      }
    }
  }
}
