import FPEngine
import FPFormats
import Testing

@Suite struct PrecisionTests {
  /// Runs a linear layer's forward and full backward through the hook; returns (out, dinp, dweight, dbias).
  func hooked(_ recipe: Recipe, x: [Float], w: [Float], b: [Float], dy: [Float], N: Int, C: Int, OC: Int, seed: UInt64 = 7, threads: Int = 1) -> [[Float]] {
    let rt = PrecisionRuntime(recipe: recipe, seed: seed, threads: threads)
    let layer = rt.addLinear(name: "l", N: N, C: C, OC: OC)
    rt.finish()
    var out = [Float](repeating: 0, count: N * OC), dx = [Float](repeating: 0, count: N * C)
    var dw = [Float](repeating: 0, count: OC * C), db = [Float](repeating: 0, count: OC)
    layer.forward(out: &out, inp: x, weight: w, bias: b, n: N)
    layer.backward(dinp: &dx, dweight: &dw, dbias: &db, dout: dy, inp: x, weight: w, n: N)
    return [out, dx, dw, db]
  }

  func data(N: Int, C: Int, OC: Int) -> (x: [Float], w: [Float], b: [Float], dy: [Float]) {
    var rng = TestRNG(21)
    return (rng.floats(N * C, scale: 3), rng.floats(OC * C), rng.floats(OC), rng.floats(N * OC, scale: 0.01))
  }

  @Test func fp32RecipeIsBitIdenticalToThePlainKernels() {
    let N = 33, C = 24, OC = 17
    let (x, w, b, dy) = data(N: N, C: C, OC: OC)
    var out = [Float](repeating: 0, count: N * OC), dx = [Float](repeating: 0, count: N * C)
    var dw = [Float](repeating: 0, count: OC * C), db = [Float](repeating: 0, count: OC)
    Linear.forward(out: &out, inp: x, weight: w, bias: b, N: N, C: C, OC: OC)
    Linear.backward(dinp: &dx, dweight: &dw, dbias: &db, dout: dy, inp: x, weight: w, N: N, C: C, OC: OC)
    let h = hooked(.fp32, x: x, w: w, b: b, dy: dy, N: N, C: C, OC: OC)
    for (plain, viaHook) in zip([out, dx, dw, db], h) { #expect(plain.map(\.bitPattern) == viaHook.map(\.bitPattern)) }
    #expect(Recipe.fp32.precision(for: LinearLayerInfo(name: "l", index: 0, inFeatures: C, outFeatures: OC)).roundsNothing)
  }

  /// With `uniform:F`, each GEMM sees exactly the quantized operands (checked against the plain kernels on
  /// operands rounded by FPFormats' Quantizer), the bias gradient sees the unrounded dY, and the
  /// straight-through gradient reaches X and W.
  @Test(arguments: ["uniform:e4m3fn", "uniform:e8m3:rtz", "bf16", "uniform:e5m2"])
  func uniformRecipeRoundsEveryOperandOfEveryGEMM(spec: String) throws {
    let N = 20, C = 16, OC = 12
    let (x, w, b, dy) = data(N: N, C: C, OC: OC)
    let recipe = try Recipe(parsing: spec)
    guard case .uniform(let r) = recipe.kind else { Issue.record("not uniform"); return }
    let q = Quantizer(format: r.format, rounding: r.rounding, overflow: r.overflow)
    let xq = q.quantize(x), wq = q.quantize(w), dyq = q.quantize(dy)
    var out = [Float](repeating: 0, count: N * OC), dx = [Float](repeating: 0, count: N * C)
    var dw = [Float](repeating: 0, count: OC * C), db = [Float](repeating: 0, count: OC)
    Linear.forward(out: &out, inp: xq, weight: wq, bias: b, N: N, C: C, OC: OC)
    Linear.backwardData(dinp: &dx, dout: dyq, weight: wq, N: N, C: C, OC: OC)
    Linear.backwardWeight(dweight: &dw, dout: dyq, inp: xq, N: N, C: C, OC: OC)
    Linear.backwardBias(dbias: &db, dout: dy, N: N, OC: OC)
    let h = hooked(recipe, x: x, w: w, b: b, dy: dy, N: N, C: C, OC: OC)
    for (k, (ref, got)) in zip([out, dx, dw, db], h).enumerated() {
      #expect(ref.map(\.bitPattern) == got.map(\.bitPattern), "\(spec): output \(k)")
    }
    #expect(xq != x)  // the rounding did something
  }

  @Test func stochasticRoundingIsReproducibleWhateverTheThreadCount() throws {
    let n = 300_001
    var rng = TestRNG(5)
    let src = rng.floats(n)
    let r = ElementRounding(format: try FloatFormat(parsing: "e4m3fn"), rounding: .stochastic)
    func run(_ threads: Int, stream: UInt64) -> ([Float], RoundingCounts) {
      var dst = [Float](repeating: 0, count: n)
      let c = r.round(src, into: &dst, layout: OperandLayout(rows: 1, cols: n, reducesAlongRows: false), seed: 3, stream: stream, threads: threads, countEvents: true)
      return (dst, c)
    }
    // 300,001 values are cut into 2 and 3 chunks of at least 64 Ki.
    #expect(Quantizer.split(count: n, threads: 2).parts == 2 && Quantizer.split(count: n, threads: 3).parts == 3)
    let (one, c1) = run(1, stream: 9), (two, c2) = run(2, stream: 9), (three, c3) = run(3, stream: 9)
    #expect(one.map(\.bitPattern) == two.map(\.bitPattern))
    #expect(one.map(\.bitPattern) == three.map(\.bitPattern))
    #expect(c1 == c2 && c1 == c3)
    #expect(run(2, stream: 10).0 != one)
    // Unbiased: the mean rounding error is far below the spacing (~2^-4 relative near 1).
    let bias = zip(one, src).reduce(0.0) { $0 + Double($1.0 - $1.1) } / Double(n)
    #expect(abs(bias) < 1e-3)
  }

  @Test func telemetryCountsSaturationAndFlushToZero() throws {
    let r = ElementRounding(format: try FloatFormat(parsing: "e4m3fn"))
    // e4m3fn: max 448, smallest subnormal 2^-9; 1e-4 and -1e-5 flush, 1000, -500 and Inf saturate.
    let src: [Float] = [1000, -500, 448, 1e-4, -1e-5, 0, 1, .infinity, .nan, 0.01]
    var dst = [Float](repeating: 0, count: src.count)
    let c = r.round(src, into: &dst, layout: OperandLayout(rows: 1, cols: src.count, reducesAlongRows: false), seed: 0, stream: 0, threads: 1, countEvents: true)
    #expect(c == RoundingCounts(saturated: 3, flushed: 2, total: 10, amax: 1000))  // amax: finite values only
    #expect(dst[0] == 448 && dst[1] == -448 && dst[7] == 448)
  }

  @Test func trainingTelemetryIsNamedPerLayerAndOperand() throws {
    let t = try makeTrainer(gptMicro, recipe: "uniform:e4m3fn", config: TrainingConfig(steps: 2, learningRate: 1e-3))
    let names = t.task.precision.telemetryNames
    #expect(names.count == (2 * 4 + 1) * 6)
    #expect(names.first == "transformer.h.0.attn.c_attn.fwd_x")
    #expect(names.last == "lm_head.wgrad_x")
    let m = t.trainStep()
    #expect(m.saturated.count == names.count && m.flushed.count == names.count)
    // Per-logit gradients of a mean over B*T = 256 positions are at most 1/256 = 2^-8 and mostly far
    // smaller, below e4m3fn's smallest subnormal 2^-9: the head's dY must largely flush to zero.
    let i = names.firstIndex(of: "lm_head.dgrad_dy")!
    #expect(m.flushed[i] > 0.5)
    #expect(try makeTrainer(gptMicro, recipe: "fp32", config: TrainingConfig(steps: 2, learningRate: 1e-3)).task.precision.telemetryNames.isEmpty)
  }

  @Test func recipesParseAndPrintCanonically() throws {
    #expect(try Recipe(parsing: "fp32") == .fp32)
    #expect(try Recipe(parsing: "bf16").description == "bf16")
    #expect(try Recipe(parsing: "uniform:bfloat16").description == "bf16")
    #expect(try Recipe(parsing: "uniform:e4m3fn").description == "uniform:float8_e4m3fn")
    #expect(try Recipe(parsing: "uniform:e8m3:rtz").description == "uniform:e8m3:rtz")
    #expect(try Recipe(parsing: "uniform:e5m2:stochastic:8").description == "uniform:float8_e5m2:stochastic:8")
    for s in ["fp32", "bf16", "uniform:e4m3fn", "uniform:e8m3:rtz", "uniform:e5m2:stochastic:8"] {
      let r = try Recipe(parsing: s)
      #expect(try Recipe(parsing: r.description) == r)
    }
    #expect(throws: RecipeError.unknown("fp8")) { try Recipe(parsing: "fp8") }
    do {
      _ = try Recipe(parsing: "uniform:e9m3")
      Issue.record("accepted e9m3")
    } catch let e as RecipeError {
      #expect(e.description.contains("e9m3") && !e.description.contains("\n"))
    }
    #expect(throws: RecipeError.self) { try Recipe(parsing: "uniform:e4m3fn:sideways") }
  }

  @Test func streamsDifferPerStepPassLayerAndOperand() {
    var seen = Set<UInt64>()
    for step in 0..<4 {
      for pass in [RoundingStreams.Pass.train, .eval] {
        for layer in 0..<5 {
          for op in GEMMOperand.allCases { seen.insert(RoundingStreams.stream(step: step, pass: pass, layer: layer, operand: op)) }
        }
      }
    }
    #expect(seen.count == 4 * 2 * 5 * 6)
  }
}
