import FPFormats
import Foundation
import Testing

/// `BlockQuantizer.tensorScaleApart` (the bf16 GEMM mode's form of NVFP4 and `tensor-scale` formats):
/// each value comes out as element x block scale, from `ReferenceBlockQuantizer`'s elements and scales,
/// with the same counts as the default; along rows, down columns (with and without the Hadamard
/// transform) and in tiles. Times the tensor scale, the values are the default's within a few float32
/// roundings.
@Suite struct TensorScaleApartTests {
  static let rows = 96, cols = 48

  /// Student-t values with a zero block, NaN, an infinity and subnormals; with `huge`, a value near
  /// FLT_MAX too (most block scales then underflow, and NVFP4's block of it overflows).
  static func data(huge: Bool = false) -> [Float] {
    var x = Distribution.studentT(3).sample(rows * cols, seed: 23)
    for c in 0..<16 { x[3 * cols + c] = 0 }
    x[7 * cols + 9] = .nan
    x[40 * cols + 17] = -.infinity
    for c in 16..<32 { x[60 * cols + c] = Float(bitPattern: UInt32(c * 101)) }
    if huge { x[70 * cols + 44] = 3e38 }
    return x
  }

  static func quantizer(_ spec: String, _ rounding: String, apart: Bool) throws -> BlockQuantizer {
    var q = BlockQuantizer(
      format: try ScaledFormat(parsing: spec), rounding: try RoundingMode(parsing: rounding), seed: 5, stream: 9)
    q.tensorScaleApart = apart
    return q
  }

  static func bits(_ x: [Float]) -> [UInt32] { x.map(\.bitPattern) }

  @Test(arguments: [
    ("nvfp4", "rne"), ("nvfp4", "stochastic"), ("e2m1/ue4m3/16:tensor-scale", "rne"),
    ("e2m1/ue4m3/16:tensor-scale", "stochastic"),
  ])
  func rowsAreElementTimesBlockScale(spec: String, rounding: String) throws {
    for huge in [false, true] { try rowsAreElementTimesBlockScale(spec: spec, rounding: rounding, huge: huge) }
  }

  func rowsAreElementTimesBlockScale(spec: String, rounding: String, huge: Bool) throws {
    let x = Self.data(huge: huge), rows = Self.rows, cols = Self.cols
    let reference = ReferenceBlockQuantizer(
      format: try ScaledFormat(parsing: spec), rounding: try RoundingMode(parsing: rounding), seed: 5, stream: 9
    ).quantize(x, rows: rows, cols: cols)
    var apart = x, scaled = x
    var sApart = QuantizationStats(), sScaled = QuantizationStats()
    try apart.withUnsafeMutableBufferPointer {
      try Self.quantizer(spec, rounding, apart: true).quantizeLastAxis($0, rows: rows, cols: cols, stats: &sApart)
    }
    try scaled.withUnsafeMutableBufferPointer {
      try Self.quantizer(spec, rounding, apart: false).quantizeLastAxis($0, rows: rows, cols: cols, stats: &sScaled)
    }
    #expect(sApart == sScaled)
    #expect(Self.bits(scaled) == Self.bits(reference.values))
    // Element x block scale (exact in float32), and the default's value wherever that is a zero (a zero
    // element, or a block whose combined factor underflowed) or not finite (the huge value's block:
    // NVFP4's fl(s * A) overflows).
    let want = (0..<x.count).map { i in
      scaled[i] == 0 || !scaled[i].isFinite ? scaled[i] : reference.elements[i] * reference.scales[i / 16]
    }
    let differ = (0..<x.count).filter { apart[$0].bitPattern != want[$0].bitPattern }
    #expect(sApart.scaleUnderflow < (huge ? sApart.blocks : 20), "\(sApart)")
    #expect(differ.isEmpty, "\(spec) \(rounding) huge \(huge): \(differ.count) differ, first \(differ.first.map { "\(apart[$0]) vs \(want[$0])" } ?? "")")
    // Times the tensor scale, the default's values within a few roundings.
    let t = try Self.quantizer(spec, rounding, apart: false).tensorScale(tensorAmax: BlockAmax.finiteAmax(x, x.count))!
    #expect(t != 1)
    let far = (0..<x.count).filter { i in
      scaled[i].isFinite && abs(apart[i] * t - scaled[i]) > abs(scaled[i]) * 0x1p-20
    }
    #expect(far.isEmpty, "\(spec) \(rounding) huge \(huge): \(far.count) values, first \(far.first.map { "\(apart[$0]) x \(t) vs \(scaled[$0])" } ?? "")")
  }

  /// The column path and tiles set the scale apart as the rows do: down columns equals the rows of the
  /// transpose (transformed or not), tiles equal element x their tile's scale.
  @Test(arguments: [("nvfp4", "rne", false), ("nvfp4", "stochastic", true), ("e2m1/ue4m3/16:tensor-scale", "rne", true)])
  func columnsEqualTheRowsOfTheTranspose(spec: String, rounding: String, hadamard: Bool) throws {
    let x = Self.data(), rows = Self.rows, cols = Self.cols
    let q = try Self.quantizer(spec, rounding, apart: true)
    let h = hadamard ? try RandomHadamard(size: 16, seed: 3) : nil
    let (want, wantStats) = try ColumnBlockTests.definition(q, x, rows: rows, cols: cols, hadamard: h)
    var got = [Float](repeating: 0, count: rows * cols)
    var stats = QuantizationStats()
    #expect(q.quantizeColumns(x, into: &got, rows: rows, cols: cols, hadamard: h, threads: 1, stats: &stats))
    #expect(Self.bits(got) == Self.bits(want))
    #expect(stats == wantStats)
  }

  @Test func tilesAreElementTimesTheirScale() throws {
    let x = Self.data(), rows = Self.rows, cols = Self.cols
    var format = try ScaledFormat(parsing: "nvfp4")
    format.block = .tile(rows: 16, cols: 16)
    let reference = ReferenceBlockQuantizer(format: format).quantize(x, rows: rows, cols: cols)
    var q = BlockQuantizer(format: format)
    var scaled = x
    var stats = QuantizationStats()
    try scaled.withUnsafeMutableBufferPointer { try q.quantize($0, rows: rows, cols: cols, stats: &stats) }
    q.tensorScaleApart = true
    var apart = x
    try apart.withUnsafeMutableBufferPointer { try q.quantize($0, rows: rows, cols: cols, stats: &stats) }
    // Tile (r / 16, c / 16) is block (r / 16) * (cols / 16) + c / 16.
    let differ = (0..<x.count).filter { i in
      let b = i / cols / 16 * (cols / 16) + i % cols / 16
      let want = scaled[i] == 0 || !scaled[i].isFinite ? scaled[i] : reference.elements[i] * reference.scales[b]
      return apart[i].bitPattern != want.bitPattern
    }
    #expect(differ.isEmpty, "\(differ.count) differ")
  }
}
