import FPFormats
import Foundation

/// A model together with its data: what the trainer drives. Batches are pure functions of
/// (seed, step), so a task's only state across steps is its parameters.
public protocol TrainingTask: AnyObject {
  var model: ModelSpec { get }
  var parameters: ParameterSet { get }
  var precision: PrecisionRuntime { get }
  /// Tokens (language models) or examples per training step, for throughput figures.
  var itemsPerStep: Int { get }
  /// Sets every parameter from `seed` (the model's own initialization rule).
  func initializeWeights(seed: UInt64)
  /// Forward and backward pass on training batch `step`: gradients of the batch's mean loss in
  /// `parameters.grads`; returns that loss.
  func trainStep(_ step: Int) -> Float
  /// Mean loss over the fixed evaluation set (forward passes only).
  func evaluate() -> Float
  /// Classifiers: the fraction of the evaluation set whose largest logit is the label, as of the last
  /// `evaluate()`; nil for other models (the default).
  var evalAccuracy: Float? { get }
}

extension TrainingTask {
  public var evalAccuracy: Float? { nil }
}

/// Which model, at which size, on which data. Names: `gpt-tiny`, `gpt-micro` (a 2-layer test size),
/// `llama-tiny`, `llama-micro` (a 2-layer test size), `mlp`, `linreg`.
///
/// Stored as JSON in run files (the synthesized `Codable`: `{"gpt": {"layers": 4, ...}}`), so cases
/// are only ever added, never renamed.
public enum ModelSpec: Hashable, Codable, Sendable, CustomStringConvertible {
  /// A character-level GPT on `data/shakespeare.txt` (vocabulary taken from the data).
  case gpt(layers: Int, heads: Int, width: Int, context: Int, batch: Int, evalBatches: Int)
  /// A character-level Llama on the same text (`Llama`: RMSNorm, rotary, SwiGLU MLP of `hidden` width).
  case llama(layers: Int, heads: Int, width: Int, hidden: Int, context: Int, batch: Int, evalBatches: Int)
  /// A 64 -> hidden -> 10 ReLU classifier on `data/digits.csv.gz`.
  case mlp(hidden: Int, batch: Int)
  /// Linear regression on the diabetes files, full batch.
  case linreg

  public static let gptTiny = ModelSpec.gpt(layers: 4, heads: 4, width: 128, context: 128, batch: 16, evalBatches: 8)
  /// The FP4 design-space study's smallest Llama (width 128, 4 layers, context 128), trained as gpt-tiny.
  public static let llamaTiny = ModelSpec.llama(layers: 4, heads: 4, width: 128, hidden: 384, context: 128, batch: 16, evalBatches: 8)
  public static let llamaMicro = ModelSpec.llama(layers: 2, heads: 2, width: 32, hidden: 96, context: 32, batch: 8, evalBatches: 4)

  public init(parsing name: String) throws {
    switch name.lowercased() {
    case "gpt-tiny", "gpt": self = .gptTiny
    case "gpt-micro": self = .gpt(layers: 2, heads: 2, width: 32, context: 32, batch: 8, evalBatches: 4)
    case "llama-tiny", "llama": self = .llamaTiny
    case "llama-micro": self = .llamaMicro
    case "mlp": self = .mlp(hidden: 128, batch: 64)
    case "linreg": self = .linreg
    default:
      throw ModelError.unknown(name)
    }
  }

  public var description: String {
    switch self {
    case .gptTiny: return "gpt-tiny"
    case .gpt(let l, let h, let w, let c, let b, let e): return "gpt(layers: \(l), heads: \(h), width: \(w), context: \(c), batch: \(b), eval_batches: \(e))"
    case .llamaTiny: return "llama-tiny"
    case .llamaMicro: return "llama-micro"
    case .llama(let l, let h, let w, let m, let c, let b, let e):
      return "llama(layers: \(l), heads: \(h), width: \(w), hidden: \(m), context: \(c), batch: \(b), eval_batches: \(e))"
    case .mlp(128, 64): return "mlp"
    case .mlp(let h, let b): return "mlp(hidden: \(h), batch: \(b))"
    case .linreg: return "linreg"
    }
  }

  /// Builds the model with its data from `dataDirectory` (the repository's `data/`), initialized from `seed`.
  public func makeTask(dataDirectory: URL, recipe: Recipe, seed: UInt64, threads: Int = 1) throws -> any TrainingTask {
    let task: any TrainingTask
    switch self {
    case .gpt(let l, let h, let w, let c, let b, let e):
      guard w % h == 0 else { throw ModelError.invalid("width \(w) is not a multiple of heads \(h)") }
      let data = try CharDataset(contentsOf: dataDirectory.appendingPathComponent("shakespeare.txt"))
      let config = GPTConfig(vocabSize: data.vocabularySize, blockSize: c, nLayer: l, nHead: h, nEmbd: w)
      task = GPTTask(spec: self, model: GPT(config: config, batchSize: b, recipe: recipe, seed: seed, threads: threads), data: data, seed: seed, evalBatches: e)
    case .llama(let l, let h, let w, let m, let c, let b, let e):
      guard w % h == 0 else { throw ModelError.invalid("width \(w) is not a multiple of heads \(h)") }
      guard (w / h) % 2 == 0 else { throw ModelError.invalid("head size \(w / h) is odd: rotary embeddings rotate pairs") }
      let data = try CharDataset(contentsOf: dataDirectory.appendingPathComponent("shakespeare.txt"))
      let config = LlamaConfig(vocabSize: data.vocabularySize, blockSize: c, nLayer: l, nHead: h, nEmbd: w, hidden: m)
      task = LlamaTask(spec: self, model: Llama(config: config, batchSize: b, recipe: recipe, seed: seed, threads: threads), data: data, seed: seed, evalBatches: e)
    case .mlp(let hidden, let b):
      let data = try DigitsDataset(contentsOf: dataDirectory.appendingPathComponent("digits.csv.gz"))
      let model = MLP(inFeatures: 64, hidden: hidden, classes: 10, maxRows: max(b, data.testCount), recipe: recipe, seed: seed, threads: threads)
      task = MLPTask(spec: self, model: model, data: data, batch: b, seed: seed)
    case .linreg:
      let data = try DiabetesDataset(
        features: dataDirectory.appendingPathComponent("diabetes_data_raw.csv.gz"),
        target: dataDirectory.appendingPathComponent("diabetes_target.csv.gz"))
      task = LinearRegressionTask(model: LinearRegression(features: 10, maxRows: data.count, recipe: recipe, seed: seed, threads: threads), data: data)
    }
    task.initializeWeights(seed: seed)
    return task
  }
}

public enum ModelError: Error, CustomStringConvertible, Equatable {
  case unknown(String)
  case invalid(String)
  public var description: String {
    switch self {
    case .unknown(let n): return "unknown model '\(n)': use gpt-tiny, gpt-micro, llama-tiny, llama-micro, mlp or linreg"
    case .invalid(let why): return "invalid model: \(why)"
    }
  }
}

/// A language model (`GPT`, `Llama`) on character-level text: random windows for training, fixed
/// validation batches for evaluation.
public final class LanguageModelTask<Network: LanguageModel>: CharacterLanguageTask {
  public let model: ModelSpec
  public let network: Network
  public let data: CharDataset
  public let seed: UInt64
  public let evalBatches: Int
  let x: UnsafeMutablePointer<Int32>, y: UnsafeMutablePointer<Int32>

  public init(spec: ModelSpec, model: Network, data: CharDataset, seed: UInt64, evalBatches: Int) {
    self.model = spec
    network = model
    self.data = data
    self.seed = seed
    self.evalBatches = max(1, evalBatches)
    x = .allocate(capacity: model.B * model.T)
    y = .allocate(capacity: model.B * model.T)
  }

  deinit {
    x.deallocate()
    y.deallocate()
  }

  public var languageModel: any LanguageModel { network }
  public var parameters: ParameterSet { network.parameters }
  public var precision: PrecisionRuntime { network.precision }
  public var itemsPerStep: Int { network.B * network.T }
  public func initializeWeights(seed: UInt64) { network.initializeWeights(seed: seed) }

  public func trainStep(_ step: Int) -> Float {
    data.trainBatch(step: step, seed: seed, B: network.B, T: network.T, tokens: x, targets: y)
    let loss = network.forward(tokens: x, targets: y)
    network.backward()
    return loss
  }

  public func evaluate() -> Float {
    var s = 0.0
    for i in 0..<evalBatches {
      data.validationBatch(index: i, seed: seed, B: network.B, T: network.T, tokens: x, targets: y)
      s += Double(network.forward(tokens: x, targets: y))
    }
    return Float(s / Double(evalBatches))
  }
}

/// A next-token task on character-level text, whatever the network: what keskar-logits needs.
public protocol CharacterLanguageTask: TrainingTask {
  var data: CharDataset { get }
  var seed: UInt64 { get }
  var languageModel: any LanguageModel { get }
}

public typealias GPTTask = LanguageModelTask<GPT>
public typealias LlamaTask = LanguageModelTask<Llama>

extension LanguageModelTask where Network == GPT {
  public var gpt: GPT { network }
}

extension LanguageModelTask where Network == Llama {
  public var llama: Llama { network }
}

/// MLP on the digits: minibatches of rows drawn with replacement (draw s*B + b of a counter RNG),
/// evaluation on the whole test split.
public final class MLPTask: TrainingTask {
  public let model: ModelSpec
  public let mlp: MLP
  public let data: DigitsDataset
  public let batch: Int
  public let seed: UInt64
  let bx: FloatBuffer, by: UnsafeMutablePointer<Int32>

  public init(spec: ModelSpec, model: MLP, data: DigitsDataset, batch: Int, seed: UInt64) {
    self.model = spec
    mlp = model
    self.data = data
    self.batch = batch
    self.seed = seed
    bx = FloatBuffer(count: batch * DigitsDataset.features)
    by = .allocate(capacity: batch)
  }

  deinit { by.deallocate() }

  public var parameters: ParameterSet { mlp.parameters }
  public var precision: PrecisionRuntime { mlp.precision }
  public var itemsPerStep: Int { batch }
  public func initializeWeights(seed: UInt64) { mlp.initializeWeights(seed: seed) }

  public func trainStep(_ step: Int) -> Float {
    let rng = CounterRNG(seed: seed, stream: 0x6D6C_70)
    let F = DigitsDataset.features, n = UInt64(data.trainCount)
    data.trainX.withUnsafeBufferPointer { X in
      for b in 0..<batch {
        let i = Int(rng.bits64(UInt64(step * batch + b)).multipliedFullWidth(by: n).high)
        (bx.pointer + b * F).update(from: X.baseAddress! + i * F, count: F)
        by[b] = data.trainY[i]
      }
    }
    let loss = mlp.forward(input: bx.pointer, targets: by, n: batch)
    mlp.backward()
    return loss
  }

  public private(set) var evalAccuracy: Float? = nil

  public func evaluate() -> Float {
    let loss = data.testX.withUnsafeBufferPointer { X in
      data.testY.withUnsafeBufferPointer { Y in mlp.forward(input: X.baseAddress!, targets: Y.baseAddress!, n: data.testCount) }
    }
    evalAccuracy = Self.accuracy(logits: mlp.logits.pointer, labels: data.testY, classes: mlp.classes)
    return loss
  }

  /// The fraction of rows of `logits` (rows x classes) whose first largest entry is at the label's
  /// index (numpy's argmax). A row holding NaN counts as wrong: NaN is never the largest.
  public static func accuracy(logits: UnsafePointer<Float>, labels: [Int32], classes: Int) -> Float {
    var right = 0
    for (r, label) in labels.enumerated() {
      let row = UnsafeBufferPointer(start: logits + r * classes, count: classes)
      guard !row.contains(where: \.isNaN) else { continue }
      var best = 0
      for k in 1..<classes where row[k] > row[best] { best = k }
      if best == Int(label) { right += 1 }
    }
    return labels.isEmpty ? .nan : Float(right) / Float(labels.count)
  }
}

/// Linear regression, full batch: training and evaluation both use all rows.
public final class LinearRegressionTask: TrainingTask {
  public let model = ModelSpec.linreg
  public let regression: LinearRegression
  public let data: DiabetesDataset

  public init(model: LinearRegression, data: DiabetesDataset) {
    regression = model
    self.data = data
  }

  public var parameters: ParameterSet { regression.parameters }
  public var precision: PrecisionRuntime { regression.precision }
  public var itemsPerStep: Int { data.count }
  public func initializeWeights(seed: UInt64) { regression.initializeWeights(seed: seed) }

  func forward() -> Float {
    data.x.withUnsafeBufferPointer { X in
      data.y.withUnsafeBufferPointer { Y in regression.forward(input: X.baseAddress!, targets: Y.baseAddress!, n: data.count) }
    }
  }

  public func trainStep(_ step: Int) -> Float {
    let loss = forward()
    regression.backward()
    return loss
  }

  public func evaluate() -> Float { forward() }
}
