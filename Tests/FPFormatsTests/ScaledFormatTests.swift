import FPFormats
import Foundation
import Testing

func scaled(_ spec: String) throws -> BlockQuantizer { BlockQuantizer(format: try ScaledFormat(parsing: spec)) }

@Suite struct ScaledFormatTests {
  /// MXFP4 by hand. Block 1..32: amax 32, shared exponent floor(log2 32) - 2 = 3, scale 8; elements
  /// x/8 round to E2M1 {0, .5, 1, 1.5, 2, 3, 4, 6}: 1/8 -> 0, 2/8 = .25 ties to 0 (even), 3/8 -> .5,
  /// 20/8 = 2.5 ties to 2 (even), 28/8 = 3.5 ties to 4. Block 33..40 (short last block): amax 40,
  /// exponent 5 - 2 = 3, scale 8: 33/8 = 4.125 -> 4, 36/8 = 4.5 -> 4, 40/8 = 5 ties to 4 (mantissa even).
  @Test func mxfp4HandWorkedBlocksIncludingTiesAndAShortLastBlock() throws {
    let q = try scaled("mxfp4_e2m1")
    let out = try q.quantize((1...40).map(Float.init))
    #expect(out[0] == 0 && out[1] == 0 && out[2] == 4)
    #expect(out[19] == 16 && out[27] == 32 && out[31] == 32)
    #expect(out[32] == 32 && out[35] == 32 && out[39] == 32)
  }

  /// An all-zero block uses exponent -127 and stays zero (signs kept); one huge outlier sets the
  /// scale so small values flush to zero; a value beyond 6 * 2^e after scaling saturates at 6 * 2^e.
  @Test func mxfp4ZeroBlockOutlierAndSaturation() throws {
    let q = try scaled("mxfp4_e2m1")
    var stats = QuantizationStats()
    let zeros = try q.quantize([Float](repeating: 0, count: 31) + [-0.0], stats: &stats)
    #expect(zeros.allSatisfy { $0 == 0 } && zeros[31].sign == .minus)
    // Outlier 1000: exponent floor(log2 1000) - 2 = 7, scale 128: 1000/128 = 7.8 -> clamped to 6 -> 768;
    // 1.0/128 flushes to zero.
    var block = [Float](repeating: 1, count: 32)
    block[5] = 1000
    stats = QuantizationStats()
    let out = try q.quantize(block, stats: &stats)
    #expect(out[5] == 768)
    #expect(out[0] == 0)
    #expect(stats.saturated == 1 && stats.flushedToZero == 31 && stats.blocks == 1)
  }

  /// The README's promise: `tensor-scale` leaves power-of-two scales (rules floor and ceil) bit for bit
  /// as they are, while the same input does change under the amax rule (so the input reaches the case
  /// where a tensor factor matters: block maxima far from 1 over many binades).
  @Test(arguments: ["e2m1/ue8m0/32", "e2m1/ue8m0/32:rule=ceil", "e4m3fn/ue8m0/16"])
  func tensorScaleLeavesPowerOfTwoScalesAsTheyAre(spec: String) throws {
    var x = Distribution.studentT(3).sample(64 * 32, seed: 4)
    for b in 0..<64 { for j in 0..<32 { x[b * 32 + j] *= Float(sign: .plus, exponent: b * 3 - 90, significand: 1) } }
    func run(_ spec: String) throws -> ([UInt32], QuantizationStats) {
      var stats = QuantizationStats()
      let out = try BlockQuantizer(format: try ScaledFormat(parsing: spec)).quantize(x, stats: &stats)
      return (out.map(\.bitPattern), stats)
    }
    let (plain, plainStats) = try run(spec)
    let (scaled, scaledStats) = try run(spec + ":tensor-scale")
    #expect(plain == scaled && plainStats == scaledStats)
    #expect(try run("e2m1/ue4m3/16").0 != run("e2m1/ue4m3/16:tensor-scale").0, "the amax rule uses the tensor scale")
  }

  /// Stochastic scale rounding draws one counter per tile, its position in tile order, short edge tiles
  /// included. Two tiles of a 21 x 20 matrix (16 x 16 tiles) each hold one value 6.375, so both scales
  /// are 6.375 / 6 = 1.0625, midway between the UE4M3 values 1 and 1.125: each rounds up with
  /// probability 1/2, and the value comes out as 6 (scale 1, element saturated) or 6.75 (1.125 x 6).
  /// With distinct counters the two tiles disagree under some of 32 seeds (all agree with probability
  /// 2^-31); numbered by (values before) / (own size), as before, tiles (0, 16) and (16, 0) both drew
  /// counter 4 and always agreed.
  @Test func edgeTilesDrawTheirOwnScaleCounters() throws {
    let format = try ScaledFormat(parsing: "e2m1/ue4m3/16x16:scale-rounding=stochastic")
    var disagreements = 0, ups = 0
    for seed in 0..<32 {
      var x = [Float](repeating: 0, count: 21 * 20)
      x[0 * 20 + 16] = 6.375
      x[16 * 20 + 0] = 6.375
      var stats = QuantizationStats()
      try x.withUnsafeMutableBufferPointer {
        try BlockQuantizer(format: format, seed: UInt64(seed), stream: 7).quantize($0, rows: 21, cols: 20, stats: &stats)
      }
      let a = x[16], b = x[16 * 20]
      #expect([6, 6.75].contains(a) && [6, 6.75].contains(b), "seed \(seed): \(a), \(b)")
      disagreements += a != b ? 1 : 0
      ups += (a == 6.75 ? 1 : 0) + (b == 6.75 ? 1 : 0)
    }
    #expect(disagreements > 0 && ups > 0 && ups < 64, "\(disagreements) disagreements, \(ups) of 64 scales rounded up")
  }

  @Test func ceilRuleRoundsTheScaleUp() throws {
    // amax 7: floor rule e = 2 - 2 = 0 (7 saturates to 6); ceil rule e = ceil(log2(7/6)) = 1
    // (7/2 = 3.5 ties to 4 -> 8; 1/2 = 0.5 is an E2M1 subnormal -> 1).
    let floor = try scaled("mxfp4_e2m1").quantize([7, 1])
    let ceil = try scaled("e2m1/ue8m0/32:rule=ceil").quantize([7, 1])
    #expect(floor == [6, 1])
    #expect(ceil == [8, 1])
  }

  /// NVFP4 on 1...16 by hand: A = 16, S_enc = 2688/16 = 168, M = fl(168 * fl(1/6)) = 28;
  /// s = E4M3(16 * 28 = 448) = 448; decode = fl(448 * 16) * fl(1/2688) = 2.6666667; enc = 1/(448/168).
  /// Element 16 * 0.375 = 6 -> 6 -> 16; element 1 * .375 = .375 -> .5 -> 1.3333334.
  @Test func nvfp4FollowsTheReferenceOperationOrder() throws {
    let out = try scaled("nvfp4").quantize((1...16).map(Float.init))
    let decode = Float(448 * 16) * (1 / Float(2688))
    #expect(out[15] == 6 * decode)
    #expect(out[0] == 0.5 * decode)
    #expect(out[4] == 2 * decode)  // 5 * .375 = 1.875 -> 2
  }

  @Test(arguments: ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp4_e2m1", "mxint8"])
  func mxPropertiesOnRandomTensors(preset: String) throws {
    let f = try ScaledFormat(parsing: preset)
    let q = BlockQuantizer(format: f)
    let x = Distribution.studentT(3).sample(32 * 64, seed: 9)
    let out = try q.quantize(x)
    for b in 0..<64 {
      let block = Array(x[b * 32..<(b + 1) * 32]), got = Array(out[b * 32..<(b + 1) * 32])
      let amax = block.map(\.magnitude).max()!
      let e = Int(amax.exponent) - Int(f.element.maxFinite.exponent)
      let scale = Float(sign: .plus, exponent: e, significand: 1)  // a power of two (UE8M0)
      for (v, g) in zip(block, got) {
        let element = g / scale
        #expect(element.magnitude <= f.element.maxFinite, "no element exceeds its max")
        #expect(f.element.decode(f.element.code(ofRepresentable: element)) == element, "scale * representable")
        #expect(Quantizer(format: f.element).quantize(min(max(v / scale, -f.element.maxFinite), f.element.maxFinite)) == element)
      }
      // A block scaled by a power of two scales its result by the same power.
      let doubled = try q.quantize(block.map { $0 * 4 })
      #expect(doubled == got.map { $0 * 4 })
    }
    #expect(try q.quantize(out) == out, "dequantize(quantize(x)) is idempotent")
  }

  /// The fast block path (16 block maxima at a time, vectorized shared exponents, rows of whole blocks
  /// run as one) against a per-block reference written from the OCP definition with Double logs and
  /// the scalar ReferenceQuantizer, bit for bit and count for count, on a matrix whose blocks hold
  /// zeros, NaN, infinities, float32 subnormals only (subnormal amax), tiny values (exponent clamped
  /// at -127), values near float32's max (exponent above 127 for int8) and ordinary data.
  @Test(arguments: ["mxfp4_e2m1", "mxfp8_e4m3", "mxint8", "e2m1/ue8m0/16"])
  func floorRuleEqualsAPerBlockReference(preset: String) throws {
    let f = try ScaledFormat(parsing: preset)
    guard case .vector(let block) = f.block else { Issue.record("vector blocks expected"); return }
    let rows = 6, cols = 40 * block  // whole blocks per row; 240 blocks
    var x = Distribution.studentT(3).sample(rows * cols, seed: 11)
    let specials: [(Int, (Int) -> Float)] = [
      (3, { _ in 0 }), (7, { $0 % 3 == 0 ? .nan : 1 }), (8, { $0 == 2 ? -.infinity : 0.5 }),
      (20, { Float(bitPattern: UInt32(1 + $0 * 977)) }),  // subnormals only
      (33, { $0 == 0 ? Float(bitPattern: 0x0001_16C2) : 0 }),  // 0x0001_16C2: 1e-40 rounded to float32
      (41, { Float(bitPattern: 0x0000_0100) * Float($0 + 1) }),
      (50, { $0 == 5 ? 3e38 : 1 }), (64, { -Float.greatestFiniteMagnitude / Float($0 + 1) }),
      (99, { Float($0) * 1e-38 }),
    ]
    for (b, value) in specials { for j in 0..<block { x[b * block + j] = value(j) } }
    var out = x
    var stats = QuantizationStats()
    try out.withUnsafeMutableBufferPointer { try BlockQuantizer(format: f).quantize($0, rows: rows, cols: cols, stats: &stats) }

    let element = ReferenceQuantizer(format: f.element, rounding: .rne, overflow: .saturate)
    let limit = f.element.overflowThreshold.nextDown
    var expected = QuantizationStats()
    for b in 0..<(rows * cols / block) {
      let v = Array(x[b * block..<(b + 1) * block])
      let amax = v.filter(\.isFinite).map(\.magnitude).max() ?? 0
      var e = amax == 0 ? -127 : Int(Foundation.floor(Foundation.log2(Double(amax)))) - f.elementEmax
      if e < -127 { if amax > 0 { expected.scaleUnderflow += 1 }; e = -127 }
      if e > 127 { expected.scaleSaturated += 1; e = 127 }
      let down = Float(sign: .plus, exponent: -e, significand: 1), up = Float(sign: .plus, exponent: e, significand: 1)
      for j in 0..<block {
        let y = v[j] * down
        let want = element.quantize(y) * up
        let got = out[b * block + j]
        #expect(got.bitPattern == want.bitPattern, "block \(b) value \(j): \(v[j]) -> \(got), reference \(want)")
        if y.magnitude > limit && !y.isNaN { expected.saturated += 1 }
        if v[j] != 0 && !v[j].isNaN && want == 0 { expected.flushedToZero += 1 }
      }
    }
    #expect(stats.saturated == expected.saturated && stats.flushedToZero == expected.flushedToZero)
    #expect(stats.scaleSaturated == expected.scaleSaturated && stats.scaleUnderflow == expected.scaleUnderflow)
    #expect(stats.scaleUnderflow > 0 && stats.saturated > 0, "the specials reach the clamps")
  }

  @Test(arguments: ["nvfp4", "e2m1/ue5m3/16:tensor-scale", "e2m1/ue4m3/16", "e2m1/fp32/32", "int4/fp32/32", "e2m1/bf16/16x16"])
  func nonPowerOfTwoScalesAreIdempotentAndBounded(spec: String) throws {
    let q = try scaled(spec)
    let x = Distribution.laplace.sample(32 * 32, seed: 4)
    var out = x
    var stats = QuantizationStats()
    try out.withUnsafeMutableBufferPointer { try q.quantize($0, rows: 32, cols: 32, stats: &stats) }
    #expect(out.allSatisfy { $0.isFinite })
    #expect(stats.count == 1024)
    var again = out
    try again.withUnsafeMutableBufferPointer { try q.quantize($0, rows: 32, cols: 32, stats: &stats) }
    // A scale rounded from the block's max reproduces the same block (the block max lands on an element max).
    let changed = (0..<1024).filter { again[$0].bitPattern != out[$0].bitPattern }
    #expect(changed.isEmpty, "\(spec): quantizing twice changed \(changed.count) values, first \(changed.first.map { "\(out[$0]) -> \(again[$0])" } ?? "")")
    let mse = zip(x, out).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +) / 1024
    #expect(mse < 0.05 * 2, "\(spec): mse \(mse)")
  }

  /// Whole 16x16 tiles (rounded together as one row of blocks) equal each tile rounded on its own as
  /// one 256-value block with the matrix's tensor amax, stochastic counters continuing tile after tile.
  @Test(arguments: ["nvfp4", "mxfp4_e2m1", "e2m1/ue5m3/16:tensor-scale"])
  func wholeTilesEqualTileByTileRounding(spec: String) throws {
    var tiled = try ScaledFormat(parsing: spec)
    tiled.block = .tile(rows: 16, cols: 16)
    var flat = tiled
    flat.block = .vector(256)
    let rows = 48, cols = 32
    let x = Distribution.laplace.sample(rows * cols, seed: 8)
    let sr = try RoundingMode(parsing: "stochastic")
    var got = x
    var stats = QuantizationStats()
    try got.withUnsafeMutableBufferPointer {
      try BlockQuantizer(format: tiled, rounding: sr, seed: 2).quantize($0, rows: rows, cols: cols, stats: &stats)
    }
    let flatQ = BlockQuantizer(format: flat, rounding: sr, seed: 2)
    let a = x.map(\.magnitude).max()!
    var k = 0
    var expected = QuantizationStats()
    for r0 in stride(from: 0, to: rows, by: 16) {
      for c0 in stride(from: 0, to: cols, by: 16) {
        var tile = (0..<256).map { x[(r0 + $0 / 16) * cols + c0 + $0 % 16] }
        try tile.withUnsafeMutableBufferPointer {
          try flatQ.quantizeLastAxis($0, rows: 1, cols: 256, firstIndex: k * 256, firstBlock: k, tensorAmax: a, stats: &expected)
        }
        for i in 0..<256 {
          #expect(got[(r0 + i / 16) * cols + c0 + i % 16].bitPattern == tile[i].bitPattern, "\(spec) tile \(k) value \(i)")
        }
        k += 1
      }
    }
    #expect(stats == expected)
  }

  /// Reading the values from `source` (the training path: rounded copies of operands) gives what
  /// copying them first and rounding in place gives, codes, scales and counts included: rows of whole
  /// blocks and rows with a short last block, segments longer than one pass, NaN, Inf and zeros.
  @Test(arguments: ["mxfp4_e2m1", "nvfp4", "e2m1/ue5m3/16:tensor-scale", "mxfp8_e4m3"])
  func roundingFromASourceEqualsCopyingFirst(spec: String) throws {
    let sr = try RoundingMode(parsing: "stochastic")
    for (rows, cols) in [(3, 20_000), (40, 48), (7, 33)] {
      var x = Distribution.laplace.sample(rows * cols, seed: 11)
      x[5] = .nan; x[6] = -.infinity; x[70] = 0; x[71] = -0.0; x[cols + 2] = 1e30
      for rounding in [RoundingMode.rne, sr] {
        let q = BlockQuantizer(format: try ScaledFormat(parsing: spec), rounding: rounding, seed: 3)
        func run(fromSource: Bool, codes: Bool) throws -> ([Float], [Float], QuantizationStats) {
          var out = fromSource ? [Float](repeating: 42, count: x.count) : x
          var elements = [Float](repeating: 0, count: codes ? x.count : 0)
          var stats = QuantizationStats()
          try x.withUnsafeBufferPointer { src in
            try out.withUnsafeMutableBufferPointer { o in
              try elements.withUnsafeMutableBufferPointer { e in
                try q.quantizeLastAxis(
                  o, rows: rows, cols: cols, elements: codes ? e.baseAddress : nil,
                  source: fromSource ? src.baseAddress : nil, stats: &stats)
              }
            }
          }
          return (out, elements, stats)
        }
        for codes in [false, true] {
          let (a, ea, sa) = try run(fromSource: true, codes: codes)
          let (b, eb, sb) = try run(fromSource: false, codes: codes)
          #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(spec) \(rows)x\(cols) \(rounding) codes \(codes)")
          #expect(ea.map(\.bitPattern) == eb.map(\.bitPattern))
          #expect(sa == sb && sa.count == x.count && sa.flushedToZero > 0)
        }
      }
    }
  }

  @Test func tilesGiveOneScalePerTile() throws {
    // A 4x4 matrix in 2x2 tiles: the tile holding 100 has its own scale; the others keep small values.
    var m: [Float] = [1, 1, 1, 1, 1, 100, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    var stats = QuantizationStats()
    try m.withUnsafeMutableBufferPointer { try scaled("e2m1/ue8m0/2x2").quantize($0, rows: 4, cols: 4, stats: &stats) }
    #expect(stats.blocks == 4)
    #expect(m[0] == 0 && m[1] == 0 && m[4] == 0 && m[5] == 96)  // tile with 100: scale 2^4, 1/16 -> 0
    #expect(m[2] == 1 && m[10] == 1 && m[15] == 1)
  }

  @Test func blocksAlongAxisZeroEqualBlocksAlongTheTransposedRows() throws {
    let x = Distribution.gaussian.sample(8 * 64, seed: 1)
    var a = x, t = [Float](repeating: 0, count: x.count)
    for r in 0..<8 { for c in 0..<64 { t[c * 8 + r] = x[r * 64 + c] } }
    var s = QuantizationStats()
    let q = try scaled("e2m1/ue8m0/8")
    try a.withUnsafeMutableBufferPointer { try q.quantize($0, rows: 8, cols: 64, axis: 0, stats: &s) }
    try t.withUnsafeMutableBufferPointer { try q.quantize($0, rows: 64, cols: 8, axis: 1, stats: &s) }
    for r in 0..<8 { for c in 0..<64 { #expect(a[r * 64 + c] == t[c * 8 + r]) } }
  }

  /// Stochastic element rounding within blocks: the mean of many seeded draws approaches the
  /// deterministic scaled value; 5 standard deviations of a Bernoulli mean, as in PropertyTests.
  @Test func stochasticScaledRoundingIsUnbiasedAndReproducible() throws {
    let f = try ScaledFormat(parsing: "e2m1/ue5m3/16:scale-rounding=stochastic")
    let block: [Float] = [0.7, 6] + [Float](repeating: 1, count: 14)
    let n = 20_000
    var sum = 0.0
    var first: [Float] = []
    for seed in 0..<UInt64(n) {
      let out = try BlockQuantizer(format: f, rounding: .stochastic, seed: seed).quantize(block)
      if seed == 0 { first = out }
      sum += Double(out[0])
    }
    // Scale amax/6 = 1 is exact in UE5M3, so element 0.7 rounds between 0.5 and 1 with p = 0.4.
    let mean = sum / Double(n)
    #expect(abs(mean - 0.7) < 5 * 0.5 / (2 * Double(n).squareRoot()))
    #expect(try BlockQuantizer(format: f, rounding: .stochastic, seed: 0).quantize(block) == first)
  }

  /// Stochastic rounding of the scale itself: amax 6.18 gives the unrounded scale 1.03, between the
  /// UE4M3 neighbours 1 and 1.125 (p = 0.24 of rounding up). The amax element rounds to 6 under either
  /// scale, so its output is 6 * s and its mean over seeds must approach 6 * 1.03 = 6.18: within 5
  /// standard deviations of a Bernoulli mean (spread 0.75 between the outcomes).
  @Test func stochasticScaleRoundingIsUnbiased() throws {
    let f = try ScaledFormat(parsing: "e2m1/ue4m3/16:scale-rounding=stochastic")
    let block: [Float] = [6 * 1.03] + [Float](repeating: 0.5, count: 15)
    let n = 20_000
    var sum = 0.0
    var outcomes = Set<Float>()
    for seed in 0..<UInt64(n) {
      let out = try BlockQuantizer(format: f, seed: seed).quantize(block)
      sum += Double(out[0])
      outcomes.insert(out[0])
    }
    #expect(outcomes == [6, 6.75])
    let exact = Double(Float(6 * 1.03) / 6) * 6
    #expect(abs(sum / Double(n) - exact) < 5 * 0.75 / (2 * Double(n).squareRoot()))
  }

  @Test(arguments: ["e2m1/ue8m0/0", "e2m1/zz/16", "e2m1/ue8m0/16:rule=amax", "e2m1/ue5m3/16:rule=floor", "e2m1/ue5m3", "e2m1/ue5m3/16:bogus"])
  func badSpecsAreRefused(spec: String) {
    #expect(throws: (any Error).self) { try ScaledFormat(parsing: spec) }
  }

  @Test func specRoundTripsThroughTheGrammar() throws {
    let f = try ScaledFormat(parsing: "e2m1/ue5m3/16:tensor-scale:scale-rounding=stochastic")
    let again = try ScaledFormat(parsing: f.spec)
    #expect(again.spec == f.spec && again.element == f.element && again.scale == f.scale && again.block == f.block)
    #expect(f.bitsPerValue(count: 1 << 20, blockSize: 16) == 4 + 0.5 + 32.0 / Double(1 << 20))
  }
}

@Suite struct HadamardTests {
  /// `forward` returns the finite max |y| of what it wrote (the amax NVFP4 then needs), whatever path
  /// (16 in registers, 32 dense, 64 butterflies), with infinities and NaN among the inputs and more than
  /// one 64 Ki piece.
  @Test(arguments: [16, 32, 64])
  func forwardReturnsTheFiniteAmaxOfItsResult(size: Int) throws {
    let h = try RandomHadamard(size: size, seed: 9)
    var x = Distribution.studentT(3).sample(70_000 / size * size, seed: 4)
    let big = x.count - 3 * size
    x[big] = 1e6
    x[7] = .infinity  // the first group's results become non-finite
    x[size + 3] = .nan
    let n = x.count
    let amax = try x.withUnsafeMutableBufferPointer { try h.forward($0, rows: 1, cols: n) }
    let expected = x.filter(\.isFinite).map(\.magnitude).max()!
    #expect(amax == expected)
    #expect(amax > 1e5, "the outlier's group reaches the amax")
  }

  @Test(arguments: [2, 16, 64, 256])
  func transformIsOrthonormalAndInvertible(size: Int) throws {
    let h = try RandomHadamard(size: size, seed: 3)
    // Rows of the identity transform to the rows of R; R R^T = I within float32 rounding.
    var m = [Float](repeating: 0, count: size * size)
    for i in 0..<size { m[i * size + i] = 1 }
    _ = try m.withUnsafeMutableBufferPointer { try h.forward($0, rows: size, cols: size) }
    for i in 0..<size {
      for j in 0..<size {
        var dot: Float = 0
        for k in 0..<size { dot += m[i * size + k] * m[j * size + k] }
        #expect(abs(dot - (i == j ? 1 : 0)) < 1e-5)
      }
    }
    var x = Distribution.gaussian.sample(size * 4, seed: 2)
    let original = x
    try x.withUnsafeMutableBufferPointer {
      try h.forward($0, rows: 4, cols: size)
      try h.inverse($0, rows: 4, cols: size)
    }
    for (a, b) in zip(x, original) { #expect(abs(a - b) < 1e-5 * max(1, abs(b))) }
  }

  /// (X R)(W R)^T = X W^T: the GEMM along the shared reduction axis is unchanged to float32 rounding.
  @Test func gemmAlongTheReductionAxisIsInvariant() throws {
    let (m, n, k) = (5, 7, 64)
    var x = Distribution.gaussian.sample(m * k, seed: 1), w = Distribution.gaussian.sample(n * k, seed: 2)
    func gemm(_ a: [Float], _ b: [Float]) -> [Double] {
      (0..<m).flatMap { i in (0..<n).map { j in (0..<k).reduce(0.0) { $0 + Double(a[i * k + $1]) * Double(b[j * k + $1]) } } }
    }
    let before = gemm(x, w)
    let h = try RandomHadamard(size: 16, seed: 5)
    _ = try x.withUnsafeMutableBufferPointer { try h.forward($0, rows: m, cols: k) }
    _ = try w.withUnsafeMutableBufferPointer { try h.forward($0, rows: n, cols: k) }
    let after = gemm(x, w)
    for (a, b) in zip(before, after) { #expect(abs(a - b) < 1e-4 * 8) }
  }

  @Test func sizesThatAreNotPowersOfTwoAreRefused() {
    #expect(throws: FormatError.self) { try RandomHadamard(size: 12) }
    #expect(throws: FormatError.self) { try RandomHadamard(size: 512) }
  }
}

@Suite struct ErrorAnalysisTests {
  /// Uniform x on [-1, 1] and M mantissa bits: in binade [2^-k, 2^(1-k)) (probability 2^-k) the error
  /// is uniform over a spacing 2^(-k-M), variance 2^(-2k-2M)/12; summed, 2^(-2M) / 84; the signal is
  /// 1/3, so SQNR = 10 log10(28 * 4^M) dB (32.53 for E4M3, 26.51 for E5M2). Tolerance 0.1 dB: with 2^20
  /// samples the noise estimate's relative standard deviation is about 0.2%, i.e. 0.01 dB.
  @Test(arguments: [("e4m3fn", 3), ("e5m2", 2), ("bf16", 7)])
  func sqnrOfPlainFormatsOnUniformDataMatchesTheClosedForm(name: String, mantissa: Int) throws {
    let m = try ErrorAnalysis.measure(format: AnyFormat(parsing: name), distribution: .uniform, count: 1 << 20, seed: 1)
    let expected = 10 * log10(28 * pow(4, Double(mantissa)))
    #expect(abs(m.sqnrDB - expected) < 0.1, "\(name): \(m.sqnrDB) vs \(expected)")
  }

  @Test func rankingsOnKnownCases() throws {
    func sqnr(_ f: String, _ d: Distribution) throws -> Double {
      try ErrorAnalysis.measure(format: AnyFormat(parsing: f), distribution: d, count: 1 << 17, seed: 3).sqnrDB
    }
    #expect(try sqnr("e4m3fn", .gaussian) > sqnr("e5m2", .gaussian))
    let outliers = Distribution.outliers(fraction: 0.001, scale: 100)
    #expect(try sqnr("nvfp4", outliers) > sqnr("mxfp4_e2m1", outliers))
    #expect(try sqnr("mxfp8_e4m3", .studentT(3)) > sqnr("mxfp4_e2m1", .studentT(3)))
  }

  @Test func resultsAreDeterministicBySeed() throws {
    let f = try AnyFormat(parsing: "e2m1/ue5m3/16:tensor-scale")
    let a = try ErrorAnalysis.measure(format: f, distribution: .laplace, count: 4096, seed: 7, hadamard: 16, rounding: .stochastic)
    let b = try ErrorAnalysis.measure(format: f, distribution: .laplace, count: 4096, seed: 7, hadamard: 16, rounding: .stochastic)
    #expect(a.mse == b.mse && a.saturatedFraction == b.saturatedFraction)
  }
}
