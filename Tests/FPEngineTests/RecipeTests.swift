import FPEngine
import FPFormats
import Foundation
import Testing

/// One linear layer through the precision hook, with every operand its GEMMs read captured.
struct HookedLayer {
  var out: [Float], dx: [Float], dw: [Float]
  var operands: [GEMMOperand: [Float]] = [:]
  var layouts: [GEMMOperand: OperandLayout] = [:]
  var counts: [RoundingCounts]
  /// The layer's precision after the run (in the bf16 mode, tensor-scaled operands have their scale apart).
  var precision: GEMMPrecision

  /// The GEMMs `useBF16GEMMs` moved to the bfloat16 kernel (`bf16`), as `<layer>.<gemm>`.
  var bf16GEMMs: [String] = []

  /// With `overwriteDinp`, dx starts as garbage (NaN) and the layer is asked to overwrite it. With
  /// `bf16`, the runtime is in the `--gemm bf16` mode.
  init(
    _ recipe: Recipe, x: [Float], w: [Float], dy: [Float], N: Int, C: Int, OC: Int, seed: UInt64 = 7, threads: Int = 1,
    overwriteDinp: Bool = false, bf16: Bool = false
  ) {
    let rt = PrecisionRuntime(recipe: recipe, seed: seed, threads: threads)
    let layer = rt.addLinear(name: "l", N: N, C: C, OC: OC)
    rt.finish()
    // (Only the suites enabled on AVX512-BF16 CPUs ask for it; elsewhere it throws.)
    if bf16 { bf16GEMMs = try! rt.useBF16GEMMs() }
    var captured: [GEMMOperand: [Float]] = [:], layouts: [GEMMOperand: OperandLayout] = [:]
    rt.operandObserver = { _, op, values, layout in
      captured[op] = Array(values)
      layouts[op] = layout
    }
    var out = [Float](repeating: 0, count: N * OC), dx = [Float](repeating: overwriteDinp ? .nan : 0, count: N * C)
    var dw = [Float](repeating: 0, count: OC * C)
    layer.forward(out: &out, inp: x, weight: w, bias: nil, n: N)
    layer.backward(dinp: &dx, dweight: &dw, dbias: nil, dout: dy, inp: x, weight: w, n: N, overwriteDinp: overwriteDinp)
    self.out = out
    self.dx = dx
    self.dw = dw
    operands = captured
    self.layouts = layouts
    counts = layer.counts
    precision = layer.precision
  }
}

@Suite struct RecipeTests {
  static let N = 64, C = 48, OC = 32

  /// X with a few large outliers (so scales and saturation matter), W ~ 0.1, dY ~ 1e-3.
  static func data() -> (x: [Float], w: [Float], dy: [Float]) {
    var rng = TestRNG(33)
    var x = rng.floats(N * C, scale: 2)
    for i in stride(from: 5, to: x.count, by: 97) { x[i] *= 40 }
    // Rows of W span five binades, so blocks along rows and along columns get different scales.
    var w = rng.floats(OC * C, scale: 0.1)
    for i in w.indices { w[i] *= Float(1 << ((i / C) % 5)) }
    return (x, w, rng.floats(N * OC, scale: 1e-3))
  }

  /// The tensor an operand comes from, as stored.
  static func source(_ op: GEMMOperand, x: [Float], w: [Float], dy: [Float]) -> [Float] {
    switch op {
    case .forwardX, .weightGradX: return x
    case .forwardW, .dataGradW: return w
    case .dataGradDY, .weightGradDY: return dy
    }
  }

  /// The library's quantization of `t` (rows x cols) as operand `op` of layer 0 at step 0: FPFormats'
  /// `BlockQuantizer` with blocks along the GEMM's reduction axis (axis 0 when it reduces along rows),
  /// after the GEMM's Hadamard transform along that axis when it has one.
  static func reference(
    _ setting: OperandSetting, hadamard: Int?, op: GEMMOperand, _ t: [Float], layout: OperandLayout, seed: UInt64
  ) throws -> [Float] {
    let stream = RoundingStreams.stream(step: 0, pass: .train, layer: 0, operand: op)
    var v = t
    if let n = hadamard {
      let h = try RandomHadamard(size: n, seed: seed, stream: RoundingStreams.hadamardStream(layer: 0, gemm: op.gemm))
      // Transpose so the reduction axis is last, transform and quantize there, transpose back.
      let (r, c) = layout.reducesAlongRows ? (layout.cols, layout.rows) : (layout.rows, layout.cols)
      if layout.reducesAlongRows { v = transpose(t, rows: layout.rows, cols: layout.cols) }
      _ = try v.withUnsafeMutableBufferPointer { try h.forward($0, rows: r, cols: c) }
      v = try quantize(setting, v, rows: r, cols: c, axis: 1, seed: seed, stream: stream)
      return layout.reducesAlongRows ? transpose(v, rows: r, cols: c) : v
    }
    return try quantize(
      setting, v, rows: layout.rows, cols: layout.cols, axis: layout.reducesAlongRows ? 0 : 1, seed: seed, stream: stream)
  }

  static func quantize(_ s: OperandSetting, _ t: [Float], rows: Int, cols: Int, axis: Int, seed: UInt64, stream: UInt64) throws -> [Float] {
    switch s.format {
    case nil: return t
    case .element(let f)?:
      return Quantizer(format: f, rounding: s.rounding, overflow: s.overflow, seed: seed, stream: stream).quantize(t)
    case .scaled(let f)?:
      var v = t
      var stats = QuantizationStats()
      try v.withUnsafeMutableBufferPointer {
        try BlockQuantizer(format: f, rounding: s.rounding, seed: seed, stream: stream).quantize(
          $0, rows: rows, cols: cols, axis: axis, stats: &stats)
      }
      return v
    }
  }

  static func transpose(_ t: [Float], rows: Int, cols: Int) -> [Float] {
    (0..<rows * cols).map { t[($0 % rows) * cols + $0 / rows] }
  }

  // MARK: Bit-exact baselines

  @Test func allFloat32RecipeEqualsTheFP32RunBitForBit() throws {
    let config = TrainingConfig(steps: 12, learningRate: 3e-3, evalEvery: 6)
    let a = try makeTrainer(gptMicro, recipe: "fp32", config: config)
    let b = try makeTrainer(gptMicro, recipe: "fp32:format=float32", config: config)
    #expect(b.task.precision.telemetryNames.count == 9 * 6)  // every operand really goes through rounding
    for _ in 0..<12 {
      let ma = a.trainStep(), mb = b.trainStep()
      #expect(ma.trainLoss.bitPattern == mb.trainLoss.bitPattern && ma.gradNorm.bitPattern == mb.gradNorm.bitPattern)
      #expect(ma.evalLoss?.bitPattern == mb.evalLoss?.bitPattern)
    }
    let pa = a.task.parameters, pb = b.task.parameters
    #expect(Array(UnsafeBufferPointer(start: pa.values.pointer, count: pa.count)).map(\.bitPattern)
      == Array(UnsafeBufferPointer(start: pb.values.pointer, count: pb.count)).map(\.bitPattern))
  }

  // MARK: Each operand is the library's quantization

  /// Every operand each GEMM reads equals FPFormats' quantization of the same tensor with the same
  /// format, rounding and random stream (blocks along that GEMM's reduction axis, tiles as stored),
  /// and each GEMM's result is the plain float32 kernel on the captured operands, bit for bit.
  @Test(arguments: [
    "mxfp4", "mxfp8", "mxfp6", "nvfp4", "fp4:scale=ue8m0,block=32,tensor-scale=on,hadamard=off",
    "fp4:scale=fp32,sr=off", "fp4:scale=ue4m3,hadamard=all:16", "uniform:e4m3fn:stochastic",
    "fp32:forward.format=e2m1/ue5m3/16:scale-rounding=stochastic,gradients.format=mxfp8_e5m2,gradients.rounding=stochastic",
    "fp4:scale-rounding=up,sr=all,hadamard=all", "fp4:scale=ue4m3,tensor-scale=on,scale-rounding=up,sr=forward,hadamard=forward",
  ])
  func eachOperandIsTheLibraryQuantizationOfTheSameTensor(spec: String) throws {
    let (N, C, OC) = (Self.N, Self.C, Self.OC)
    let (x, w, dy) = Self.data()
    let recipe = try Recipe(parsing: spec)
    for threads in [1, 2] {
      let h = HookedLayer(recipe, x: x, w: w, dy: dy, N: N, C: C, OC: OC, threads: threads)
      let info = LinearLayerInfo(name: "l", index: 0, inFeatures: C, outFeatures: OC)
      let p = recipe.precision(for: info)
      for op in GEMMOperand.allCases {
        let layout = try #require(h.layouts[op])
        var setting = recipe.operands[op.rawValue]
        if p[op] != nil && setting.format == nil { setting.format = .element(try FloatFormat(parsing: "float32")) }
        let want = try Self.reference(
          setting, hadamard: p.hadamard[op.gemm.rawValue], op: op, Self.source(op, x: x, w: w, dy: dy), layout: layout, seed: 7)
            let same = h.operands[op]!.map(\.bitPattern) == want.map(\.bitPattern)
        #expect(same, "\(spec) \(op) threads \(threads)")
      }
      var out = [Float](repeating: 0, count: N * OC), dx = [Float](repeating: 0, count: N * C)
      var dw = [Float](repeating: 0, count: OC * C)
      Linear.forward(out: &out, inp: h.operands[.forwardX]!, weight: h.operands[.forwardW]!, bias: nil, N: N, C: C, OC: OC)
      Linear.backwardData(dinp: &dx, dout: h.operands[.dataGradDY]!, weight: h.operands[.dataGradW]!, N: N, C: C, OC: OC)
      Linear.backwardWeight(dweight: &dw, dout: h.operands[.weightGradDY]!, inp: h.operands[.weightGradX]!, N: N, C: C, OC: OC)
      let sameGEMMs = out.map(\.bitPattern) == h.out.map(\.bitPattern) && dx.map(\.bitPattern) == h.dx.map(\.bitPattern)
        && dw.map(\.bitPattern) == h.dw.map(\.bitPattern)
      #expect(sameGEMMs, "\(spec) threads \(threads)")
    }
  }

  /// Large enough operands (131 072 values) that rows and strips are split across threads: every
  /// operand, result and count is the same with 1, 2 or 3 threads.
  @Test(arguments: ["nvfp4", "mxfp4:backward-rounding=stochastic,hadamard=all:32", "uniform:e4m3fn:stochastic"])
  func roundingIsIndependentOfTheThreadCount(spec: String) throws {
    let (N, C, OC) = (1024, 128, 96)
    var rng = TestRNG(8)
    let x = rng.floats(N * C, scale: 3), w = rng.floats(OC * C, scale: 0.1), dy = rng.floats(N * OC, scale: 1e-3)
    let recipe = try Recipe(parsing: spec)
    let one = HookedLayer(recipe, x: x, w: w, dy: dy, N: N, C: C, OC: OC, threads: 1)
    for threads in [2, 3] {
      let many = HookedLayer(recipe, x: x, w: w, dy: dy, N: N, C: C, OC: OC, threads: threads)
      let same = GEMMOperand.allCases.allSatisfy { one.operands[$0]!.map(\.bitPattern) == many.operands[$0]!.map(\.bitPattern) }
        && one.out.map(\.bitPattern) == many.out.map(\.bitPattern) && one.dx.map(\.bitPattern) == many.dx.map(\.bitPattern)
        && one.dw.map(\.bitPattern) == many.dw.map(\.bitPattern) && one.counts == many.counts
      #expect(same, "\(spec), \(threads) threads")
    }
  }

  /// The operand telemetry is `BlockQuantizer`'s own count on the same tensor.
  @Test func operandTelemetryMatchesADirectCount() throws {
    let (x, w, dy) = Self.data()
    // UE8M0 (power-of-two) scales leave scaled block maxima in [4, 8): the ones from 7 up saturate.
    let recipe = try Recipe(parsing: "fp4:scale=ue8m0,block=16,hadamard=off,sr=off")
    let h = HookedLayer(recipe, x: x, w: w, dy: dy, N: Self.N, C: Self.C, OC: Self.OC)
    guard case .scaled(let f)? = recipe.operands[0].format else { Issue.record("not scaled"); return }
    var stats = QuantizationStats()
    var v = x
    try v.withUnsafeMutableBufferPointer { try BlockQuantizer(format: f).quantize($0, rows: Self.N, cols: Self.C, stats: &stats) }
    let c = h.counts[GEMMOperand.forwardX.rawValue]
    #expect(c == RoundingCounts(stats))
    #expect(c.saturated > 0 && c.blocks == Self.N * Self.C / 16 && c.amax == x.map(abs).max()!, "\(c)")
  }

  // MARK: Hadamard

  @Test func hadamardLeavesAnFP32GEMMUnchangedAndChangesAQuantizedOne() throws {
    let (N, C, OC) = (Self.N, Self.C, Self.OC)
    let (x, w, dy) = Self.data()
    let plain = HookedLayer(.fp32, x: x, w: w, dy: dy, N: N, C: C, OC: OC)
    let rotated = HookedLayer(try Recipe(parsing: "fp32:format=float32,hadamard=all:16"), x: x, w: w, dy: dy, N: N, C: C, OC: OC)
    // The operands really were transformed.
    let transformed = rotated.operands[.forwardX]! != x
    #expect(transformed)
    // (X R)(W R)^T = X W^T up to float32 rounding: a 16-term transform and a K-term sum, each error a
    // few units of 2^-24 relative to sum |x||w|; 1e-5 of the largest output bounds them with margin.
    for (a, b) in [(plain.out, rotated.out), (plain.dx, rotated.dx), (plain.dw, rotated.dw)] {
      let scale = a.map(abs).max()!
      let err = zip(a, b).map { abs($0 - $1) }.max()!
      #expect(err <= 1e-5 * scale && err > 0)
    }
    let mx = HookedLayer(try Recipe(parsing: "mxfp4"), x: x, w: w, dy: dy, N: N, C: C, OC: OC)
    let mxh = HookedLayer(try Recipe(parsing: "mxfp4:hadamard=all:16"), x: x, w: w, dy: dy, N: N, C: C, OC: OC)
    let changed = mx.out != mxh.out && mx.dx != mxh.dx && mx.dw != mxh.dw
    #expect(changed)
    // With outliers in X, spreading them before FP4 rounding brings the forward result closer to fp32.
    func rms(_ a: [Float], _ b: [Float]) -> Double { (zip(a, b).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) } / Double(a.count)).squareRoot() }
    #expect(rms(mxh.out, plain.out) < rms(mx.out, plain.out))
  }

  // MARK: Tiles

  @Test(arguments: ["nvfp4", "fp32:weights.format=mxfp4_e2m1@16x16,weights.rounding=stochastic"])
  func tiledWeightsAreIdenticalInForwardAndBackward(spec: String) throws {
    let (x, w, dy) = Self.data()
    let h = HookedLayer(try Recipe(parsing: spec), x: x, w: w, dy: dy, N: Self.N, C: Self.C, OC: Self.OC)
    #expect(h.operands[.forwardW]!.map(\.bitPattern) == h.operands[.dataGradW]!.map(\.bitPattern))
    #expect(h.operands[.forwardW]! != w, "rounded")
    // Vector blocks run along different axes in the two GEMMs: there the two weights differ.
    let v = HookedLayer(try Recipe(parsing: "mxfp4"), x: x, w: w, dy: dy, N: Self.N, C: Self.C, OC: Self.OC)
    let differ = v.operands[.forwardW]! != v.operands[.dataGradW]!
    #expect(differ)
  }

  // MARK: Presets

  @Test func nvfp4KeepsTheLastBlockAndTheHeadInBF16() throws {
    let r = try Recipe(parsing: "nvfp4")
    func info(_ name: String, block: Int?, head: Bool = false) -> LinearLayerInfo {
      LinearLayerInfo(name: name, index: 0, inFeatures: 128, outFeatures: 128, block: block, blockCount: 4, isHead: head)
    }
    let first = r.precision(for: info("transformer.h.0.mlp.c_fc", block: 0))
    #expect(first[.forwardX]?.description == "nvfp4:rne")
    #expect(first[.forwardW]?.description == "nvfp4@16x16:rne")
    #expect(first[.dataGradDY]?.description == "nvfp4:stochastic" && first[.weightGradDY]?.description == "nvfp4:stochastic")
    #expect(first[.weightGradX]?.description == "nvfp4:rne")
    #expect(first.hadamard == [nil, nil, 16])
    for kept in [r.precision(for: info("transformer.h.3.attn.c_attn", block: 3)), r.precision(for: info("lm_head", block: nil, head: true))] {
      #expect(GEMMOperand.allCases.allSatisfy { kept[$0]?.description == "bfloat16:rne:saturate" })
      #expect(kept.hadamard == [nil, nil, nil])
    }
  }

  @Test(arguments: ["nvfp4", "mxfp4"])
  func fp4RecipesTrainGPTMicroWithFiniteDecreasingLossAndConsistentTelemetry(spec: String) throws {
    let steps = 300
    let t = try makeTrainer(gptMicro, recipe: spec, config: TrainingConfig(steps: steps, learningRate: 3e-3, evalEvery: 0))
    let names = t.task.precision.telemetryNames
    let wName = "transformer.h.0.mlp.c_fc.weight", probe = names.firstIndex(of: "transformer.h.0.mlp.c_fc.fwd_w")!
    var losses: [Float] = []
    for s in 0..<steps {
      let w = t.task.parameters.valueArray(wName)
      let m = t.trainStep()
      losses.append(m.trainLoss)
      if s == 0 || s == steps - 1 {
        // The forward weight operand this step rounded, counted directly by the library.
        guard case .scaled(let f)? = t.task.precision.recipe.operands[GEMMOperand.forwardW.rawValue].format else { continue }
        var stats = QuantizationStats()
        var v = w
        try v.withUnsafeMutableBufferPointer { try BlockQuantizer(format: f).quantize($0, rows: 128, cols: 32, stats: &stats) }
        #expect(m.saturated[probe] == Float(Double(stats.saturated) / Double(stats.count)))
        #expect(m.flushed[probe] == Float(Double(stats.flushedToZero) / Double(stats.count)))
        #expect(m.amax[probe] == stats.amax)
        #expect(m.scaleSaturated[probe] == Float(Double(stats.scaleSaturated) / Double(stats.blocks)))
        #expect(m.scaleUnderflow[probe] == Float(Double(stats.scaleUnderflow) / Double(stats.blocks)))
        #expect(m.saturated.count == names.count && m.amax.count == names.count)
      }
    }
    #expect(losses.allSatisfy { $0.isFinite })
    let head = losses.prefix(20).reduce(0, +) / 20, tail = losses.suffix(20).reduce(0, +) / 20
    // ln(65) = 4.17 at the start; a character model learns bigram statistics (below 2.8) within a few
    // hundred steps.
    #expect(tail < head - 1 && tail < 2.8, "\(spec): \(head) -> \(tail)")
  }

  // MARK: Gradient estimator, loss scaling, state formats

  /// Clipped STE: dX and dW are the straight-through ones except exactly at the forward values that
  /// saturated, where this GEMM's contribution is zero. Saturation is derived independently: |x| > 448
  /// for e4m3fn; for MXFP4 (OCP floor rule, blocks of 32 along rows) |x| > 6 * 2^(floor(log2 amax) - 2).
  @Test(arguments: ["fp32:forward.format=e4m3fn,estimator=clipped-ste", "mxfp4:estimator=clipped-ste"])
  func clippedStraightThroughZeroesExactlyTheGradientsOfSaturatedValues(spec: String) throws {
    let (N, C, OC) = (Self.N, Self.C, Self.OC)
    var (x, w, dy) = Self.data()
    for i in stride(from: 11, to: x.count, by: 53) { x[i] = i % 2 == 0 ? 1000 : -700 }
    let clipped = try Recipe(parsing: spec)
    var ste = clipped
    ste.estimator = .straightThrough
    let a = HookedLayer(ste, x: x, w: w, dy: dy, N: N, C: C, OC: OC), b = HookedLayer(clipped, x: x, w: w, dy: dy, N: N, C: C, OC: OC)
    func saturated(_ t: [Float], rows: Int, cols: Int) -> [Bool] {
      if spec.hasPrefix("fp32") { return t.map { abs($0) > 448 } }
      var out = [Bool](repeating: false, count: t.count)
      for r in 0..<rows {
        for b0 in stride(from: 0, to: cols, by: 32) {
          let idx = (b0..<min(cols, b0 + 32)).map { r * cols + $0 }
          let amax = idx.map { abs(t[$0]) }.max()!
          guard amax > 0 else { continue }
          let top = 6 * Float(sign: .plus, exponent: Int(amax.exponent) - 2, significand: 1)
          for i in idx { out[i] = abs(t[i]) > top }
        }
      }
      return out
    }
    let satX = saturated(x, rows: N, cols: C)
    let satW = spec.hasPrefix("fp32") ? [Bool](repeating: false, count: w.count) : saturated(w, rows: OC, cols: C)
    #expect(satX.contains(true) && satX.contains(false))
    #expect(a.out.map(\.bitPattern) == b.out.map(\.bitPattern))  // the forward pass is the same
    let dxOK = zip(zip(a.dx, b.dx), satX).allSatisfy { p, s in p.1.bitPattern == (s ? Float(0).bitPattern : p.0.bitPattern) }
    let dwOK = zip(zip(a.dw, b.dw), satW).allSatisfy { p, s in p.1.bitPattern == (s ? Float(0).bitPattern : p.0.bitPattern) }
    #expect(dxOK && dwOK, "\(spec): \(satX.filter { $0 }.count) saturated X, \(satW.filter { $0 }.count) saturated W")
    // The model's backward overwrites dX instead of zeroing it first: the same gradients, clipped too.
    for recipe in [ste, clipped] {
      let accumulated = HookedLayer(recipe, x: x, w: w, dy: dy, N: N, C: C, OC: OC)
      let overwritten = HookedLayer(recipe, x: x, w: w, dy: dy, N: N, C: C, OC: OC, overwriteDinp: true)
      #expect(overwritten.dx.map(\.bitPattern) == accumulated.dx.map(\.bitPattern), "\(spec) \(recipe.estimator)")
    }
  }

  /// A static power-of-two loss scale changes nothing in float32 (scaling and unscaling are exact);
  /// with e4m3fn operands it keeps the head's small gradients from flushing to zero.
  @Test func staticLossScalingIsExactAndRescuesUnderflowingGradients() throws {
    let config = TrainingConfig(steps: 6, learningRate: 3e-3, evalEvery: 0)
    let a = try makeTrainer(gptMicro, recipe: "fp32", config: config)
    let b = try makeTrainer(gptMicro, recipe: "fp32:loss-scale=1024", config: config)
    for _ in 0..<6 {
      let ma = a.trainStep(), mb = b.trainStep()
      #expect(ma.trainLoss.bitPattern == mb.trainLoss.bitPattern && ma.gradNorm.bitPattern == mb.gradNorm.bitPattern)
      #expect(mb.lossScale == 1024 && !mb.skipped)
    }
    let plain = try makeTrainer(gptMicro, recipe: "uniform:e4m3fn", config: config)
    let scaled = try makeTrainer(gptMicro, recipe: "uniform:e4m3fn:loss-scale=4096", config: config)
    let i = plain.task.precision.telemetryNames.firstIndex(of: "lm_head.dgrad_dy")!
    let fp = plain.trainStep().flushed[i], fs = scaled.trainStep().flushed[i]
    #expect(fs < fp / 2, "flushed \(fp) -> \(fs)")
  }

  /// Dynamic scaling from 2^24 with e5m2 operands that overflow to Inf (max 57344): the head's largest
  /// scaled logit gradients, about 2^24 / 256 = 65536, become Inf, so steps are skipped (parameters
  /// untouched) and the scale halves until they are finite; then it doubles after `interval` good steps.
  @Test func dynamicLossScalingSkipsNonFiniteStepsAndAdaptsTheScale() throws {
    let start: Float = 16_777_216
    let t = try makeTrainer(
      gptMicro, recipe: "uniform:e5m2:overflow=ieee,loss-scale=dynamic:16777216:3",
      config: TrainingConfig(steps: 60, learningRate: 3e-3, evalEvery: 0))
    var metrics: [StepMetrics] = []
    for _ in 0..<60 {
      let before = t.task.parameters.valueArray("transformer.h.0.mlp.c_fc.weight")
      let m = t.trainStep()
      metrics.append(m)
      if m.skipped { #expect(t.task.parameters.valueArray("transformer.h.0.mlp.c_fc.weight") == before) }
    }
    #expect(metrics[0].skipped && metrics[0].lossScale == start && metrics[1].lossScale == start / 2)
    let firstGood = try #require(metrics.firstIndex { !$0.skipped })
    #expect(metrics[firstGood].gradNorm.isFinite)
    for k in 1..<metrics.count {
      let prev = metrics[k - 1], now = metrics[k].lossScale
      if prev.skipped { #expect(now == prev.lossScale / 2) } else { #expect(now == prev.lossScale || now == prev.lossScale * 2) }
    }
    #expect(metrics.contains { !$0.skipped && $0.lossScale > metrics[firstGood].lossScale })  // it grew again
  }

  @Test(arguments: ["fp32:master-weights=bf16,optimizer-states=bf16", "fp32:master-weights=bf16:stochastic"])
  func masterWeightsAndOptimizerStatesAreKeptInTheirFormats(spec: String) throws {
    let t = try makeTrainer(gptMicro, recipe: spec, config: TrainingConfig(steps: 3, learningRate: 3e-3, evalEvery: 0))
    for _ in 0..<3 { _ = t.trainStep() }
    let bf16 = Quantizer(format: try FloatFormat(parsing: "bf16"))
    let p = t.task.parameters
    let values = Array(UnsafeBufferPointer(start: p.values.pointer, count: p.count))
    #expect(bf16.quantize(values) == values)
    let m = Array(UnsafeBufferPointer(start: t.optimizer.m.pointer, count: p.count))
    #expect((bf16.quantize(m) == m) == spec.contains("optimizer-states"))
  }

  // MARK: Grammar

  @Test func recipesPrintCanonicallyAndRoundTrip() throws {
    #expect(try Recipe(parsing: "nvfp4").description == "nvfp4")
    let d = try Recipe(parsing: "mxfp4:backward-rounding=stochastic,hadamard=wgrad:16").description
    #expect(d == "mxfp4:backward.rounding=stochastic,wgrad.hadamard=16")
    #expect(try Recipe(parsing: "fp32:format=nvfp4").description == "fp32:format=nvfp4")
    #expect(try Recipe(parsing: "fp4:scale=ue8m0,sr=off").description == "fp4:scale=ue8m0,gradients.rounding=rne")
    #expect(try Recipe(parsing: "uniform:e4m3fn") == Recipe(.uniform(ElementRounding(format: try FloatFormat(parsing: "e4m3fn")))))
    let specs = [
      "fp32", "bf16", "uniform:e8m3:rtz", "mxfp8", "mxfp6", "mxfp4", "nvfp4", "fp4",
      "fp4:scale=fp32,block=32,tensor-scale=on,hadamard=off", "nvfp4:keep=first-blocks:2+layer:lm_head,estimator=clipped-ste",
      "mxfp4:forward.w.format=e2m1/ue8m0/32:rule=ceil,dgrad.overflow=ieee,keep-format=none",
      "mxfp4:loss-scale=dynamic,master-weights=bf16:stochastic,optimizer-states=e5m10", "bf16:loss-scale=256",
      "fp4:scale-rounding=up", "fp4:scale=ue8m0,block=32,scale-rounding=up,sr=all,hadamard=forward,layers=attention",
      "fp4:sr=backward,hadamard=all,layers=mlp,keep=last-block", "mxfp4:sr=forward,layers=mlp",
      "fp32:format=e2m1/ue4m3/16:tensor-scale:scale-rounding=up", "fp4:attention-products=on", "nvfp4:attention-products=on",
    ]
    for s in specs {
      let r = try Recipe(parsing: s)
      #expect(try Recipe(parsing: r.description) == r, "\(s) -> \(r.description)")
      let decoded = try JSONDecoder().decode(Recipe.self, from: JSONEncoder().encode(r))
      #expect(decoded == r, "\(s): JSON")
      #expect(try JSONDecoder().decode(Recipe.self, from: Data(r.json.utf8)) == r)
    }
  }

  @Test(arguments: [
    ("mxfp4:foo=1", "'foo'"), ("mxfp4:forward.format=e9m9", "'forward.format'"),
    ("mxfp4:wgrad.z.format=bf16", "'wgrad.z.format'"), ("mxfp4:hadamard=gemm9:16", "'gemm9'"),
    ("mxfp4:hadamard=wgrad:12", "'hadamard'"), ("mxfp4:wgrad.hadamard=24", "'wgrad.hadamard'"),
    ("mxfp4:rounding=sideways", "'rounding'"), ("mxfp4:keep=tail", "'keep'"), ("mxfp4:scale=ue8m0", "'scale'"),
    ("fp32:loss-scale=1000", "'loss-scale'"), ("fp32:master-weights=mxfp4", "'master-weights'"),
    ("mxfp4:estimator=clipped-ste,forward.hadamard=16", "'estimator'"),
    ("mxfp5", "'mxfp5'"), ("fp4:block=0", "'block'"), ("mxfp4:format", "mxfp4:format"),
    ("fp4:layers=ffn", "'layers'"), ("fp4:scale-rounding=down", "'scale-rounding'"), ("fp4:sr=sometimes", "'sr'"),
    ("fp4:hadamard=sideways", "'hadamard'"), ("fp4:block=12,hadamard=all", "'hadamard'"), ("mxfp4:hadamard=wgrad", "'hadamard'"),
    ("fp4:layers=mlp,keep=head", "'keep'"), ("fp4:layers=attention,keep=layer:transformer.h.0.mlp", "'keep'"),
    ("fp4:layers=mlp,keep=layer:lm_head", "'keep'"), ("mxfp4:scale-rounding=up", "'scale-rounding'"),
    ("fp32:format=e2m1/ue8m0/32:scale-rounding=up", "rule=ceil"), ("fp4:hadamard=forward,estimator=clipped-ste", "'estimator'"),
    ("fp4:attention-products=maybe", "'attention-products'"),
  ])
  func malformedRecipesAreRefusedWithTheKeyInOneLine(spec: String, mention: String) {
    do {
      let r = try Recipe(parsing: spec)
      Issue.record("\(spec) accepted as \(r)")
    } catch {
      let text = "\(error)"
      #expect(text.contains(mention) && !text.contains("\n"), "\(spec): \(text)")
    }
  }

  @Test func exampleRecipeFilesLoad() throws {
    let dir = repositoryRoot.appendingPathComponent("experiments/recipes")
    let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") || $0.hasSuffix(".toml") }
    #expect(files.count >= 3)
    for f in files {
      let r = try Recipe(parsing: dir.appendingPathComponent(f).path)
      #expect(try Recipe(parsing: r.description) == r, "\(f)")
    }
    let nv = try Recipe(parsing: dir.appendingPathComponent("nvfp4.toml").path)
    #expect(nv == (try Recipe(parsing: "nvfp4")))
    let sr = try Recipe(parsing: dir.appendingPathComponent("fp4-ue5m3-sr.json").path + ":wgrad.hadamard=32")
    #expect(sr.hadamard == [nil, nil, 32])
  }
}
