import FPEngine
import FPFormats
import Testing

@Suite struct BinadeHistogramTests {
  /// `count` on each of its paths (those this CPU has; the others fall back to a slower one) against
  /// the definition floor(log2 |x|), value by value.
  func expectDefinition(_ x: [Float], _ label: String) {
    var expected = [Int32](repeating: 0, count: BinadeHistogram.binCount)
    var zeros: Int32 = 0, nonFinite: Int32 = 0
    for v in x {
      if let b = BinadeHistogram.referenceBinade(v) {
        expected[b + 149] += 1
      } else if v == 0 {
        zeros += 1
      } else {
        nonFinite += 1
      }
    }
    for path in BinadeHistogram.CountPath.allCases {
      var h = [Int32](repeating: -1, count: BinadeHistogram.binCount)
      let (z, nf) = x.withUnsafeBufferPointer { xb in
        h.withUnsafeMutableBufferPointer {
          BinadeHistogram.count(xb.baseAddress ?? UnsafePointer(bitPattern: 64)!, x.count, into: $0.baseAddress!, path: path)
        }
      }
      #expect(h == expected, "\(label), n = \(x.count), path \(path) on this CPU \(path.onThisCPU)")
      #expect(z == zeros && nf == nonFinite, "\(label), n = \(x.count), path \(path) on this CPU \(path.onThisCPU)")
    }
  }

  /// Every binade edge (powers of two and their neighbours), every subnormal binade, zeros of both
  /// signs, Inf and NaN, and random bit patterns (all exponents), at lengths that exercise the loops'
  /// tails (8 tables, 32-value steps, 16-lane zero count), forwards and reversed.
  @Test func countAgreesWithTheDefinition() {
    var values: [Float] = [0, -0, .infinity, -.infinity, .nan, -.nan, .greatestFiniteMagnitude, .leastNonzeroMagnitude,
                           .leastNormalMagnitude, Float.leastNormalMagnitude.nextDown, -Float.leastNonzeroMagnitude]
    for e in -149...127 {
      let p = Float(sign: .plus, exponent: e, significand: 1)
      values += [p, -p, p.nextUp, p.nextDown]
    }
    var rng = TestRNG(5)
    for _ in 0..<20_000 { values.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))) }
    for n in [0, 1, 7, 8, 9, 16, 17, 31, 32, 33, 65, values.count] { expectDefinition(Array(values.prefix(n)), "edges") }
    expectDefinition(values.reversed(), "edges reversed")
  }

  /// Exponents crowded as in tensors, which the fast paths count through a window of consecutive
  /// exponents (chunks of 8,160 values on the AVX2 path, 16,320 on the AVX-512 one): values spread over
  /// 13 binades with 1% anywhere (zeros, subnormals, Inf, NaN included) counted one by one; crowds at
  /// the bottom (subnormals and zeros, window from 0) and at the top (up to Inf and NaN, window from
  /// 240); chunks starting with spread values (sent to the tables) and with a third outside (the next
  /// chunk to the tables), at both chunk lengths; and 40,000 values of one binade, which fill the
  /// AVX-512 path's byte counters to their limit (248 between widenings).
  @Test func crowdedExponentsAgreeWithTheDefinition() {
    var rng = TestRNG(11)
    func crowd(_ n: Int, _ lo: Int, _ hi: Int, outliers: Double) -> [Float] {
      (0..<n).map { _ in
        if Double(rng.next() >> 11) * 0x1p-53 < outliers { return Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        let e = lo + Int(rng.next() % UInt64(hi - lo + 1))
        let m = Float(1 + Double(rng.next() >> 40) * 0x1p-24)
        return (rng.next() & 1 == 0 ? 1 : -1) * Float(sign: .plus, exponent: e, significand: m)
      }
    }
    let subnormals = (0..<9_000).map { i -> Float in
      i % 7 == 0 ? 0 : Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) & 0x807F_FFFF)
    }
    let top = (0..<9_000).map { i -> Float in
      i % 5 == 0 ? (i % 2 == 0 ? .infinity : .nan) : Float(sign: .minus, exponent: 124 + i % 4, significand: 1.5)
    }
    let x = crowd(3 * 8_160 + 77, -20, -8, outliers: 0.01) + subnormals + top
      + crowd(40, -140, 120, outliers: 0) + crowd(8_160, -6, 2, outliers: 0.003)
      + crowd(8_160, -6, 2, outliers: 0.33) + crowd(20_000, -3, 0, outliers: 0.001)
      + crowd(16_320, -6, 2, outliers: 0.33) + crowd(16_320, -9, 4, outliers: 0.002)
      + [Float](repeating: -1.5, count: 40_000) + crowd(16_320 + 63, 100, 113, outliers: 0)
    expectDefinition(x, "crowded")
    expectDefinition(x.reversed(), "crowded reversed")
  }

  /// The threaded count (chunks of 64 Ki values, summed) against the definition, on 300,007 values
  /// (five chunks on four threads, a short last one) with zeros, subnormals, Inf and NaN spread through.
  @Test func threadedCountAgreesWithTheDefinition() {
    var rng = TestRNG(11)
    let n = 300_007
    var x = [Float](repeating: 0, count: n)
    for i in 0..<n {
      switch rng.next() % 8 {
      case 0: x[i] = 0
      case 1: x[i] = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) & 0x807F_FFFF)  // subnormal or zero
      default: x[i] = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))  // any pattern, Inf and NaN included
      }
    }
    var expected = [Int32](repeating: 0, count: BinadeHistogram.binCount)
    var zeros: Int32 = 0, nonFinite: Int32 = 0
    for v in x {
      if let b = BinadeHistogram.referenceBinade(v) { expected[b + 149] += 1 } else if v == 0 { zeros += 1 } else { nonFinite += 1 }
    }
    for threads in [1, 2, 4] {
      var h = [Int32](repeating: -1, count: BinadeHistogram.binCount)
      let (z, nf) = x.withUnsafeBufferPointer { xb in
        h.withUnsafeMutableBufferPointer { BinadeHistogram.count(xb.baseAddress!, n, into: $0.baseAddress!, threads: threads) }
      }
      #expect(h == expected, "threads = \(threads)")
      #expect(z == zeros && nf == nonFinite, "threads = \(threads)")
    }
  }

  /// The reference itself on values whose binade is known without a logarithm.
  @Test func referenceBinadeOfKnownValues() {
    #expect(BinadeHistogram.referenceBinade(1) == 0)
    #expect(BinadeHistogram.referenceBinade(1.9999999) == 0)
    #expect(BinadeHistogram.referenceBinade(-2) == 1)
    #expect(BinadeHistogram.referenceBinade(0.75) == -1)
    #expect(BinadeHistogram.referenceBinade(.leastNonzeroMagnitude) == -149)
    #expect(BinadeHistogram.referenceBinade(Float.leastNormalMagnitude.nextDown) == -127)
    #expect(BinadeHistogram.referenceBinade(.greatestFiniteMagnitude) == 127)
    #expect(BinadeHistogram.referenceBinade(0) == nil && BinadeHistogram.referenceBinade(.nan) == nil)
  }

  /// Histograms and operand snapshots change no training bit: gpt-micro under mxfp4 with both on gives
  /// the metrics of the run with both off; the histograms come one per rounded operand and step, each
  /// over the operand's whole size, with the rounding's flushed and saturated counts.
  @Test func histogramsAndSnapshotsChangeNoTrainingBit() throws {
    let plain = TrainingConfig(steps: 4, learningRate: 3e-3, evalEvery: 2, snapshotEvery: 2)
    var full = plain
    full.binadeHistograms = true
    full.snapshotOperands = ["transformer.h.0.attn.c_attn", "lm_head"]
    let a = try makeTrainer(gptMicro, recipe: "mxfp4", config: plain), b = try makeTrainer(gptMicro, recipe: "mxfp4", config: full)
    let sa = MemorySink(), sb = MemorySink()
    a.run(sink: sa)
    b.run(sink: sb)
    #expect(fingerprint(sa.metrics) == fingerprint(sb.metrics))
    #expect(sa.metrics.allSatisfy { $0.histograms.isEmpty })
    let counts = b.task.precision.operandCounts
    for m in sb.metrics {
      #expect(m.histograms.count == b.task.precision.telemetryNames.count)
      for (h, f) in zip(m.histograms, m.flushed) where h.total > 0 {
        #expect(Float(Double(h.flushed) / Double(h.total)) == f)
      }
    }
    #expect(zip(sb.metrics.last!.histograms, counts).allSatisfy { $0.total == $1.total })
    // Two snapshot steps, each with the six operands of the two layers.
    #expect(sb.operandSnapshots.map(\.step) == [1, 3])
    #expect(sb.operandSnapshots.allSatisfy { $0.operands.count == 12 })
    #expect(sa.operandSnapshots.isEmpty)
  }

  /// An unknown layer is refused with the valid names.
  @Test func unknownSnapshotLayerIsRefused() throws {
    let c = TrainingConfig(steps: 2, learningRate: 1e-3, snapshotEvery: 1, snapshotOperands: ["nope"])
    #expect {
      try makeTrainer(gptMicro, recipe: "mxfp4", config: c)
    } throws: { "\($0)".contains("'nope'") && "\($0)".contains("transformer.h.0.attn.c_attn") }
  }
}
