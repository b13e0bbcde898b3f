import FPFormats
import Foundation
import Testing

/// `BlockQuantizer.quantizeColumns` (blocks down the columns, no transposition) against its
/// definition: transpose, optionally transform each row of the transpose with the Hadamard
/// transform, quantize along the rows, transpose back.
@Suite struct ColumnBlockTests {
  static func transpose(_ x: [Float], rows: Int, cols: Int) -> [Float] {
    var t = [Float](repeating: 0, count: rows * cols)
    for r in 0..<rows { for c in 0..<cols { t[c * rows + r] = x[r * cols + c] } }
    return t
  }

  /// The definition of blocks down the columns of x (rows x cols): transposed, transformed along the
  /// rows of the transpose, quantized along them, transposed back; with the counts.
  static func definition(
    _ q: BlockQuantizer, _ x: [Float], rows: Int, cols: Int, hadamard h: RandomHadamard?
  ) throws -> ([Float], QuantizationStats) {
    var a = transpose(x, rows: rows, cols: cols)
    var stats = QuantizationStats()
    try a.withUnsafeMutableBufferPointer { a in
      if let h { try h.forward(a, rows: cols, cols: rows) }
      try q.quantizeLastAxis(a, rows: cols, cols: rows, stats: &stats)
    }
    return (transpose(a, rows: cols, cols: rows), stats)
  }

  @Test(arguments: [
    ("mxfp4_e2m1", "rne", false), ("mxfp4_e2m1", "stochastic", false), ("nvfp4", "rne", true),
    ("nvfp4", "stochastic", true), ("nvfp4", "rne", false), ("mxfp8_e4m3", "rne", true),
    ("e2m1/ue4m3/16:tensor-scale", "rne", false), ("e2m1/ue8m0/16", "stochastic", true),
    // float32 elements with power-of-two scales round nothing: the transform's own bits, unmasked.
    ("e8m23/ue8m0/16", "rne", true),
  ])
  func columnsEqualTheTransposedDefinition(spec: String, rounding: String, hadamard: Bool) throws {
    let rows = 96, cols = 48
    var x = Distribution.studentT(3).sample(rows * cols, seed: 21)
    // Specials: a zero column block, NaN, an infinity, subnormals, a huge value.
    for r in 0..<32 { x[r * cols + 5] = 0 }
    x[7 * cols + 9] = .nan
    x[40 * cols + 17] = -.infinity
    for r in 32..<64 { x[r * cols + 30] = Float(bitPattern: UInt32(r * 101)) }
    x[70 * cols + 44] = 3e38
    let q = BlockQuantizer(
      format: try ScaledFormat(parsing: spec), rounding: try RoundingMode(parsing: rounding), seed: 5, stream: 9)
    let h = hadamard ? try RandomHadamard(size: 16, seed: 3) : nil

    let (want, wantStats) = try Self.definition(q, x, rows: rows, cols: cols, hadamard: h)

    // A 96 x 48 matrix is too small to be cut for threads (BlockQuantizer.columnSplit gives one part);
    // BlockReferenceTests runs quantizeColumns on matrices cut into 2 and 3 parts.
    #expect(BlockQuantizer.columnSplit(rows: rows, cols: cols, height: 32, threads: 3).parts == 1)
    for threads in [1] {
      var got = [Float](repeating: 0, count: rows * cols)
      var stats = QuantizationStats()
      let done = q.quantizeColumns(x, into: &got, rows: rows, cols: cols, hadamard: h, threads: threads, stats: &stats)
      #expect(done)
      let mismatches = (0..<got.count).filter { got[$0].bitPattern != want[$0].bitPattern }
      #expect(mismatches.count == 0, "\(spec) \(rounding) H=\(hadamard) threads \(threads): \(mismatches.count) differ, first \(mismatches.first.map { "\($0): \(got[$0]) vs \(want[$0])" } ?? "")")
      #expect(stats == wantStats, "\(spec) \(rounding): \(stats) vs \(wantStats)")
    }
  }

  @Test func shapesOutsideTheFastPathAreDeclined() throws {
    let q = BlockQuantizer(format: try ScaledFormat(parsing: "mxfp4_e2m1"))
    var out = [Float](repeating: 0, count: 64 * 40)
    var stats = QuantizationStats()
    let x = [Float](repeating: 1, count: 64 * 40)
    #expect(!q.quantizeColumns(x, into: &out, rows: 64, cols: 40, hadamard: nil, threads: 1, stats: &stats))
    #expect(!q.quantizeColumns(x, into: &out, rows: 40, cols: 64, hadamard: nil, threads: 1, stats: &stats))
    #expect(!q.quantizeColumns(x, into: &out, rows: 64, cols: 32, hadamard: try RandomHadamard(size: 32), threads: 1, stats: &stats))
    #expect(stats == QuantizationStats() && out.allSatisfy { $0 == 0 })
  }
}
