@testable import FPEngine
import FPFormats
import Foundation
import Testing

/// Accuracy as numpy's argmax reads it: the first largest logit; a row with NaN is never right.
@Test func classificationAccuracyTakesTheFirstLargestLogitAndNeverANaN() {
  let logits: [Float] = [1, 3, 2, /* right */ 2, 2, 1, /* tie: index 0, wrong */ .nan, 5, 1, /* NaN: wrong */ 0, 0, 9 /* right */]
  #expect(MLPTask.accuracy(logits: logits, labels: [1, 1, 1, 2], classes: 3) == 0.5)
  #expect(MLPTask.accuracy(logits: logits, labels: [1, 0, 1, 2], classes: 3) == 0.75)
}

@Suite struct ModelAndDataTests {
  @Test func gptTinyHasExactly819456Parameters() throws {
    let data = try CharDataset(contentsOf: dataDirectory.appendingPathComponent("shakespeare.txt"))
    #expect(data.vocabularySize == 76)
    #expect(data.train.count + data.validation.count == 940_218)
    #expect(data.train.count == Int(Double(940_218) * 0.9))
    let config = GPTConfig.tiny(vocabSize: data.vocabularySize)
    #expect(config.parameterCount == 819_456)
    let gpt = GPT(config: config, batchSize: 1)
    #expect(gpt.parameters.count == 819_456)
  }

  @Test func gptInitializationFollowsNanoGPT() {
    let config = GPTConfig.tiny()
    let gpt = GPT(config: config, batchSize: 1)
    gpt.initializeWeights(seed: 1)
    func std(_ name: String) -> Double {
      let v = gpt.parameters.valueArray(name).map(Double.init)
      let m = v.reduce(0, +) / Double(v.count)
      return (v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count)).squareRoot()
    }
    #expect(abs(std("transformer.h.0.mlp.c_fc.weight") - 0.02) < 0.0005)
    #expect(abs(std("transformer.wte.weight") - 0.02) < 0.001)
    #expect(abs(std("transformer.h.1.attn.c_proj.weight") - 0.02 / 8.0.squareRoot()) < 0.0005)
    #expect(gpt.parameters.valueArray("transformer.h.2.ln_1.weight").allSatisfy { $0 == 1 })
    #expect(gpt.parameters.valueArray("transformer.h.2.mlp.c_fc.bias").allSatisfy { $0 == 0 })
  }

  @Test func digitsAndDiabetesLoadWithTheirDocumentedShapes() throws {
    let d = try DigitsDataset(contentsOf: dataDirectory.appendingPathComponent("digits.csv.gz"))
    #expect(d.trainCount + d.testCount == 1797 && d.testCount == 359)
    #expect(d.trainX.allSatisfy { $0 >= 0 && $0 <= 1 })
    let again = try DigitsDataset(contentsOf: dataDirectory.appendingPathComponent("digits.csv.gz"))
    #expect(again.testY == d.testY)  // the split is fixed
    let db = try DiabetesDataset(
      features: dataDirectory.appendingPathComponent("diabetes_data_raw.csv.gz"),
      target: dataDirectory.appendingPathComponent("diabetes_target.csv.gz"))
    #expect(db.count == 442 && db.x.count == 4420)
    // Standardized with the population std: every column has mean 0 and mean square 1.
    for j in 0..<10 {
      let col = (0..<442).map { Double(db.x[$0 * 10 + j]) }
      #expect(abs(col.reduce(0, +) / 442) < 1e-6)
      #expect(abs(col.reduce(0) { $0 + $1 * $1 } / 442 - 1) < 1e-5)
    }
  }

  @Test func missingDataGivesAOneLineErrorNamingTheFile() {
    do {
      _ = try ModelSpec.linreg.makeTask(dataDirectory: URL(fileURLWithPath: "/nonexistent"), recipe: .fp32, seed: 0)
      Issue.record("no error")
    } catch {
      let text = "\(error)"
      #expect(text.contains("/nonexistent/diabetes_data_raw.csv.gz") && !text.contains("\n"))
    }
    #expect(throws: ModelError.unknown("gpt-huge")) { try ModelSpec(parsing: "gpt-huge") }
  }
}

@Suite struct OptimizerTests {
  /// One AdamW step by hand in double: p = 0.5 (a matrix entry, decayed) and 0.5 (a bias, not decayed).
  @Test func adamwFollowsPyTorchsUpdateAndDecaysOnlyMatrices() {
    let P = ParameterSet(layout: [("w", [1, 1]), ("b", [1])])
    P.values.pointer[0] = 0.5
    P.values.pointer[1] = 0.5
    let opt = Optimizer(.adamw(beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1), parameters: P)
    let g = [0.2, -0.3], lr = 0.01
    var m = [0.0, 0.0], v = [0.0, 0.0], p = [0.5, 0.5]
    for t in 1...3 {
      P.grads.pointer[0] = Float(g[0])
      P.grads.pointer[1] = Float(g[1])
      opt.update(lr: Float(lr))
      for i in 0..<2 {
        m[i] = 0.9 * m[i] + 0.1 * g[i]
        v[i] = 0.95 * v[i] + 0.05 * g[i] * g[i]
        if i == 0 { p[i] *= 1 - lr * 0.1 }
        let mhat = m[i] / (1 - pow(0.9, Double(t))), vhat = v[i] / (1 - pow(0.95, Double(t)))
        p[i] -= lr * mhat / (vhat.squareRoot() + 1e-8)
      }
    }
    #expect(abs(Double(P.values.pointer[0]) - p[0]) < 1e-6)
    #expect(abs(Double(P.values.pointer[1]) - p[1]) < 1e-6)
    #expect(p[0] != p[1] + 0.06)  // sanity: the two moved differently
  }

  /// The vectorized AdamW update equals its plain twin bit for bit, on lengths with and without a
  /// remainder, gradients spanning many binades (with zeros and subnormals), at several steps.
  @Test func adamwVectorUpdateEqualsItsPlainTwin() {
    let rng = CounterRNG(seed: 7)
    var counter: UInt64 = 0
    func uniform() -> Double { counter += 1; return Double(rng.uniform(counter)) }
    for n in [1, 15, 16, 17, 100, 1000] {
      var p = (0..<n).map { _ in Float(uniform() * 2 - 1) }
      var m = [Float](repeating: 0, count: n), v = m
      var p2 = p, m2 = m, v2 = v
      for t in 1...4 {
        let g: [Float] = (0..<n).map { i in
          if i % 13 == 0 { return 0 }
          if i % 11 == 0 { return Float.leastNonzeroMagnitude * 3 }
          let binade = Float(pow(10.0, Double(i % 9) - 6))
          return Float(uniform() * 2 - 1) * binade
        }
        let step = Float(0.01 / (1 - pow(0.9, Double(t))))
        let rbc2 = Float(1 / (1 - pow(0.95, Double(t))).squareRoot()), decay: Float = 0.999
        Optimizer.adamw(&p, g, &m, &v, n, 0.9, 0.95, 1e-8, decay, step, rbc2)
        Optimizer.adamwReference(&p2, g, &m2, &v2, n, 0.9, 0.95, 1e-8, decay, step, rbc2)
      }
      let differing = (0..<n).filter {
        p[$0].bitPattern != p2[$0].bitPattern || m[$0].bitPattern != m2[$0].bitPattern
          || v[$0].bitPattern != v2[$0].bitPattern
      }
      #expect(differing.count == 0, "n = \(n)")
    }
  }

  @Test func sgdAndSignSGDMomentumUpdates() {
    let P = ParameterSet(layout: [("b", [2])])
    let sgd = Optimizer(.sgd(momentum: 0.9, weightDecay: 0), parameters: P)
    P.grads.pointer[0] = 1
    P.grads.pointer[1] = -2
    sgd.update(lr: 0.1)  // buf = g; p = -0.1 g
    sgd.update(lr: 0.1)  // buf = 1.9 g; p = -0.29 g
    #expect(abs(P.values.pointer[0] + 0.29) < 1e-6 && abs(P.values.pointer[1] - 0.58) < 1e-6)
    let Q = ParameterSet(layout: [("b", [2])])
    let sign = Optimizer(.signSGD(momentum: 0.9, weightDecay: 0), parameters: Q)
    Q.grads.pointer[0] = 1e-6
    Q.grads.pointer[1] = -3
    sign.update(lr: 0.1)
    #expect(Q.values.pointer[0] == -0.1 && Q.values.pointer[1] == 0.1)
  }

  @Test func scheduleWarmsUpLinearlyThenDecaysAlongACosine() {
    let s = LRSchedule(peak: 1e-3, minimum: 1e-4, warmupSteps: 10, decaySteps: 110)
    #expect(abs(s.lr(at: 0) - 1e-3 / 11) < 1e-9)
    #expect(abs(s.lr(at: 9) - 1e-3 * 10 / 11) < 1e-9)
    #expect(s.lr(at: 10) == 1e-3)
    #expect(abs(s.lr(at: 60) - 5.5e-4) < 1e-9)
    #expect(abs(s.lr(at: 110) - 1e-4) < 1e-9)
    #expect(s.lr(at: 500) == 1e-4)
  }

  @Test func clippingScalesTheGlobalNormDownToTheLimit() {
    let g = FloatBuffer([3, 4, 0, 0, 0, 0, 0, 0, 0, 12])  // norm 13
    let norm = GradientClipping.clip(g, maxNorm: 1)
    #expect(norm == 13)
    let after = GradientClipping.clip(g, maxNorm: nil)
    #expect(abs(after - 1) < 1e-5)
    let small = FloatBuffer([0.3, 0.4])
    #expect(GradientClipping.clip(small, maxNorm: 1) == 0.5 && small.toArray() == [0.3, 0.4])
  }
}

@Suite struct TrainingTests {
  static let micro = TrainingConfig(steps: 12, learningRate: 3e-3, warmupSteps: 3, evalEvery: 4, checkpointEvery: 6)

  @Test func sameSeedAndRecipeTwiceGiveIdenticalMetricsWhateverTheThreadCount() throws {
    func run(_ threads: Int) throws -> [[UInt32]] {
      let sink = MemorySink()
      try makeTrainer(gptMicro, recipe: "uniform:e4m3fn:stochastic", threads: threads, config: Self.micro).run(sink: sink)
      #expect(sink.summary?.status == .completed && sink.metrics.count == 12)
      return fingerprint(sink.metrics)
    }
    let a = try run(2), b = try run(2), c = try run(1)
    #expect(a == b)
    #expect(a == c)
    let other = MemorySink()
    try makeTrainer(gptMicro, recipe: "uniform:e4m3fn:stochastic", seed: 1, config: Self.micro).run(sink: other)
    #expect(fingerprint(other.metrics) != a)
  }

  @Test(arguments: ["uniform:e5m2:stochastic", "fp32", "nvfp4:loss-scale=dynamic:1024:2,master-weights=bf16:stochastic"])
  func resumingFromACheckpointEqualsTheUninterruptedRun(recipe: String) throws {
    let full = MemorySink()
    let whole = try makeTrainer(gptMicro, recipe: recipe, config: Self.micro)
    whole.run(sink: full)
    let first = MemorySink()
    try makeTrainer(gptMicro, recipe: recipe, config: Self.micro).run(sink: first, until: 6)
    #expect(first.summary?.status == .interrupted)
    let checkpoint = try #require(first.checkpoints.last)
    #expect(checkpoint.step == 6)
    // A fresh process would build everything anew: a new task, initialized from the seed, then restored.
    let resumed = try makeTrainer(gptMicro, recipe: recipe, config: Self.micro)
    try resumed.restore(checkpoint)
    let rest = MemorySink()
    resumed.run(sink: rest)
    #expect(rest.description?.startStep == 6)
    #expect(fingerprint(rest.metrics) == fingerprint(Array(full.metrics[6...])))
    #expect(resumed.task.parameters.values.toArray().map(\.bitPattern) == whole.task.parameters.values.toArray().map(\.bitPattern))
    #expect(rest.checkpoints.last == full.checkpoints.last)
  }

  @Test func restoringACheckpointOfAnotherModelFailsWithAClearMessage() throws {
    let a = try makeTrainer(gptMicro, recipe: "fp32", config: Self.micro)
    let b = try makeTrainer(.linreg, recipe: "fp32", config: Self.micro)
    do {
      try b.restore(a.checkpoint())
      Issue.record("restored a GPT checkpoint into linreg")
    } catch let e as TrainingError {
      #expect(e.description.contains("another model"))
    }
    var old = a.checkpoint()
    old.version = 99
    #expect(throws: TrainingError.self) { try a.restore(old) }
  }

  @Test func differentRecipesGiveDifferentFiniteLosses() throws {
    var finals: [String: Float] = [:]
    for r in ["fp32", "bf16", "uniform:e4m3fn", "uniform:e8m3:rtz", "uniform:e5m2:stochastic"] {
      let sink = MemorySink()
      var c = Self.micro
      c.steps = 6
      try makeTrainer(gptMicro, recipe: r, config: c).run(sink: sink)
      let l = try #require(sink.metrics.last).trainLoss
      #expect(l.isFinite, "\(r)")
      finals[r] = l
    }
    print("gpt-micro loss after 6 steps: \(finals.sorted { $0.key < $1.key })")
    #expect(Set(finals.values.map(\.bitPattern)).count == finals.count)
  }

  @Test func invalidConfigurationsAreRejectedWithOneLineMessages() throws {
    for bad in [
      TrainingConfig(steps: 0, learningRate: 1e-3), TrainingConfig(steps: 10, learningRate: 0),
      TrainingConfig(steps: 10, learningRate: .nan), TrainingConfig(steps: 10, learningRate: 1e-3, gradClip: 0),
    ] {
      do {
        _ = try makeTrainer(.linreg, recipe: "fp32", config: bad)
        Issue.record("accepted \(bad)")
      } catch let e as TrainingError {
        #expect(!e.description.contains("\n"))
      }
    }
  }

  @Test func divergenceRuleFlagsNonFiniteAndSustainedRises() {
    let rule = DivergenceRule(smoothing: 0, warmupSteps: 2, margin: 1, patience: 3, spikeMargin: 0.5)
    var m = DivergenceMonitor(rule: rule, warmupSteps: 2)
    // Warmup ignored; reference falls to 2; one spike (3.0 > 2.5) that recovers; then a rise that stays.
    let losses: [Float] = [9, 8, 3, 2, 3, 2, 3.5, 3.5, 3.5, 3.5]
    var diverged: Int? = nil
    for (s, l) in losses.enumerated() where m.observe(step: s, loss: l) && diverged == nil { diverged = s }
    #expect(m.divergedStep == 6 && diverged == 8)
    #expect(m.spikes == 2)
    var n = DivergenceMonitor(rule: rule, warmupSteps: 2)
    _ = n.observe(step: 0, loss: 5)
    #expect(n.observe(step: 1, loss: .nan) && n.divergedStep == 1)
  }

  @Test func aDivergingRunStopsAndReportsWhere() throws {
    // linreg with plain SGD far beyond 2 / (largest Hessian eigenvalue): the loss grows geometrically.
    let c = TrainingConfig(
      steps: 400, learningRate: 5, minLearningRate: 5, warmupSteps: 0, optimizer: .sgd(momentum: 0, weightDecay: 0),
      gradClip: nil, evalEvery: 0, divergence: DivergenceRule(patience: 5))
    let sink = MemorySink()
    let summary = try makeTrainer(.linreg, recipe: "fp32", config: c).run(sink: sink)
    #expect(summary.status == .diverged)
    let at = try #require(summary.divergedStep)
    #expect(at < 100 && sink.metrics.count < 400)
  }
}

@Suite struct LearningTests {
  /// gpt-tiny with every GEMM operand in bfloat16 learns the text: after 150 steps (lr 1e-3, AdamW,
  /// warmup 15, cosine to 1e-4) its validation loss must be at least 0.5 nats below the unigram entropy
  /// of the training text (computed from the data: the loss of the best context-free model).
  @Test func gptTinyInBF16LearnsBelowTheUnigramEntropy() throws {
    let sink = MemorySink()
    let c = TrainingConfig(steps: 150, learningRate: 1e-3, warmupSteps: 15, evalEvery: 50)
    let t = try makeTrainer(.gptTiny, recipe: "bf16", config: c)
    let entropy = (t.task as! GPTTask).data.unigramEntropy
    let summary = t.run(sink: sink)
    let val = try #require(summary.finalEvalLoss)
    let ms = sink.metrics.map(\.seconds).sorted()[sink.metrics.count / 2] * 1000
    print("gpt-tiny bf16: unigram entropy \(entropy) nats; initial train loss \(sink.metrics[0].trainLoss); validation loss after 150 steps \(val) (evals: \(sink.metrics.compactMap(\.evalLoss))); median \(ms) ms/step")
    #expect(summary.status == .completed)
    #expect(Double(val) < entropy - 0.5)
  }

  @Test func mlpLearnsTheDigits() throws {
    let sink = MemorySink()
    let c = TrainingConfig(steps: 300, learningRate: 3e-3, warmupSteps: 10, evalEvery: 100)
    let t = try makeTrainer(.mlp(hidden: 128, batch: 64), recipe: "uniform:e4m3fn", config: c)
    let summary = t.run(sink: sink)
    let mlp = (t.task as! MLPTask).mlp
    print("mlp e4m3fn: test loss \(summary.finalEvalLoss ?? .nan), accuracy \(mlp.accuracy)")
    #expect(try #require(summary.finalEvalLoss) < 0.3)
    #expect(mlp.accuracy > 0.9)
  }

  /// Full-batch SGD with momentum on standardized diabetes data converges to the least-squares
  /// optimum, computed here independently by solving the normal equations in double.
  @Test func linearRegressionReachesTheLeastSquaresOptimum() throws {
    let data = try DiabetesDataset(
      features: dataDirectory.appendingPathComponent("diabetes_data_raw.csv.gz"),
      target: dataDirectory.appendingPathComponent("diabetes_target.csv.gz"))
    let n = data.count, F = 11
    var A = [[Double]](repeating: [Double](repeating: 0, count: F + 1), count: F)  // [X 1]^T [X 1] | [X 1]^T y
    for i in 0..<n {
      let row = (0..<10).map { Double(data.x[i * 10 + $0]) } + [1]
      for a in 0..<F {
        for b in 0..<F { A[a][b] += row[a] * row[b] }
        A[a][F] += row[a] * Double(data.y[i])
      }
    }
    for col in 0..<F {  // Gauss-Jordan with partial pivoting
      let piv = (col..<F).max { abs(A[$0][col]) < abs(A[$1][col]) }!
      A.swapAt(col, piv)
      for r in 0..<F where r != col {
        let f = A[r][col] / A[col][col]
        for k in col...F { A[r][k] -= f * A[col][k] }
      }
    }
    let beta = (0..<F).map { A[$0][F] / A[$0][$0] }
    var best = 0.0
    for i in 0..<n {
      let pred = (0..<10).reduce(beta[10]) { $0 + beta[$1] * Double(data.x[i * 10 + $1]) }
      best += (pred - Double(data.y[i])) * (pred - Double(data.y[i]))
    }
    best /= Double(n)
    let c = TrainingConfig(
      steps: 3000, learningRate: 0.1, minLearningRate: 0.1, warmupSteps: 0, optimizer: .sgd(momentum: 0.9, weightDecay: 0),
      gradClip: nil, evalEvery: 0)
    let summary = try makeTrainer(.linreg, recipe: "fp32", config: c).run(sink: MemorySink())
    let final = try #require(summary.finalEvalLoss)
    print("linreg: least-squares optimum \(best), SGD after 3000 steps \(final)")
    #expect(Double(final) - best < 1e-4 * best)
  }
}

/// Throughput figures, run only with FPSIM_BENCH=1 (speed is measured by benchmarks, not timed tests).
@Suite(.serialized) struct EngineBenchmarks {
  @Test(.enabled(if: ProcessInfo.processInfo.environment["FPSIM_BENCH"] != nil))
  func gptTinyMillisecondsPerStep() throws {
    let threads = Int(ProcessInfo.processInfo.environment["FPSIM_BENCH_THREADS"] ?? "") ?? ProcessInfo.processInfo.activeProcessorCount
    // FPSIM_BENCH_RECIPES=a;b;c picks the recipes (separated by ';', as recipes contain commas).
    let recipes = ProcessInfo.processInfo.environment["FPSIM_BENCH_RECIPES"].map { $0.split(separator: ";").map(String.init) }
      ?? ["fp32", "bf16", "uniform:e4m3fn", "uniform:e4m3fn:stochastic", "mxfp8", "mxfp4", "nvfp4"]
    for recipe in recipes {
      let c = TrainingConfig(steps: 25, learningRate: 1e-3, evalEvery: 0)
      let t = try makeTrainer(.gptTiny, recipe: recipe, threads: threads, config: c)
      var times: [Double] = []
      func cpuSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
      }
      var cpu0 = 0.0
      for s in 0..<25 {
        if s == 5 { cpu0 = cpuSeconds() }
        let m = t.trainStep()
        if s >= 5 { times.append(m.seconds) }
      }
      let cpu = (cpuSeconds() - cpu0) / 20
      times.sort()
      let med = times[times.count / 2]
      print(String(format: "bench gpt-tiny %@: %.1f ms/step median (min %.1f), %.0f tokens/s, %.1f ms CPU/step, threads %d", recipe, med * 1000, times[0] * 1000, 2048 / med, cpu * 1000, threads))
    }
  }
}

extension EngineBenchmarks {
  /// Milliseconds per call of each kernel at gpt-tiny's shapes (B*T = 2048 rows, C = 128), to see where
  /// a step's time goes.
  @Test(.enabled(if: ProcessInfo.processInfo.environment["FPSIM_BENCH"] != nil))
  func gptTinyKernelTimings() throws {
    let B = 16, T = 128, C = 128, NH = 4, N = B * T, threads = ProcessInfo.processInfo.activeProcessorCount
    var rng = TestRNG(1)
    let x = FloatBuffer(rng.floats(N * 4 * C)), y = FloatBuffer(count: N * 4 * C), w = FloatBuffer(rng.floats(4 * C * C, scale: 0.1))
    let qkv = FloatBuffer(rng.floats(N * 3 * C)), att = FloatBuffer(count: B * NH * T * T), dq = FloatBuffer(count: N * 3 * C)
    let scratch = FloatBuffer(count: Attention.scratchCount(T: T, C: C, NH: NH, threads: threads))
    let mean = FloatBuffer(count: N), rstd = FloatBuffer(count: N), g = FloatBuffer(count: 4 * C)
    func time(_ name: String, _ body: () -> Void) {
      body()
      let start = DispatchTime.now().uptimeNanoseconds
      for _ in 0..<10 { body() }
      print(String(format: "kernel %-36@ %.3f ms", name as NSString, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e7))
    }
    time("linear fwd 2048x128 -> 512") { Linear.forward(out: y.pointer, inp: x.pointer, weight: w.pointer, bias: w.pointer, N: N, C: C, OC: 4 * C) }
    time("linear dgrad 2048x512 -> 128") { Linear.backwardData(dinp: y.pointer, dout: x.pointer, weight: w.pointer, N: N, C: C, OC: 4 * C) }
    time("linear wgrad 512x128 over 2048") { Linear.backwardWeight(dweight: w.pointer, dout: x.pointer, inp: y.pointer, N: N, C: C, OC: 4 * C) }
    time("linear bias grad 2048x512") { Linear.backwardBias(dbias: g.pointer, dout: x.pointer, N: N, OC: 4 * C) }
    time("layernorm fwd 2048x128") { LayerNorm.forward(out: y.pointer, mean: mean.pointer, rstd: rstd.pointer, inp: x.pointer, weight: w.pointer, bias: w.pointer, N: N, C: C) }
    time("layernorm bwd 2048x128") { LayerNorm.backward(dinp: y.pointer, dweight: g.pointer, dbias: g.pointer, dout: x.pointer, inp: x.pointer, weight: w.pointer, mean: mean.pointer, rstd: rstd.pointer, N: N, C: C) }
    time("gelu fwd 1M") { GELU.forward(out: y.pointer, inp: x.pointer, count: N * 4 * C) }
    time("gelu bwd 1M") { GELU.backward(dinp: y.pointer, inp: x.pointer, dout: x.pointer, count: N * 4 * C) }
    time("attention fwd (threads \(threads))") { Attention.forward(out: y.pointer, att: att.pointer, qkv: qkv.pointer, scratch: scratch.pointer, B: B, T: T, C: C, NH: NH, threads: threads) }
    time("attention bwd (threads \(threads))") { Attention.backward(dqkv: dq.pointer, dout: x.pointer, qkv: qkv.pointer, att: att.pointer, scratch: scratch.pointer, B: B, T: T, C: C, NH: NH, threads: threads) }
    time("attention fwd (threads 1)") { Attention.forward(out: y.pointer, att: att.pointer, qkv: qkv.pointer, scratch: scratch.pointer, B: B, T: T, C: C, NH: NH, threads: 1) }
    time("cross-entropy fwd 2048x76") { CrossEntropy.forward(losses: mean.pointer, probs: y.pointer, logits: x.pointer, targets: [Int32](repeating: 3, count: N), N: N, V: 76) }
    for spec in ["e4m3fn", "bfloat16"] {
      let r = ElementRounding(format: try FloatFormat(parsing: spec))
      for count in [false, true] {
        time("round \(spec) 1M (telemetry \(count))") { _ = r.round(x.pointer, into: y.pointer, layout: OperandLayout(rows: N, cols: 4 * C, reducesAlongRows: false), seed: 0, stream: 0, threads: threads, countEvents: count) }
      }
    }
    let ta = FloatBuffer(count: N * 4 * C), tb = FloatBuffer(count: N * 4 * C)
    for spec in ["mxfp4", "nvfp4"] {
      let r = ScaledRounding(format: try ScaledFormat(parsing: spec))
      for rows in [false, true] {
        let layout = OperandLayout(rows: N, cols: 4 * C, reducesAlongRows: rows)
        time("round \(spec) 1M (along rows \(rows))") {
          _ = r.round(x.pointer, into: y.pointer, layout: layout, context: RoundingContext(seed: 0, stream: 0, threads: threads, scratch: (ta.pointer, tb.pointer)))
        }
      }
      let h = try RandomHadamard(size: 16)
      time("round \(spec) 1M hadamard 16 along rows") {
        _ = r.round(x.pointer, into: y.pointer, layout: OperandLayout(rows: N, cols: 4 * C, reducesAlongRows: true), context: RoundingContext(seed: 0, stream: 0, threads: threads, hadamard: h, scratch: (ta.pointer, tb.pointer)))
      }
    }
    time("memset 1M") { y.zero() }
  }
}
