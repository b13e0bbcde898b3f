/// Everything a training run needs besides the model and the recipe, with nanoGPT-like defaults.
public struct TrainingConfig: Hashable, Codable, Sendable {
  /// Total optimizer steps.
  public var steps: Int
  /// Peak learning rate.
  public var learningRate: Float
  /// Floor of the cosine decay (default: learningRate / 10, as nanoGPT's min_lr).
  public var minLearningRate: Float?
  /// Linear warmup steps (default: min(100, steps / 10)).
  public var warmupSteps: Int?
  /// Step at which the cosine reaches the floor (default: `steps`).
  public var decaySteps: Int?
  public var optimizer: OptimizerConfig
  /// Global gradient-norm clip; nil disables clipping.
  public var gradClip: Float?
  /// Evaluate every this many steps (and after the last); 0 evaluates only after the last.
  public var evalEvery: Int
  /// Hand the sink a checkpoint every this many steps (and after the last); 0: never.
  public var checkpointEvery: Int
  /// Hand the sink a snapshot every this many steps; 0: never.
  public var snapshotEvery: Int
  /// What a snapshot holds: parameter names, `grad/<name>` for gradients; nil: every parameter.
  public var snapshotTensors: [String]?
  /// Linear layers whose rounded GEMM operands every snapshot also holds (`OperandSnapshot`: input,
  /// rounded, block scales); nil or empty: none. Names as in telemetry (`<layer>.<operand>`).
  public var snapshotOperands: [String]?
  /// Count the binade histogram of every rounded operand at every step (`StepMetrics.histograms`);
  /// nil: off. Off by default so that files do not grow unasked; it costs about 1-2% of a gpt-tiny mxfp4 step (README).
  public var binadeHistograms: Bool?
  /// The explicit `--gemm bf16` mode (`PrecisionRuntime.useBF16GEMMs`): GEMMs whose two operands the
  /// recipe rounds to bfloat16 values run on the bfloat16 kernel, with its own order of float32 sums and
  /// its flushing of subnormals; nil: every GEMM on sgemm.
  public var bf16GEMMs: Bool?
  /// Seed of initialization, data order and stochastic rounding.
  public var seed: UInt64
  public var divergence: DivergenceRule

  public init(
    steps: Int, learningRate: Float, minLearningRate: Float? = nil, warmupSteps: Int? = nil,
    decaySteps: Int? = nil, optimizer: OptimizerConfig = .adamw, gradClip: Float? = 1.0, evalEvery: Int = 100,
    checkpointEvery: Int = 0, snapshotEvery: Int = 0, snapshotTensors: [String]? = nil, seed: UInt64 = 0,
    divergence: DivergenceRule = DivergenceRule(), snapshotOperands: [String]? = nil, binadeHistograms: Bool? = nil,
    bf16GEMMs: Bool? = nil
  ) {
    self.steps = steps
    self.learningRate = learningRate
    self.minLearningRate = minLearningRate
    self.warmupSteps = warmupSteps
    self.decaySteps = decaySteps
    self.optimizer = optimizer
    self.gradClip = gradClip
    self.evalEvery = evalEvery
    self.checkpointEvery = checkpointEvery
    self.snapshotEvery = snapshotEvery
    self.snapshotTensors = snapshotTensors
    self.snapshotOperands = snapshotOperands
    self.binadeHistograms = binadeHistograms
    self.bf16GEMMs = bf16GEMMs
    self.seed = seed
    self.divergence = divergence
  }

  public var resolvedWarmupSteps: Int { warmupSteps ?? min(100, steps / 10) }

  public var schedule: LRSchedule {
    LRSchedule(
      peak: learningRate, minimum: minLearningRate ?? learningRate / 10, warmupSteps: resolvedWarmupSteps,
      decaySteps: decaySteps ?? steps)
  }

  /// Checks values a user can get wrong; the message names the option and a valid range.
  public func validate() throws {
    guard steps > 0 else { throw TrainingError.invalidConfig("steps must be positive, got \(steps)") }
    guard learningRate > 0, learningRate.isFinite else {
      throw TrainingError.invalidConfig("learning rate must be a positive number, got \(learningRate)")
    }
    if let m = minLearningRate, !(m >= 0 && m <= learningRate) {
      throw TrainingError.invalidConfig("min learning rate must be in 0...\(learningRate), got \(m)")
    }
    if let c = gradClip, !(c > 0) { throw TrainingError.invalidConfig("gradient clip must be positive, got \(c)") }
    guard evalEvery >= 0, checkpointEvery >= 0, snapshotEvery >= 0 else {
      throw TrainingError.invalidConfig("eval/checkpoint/snapshot intervals must be 0 or positive")
    }
    try divergence.validate()
  }
}

public enum TrainingError: Error, CustomStringConvertible, Equatable {
  case invalidConfig(String)
  case badCheckpoint(String)

  public var description: String {
    switch self {
    case .invalidConfig(let why): return "invalid training configuration: \(why)"
    case .badCheckpoint(let why): return "cannot restore checkpoint: \(why)"
    }
  }
}
