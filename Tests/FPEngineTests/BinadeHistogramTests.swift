import FPEngine
import FPFormats
import Testing

@Suite struct BinadeHistogramTests {
  /// The bit-pattern kernel against the definition floor(log2 |x|), value by value: every binade edge
  /// (powers of two and their neighbours), every subnormal binade, zeros of both signs, Inf and NaN,
  /// and random bit patterns (all exponents), at lengths that exercise the unrolled loop's and the
  /// 16-lane zero count's tails, forwards and reversed (zeros first, then zeros in the last lanes).
  @Test func countAgreesWithTheDefinition() {
    var values: [Float] = [0, -0, .infinity, -.infinity, .nan, -.nan, .greatestFiniteMagnitude, .leastNonzeroMagnitude,
                           .leastNormalMagnitude, Float.leastNormalMagnitude.nextDown, -Float.leastNonzeroMagnitude]
    for e in -149...127 {
      let p = Float(sign: .plus, exponent: e, significand: 1)
      values += [p, -p, p.nextUp, p.nextDown]
    }
    var rng = TestRNG(5)
    for _ in 0..<20_000 { values.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))) }
    let cases = [0, 1, 7, 8, 9, 16, 17, 33, values.count].map { Array(values.prefix($0)) } + [values.reversed()]
    for x in cases {
      let n = x.count
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
      let h = x.withUnsafeBufferPointer { BinadeHistogram.of($0.baseAddress ?? UnsafePointer(bitPattern: 64)!, n) }
      #expect(h.counts == expected, "n = \(n)")
      #expect(h.zeros == zeros && h.nonFinite == nonFinite, "n = \(n)")
      #expect(h.total == n)
    }
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
