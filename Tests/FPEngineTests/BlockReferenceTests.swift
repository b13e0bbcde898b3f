@testable import FPEngine
import FPFormats
import Testing

/// Every fast path of the block-scaled formats against `ReferenceBlockQuantizer`, bit for bit (values,
/// and elements and scales where the path stores them) and count for count (all the telemetry).
///
/// The inputs mix, per 32 x 32 region (so whole blocks along either axis): zeros of both signs,
/// float32 subnormals, tiny and huge normals, values of many binades, ordinary values; and scattered
/// NaN, +-Inf, -0, FLT_MAX and the smallest subnormal. Row lengths leave a short last block. Cases with
/// 2 or 3 threads use matrices large enough that the path cuts them into that many parts (checked on
/// the split each path uses).
@Suite struct BlockReferenceTests {
  enum Path: String, Sendable, CaseIterable {
    /// `BlockQuantizer.quantize`, blocks along rows, in place.
    case rows
    /// `BlockQuantizer.quantize` with axis 0 (blocks down columns by transposition).
    case axis0
    /// `quantizeLastAxis` reading from a separate source (BlockRun's `Separate` value source).
    case source
    /// `quantizeLastAxis` in place, storing elements and scales.
    case codes
    /// `ScaledRounding.roundLastAxis`: rows cut over threads.
    case engineRows
    /// The same on rows of whole blocks (of a multiple of 16 values), where NVFP4 and tensor scaling
    /// keep the block amaxes from the tensor amax's pass (`BlockAmax.blockAmaxes`).
    case engineRowsWholeBlocks
    /// `OperandRounder.round` with a 16-point Hadamard transform along rows, then `roundLastAxis`.
    case engineRowsHadamard
    /// `BlockQuantizer.quantizeColumns` without and with its fused Hadamard transform.
    case columns, columnsHadamard
    /// `OperandRounder.round` for an operand reduced along its rows: `quantizeColumns` where it
    /// applies, else transposed strips (`roundByStrips`), without and with a Hadamard transform.
    case engineColumns, engineColumnsHadamard
    /// 2-D tiles (`BlockQuantizer.quantize`): whole tiles, and tiles short at the edges.
    case wholeTiles, edgeTiles
  }

  struct Case: Sendable, CustomTestStringConvertible {
    let spec: String
    let tile: Bool
    let rounding: RoundingMode
    let path: Path
    let threads: Int
    var testDescription: String { "\(spec)\(tile ? " 16x16 tiles" : "") \(rounding) \(path.rawValue) threads \(threads)" }

    /// (rows, cols) of the input: small for one thread, large enough to split for more.
    var shape: (Int, Int) {
      let big = threads > 1
      switch path {
      case .rows, .source, .codes, .engineRows: return big ? (470, 420) : (24, 100)
      case .engineRowsWholeBlocks: return big ? (470, 448) : (24, 96)
      case .axis0: return (100, 48)
      case .engineRowsHadamard: return big ? (470, 432) : (24, 112)
      case .columns, .columnsHadamard: return big ? (512, 400) : (64, 48)
      // Rows not a multiple of 16: short last blocks down the columns, and the strips path.
      case .engineColumns: return big ? (500, 400) : (100, 48)
      // A multiple of 16 (the transform) but not of 32: columns for blocks of 16, strips for 32.
      case .engineColumnsHadamard: return big ? (528, 400) : (80, 48)
      case .wholeTiles: return (64, 48)
      case .edgeTiles: return (40, 56)
      }
    }

    func format() throws -> ScaledFormat {
      var f = try ScaledFormat(parsing: spec)
      if tile { f.block = .tile(rows: 16, cols: 16) }
      return f
    }
  }

  static let vectorSpecs = [
    "mxfp4_e2m1", "mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxint8", "e2m1/ue8m0/32:rule=ceil",
    "e4m3fn/ue8m0/16:rule=ceil", "nvfp4", "e2m1/ue5m3/16:tensor-scale", "e2m1/ue4m3/32:scale-rounding=stochastic",
    "e2m1/bf16/16", "int4/fp32/32", "e2m1/ue5m3/16:tensor-scale:scale-rounding=stochastic",
    "e2m1/ue5m3/16:scale-rounding=up", "e2m1/ue4m3/32:tensor-scale:scale-rounding=up",
  ]
  static let lineSpecs = ["e2m1/ue8m0/row", "e4m3fn/fp32/tensor", "e2m1/ue4m3/row:tensor-scale"]
  static let tileSpecs = ["mxfp4_e2m1", "nvfp4", "e2m1/ue5m3/16:tensor-scale:scale-rounding=stochastic", "e2m1/bf16/16"]
  static let roundings: [RoundingMode] = [.rne, .rtz, .stochastic(bits: 24)]

  static var cases: [Case] {
    var all: [Case] = []
    for rounding in roundings {
      for spec in vectorSpecs {
        for path in [Path.rows, .axis0, .source, .codes] { all.append(Case(spec: spec, tile: false, rounding: rounding, path: path, threads: 1)) }
        for path in [Path.engineRows, .engineRowsWholeBlocks, .engineRowsHadamard, .columns, .columnsHadamard, .engineColumns, .engineColumnsHadamard] {
          let format = try! ScaledFormat(parsing: spec)
          let q = BlockQuantizer(format: format)
          if path == .columns || path == .columnsHadamard,
            !q.columnsApply(rows: 64, cols: 48, hadamard: path == .columnsHadamard ? hadamard : nil)
          {
            continue  // quantizeColumns declines these formats; engineColumns covers them by strips
          }
          // Several threads for the nearest and the stochastic rounding (rtz adds no split behaviour).
          for threads in rounding == .rtz ? [1] : [1, 2, 3] {
            all.append(Case(spec: spec, tile: false, rounding: rounding, path: path, threads: threads))
          }
        }
      }
      for spec in lineSpecs {
        for path in [Path.rows, .source, .codes, .engineRows, .engineRowsWholeBlocks] {
          all.append(Case(spec: spec, tile: false, rounding: rounding, path: path, threads: 1))
        }
      }
      for spec in tileSpecs {
        for path in [Path.wholeTiles, .edgeTiles] { all.append(Case(spec: spec, tile: true, rounding: rounding, path: path, threads: 1)) }
      }
    }
    return all
  }

  static let hadamard = try! RandomHadamard(size: 16, seed: 3, stream: 4)
  static let seed: UInt64 = 5, stream: UInt64 = 9

  /// The input matrix described in the suite's comment, from a counter-based generator.
  static func input(rows: Int, cols: Int) -> [Float] {
    let rng = CounterRNG(seed: 2026, stream: 15)
    var x = [Float](repeating: 0, count: rows * cols)
    for r in 0..<rows {
      for c in 0..<cols {
        let i = r * cols + c
        let u = rng.bits64(UInt64(i))
        let region = UInt64(r / 32) << 20 | UInt64(c / 32)
        let kind = rng.bits64(1 << 40 | region) % 12
        let sign: Double = u >> 63 == 0 ? 1 : -1
        let m = Double(u >> 11 & 0xF_FFFF_FFFF) / Double(1 << 36)  // [0, 1)
        let v: Double
        switch kind {
        case 0: v = 0
        case 1: v = m * 0x1p-130  // float32 subnormals
        case 2: v = m * 0x1p120  // huge
        case 3: v = m * 0x1p-118  // tiny normals
        case 4: v = m * Double(sign: .plus, exponent: Int(u >> 32 & 63) - 32, significand: 1)  // many binades
        default: v = m * Double(sign: .plus, exponent: Int(kind) - 8, significand: 1)
        }
        x[i] = Float(sign * v)
        switch u & 0x3FF {
        case 0: x[i] = .nan
        case 1: x[i] = .infinity
        case 2: x[i] = -.infinity
        case 3: x[i] = -0.0
        case 4: x[i] = .greatestFiniteMagnitude
        case 5: x[i] = -.leastNonzeroMagnitude
        default: break
        }
      }
    }
    return x
  }

  /// What a fast path gave: values, telemetry, and elements / scales where it stores them.
  struct Outcome {
    var values: [Float]
    var counts: RoundingCounts
    var elements: [Float]? = nil
    var scales: [Float]? = nil
  }

  /// The number of parts the case's path cuts its work into.
  static func parts(_ c: Case, _ format: ScaledFormat, rows: Int, cols: Int) -> Int {
    let h = c.path == .columnsHadamard || c.path == .engineColumnsHadamard ? hadamard : nil
    let q = BlockQuantizer(format: format)
    switch c.path {
    case .engineRows, .engineRowsWholeBlocks, .engineRowsHadamard:
      return ScaledRounding.rowSplit(rows: rows, cols: cols, threads: c.threads).parts
    case .columns, .columnsHadamard, .engineColumns, .engineColumnsHadamard:
      guard case .vector(let n) = format.block else { return 1 }
      if q.columnsApply(rows: rows, cols: cols, hadamard: h) {
        return BlockQuantizer.columnSplit(rows: rows, cols: cols, height: max(n, 16), threads: c.threads).parts
      }
      return OperandLayout(rows: rows, cols: cols, reducesAlongRows: true).stripSplit(threads: c.threads).parts
    default: return 1
    }
  }

  static func run(_ c: Case, _ format: ScaledFormat, _ x: [Float], rows: Int, cols: Int) throws -> Outcome {
    let q = BlockQuantizer(format: format, rounding: c.rounding, seed: seed, stream: stream)
    let rounder = ScaledRounding(format: format, rounding: c.rounding)
    let n = rows * cols
    var out = [Float](repeating: 0, count: n)
    var stats = QuantizationStats()
    switch c.path {
    case .rows, .axis0, .wholeTiles, .edgeTiles:
      out = x
      try out.withUnsafeMutableBufferPointer { try q.quantize($0, rows: rows, cols: cols, axis: c.path == .axis0 ? 0 : 1, stats: &stats) }
      return Outcome(values: out, counts: RoundingCounts(stats))
    case .source:
      try x.withUnsafeBufferPointer { src in
        try out.withUnsafeMutableBufferPointer {
          try q.quantizeLastAxis($0, rows: rows, cols: cols, source: src.baseAddress!, stats: &stats)
        }
      }
      return Outcome(values: out, counts: RoundingCounts(stats))
    case .codes:
      out = x
      var elements = [Float](repeating: 0, count: n)
      let blocks: Int
      switch format.block {
      case .vector(let b): blocks = rows * ((cols + b - 1) / b)
      case .row: blocks = rows
      default: blocks = 1
      }
      var scales = [Float](repeating: 0, count: blocks)
      try elements.withUnsafeMutableBufferPointer { e in
        try scales.withUnsafeMutableBufferPointer { s in
          try out.withUnsafeMutableBufferPointer {
            try q.quantizeLastAxis($0, rows: rows, cols: cols, elements: e.baseAddress!, scales: s.baseAddress!, stats: &stats)
          }
        }
      }
      return Outcome(values: out, counts: RoundingCounts(stats), elements: elements, scales: scales)
    case .engineRows, .engineRowsWholeBlocks:
      let counts = x.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer {
          rounder.roundLastAxis(
            src.baseAddress!, into: $0.baseAddress!, rows: rows, cols: cols, firstIndex: 0, firstBlock: 0,
            tensorAmax: nil, seed: seed, stream: stream, threads: c.threads, countEvents: true)
        }
      }
      return Outcome(values: out, counts: counts)
    case .columns, .columnsHadamard:
      let done = q.quantizeColumns(
        x, into: &out, rows: rows, cols: cols, hadamard: c.path == .columnsHadamard ? hadamard : nil,
        threads: c.threads, stats: &stats)
      #expect(done, "quantizeColumns declined \(c.testDescription)")
      return Outcome(values: out, counts: RoundingCounts(stats))
    case .engineRowsHadamard, .engineColumns, .engineColumnsHadamard:
      var a = [Float](repeating: 0, count: n), b = a
      let layout = OperandLayout(rows: rows, cols: cols, reducesAlongRows: c.path != .engineRowsHadamard)
      let h = c.path == .engineColumns ? nil : hadamard
      let counts = x.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
          a.withUnsafeMutableBufferPointer { pa in
            b.withUnsafeMutableBufferPointer { pb in
              rounder.round(
                src.baseAddress!, into: dst.baseAddress!, layout: layout,
                context: RoundingContext(
                  seed: seed, stream: stream, threads: c.threads, countEvents: true, hadamard: h,
                  scratch: (pa.baseAddress!, pb.baseAddress!)))
            }
          }
        }
      }
      return Outcome(values: out, counts: counts)
    }
  }

  @Test(arguments: cases)
  func fastPathEqualsTheBlockReference(_ c: Case) throws {
    let format = try c.format()
    let (rows, cols) = c.shape
    let x = Self.input(rows: rows, cols: cols)
    #expect(Self.parts(c, format, rows: rows, cols: cols) == c.threads, "\(c.testDescription): the work is not cut into \(c.threads) parts")

    let axis = [.axis0, .columns, .columnsHadamard, .engineColumns, .engineColumnsHadamard].contains(c.path) ? 0 : 1
    let h: RandomHadamard? = [.engineRowsHadamard, .columnsHadamard, .engineColumnsHadamard].contains(c.path) ? Self.hadamard : nil
    let want = ReferenceBlockQuantizer(format: format, rounding: c.rounding, seed: Self.seed, stream: Self.stream)
      .quantize(x, rows: rows, cols: cols, axis: axis, hadamard: h)
    let got = try Self.run(c, format, x, rows: rows, cols: cols)

    func same(_ a: Float, _ b: Float) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }
    func mismatches(_ got: [Float], _ want: [Float]) -> (count: Int, first: String) {
      let bad = got.indices.filter { !same(got[$0], want[$0]) }
      return (bad.count, bad.first.map { "at \($0): \(got[$0]) vs \(want[$0]) (input \(x.count > $0 ? x[$0] : .nan))" } ?? "")
    }
    let values = mismatches(got.values, want.values)
    #expect(values.count == 0, "\(c.testDescription): \(values.count) values differ, first \(values.first)")
    let expected = RoundingCounts(want.stats)
    #expect(got.counts == expected, "\(c.testDescription): counts \(got.counts) vs \(expected)")
    if let e = got.elements {
      let m = mismatches(e, want.elements)
      #expect(m.count == 0, "\(c.testDescription): \(m.count) elements differ, first \(m.first)")
    }
    if let s = got.scales {
      let m = mismatches(s, want.scales)
      #expect(s.count == want.scales.count && m.count == 0, "\(c.testDescription): \(m.count) scales differ, first \(m.first)")
    }
  }
}
