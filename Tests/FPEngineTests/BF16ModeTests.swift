import FPEngine
import FPFormats
import Testing

/// The `--gemm bf16` mode in the precision hook and in training: which GEMMs it moves, that their
/// operands really are bfloat16 values, that each moved GEMM computes exactly `BF16GEMM.reference` of
/// its rounded operands, and that training keeps its bits at any thread count.
@Suite(.enabled(if: BF16GEMM.isAvailable, "this CPU lacks AVX512-BF16"))
struct BF16ModeTests {
  static let N = 64, C = 48, OC = 32

  /// Recipes whose every operand is rounded to bfloat16 values (all three GEMMs move); recipes whose
  /// operands are once their float32 tensor scale is apart (element x block scale within 8 bits); and
  /// recipes with none (element x scale over 8 bits, more than 7 mantissa bits, nothing rounded).
  static let moving = [
    "mxfp4", "mxfp6", "mxfp8", "mxfp4:format=mxint8", "bf16", "uniform:e4m3fn", "uniform:e5m2:stochastic", "uniform:e8m3:rtz",
    "fp4:scale=ue4m3", "mxfp4:hadamard=all:16,rounding=stochastic",
  ]
  static let tensorScaled = ["nvfp4", "fp4:scale=ue4m3,tensor-scale=on"]
  static let staying = ["fp4:scale=bf16,tensor-scale=on", "uniform:fp16", "fp32"]

  @Test(arguments: moving)
  func movedGEMMsComputeTheReferenceOfTheirRoundedOperands(recipe: String) throws {
    let (x, w, dy) = RecipeTests.data()
    let N = Self.N, C = Self.C, OC = Self.OC
    let h = HookedLayer(try Recipe(parsing: recipe), x: x, w: w, dy: dy, N: N, C: C, OC: OC, overwriteDinp: true, bf16: true)
    #expect(h.bf16GEMMs == ["l.forward", "l.dgrad", "l.wgrad"])
    // Every operand the kernel read is a bfloat16 value (what `outputsBFloat16` promised).
    for (op, values) in h.operands {
      let cut = values.filter { $0.bitPattern & 0xFFFF != 0 }.count
      #expect(cut == 0, "\(recipe) \(op): \(cut) values are not bfloat16")
    }
    let xf = h.operands[.forwardX]!, wf = h.operands[.forwardW]!
    let dyd = h.operands[.dataGradDY]!, wd = h.operands[.dataGradW]!
    let dyw = h.operands[.weightGradDY]!, xw = h.operands[.weightGradX]!
    var out = [Float](repeating: .nan, count: N * OC), dx = [Float](repeating: .nan, count: N * C)
    var dw = [Float](repeating: 0, count: OC * C)
    BF16GEMM.reference(transA: false, transB: true, M: N, N: OC, K: C, A: xf, lda: C, B: wf, ldb: C, beta: 0, C: &out, ldc: OC)
    BF16GEMM.reference(transA: false, transB: false, M: N, N: C, K: OC, A: dyd, lda: OC, B: wd, ldb: C, beta: 0, C: &dx, ldc: C)
    BF16GEMM.reference(transA: true, transB: false, M: OC, N: C, K: N, A: dyw, lda: OC, B: xw, ldb: C, beta: 1, C: &dw, ldc: C)
    #expect(h.out.map(\.bitPattern) == out.map(\.bitPattern), "\(recipe) forward")
    #expect(h.dx.map(\.bitPattern) == dx.map(\.bitPattern), "\(recipe) data gradient")
    #expect(h.dw.map(\.bitPattern) == dw.map(\.bitPattern), "\(recipe) weight gradient")
    // With bfloat16 operands (16-bit products) the sums round, so sgemm's order gives other bits: the
    // products above did not run on sgemm. (Coarser formats' sums are often exact in either order.)
    if recipe == "bf16" {
      let s = HookedLayer(try Recipe(parsing: recipe), x: x, w: w, dy: dy, N: N, C: C, OC: OC, overwriteDinp: true)
      #expect(s.dw.map(\.bitPattern) != h.dw.map(\.bitPattern), "\(recipe): the mode changed no bit")
    }
  }

  /// NVFP4 and `tensor-scale` formats move with their tensor scale apart: each GEMM reads element x
  /// block scale (bfloat16 values) and multiplies its product by its two operands' tensor scales.
  /// Checked against the same layer on sgemm, which rounds with the scale in: the same telemetry (the
  /// same elements and block scales), values within a few float32 roundings of the read value times the
  /// tensor scale of the operand's amax (equal to the input's where no transform changes it), and each
  /// product `BF16GEMM.reference` of what the GEMM read with alpha the product of the two scales.
  @Test(arguments: tensorScaled)
  func tensorScaledGEMMsMoveWithTheTensorScaleApart(recipe: String) throws {
    let (x, w, dy) = RecipeTests.data()
    let N = Self.N, C = Self.C, OC = Self.OC
    let r = try Recipe(parsing: recipe)
    let h = HookedLayer(r, x: x, w: w, dy: dy, N: N, C: C, OC: OC, overwriteDinp: true, bf16: true)
    let s = HookedLayer(r, x: x, w: w, dy: dy, N: N, C: C, OC: OC, overwriteDinp: true)
    #expect(h.bf16GEMMs == ["l.forward", "l.dgrad", "l.wgrad"])
    #expect(h.counts == s.counts, "\(recipe): the roundings differ")
    var scale: [GEMMOperand: Float] = [:]
    for op in GEMMOperand.allCases {
      let read = h.operands[op]!, values = s.operands[op]!
      guard let rounder = h.precision[op] as? ScaledRounding else { Issue.record("\(op) is not block-scaled"); continue }
      #expect(rounder.tensorScaleApart && !(s.precision[op] as! ScaledRounding).tensorScaleApart)
      let amax = h.counts[op.rawValue].amax
      if h.precision.hadamard[op.gemm.rawValue] == nil {
        let input = op == .forwardX || op == .weightGradX ? x : op == .forwardW || op == .dataGradW ? w : dy
        #expect(amax == input.map { abs($0) }.max()!, "\(op)")
      }
      let t = BlockQuantizer(format: rounder.format).tensorScale(tensorAmax: amax)!
      scale[op] = t
      #expect(t != 1 && read != values, "\(op): nothing was left apart")
      #expect(read.filter { $0.bitPattern & 0xFFFF != 0 }.isEmpty, "\(recipe) \(op): values that are not bfloat16")
      let far = zip(read, values).filter { a, v in abs(a * t - v) > abs(v) * 0x1p-20 || (a == 0) != (v == 0) }
      #expect(far.isEmpty, "\(recipe) \(op): \(far.count) values, e.g. \(far.first.map { "\($0.0) x \(t) against \($0.1)" } ?? "")")
    }
    func alpha(_ a: GEMMOperand, _ b: GEMMOperand) -> Float { scale[a]! * scale[b]! }
    var out = [Float](repeating: .nan, count: N * OC), dx = [Float](repeating: .nan, count: N * C)
    var dw = [Float](repeating: 0, count: OC * C)
    BF16GEMM.reference(
      transA: false, transB: true, M: N, N: OC, K: C, alpha: alpha(.forwardX, .forwardW), A: h.operands[.forwardX]!,
      lda: C, B: h.operands[.forwardW]!, ldb: C, beta: 0, C: &out, ldc: OC)
    BF16GEMM.reference(
      transA: false, transB: false, M: N, N: C, K: OC, alpha: alpha(.dataGradDY, .dataGradW),
      A: h.operands[.dataGradDY]!, lda: OC, B: h.operands[.dataGradW]!, ldb: C, beta: 0, C: &dx, ldc: C)
    BF16GEMM.reference(
      transA: true, transB: false, M: OC, N: C, K: N, alpha: alpha(.weightGradDY, .weightGradX),
      A: h.operands[.weightGradDY]!, lda: OC, B: h.operands[.weightGradX]!, ldb: C, beta: 1, C: &dw, ldc: C)
    #expect(h.out.map(\.bitPattern) == out.map(\.bitPattern), "\(recipe) forward")
    #expect(h.dx.map(\.bitPattern) == dx.map(\.bitPattern), "\(recipe) data gradient")
    #expect(h.dw.map(\.bitPattern) == dw.map(\.bitPattern), "\(recipe) weight gradient")
  }

  /// Operand snapshots keep the format's values with the tensor scale apart too: the same as on sgemm.
  @Test func snapshotsOfTensorScaledOperandsHoldTheFormatsValues() throws {
    let (x, w, dy) = RecipeTests.data()
    let N = Self.N, C = Self.C, OC = Self.OC
    func snapshots(bf16: Bool) throws -> [OperandSnapshot] {
      let rt = PrecisionRuntime(recipe: try Recipe(parsing: "nvfp4"), seed: 7)
      let layer = rt.addLinear(name: "l", N: N, C: C, OC: OC)
      rt.finish()
      if bf16 { try rt.useBF16GEMMs() }
      rt.captureLayers = [0]
      var out = [Float](repeating: 0, count: N * OC), dx = [Float](repeating: 0, count: N * C)
      var dw = [Float](repeating: 0, count: OC * C)
      layer.forward(out: &out, inp: x, weight: w, bias: nil, n: N)
      layer.backward(dinp: &dx, dweight: &dw, dbias: nil, dout: dy, inp: x, weight: w, n: N)
      return rt.takeCapturedOperands()
    }
    let apart = try snapshots(bf16: true), sgemm = try snapshots(bf16: false)
    #expect(apart.count == 6 && apart.map(\.operand) == sgemm.map(\.operand))
    for (a, s) in zip(apart, sgemm) {
      #expect(a.rounded.map(\.bitPattern) == s.rounded.map(\.bitPattern), "\(a.operand)")
      #expect(a.scales == s.scales, "\(a.operand)")
    }
  }

  @Test(arguments: staying)
  func gemmsWithAnOperandThatIsNotBFloat16StayOnSGEMM(recipe: String) throws {
    let (x, w, dy) = RecipeTests.data()
    let r = try Recipe(parsing: recipe)
    let h = HookedLayer(r, x: x, w: w, dy: dy, N: Self.N, C: Self.C, OC: Self.OC, bf16: true)
    #expect(h.bf16GEMMs.isEmpty, "\(recipe): \(h.bf16GEMMs)")
    let s = HookedLayer(r, x: x, w: w, dy: dy, N: Self.N, C: Self.C, OC: Self.OC)
    #expect(h.out.map(\.bitPattern) == s.out.map(\.bitPattern) && h.dw.map(\.bitPattern) == s.dw.map(\.bitPattern))
  }

  /// Layers the recipe leaves in float32 (`layers=mlp`: the attention linears) stay on sgemm while the
  /// rest move.
  @Test func float32LayersStayOnSGEMM() throws {
    let t = try makeTrainer(
      gptMicro, recipe: "mxfp4:layers=mlp", config: TrainingConfig(steps: 1, learningRate: 1e-3, evalEvery: 0))
    let moved = try t.task.precision.useBF16GEMMs()
    let layers = t.task.precision.layers
    let rounded = layers.filter { !$0.precision.roundsNothing }.map(\.info.name)
    #expect(rounded.count < layers.count && !rounded.isEmpty)
    #expect(moved == rounded.flatMap { ["\($0).forward", "\($0).dgrad", "\($0).wgrad"] })
  }

  /// A gpt-tiny training in the mode (GEMMs large enough to split over threads) has the same bits at one
  /// and two threads, and differs from the same run on sgemm (bfloat16 operands, whose sums round).
  @Test func trainingHasTheSameBitsAtOneAndTwoThreads() throws {
    func run(_ threads: Int, bf16: Bool) throws -> ([[UInt32]], [UInt32]) {
      let sink = MemorySink()
      let t = try makeTrainer(
        .gptTiny, recipe: "bf16", threads: threads,
        config: TrainingConfig(steps: 3, learningRate: 1e-3, evalEvery: 3, bf16GEMMs: bf16 ? true : nil))
      t.run(sink: sink)
      return (fingerprint(sink.metrics), t.task.parameters.values.toArray().map(\.bitPattern))
    }
    let one = try run(1, bf16: true), two = try run(2, bf16: true)
    #expect(one.0 == two.0 && one.1 == two.1)
    #expect(try run(2, bf16: false).1 != two.1)
  }
}
