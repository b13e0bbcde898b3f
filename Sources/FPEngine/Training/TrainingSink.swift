/// A float32 tensor by name, for snapshots and checkpoints.
public struct NamedArray: Hashable, Sendable {
  public var name: String
  public var shape: [Int]
  public var values: [Float]
  public init(name: String, shape: [Int], values: [Float]) {
    precondition(shape.reduce(1, *) == values.count, "\(name): shape \(shape) does not hold \(values.count) values")
    self.name = name
    self.shape = shape
    self.values = values
  }
}

/// Everything needed to continue a run bit-exactly: parameters, optimizer moments, divergence-monitor
/// state as named float arrays, and integer state (step, optimizer updates, data position ...).
/// Batches and rounding streams are functions of (seed, step), so the step is the data position.
public struct Checkpoint: Hashable, Sendable {
  /// Bumped whenever the contents change meaning; `Trainer.restore` refuses other versions.
  public static let formatVersion = 1
  public var version: Int
  public var step: Int
  public var arrays: [NamedArray]
  public var integers: [String: Int64]

  public init(version: Int = Checkpoint.formatVersion, step: Int, arrays: [NamedArray], integers: [String: Int64]) {
    self.version = version
    self.step = step
    self.arrays = arrays
    self.integers = integers
  }

  public func array(_ name: String) -> NamedArray? { arrays.first { $0.name == name } }
}

/// What a run is, handed to the sink before the first step.
public struct RunDescription: Sendable {
  public var model: ModelSpec
  public var recipe: Recipe
  public var config: TrainingConfig
  public var parameterCount: Int
  public var parameters: [TensorInfo]
  /// `<layer>.<operand>` of every rounded GEMM operand, the order of `StepMetrics.saturated`/`flushed`.
  public var telemetryNames: [String]
  public var itemsPerStep: Int
  /// The step the run starts from (non-zero after a restore).
  public var startStep: Int
  /// In the `--gemm bf16` mode (`config.bf16GEMMs`), the GEMMs that run on the bfloat16 kernel
  /// (`<layer>.<gemm>`; empty when the recipe leaves none with two bfloat16 operands).
  public var bf16GEMMs: [String] = []
  /// The GEMMs that run without the Hadamard transform their recipe asks for, because its size does
  /// not divide their reduction length (`<layer>.<gemm>`); nil when the recipe asks for none.
  public var hadamardSkipped: [String]? = nil
}

/// Measurements of one training step (`step` counts from 0).
public struct StepMetrics: Sendable {
  public var step: Int
  public var trainLoss: Float
  /// Validation loss when this step evaluated, else nil.
  public var evalLoss: Float?
  /// Classifiers: validation accuracy (fraction correct) when this step evaluated, else nil.
  public var evalAccuracy: Float? = nil
  /// Global gradient norm before clipping.
  public var gradNorm: Float
  public var learningRate: Float
  /// Per rounded operand (see `RunDescription.telemetryNames`): fraction of values that saturated and
  /// that flushed to zero in this step's training pass.
  public var saturated: [Float]
  public var flushed: [Float]
  /// Per rounded operand, in the same order: the largest finite |x| that was rounded, and for block
  /// formats the fraction of blocks whose scale saturated / underflowed (0 for element formats).
  public var amax: [Float] = []
  public var scaleSaturated: [Float] = []
  public var scaleUnderflow: [Float] = []
  /// Per rounded operand, in the same order: the binade histogram of the operand as it entered
  /// rounding, with its flushed and saturated counts (empty when histograms are off).
  public var histograms: [BinadeHistogram] = []
  /// The loss scale this step's backward pass used (1 without loss scaling), and whether the step was
  /// skipped because its gradients were not finite (no update).
  public var lossScale: Float = 1
  public var skipped = false
  /// Wall time of the step's forward, backward and update (not of evaluation), seconds. The only
  /// field that is not reproducible.
  public var seconds: Double
}

public enum RunStatus: String, Codable, Sendable {
  case completed, diverged, interrupted
}

public struct RunSummary: Sendable {
  public var status: RunStatus
  /// Steps completed in total (including those before a restore).
  public var steps: Int
  public var divergedStep: Int?
  public var spikes: Int
  public var finalTrainLoss: Float
  public var finalEvalLoss: Float?
  /// Classifiers: the accuracy of that last evaluation.
  public var finalEvalAccuracy: Float? = nil
  public var wallSeconds: Double
  /// In the `--gemm bf16` mode, how many GEMMs ran on the bfloat16 kernel; nil on sgemm.
  public var bf16GEMMCount: Int? = nil
}

/// Where the trainer reports. Every method has an empty default; `shouldStop` lets a sink interrupt the
/// run between steps (the run then ends `interrupted` after its current step).
public protocol TrainingSink: AnyObject {
  func begin(_ run: RunDescription)
  func record(_ metrics: StepMetrics)
  func snapshot(step: Int, tensors: [NamedArray])
  /// A snapshot with the rounded GEMM operands of `TrainingConfig.snapshotOperands` taken during the
  /// step (the trainer calls this one; by default it drops the operands and calls the one above).
  func snapshot(step: Int, tensors: [NamedArray], operands: [OperandSnapshot])
  func checkpoint(_ checkpoint: Checkpoint)
  func end(_ summary: RunSummary)
  var shouldStop: Bool { get }
}

extension TrainingSink {
  public func begin(_ run: RunDescription) {}
  public func record(_ metrics: StepMetrics) {}
  public func snapshot(step: Int, tensors: [NamedArray]) {}
  public func snapshot(step: Int, tensors: [NamedArray], operands: [OperandSnapshot]) { snapshot(step: step, tensors: tensors) }
  public func checkpoint(_ checkpoint: Checkpoint) {}
  public func end(_ summary: RunSummary) {}
  public var shouldStop: Bool { false }
}

/// A sink that keeps everything in memory (tests, small runs).
public final class MemorySink: TrainingSink {
  public var description: RunDescription?
  public var metrics: [StepMetrics] = []
  public var snapshots: [(step: Int, tensors: [NamedArray])] = []
  public var operandSnapshots: [(step: Int, operands: [OperandSnapshot])] = []
  public var checkpoints: [Checkpoint] = []
  public var summary: RunSummary?
  public init() {}
  public func begin(_ run: RunDescription) { description = run }
  public func record(_ m: StepMetrics) { metrics.append(m) }
  public func snapshot(step: Int, tensors: [NamedArray]) { snapshots.append((step, tensors)) }
  public func snapshot(step: Int, tensors: [NamedArray], operands: [OperandSnapshot]) {
    snapshots.append((step, tensors))
    if !operands.isEmpty { operandSnapshots.append((step, operands)) }
  }
  public func checkpoint(_ c: Checkpoint) { checkpoints.append(c) }
  public func end(_ s: RunSummary) { summary = s }
}
