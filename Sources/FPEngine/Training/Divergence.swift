/// When a run counts as diverged, and what counts as a loss spike (README "Training", stability). The reference is the running minimum of the smoothed training loss over the steps after
/// `warmupSteps`; smoothing is an exponential moving average s = a s + (1 - a) loss.
///
/// - diverged: the loss is not finite, or the smoothed loss stays more than `margin` above the reference
///   for `patience` consecutive steps; `divergedStep` is the first step of that stretch (or the
///   non-finite step).
/// - spike: the raw loss rises more than `spikeMargin` above the reference (counted once per excursion).
public struct DivergenceRule: Hashable, Codable, Sendable {
  public var smoothing: Float
  /// nil: the learning-rate warmup.
  public var warmupSteps: Int?
  public var margin: Float
  public var patience: Int
  public var spikeMargin: Float
  /// Stop the run when it diverges (keeping everything up to that step).
  public var stop: Bool

  public init(
    smoothing: Float = 0.9, warmupSteps: Int? = nil, margin: Float = 1.0, patience: Int = 50,
    spikeMargin: Float = 0.5, stop: Bool = true
  ) {
    self.smoothing = smoothing
    self.warmupSteps = warmupSteps
    self.margin = margin
    self.patience = patience
    self.spikeMargin = spikeMargin
    self.stop = stop
  }

  public func validate() throws {
    guard (0..<1).contains(smoothing) else { throw TrainingError.invalidConfig("divergence smoothing must be in [0, 1), got \(smoothing)") }
    guard margin > 0, spikeMargin > 0 else { throw TrainingError.invalidConfig("divergence margins must be positive") }
    guard patience >= 1 else { throw TrainingError.invalidConfig("divergence patience must be at least 1 step") }
  }
}

/// The state of the divergence rule as the run goes (checkpointed with the run).
public struct DivergenceMonitor: Hashable, Sendable {
  public let rule: DivergenceRule
  public let warmupSteps: Int
  public internal(set) var smoothed: Float = .nan
  public internal(set) var reference: Float = .infinity
  public internal(set) var stepsAbove = 0
  public internal(set) var spikes = 0
  var inSpike = false
  public internal(set) var divergedStep: Int? = nil

  public init(rule: DivergenceRule, warmupSteps: Int) {
    self.rule = rule
    self.warmupSteps = warmupSteps
  }

  /// Feeds the training loss of `step`; returns true when the run has diverged.
  public mutating func observe(step: Int, loss: Float) -> Bool {
    if divergedStep != nil { return true }
    guard loss.isFinite else {
      divergedStep = step
      return true
    }
    let a = rule.smoothing
    smoothed = smoothed.isNaN ? loss : a * smoothed + (1 - a) * loss
    guard step >= warmupSteps else { return false }
    reference = min(reference, smoothed)
    stepsAbove = smoothed > reference + rule.margin ? stepsAbove + 1 : 0
    if loss > reference + rule.spikeMargin {
      if !inSpike { spikes += 1 }
      inSpike = true
    } else {
      inSpike = false
    }
    if stepsAbove >= rule.patience {
      divergedStep = step - rule.patience + 1
      return true
    }
    return false
  }
}
