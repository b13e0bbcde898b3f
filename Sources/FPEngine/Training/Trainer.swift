import Dispatch
import FPFormats

/// Runs training steps on a task and reports through a `TrainingSink`. No printing, no files.
///
/// A step s (from 0): learning rate from the schedule; forward and backward on batch s with the
/// recipe's rounding streams keyed by s; gradient norm, clipping; optimizer update; evaluation when due;
/// the divergence rule; metrics, then snapshot and checkpoint when due. Everything a step computes is a
/// function of (parameters, optimizer state, monitor state, seed, s), which is what a checkpoint holds,
/// so a restored run continues bit for bit.
public final class Trainer {
  public let task: any TrainingTask
  public let config: TrainingConfig
  public let optimizer: Optimizer
  public let schedule: LRSchedule
  /// Steps completed.
  public private(set) var step = 0
  public private(set) var monitor: DivergenceMonitor
  public private(set) var lastEvalLoss: Float? = nil
  private var lastTrainLoss: Float = .nan
  private var saturated: [Float], flushed: [Float]
  /// Loss scaling state: the current scale and the good steps since it last changed.
  public private(set) var lossScale: Float
  private var goodSteps = 0
  /// Steps skipped because their (scaled) gradients were not finite.
  public private(set) var skippedSteps = 0

  public init(task: any TrainingTask, config: TrainingConfig) throws {
    try config.validate()
    for name in config.snapshotTensors ?? [] {
      let base = name.hasPrefix("grad/") ? String(name.dropFirst(5)) : name
      guard task.parameters.info(base) != nil else {
        let names = task.parameters.tensors.map(\.name)
        throw TrainingError.invalidConfig(
          "unknown snapshot tensor '\(name)': use parameter names (\(names.joined(separator: ", "))), or grad/NAME for their gradients")
      }
    }
    if let names = config.snapshotOperands, !names.isEmpty {
      let valid = task.precision.layers.filter { l in GEMMOperand.allCases.contains { l.precision[$0] != nil } }.map(\.info.name)
      for name in names where !valid.contains(name) {
        throw TrainingError.invalidConfig(
          valid.isEmpty
            ? "unknown snapshot operand layer '\(name)': this recipe rounds no GEMM operand, so there is none to snapshot"
            : "unknown snapshot operand layer '\(name)': use layers with rounded GEMM operands (\(valid.joined(separator: ", ")))")
      }
      guard config.snapshotEvery > 0 else {
        throw TrainingError.invalidConfig("snapshot operands need a snapshot interval: set --snapshot-every N (snapshot_every)")
      }
    }
    self.task = task
    self.config = config
    optimizer = Optimizer(config.optimizer, parameters: task.parameters, threads: task.precision.threads)
    schedule = config.schedule
    monitor = DivergenceMonitor(rule: config.divergence, warmupSteps: config.divergence.warmupSteps ?? config.resolvedWarmupSteps)
    let k = task.precision.telemetryNames.count
    saturated = [Float](repeating: 0, count: k)
    flushed = [Float](repeating: 0, count: k)
    lossScale = task.precision.recipe.lossScaling.initialScale
    task.precision.collectHistograms = config.binadeHistograms ?? false
    if config.bf16GEMMs == true { try task.precision.useBF16GEMMs() }
  }

  public var isDiverged: Bool { monitor.divergedStep != nil }

  public func describe() -> RunDescription {
    RunDescription(
      model: task.model, recipe: task.precision.recipe, config: config, parameterCount: task.parameters.count,
      parameters: task.parameters.tensors, telemetryNames: task.precision.telemetryNames,
      itemsPerStep: task.itemsPerStep, startStep: step, bf16GEMMs: task.precision.bf16GEMMNames,
      hadamardSkipped: task.precision.recipe.hadamard.contains { $0 != nil } ? task.precision.hadamardSkippedNames : nil)
  }

  /// One training step (evaluating when due); returns its metrics.
  public func trainStep() -> StepMetrics {
    let s = step
    let lr = schedule.lr(at: s)
    let precision = task.precision
    precision.step = s
    precision.pass = .train
    precision.collectTelemetry = true
    // At a snapshot step (one whose completed-step count s + 1 the run snapshots), keep the chosen
    // layers' operands whole.
    if let names = config.snapshotOperands, !names.isEmpty, config.snapshotEvery > 0, (s + 1) % config.snapshotEvery == 0 {
      precision.captureLayers = Set(precision.layers.filter { names.contains($0.info.name) }.map(\.info.index))
    }
    let start = DispatchTime.now().uptimeNanoseconds
    let scaling = precision.recipe.lossScaling
    precision.lossScale = lossScale
    let loss = task.trainStep(s)
    precision.captureLayers = []
    let stepScale = lossScale
    if scaling != .none {
      // Unscale: exact, as the scale is a power of two (gradients that overflowed stay non-finite).
      let g = task.parameters.grads, r = 1 / lossScale
      for i in 0..<g.count { g.pointer[i] *= r }
    }
    let norm = GradientClipping.clip(task.parameters.grads, maxNorm: config.gradClip)
    let skipped = scaling != .none && !norm.isFinite
    if !skipped {
      optimizer.update(lr: lr)
      roundStates(step: s)
    } else {
      skippedSteps += 1
    }
    if case .dynamic(_, let interval) = scaling {
      if skipped {
        lossScale = max(lossScale / 2, .leastNormalMagnitude)
        goodSteps = 0
      } else {
        goodSteps += 1
        if goodSteps >= interval, lossScale * 2 < .infinity {
          lossScale *= 2
          goodSteps = 0
        }
      }
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    saturated.withUnsafeMutableBufferPointer { sp in
      flushed.withUnsafeMutableBufferPointer { fp in
        precision.telemetry(saturated: sp.baseAddress!, flushed: fp.baseAddress!)
      }
    }
    let counts = precision.operandCounts
    let histograms = precision.collectHistograms ? precision.operandHistograms : []
    func fraction(_ k: Int, _ n: Int) -> Float { n > 0 ? Float(Double(k) / Double(n)) : 0 }
    step = s + 1
    var evalLoss: Float? = nil
    if step == config.steps || (config.evalEvery > 0 && step % config.evalEvery == 0) {
      evalLoss = evaluate()
      lastEvalLoss = evalLoss
    }
    _ = monitor.observe(step: s, loss: loss)
    lastTrainLoss = loss
    return StepMetrics(
      step: s, trainLoss: loss, evalLoss: evalLoss, evalAccuracy: evalLoss == nil ? nil : task.evalAccuracy, gradNorm: norm, learningRate: lr, saturated: saturated,
      flushed: flushed, amax: counts.map(\.amax), scaleSaturated: counts.map { fraction($0.scaleSaturated, $0.blocks) },
      scaleUnderflow: counts.map { fraction($0.scaleUnderflow, $0.blocks) }, histograms: histograms, lossScale: stepScale,
      skipped: skipped, seconds: seconds)
  }

  /// The recipe's master-weight and optimizer-state formats: every parameter and moment is rounded
  /// after the update, stochastic rounding drawing from streams of (seed, step, tensor kind).
  private func roundStates(step: Int) {
    let recipe = task.precision.recipe
    func round(_ s: OperandSetting, _ b: FloatBuffer, kind: UInt64) {
      guard case .element(let f)? = s.format, b.count > 0 else { return }
      let stream = CounterRNG.mix(0x4D41_5354_4552 ^ (UInt64(step) &<< 8) ^ kind)
      Quantizer(format: f, rounding: s.rounding, overflow: s.overflow, seed: config.seed, stream: stream)
        .quantize(UnsafeMutableBufferPointer(start: b.pointer, count: b.count), threads: task.precision.threads)
    }
    round(recipe.masterWeights, task.parameters.values, kind: 0)
    round(recipe.optimizerStates, optimizer.m, kind: 1)
    round(recipe.optimizerStates, optimizer.v, kind: 2)
  }

  /// Mean validation loss of the current parameters (rounding streams of the evaluation pass).
  public func evaluate() -> Float {
    let precision = task.precision
    precision.step = step
    precision.pass = .eval
    precision.collectTelemetry = false
    defer {
      precision.pass = .train
      precision.collectTelemetry = true
    }
    return task.evaluate()
  }

  /// Runs until `config.steps` (or `until`, if earlier), a divergence with `rule.stop`, or the sink's
  /// `shouldStop`. Reports everything to `sink`.
  @discardableResult
  public func run(sink: any TrainingSink, until: Int? = nil) -> RunSummary {
    let end = min(until ?? config.steps, config.steps)
    let start = DispatchTime.now().uptimeNanoseconds
    sink.begin(describe())
    var status = RunStatus.completed
    while step < end {
      if isDiverged && config.divergence.stop { break }
      if sink.shouldStop {
        status = .interrupted
        break
      }
      let m = trainStep()
      sink.record(m)
      if config.snapshotEvery > 0 && step % config.snapshotEvery == 0 {
        sink.snapshot(step: m.step, tensors: snapshot(), operands: task.precision.takeCapturedOperands())
      }
      let last = step == end || (isDiverged && config.divergence.stop)
      if config.checkpointEvery > 0 && (step % config.checkpointEvery == 0 || last) {
        sink.checkpoint(checkpoint())
      }
    }
    if isDiverged { status = .diverged } else if status == .completed && step < config.steps { status = .interrupted }
    let summary = RunSummary(
      status: status, steps: step, divergedStep: monitor.divergedStep, spikes: monitor.spikes,
      finalTrainLoss: lastTrainLoss, finalEvalLoss: lastEvalLoss,
      finalEvalAccuracy: lastEvalLoss == nil ? nil : task.evalAccuracy,
      wallSeconds: Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9,
      bf16GEMMCount: config.bf16GEMMs == true ? task.precision.bf16GEMMNames.count : nil)
    sink.end(summary)
    return summary
  }

  /// The tensors `config.snapshotTensors` names (parameters, `grad/<name>` for gradients).
  public func snapshot() -> [NamedArray] {
    let P = task.parameters
    let names = config.snapshotTensors ?? P.tensors.map(\.name)
    return names.compactMap { name in
      if name.hasPrefix("grad/"), let t = P.info(String(name.dropFirst(5))) {
        return NamedArray(name: name, shape: t.shape, values: P.gradArray(t.name))
      }
      guard let t = P.info(name) else { return nil }
      return NamedArray(name: name, shape: t.shape, values: P.valueArray(name))
    }
  }

  // MARK: Checkpoints

  /// Parameters as `param/<name>`, optimizer moments as `optimizer/m/<name>` (and `/v/`), the monitor's
  /// floats as `monitor` = [smoothed, reference]; integers `step`, `optimizer_updates`, `data_position`,
  /// `parameter_count`, `seed`, `monitor_steps_above`, `monitor_spikes`, `monitor_in_spike`,
  /// `monitor_diverged_step` (-1: none).
  public func checkpoint() -> Checkpoint {
    let P = task.parameters
    var arrays: [NamedArray] = []
    for t in P.tensors {
      arrays.append(NamedArray(name: "param/" + t.name, shape: t.shape, values: P.valueArray(t.name)))
    }
    for (name, buffer) in zip(optimizer.stateNames, [optimizer.m, optimizer.v]) {
      for t in P.tensors {
        let values = Array(UnsafeBufferPointer(start: buffer.pointer + t.offset, count: t.count))
        arrays.append(NamedArray(name: "optimizer/\(name)/" + t.name, shape: t.shape, values: values))
      }
    }
    arrays.append(NamedArray(name: "monitor", shape: [2], values: [monitor.smoothed, monitor.reference]))
    let ints: [String: Int64] = [
      "step": Int64(step), "optimizer_updates": Int64(optimizer.updates), "data_position": Int64(step),
      "parameter_count": Int64(P.count), "seed": Int64(bitPattern: config.seed),
      "monitor_steps_above": Int64(monitor.stepsAbove), "monitor_spikes": Int64(monitor.spikes),
      "monitor_in_spike": monitor.inSpike ? 1 : 0, "monitor_diverged_step": Int64(monitor.divergedStep ?? -1),
      "loss_scale_bits": Int64(lossScale.bitPattern), "loss_scale_good_steps": Int64(goodSteps),
      "skipped_steps": Int64(skippedSteps),
    ]
    return Checkpoint(step: step, arrays: arrays, integers: ints)
  }

  /// Restores a checkpoint taken from a trainer of the same model, recipe and configuration.
  public func restore(_ c: Checkpoint) throws {
    guard c.version == Checkpoint.formatVersion else {
      throw TrainingError.badCheckpoint(
        "format version \(c.version), this fpsim reads version \(Checkpoint.formatVersion); resume it with the fpsim that wrote it")
    }
    func int(_ k: String) throws -> Int64 {
      guard let v = c.integers[k] else { throw TrainingError.badCheckpoint("missing integer '\(k)'") }
      return v
    }
    let P = task.parameters
    guard try int("parameter_count") == Int64(P.count) else {
      throw TrainingError.badCheckpoint("it holds \(try int("parameter_count")) parameters, this model has \(P.count): it belongs to another model")
    }
    guard try int("seed") == Int64(bitPattern: config.seed) else {
      throw TrainingError.badCheckpoint("it was written with seed \(UInt64(bitPattern: try int("seed"))), this run has seed \(config.seed)")
    }
    func copy(_ name: String, _ t: TensorInfo, into base: UnsafeMutablePointer<Float>) throws {
      guard let a = c.array(name) else { throw TrainingError.badCheckpoint("missing array '\(name)'") }
      guard a.shape == t.shape else { throw TrainingError.badCheckpoint("'\(name)' has shape \(a.shape), expected \(t.shape)") }
      a.values.withUnsafeBufferPointer { (base + t.offset).update(from: $0.baseAddress!, count: t.count) }
    }
    // Validate and read everything before changing any state.
    let stepValue = Int(try int("step")), updates = Int(try int("optimizer_updates"))
    guard let mon = c.array("monitor"), mon.values.count == 2 else { throw TrainingError.badCheckpoint("missing array 'monitor'") }
    let above = Int(try int("monitor_steps_above")), spikes = Int(try int("monitor_spikes"))
    let inSpike = try int("monitor_in_spike") != 0, diverged = try int("monitor_diverged_step")
    for t in P.tensors { try copy("param/" + t.name, t, into: P.values.pointer) }
    for (name, buffer) in zip(optimizer.stateNames, [optimizer.m, optimizer.v]) {
      for t in P.tensors { try copy("optimizer/\(name)/" + t.name, t, into: buffer.pointer) }
    }
    step = stepValue
    optimizer.updates = updates
    // Absent in checkpoints written before loss scaling existed: the recipe's initial state.
    lossScale = c.integers["loss_scale_bits"].map { Float(bitPattern: UInt32(truncatingIfNeeded: $0)) }
      ?? task.precision.recipe.lossScaling.initialScale
    goodSteps = Int(c.integers["loss_scale_good_steps"] ?? 0)
    skippedSteps = Int(c.integers["skipped_steps"] ?? 0)
    monitor.smoothed = mon.values[0]
    monitor.reference = mon.values[1]
    monitor.stepsAbove = above
    monitor.spikes = spikes
    monitor.inSpike = inSpike
    monitor.divergedStep = diverged >= 0 ? Int(diverged) : nil
    lastEvalLoss = nil
    lastTrainLoss = .nan
  }
}
