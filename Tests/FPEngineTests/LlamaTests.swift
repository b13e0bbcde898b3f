import FPEngine
import FPFormats
import Foundation
import Testing

/// llama-micro for the end-to-end tests: 2 layers, 2 heads, width 32, MLP 96, context 32, batch 8.
let llamaMicro = ModelSpec.llama(layers: 2, heads: 2, width: 32, hidden: 96, context: 32, batch: 8, evalBatches: 2)

@Suite struct LlamaModelTests {
  @Test func llamaTinyHasExactly872576Parameters() throws {
    let V = 76, C = 128, L = 4, H = 384
    let formula = V * C + L * (4 * C * C + 3 * C * H + 2 * C) + C + C * V
    #expect(formula == 872_576)
    let task = try ModelSpec.llamaTiny.makeTask(dataDirectory: dataDirectory, recipe: .fp32, seed: 0)
    let llama = (task as! LlamaTask).llama
    #expect(llama.config == LlamaConfig.tiny(vocabSize: 76))
    #expect(llama.config.parameterCount == formula)
    #expect(task.parameters.count == formula)
    #expect(llama.B == 16 && llama.T == 128 && task.itemsPerStep == 2048)
    // Untied: the head has its own weights, no bias anywhere, no position table.
    #expect(task.parameters.info("lm_head.weight")?.shape == [76, 128])
    let vectors = task.parameters.tensors.filter { !$0.isMatrix }.map(\.name)
    #expect(vectors.count == 2 * L + 1 && vectors.allSatisfy { $0.hasSuffix("norm.weight") })
  }

  @Test func llamaInitializationIsTheStatedRule() {
    let llama = Llama(config: .tiny(), batchSize: 1)
    llama.initializeWeights(seed: 1)
    func std(_ name: String) -> Double {
      let v = llama.parameters.valueArray(name).map(Double.init)
      let m = v.reduce(0, +) / Double(v.count)
      return (v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count)).squareRoot()
    }
    for name in ["model.layers.0.self_attn.q_proj.weight", "model.layers.3.mlp.gate_proj.weight", "model.layers.2.mlp.up_proj.weight"] {
      #expect(abs(std(name) - 0.02) < 0.0005, "\(name)")
    }
    #expect(abs(std("model.embed_tokens.weight") - 0.02) < 0.001)
    #expect(abs(std("lm_head.weight") - 0.02) < 0.001)
    // Residual projections: 0.02 / sqrt(2 L) = 0.02 / sqrt(8).
    #expect(abs(std("model.layers.1.self_attn.o_proj.weight") - 0.02 / 8.0.squareRoot()) < 0.0005)
    #expect(abs(std("model.layers.3.mlp.down_proj.weight") - 0.02 / 8.0.squareRoot()) < 0.0005)
    #expect(llama.parameters.valueArray("model.layers.2.input_layernorm.weight").allSatisfy { $0 == 1 })
    #expect(llama.parameters.valueArray("model.norm.weight").allSatisfy { $0 == 1 })
    // Untied and independently drawn: the head is not the embedding.
    #expect(llama.parameters.valueArray("lm_head.weight") != llama.parameters.valueArray("model.embed_tokens.weight"))
    let again = Llama(config: .tiny(), batchSize: 1)
    again.initializeWeights(seed: 1)
    #expect(again.parameters.values.toArray().map(\.bitPattern) == llama.parameters.values.toArray().map(\.bitPattern))
  }

  /// Every linear layer goes through the recipe, in forward order, with GPT's operand names, and
  /// `keep=head+last-block` keeps exactly the last block's seven linears and the head.
  @Test func everyLinearGoesThroughTheRecipeAndKeepSelectsTheLastBlockAndHead() throws {
    let recipe = try Recipe(parsing: "uniform:e4m3fn:keep=head+last-block")
    let llama = Llama(config: LlamaConfig(vocabSize: 76, blockSize: 32, nLayer: 3, nHead: 2, nEmbd: 32, hidden: 96), batchSize: 2, recipe: recipe)
    let layers = llama.precision.layers
    let perBlock = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
    #expect(layers.map(\.info.name) == (0..<3).flatMap { l in perBlock.map { "model.layers.\(l).\($0)" } } + ["lm_head"])
    for l in layers {
      // Each linear's weight is a parameter of that name with (out, in) features.
      #expect(llama.parameters.info(l.info.name + ".weight")?.shape == [l.info.outFeatures, l.info.inFeatures])
      let kept = l.info.name.hasPrefix("model.layers.2.") || l.info.name == "lm_head"
      for op in GEMMOperand.allCases {
        let r = try #require(l.precision[op] as? ElementRounding, "\(l.info.name).\(op)")
        #expect(r.format.name == (kept ? "bfloat16" : "float8_e4m3fn"), "\(l.info.name).\(op): \(r.format.name)")
      }
    }
    let names = llama.precision.telemetryNames
    #expect(names.count == 22 * 6)
    #expect(names.first == "model.layers.0.self_attn.q_proj.fwd_x" && names.last == "lm_head.wgrad_x")
    #expect(names.contains("model.layers.1.mlp.down_proj.dgrad_dy"))
  }

  /// The operands a GEMM reads are the recipe's rounding of what the layer was given: with
  /// uniform:e4m3fn every operand the observer sees is a fixed point of e4m3fn rounding.
  @Test func everyOperandTheGEMMsReadIsRounded() throws {
    let task = try llamaMicro.makeTask(dataDirectory: dataDirectory, recipe: try Recipe(parsing: "uniform:e4m3fn"), seed: 3)
    let r = ElementRounding(format: try FloatFormat(parsing: "e4m3fn"))
    var seen = Set<String>(), notRounded: [String] = []
    task.precision.operandObserver = { info, op, values, layout in
      let name = "\(info.name).\(op)"
      seen.insert(name)
      var again = [Float](repeating: 0, count: values.count)
      _ = r.round(values.baseAddress!, into: &again, layout: layout, seed: 0, stream: 0, threads: 1, countEvents: false)
      if again.map(\.bitPattern) != values.map(\.bitPattern) { notRounded.append(name) }
    }
    _ = task.trainStep(0)
    #expect(seen == Set(task.precision.telemetryNames))
    #expect(notRounded.isEmpty, "\(notRounded)")
  }

  @Test func modelNamesParsePrintAndStoreBackwardCompatibly() throws {
    #expect(try ModelSpec(parsing: "llama-tiny") == .llamaTiny)
    #expect(try ModelSpec(parsing: "llama") == .llamaTiny)
    #expect(try ModelSpec(parsing: "LLAMA-MICRO") == .llamaMicro)
    #expect(ModelSpec.llamaTiny.description == "llama-tiny" && ModelSpec.llamaMicro.description == "llama-micro")
    #expect(llamaMicro.description == "llama(layers: 2, heads: 2, width: 32, hidden: 96, context: 32, batch: 8, eval_batches: 2)")
    let unknown = ModelError.unknown("llama-huge").description
    #expect(unknown.contains("llama-tiny") && unknown.contains("gpt-tiny"))
    // JSON round trip, and a GPT spec as run files written before the Llama existed stored it.
    for spec in [ModelSpec.llamaTiny, .llamaMicro, .gptTiny, .linreg] {
      #expect(try JSONDecoder().decode(ModelSpec.self, from: JSONEncoder().encode(spec)) == spec)
    }
    let stored = #"{"gpt":{"layers":4,"heads":4,"width":128,"context":128,"batch":16,"evalBatches":8}}"#
    #expect(try JSONDecoder().decode(ModelSpec.self, from: Data(stored.utf8)) == .gptTiny)
    do {
      _ = try ModelSpec.llama(layers: 1, heads: 4, width: 12, hidden: 8, context: 8, batch: 1, evalBatches: 1)
        .makeTask(dataDirectory: dataDirectory, recipe: .fp32, seed: 0)
      Issue.record("accepted an odd head size")
    } catch let e as ModelError {
      #expect(e.description.contains("odd"))
    }
  }
}

@Suite struct LlamaTrainingTests {
  static let micro = TrainingConfig(steps: 12, learningRate: 3e-3, warmupSteps: 3, evalEvery: 4, checkpointEvery: 6)

  @Test func sameSeedAndRecipeTwiceGiveIdenticalBitsWhateverTheThreadCount() throws {
    func run(_ threads: Int, seed: UInt64 = 0) throws -> ([[UInt32]], [UInt32]) {
      let sink = MemorySink()
      let t = try makeTrainer(llamaMicro, recipe: "uniform:e4m3fn:stochastic", seed: seed, threads: threads, config: Self.micro)
      t.run(sink: sink)
      #expect(sink.summary?.status == .completed && sink.metrics.count == 12)
      return (fingerprint(sink.metrics), t.task.parameters.values.toArray().map(\.bitPattern))
    }
    let a = try run(2), b = try run(2), c = try run(1)
    #expect(a.0 == b.0 && a.1 == b.1)
    #expect(a.0 == c.0 && a.1 == c.1)
    #expect(try run(2, seed: 1).0 != a.0)
  }

  @Test func llamaTinyStepHasTheSameBitsAtOneAndTwoThreads() throws {
    func step(_ threads: Int) throws -> [UInt32] {
      let t = try makeTrainer(.llamaTiny, recipe: "bf16", threads: threads, config: TrainingConfig(steps: 2, learningRate: 1e-3, evalEvery: 0))
      _ = t.trainStep()
      _ = t.trainStep()
      return t.task.parameters.values.toArray().map(\.bitPattern) + t.task.parameters.grads.toArray().map(\.bitPattern)
    }
    #expect(try step(1) == step(2))
  }

  @Test(arguments: ["uniform:e5m2:stochastic", "nvfp4"])
  func resumingFromACheckpointEqualsTheUninterruptedRun(recipe: String) throws {
    let full = MemorySink()
    let whole = try makeTrainer(llamaMicro, recipe: recipe, config: Self.micro)
    whole.run(sink: full)
    let first = MemorySink()
    try makeTrainer(llamaMicro, recipe: recipe, config: Self.micro).run(sink: first, until: 6)
    let checkpoint = try #require(first.checkpoints.last)
    let resumed = try makeTrainer(llamaMicro, recipe: recipe, config: Self.micro)
    try resumed.restore(checkpoint)
    let rest = MemorySink()
    resumed.run(sink: rest)
    #expect(fingerprint(rest.metrics) == fingerprint(Array(full.metrics[6...])))
    #expect(resumed.task.parameters.values.toArray().map(\.bitPattern) == whole.task.parameters.values.toArray().map(\.bitPattern))
  }

  @Test func aGPTCheckpointDoesNotRestoreIntoALlama() throws {
    let gpt = try makeTrainer(gptMicro, recipe: "fp32", config: Self.micro)
    let llama = try makeTrainer(llamaMicro, recipe: "fp32", config: Self.micro)
    #expect(throws: TrainingError.self) { try llama.restore(gpt.checkpoint()) }
  }

  /// llama-tiny with every GEMM operand in bfloat16 learns the text, as gpt-tiny's test asks: after 150
  /// steps (lr 1e-3, AdamW, warmup 15, cosine to 1e-4) its validation loss must be at least 0.5 nats
  /// below the unigram entropy of the training text (computed from the data).
  @Test func llamaTinyInBF16LearnsBelowTheUnigramEntropy() throws {
    let sink = MemorySink()
    let c = TrainingConfig(steps: 150, learningRate: 1e-3, warmupSteps: 15, evalEvery: 50)
    let t = try makeTrainer(.llamaTiny, recipe: "bf16", config: c)
    let entropy = (t.task as! LlamaTask).data.unigramEntropy
    let summary = t.run(sink: sink)
    let val = try #require(summary.finalEvalLoss)
    print("llama-tiny bf16: unigram entropy \(entropy) nats; initial train loss \(sink.metrics[0].trainLoss); validation loss after 150 steps \(val) (evals: \(sink.metrics.compactMap(\.evalLoss)))")
    #expect(summary.status == .completed)
    #expect(Double(val) < entropy - 0.5)
  }
}
