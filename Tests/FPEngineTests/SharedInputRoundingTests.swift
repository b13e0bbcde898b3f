@testable import FPEngine
import FPFormats
import Testing

/// Llama's k and v projections take q's rounded X, and up takes gate's, where they would round X the
/// same deterministic way (`LinearGEMMs.inputLeader`). Trained with that sharing and without it (every
/// layer rounding its own X, `PrecisionRuntime.shareRoundedInputs` off), a run has the same bits in its
/// parameters, metrics, telemetry, binade histograms and operand snapshots; and the sharing happens
/// exactly where it may: not for stochastic roundings (each layer draws its own stream) nor through a
/// Hadamard transform (drawn per layer).
@Suite struct SharedInputRoundingTests {
  static let config = TrainingConfig(
    steps: 4, learningRate: 3e-3, warmupSteps: 1, evalEvery: 2, snapshotEvery: 2,
    snapshotOperands: ["model.layers.0.self_attn.k_proj", "model.layers.1.mlp.up_proj"], binadeHistograms: true)

  /// Everything reproducible a run leaves, as bits.
  static func run(_ recipe: String, share: Bool) throws -> [[UInt32]] {
    let t = try makeTrainer(llamaMicro, recipe: recipe, threads: 2, config: config)
    t.task.precision.shareRoundedInputs = share
    let sink = MemorySink()
    t.run(sink: sink)
    #expect(sink.summary?.status == .completed)
    let histograms = sink.metrics.flatMap { m in
      m.histograms.map { h in h.counts.map { UInt32(bitPattern: $0) } + [h.zeros, h.nonFinite, h.flushed, h.saturated].map { UInt32(bitPattern: $0) } }
    }
    let snapshots = sink.operandSnapshots.flatMap { s in s.operands.map { $0.input.map(\.bitPattern) + $0.rounded.map(\.bitPattern) } }
    #expect(!histograms.isEmpty && snapshots.count == 2 * 2 * 6, "\(recipe): \(histograms.count) histograms, \(snapshots.count) snapshots")
    return fingerprint(sink.metrics) + histograms + snapshots + [t.task.parameters.values.toArray().map(\.bitPattern)]
  }

  /// (recipe, X operands taken from a leader per forward pass and per weight-gradient pass: k, v and up
  /// of each of the two blocks, where they may).
  @Test(arguments: [
    ("mxfp4", 6, 6), ("uniform:e4m3fn", 6, 6), ("bf16", 6, 6), ("mxfp4:estimator=clipped-ste", 6, 6),
    // NVFP4's weight-gradient GEMM has a 16-point Hadamard transform, except in its last block, kept
    // in bf16.
    ("nvfp4", 6, 3), ("fp4:sr=all", 0, 0), ("fp4:scale=ue4m3,hadamard=all:16", 0, 0),
  ])
  func sharingGivesTheBitsOfRoundingEachLayersOwn(recipe: String, forward: Int, weightGradient: Int) throws {
    #expect(try Self.run(recipe, share: true) == Self.run(recipe, share: false), "\(recipe)")
    // Two training steps, and the evaluation after the last (two batches, forward passes only).
    let t = try makeTrainer(llamaMicro, recipe: recipe, threads: 1, config: TrainingConfig(steps: 2, learningRate: 1e-3, evalEvery: 0))
    _ = t.trainStep()
    _ = t.trainStep()
    let taken = t.task.precision.roundedInputsTaken
    #expect(taken == 2 * (forward + weightGradient) + 2 * forward, "\(recipe): \(taken)")
  }

  /// A later layer takes its leader's rounding only of the input the leader rounded last, in the same
  /// step and pass; given another input, or at another step, it rounds its own.
  @Test(arguments: ["mxfp4", "uniform:e4m3fn"])
  func aLayerTakesOnlyTheRoundingOfTheSameInputNow(spec: String) throws {
    let (N, C, OC) = (64, 32, 16)
    var rng = TestRNG(5)
    let x1 = rng.floats(N * C, scale: 2), x2 = rng.floats(N * C, scale: 3), w = rng.floats(OC * C, scale: 0.1)
    let rt = PrecisionRuntime(recipe: try Recipe(parsing: spec), seed: 1)
    let leader = rt.addLinear(name: "a", N: N, C: C, OC: OC)
    let follower = rt.addLinear(name: "b", N: N, C: C, OC: OC, sameInputAs: leader)
    rt.finish()
    var seen: [Float] = []
    rt.operandObserver = { info, op, values, _ in if info.name == "b" && op == .forwardX { seen = Array(values) } }
    /// The rounder's own rounding of x (deterministic: its stream does not matter).
    func rounded(_ x: [Float]) -> [UInt32] {
      var r = [Float](repeating: 0, count: N * C)
      _ = follower.precision[.forwardX]!.round(
        x, into: &r, layout: OperandLayout(rows: N, cols: C, reducesAlongRows: false), seed: 0, stream: 0, threads: 1,
        countEvents: false)
      return r.map(\.bitPattern)
    }
    var out = [Float](repeating: 0, count: N * OC)
    x1.withUnsafeBufferPointer { p1 in
      x2.withUnsafeBufferPointer { p2 in
        let a = p1.baseAddress!, b = p2.baseAddress!
        leader.forward(out: &out, inp: a, weight: w, bias: nil, n: N)
        follower.forward(out: &out, inp: b, weight: w, bias: nil, n: N)
        #expect(rt.roundedInputsTaken == 0 && seen.map(\.bitPattern) == rounded(x2), "another input")
        leader.forward(out: &out, inp: a, weight: w, bias: nil, n: N)
        rt.step = 1
        follower.forward(out: &out, inp: a, weight: w, bias: nil, n: N)
        #expect(rt.roundedInputsTaken == 0 && seen.map(\.bitPattern) == rounded(x1), "another step")
        leader.forward(out: &out, inp: a, weight: w, bias: nil, n: N)
        follower.forward(out: &out, inp: a, weight: w, bias: nil, n: N)
        #expect(rt.roundedInputsTaken == 1 && seen.map(\.bitPattern) == rounded(x1), "taken")
      }
    }
  }
}

