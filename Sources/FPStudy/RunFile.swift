import FPEngine
import FPStore
import Foundation

/// Writes one training run into an `fpsim/run` file as it goes (docs/files.md "fpsim/run").
///
/// While the run trains, its unit lives under `/.incomplete/runs%2F<id>`: metrics are appended every
/// `flushEvery` steps (a kill loses at most that many steps' metrics, and nothing a checkpoint covers),
/// snapshots and checkpoints are added as they come. When the run ends (completed or diverged) the unit
/// is moved to `/runs/<id>` in one link move, so a reader sees a run only once it is whole. An
/// interrupted run stays staged, with its checkpoints, for `fpsim train --resume`.
public final class RunFileWriter: TrainingSink {
  public let path: String
  public let runID: String
  let file: H5File
  let unit: H5Group
  let flushEvery: Int
  private var names: [String] = []
  private var pending: [StepMetrics] = []
  private var metricsGroup: H5Group?
  /// Set (from a signal handler, say) to end the run after its current step.
  public var stopRequested = false
  /// Called after every step with its metrics (progress display).
  public var onStep: ((StepMetrics) -> Void)?
  /// Extra string attributes of the run (the environment: BLAS kernel, threads), written at begin.
  public var environment: [String: String] = [:]
  /// Items (tokens, examples) per step, known once the run begins.
  public private(set) var itemsPerStep = 0
  /// The first error writing the file; training stops at the next step when set.
  public private(set) var writeError: Error?

  static func stagingKey(_ runID: String) -> String { "runs%2F" + runID }

  /// Per rounded operand, every step: fractions saturated and flushed to zero, max |x|, and for block
  /// formats the fractions of blocks whose scale saturated or underflowed.
  static let telemetryKinds = ["saturated", "flushed", "amax", "scale_saturated", "scale_underflow"]

  static func telemetry(_ kind: String, _ m: StepMetrics) -> [Float] {
    switch kind {
    case "saturated": return m.saturated
    case "flushed": return m.flushed
    case "amax": return m.amax
    case "scale_saturated": return m.scaleSaturated
    default: return m.scaleUnderflow
    }
  }

  /// Starts a new run file at `path` (refusing an existing one), staged until the run ends.
  public static func create(path: String, runID: String = "run", config: String, flushEvery: Int = 25) throws -> RunFileWriter {
    let file = try Store.create(path, schema: .run, config: config)
    do {
      let staging = try file.root.requireGroup(Store.incompleteGroup)
      let unit = try staging.createGroup(stagingKey(runID))
      try file.flush(durable: false)
      return RunFileWriter(path: path, runID: runID, file: file, unit: unit, flushEvery: flushEvery)
    } catch {
      try? file.close()
      try? FileManager.default.removeItem(atPath: path)
      throw error
    }
  }

  /// Reopens the staged run of an interrupted `fpsim train` for resuming.
  public static func reopen(path: String, flushEvery: Int = 25) throws -> (RunFileWriter, config: String) {
    let (file, header) = try Store.open(path, expecting: .run, mode: .readWrite)
    let staging = try file.root.group(Store.incompleteGroup)
    guard let key = try staging.children().map(\.name).first(where: { $0.hasPrefix("runs%2F") }) else {
      try? file.close()
      throw StoreError(.invalidArgument, file: path, "has no unfinished run to resume (its runs are complete)")
    }
    let unit = try staging.group(key)
    let writer = RunFileWriter(
      path: path, runID: String(key.dropFirst("runs%2F".count)), file: file, unit: unit, flushEvery: flushEvery)
    return (writer, header.config)
  }

  init(path: String, runID: String, file: H5File, unit: H5Group, flushEvery: Int) {
    self.path = path
    self.runID = runID
    self.file = file
    self.unit = unit
    self.flushEvery = max(1, flushEvery)
  }

  // MARK: Checkpoints

  /// The steps of the checkpoints in the run, ascending.
  public func checkpointSteps() throws -> [Int] {
    guard try unit.contains("checkpoints") else { return [] }
    return try unit.group("checkpoints").children().compactMap { Int($0.name.dropFirst("step_".count)) }.sorted()
  }

  public func readCheckpoint(step: Int) throws -> Checkpoint {
    try RunFileWriter.readCheckpoint(try unit.group("checkpoints/step_\(step)"))
  }

  public static func readCheckpoint(_ g: H5Group) throws -> Checkpoint {
    var arrays: [NamedArray] = []
    func walk(_ group: H5Group, _ prefix: String) throws {
      for child in try group.children() {
        let name = prefix.isEmpty ? child.name : prefix + "/" + child.name
        if child.kind == .group {
          try walk(try group.group(child.name), name)
        } else {
          let d = try group.dataset(child.name)
          arrays.append(NamedArray(name: name, shape: try d.shape, values: try d.read(as: Float.self)))
        }
      }
    }
    try walk(g, "")
    var ints: [String: Int64] = [:]
    for name in try g.attributeNames() where name != "format_version" {
      if let v = try g.attribute(name)?.intValue { ints[name] = Int64(v) }
    }
    let version = try g.attribute("format_version")?.intValue ?? Checkpoint.formatVersion
    return Checkpoint(version: version, step: Int(ints["step"] ?? 0), arrays: arrays, integers: ints)
  }

  /// Drops everything recorded after `step` completed steps (metrics rows, later snapshots and
  /// checkpoints), so a resumed run appends exactly what an uninterrupted one would have.
  public func truncate(after step: Int) throws {
    if try unit.contains("metrics") {
      let m = try unit.group("metrics")
      let steps = try m.dataset("step").read(as: Int64.self)
      let keep = steps.firstIndex { $0 > Int64(step) } ?? steps.count
      try resizeAll(m, rows: keep)
      metricsGroup = m
    }
    for kind in ["snapshots", "checkpoints"] where try unit.contains(kind) {
      let g = try unit.group(kind)
      for child in try g.children() {
        if let s = Int(child.name.dropFirst("step_".count)), s > step { try g.delete(child.name) }
      }
    }
    try file.flush(durable: false)
  }

  private func resizeAll(_ g: H5Group, rows: Int) throws {
    for child in try g.children() {
      if child.kind == .group { try resizeAll(try g.group(child.name), rows: rows) } else { try g.dataset(child.name).resize(rows: rows) }
    }
  }

  // MARK: TrainingSink

  public func begin(_ run: RunDescription) {
    itemsPerStep = run.itemsPerStep
    // StepMetrics carry telemetry in this order (a resumed file lists its datasets alphabetically).
    names = run.telemetryNames
    attempt {
      try unit.setAttribute("model", run.model.description)
      try unit.setAttribute("recipe", run.recipe.description)
      try unit.setAttribute("recipe_json", run.recipe.json)  // fully resolved, per operand
      // The learning rate as given (0.003, not the float32 0.003000000026): its shortest decimal.
      try unit.setAttribute("lr", Double("\(run.config.learningRate)") ?? Double(run.config.learningRate))
      try unit.setAttribute("seed", Int(bitPattern: UInt(run.config.seed)))
      try unit.setAttribute("steps", run.config.steps)
      try unit.setAttribute("parameter_count", run.parameterCount)
      try unit.setAttribute("items_per_step", run.itemsPerStep)
      try unit.setAttribute("status", "running")
      for (k, v) in environment.sorted(by: { $0.key < $1.key }) { try unit.setAttribute(k, v) }
      let rule = run.config.divergence
      try unit.setAttribute("divergence_smoothing", Double(rule.smoothing))
      try unit.setAttribute("divergence_margin", Double(rule.margin))
      try unit.setAttribute("divergence_patience", rule.patience)
      try unit.setAttribute("spike_margin", Double(rule.spikeMargin))
      try unit.setAttribute("divergence_warmup_steps", rule.warmupSteps ?? run.config.resolvedWarmupSteps)
      if metricsGroup == nil {
        let m = try unit.createGroup("metrics")
        for (name, type) in [("step", ElementType.int64), ("train_loss", .float32), ("eval_loss", .float32),
                             ("grad_norm", .float32), ("lr", .float32), ("loss_scale", .float32), ("skipped", .uint8),
                             ("step_seconds", .float64)] {
          try m.createDataset(name, type: type, shape: [0], growable: true, chunk: [1024])
        }
        try m.dataset("train_loss").setAttribute("units", "nats per item")
        try m.dataset("eval_loss").setAttribute("units", "nats per item; NaN where not evaluated")
        try m.dataset("step_seconds").setAttribute("units", "seconds (wall time, not reproducible)")
        for kind in RunFileWriter.telemetryKinds {
          let g = try m.createGroup(kind)
          for name in run.telemetryNames { try g.createDataset(name, type: .float32, shape: [0], growable: true, chunk: [1024]) }
        }
        metricsGroup = m
      }
    }
  }

  public func record(_ metrics: StepMetrics) {
    pending.append(metrics)
    if pending.count >= flushEvery { attempt { try flushMetrics() } }
    onStep?(metrics)
  }

  private func flushMetrics() throws {
    guard let m = metricsGroup, !pending.isEmpty else { return }
    // `step` counts completed optimizer steps (1 after the first update), as checkpoints do.
    try m.dataset("step").append(pending.map { Int64($0.step + 1) })
    try m.dataset("train_loss").append(pending.map(\.trainLoss))
    try m.dataset("eval_loss").append(pending.map { $0.evalLoss ?? .nan })
    try m.dataset("grad_norm").append(pending.map(\.gradNorm))
    try m.dataset("lr").append(pending.map(\.learningRate))
    try m.dataset("loss_scale").append(pending.map(\.lossScale))
    try m.dataset("skipped").append(pending.map { UInt8($0.skipped ? 1 : 0) })
    try m.dataset("step_seconds").append(pending.map(\.seconds))
    for kind in RunFileWriter.telemetryKinds {
      let g = try m.group(kind)
      for (i, name) in names.enumerated() {
        try g.dataset(name).append(pending.map { m in
          let v = RunFileWriter.telemetry(kind, m)
          return i < v.count ? v[i] : .nan
        })
      }
    }
    pending.removeAll(keepingCapacity: true)
    try file.flush(durable: false)
  }

  public func snapshot(step: Int, tensors: [NamedArray]) {
    attempt {
      let g = try unit.createGroup("snapshots/step_\(step + 1)")  // after step + 1 completed steps
      try g.setAttribute("step", step + 1)
      try g.setAttribute("units", "step: completed optimizer steps; tensors: float32 values at that step")
      for t in tensors {
        let d = try g.createDataset(t.name, values: t.values, shape: t.shape)
        try d.setAttribute(
          "tensor", t.name.hasPrefix("grad/") ? "gradient of parameter \(t.name.dropFirst(5)) as the optimizer used it (after clipping)" : "parameter \(t.name) (master weights)")
      }
      try file.flush(durable: false)
    }
  }

  public func checkpoint(_ checkpoint: Checkpoint) {
    attempt {
      try flushMetrics()
      // Written under a temporary name and renamed, so a kill mid-write leaves no half checkpoint.
      let all = try unit.requireGroup("checkpoints")
      let temporary = "partial_step_\(checkpoint.step)"
      if try all.contains(temporary) { try all.delete(temporary) }
      let g = try all.createGroup(temporary)
      try g.setAttribute("format_version", checkpoint.version)
      for (k, v) in checkpoint.integers.sorted(by: { $0.key < $1.key }) { try g.setAttribute(k, Int(v)) }
      for a in checkpoint.arrays { try g.createDataset(a.name, values: a.values, shape: a.shape) }
      try file.flush(durable: false)
      let final = "step_\(checkpoint.step)"
      if try all.contains(final) { try all.delete(final) }
      try all.move(temporary, to: final)
      try file.flush(durable: false)
    }
  }

  public func end(_ summary: RunSummary) {
    attempt {
      try flushMetrics()
      try unit.setAttribute("status", summary.status.rawValue)
      try unit.setAttribute("diverged_step", summary.divergedStep ?? -1)
      try unit.setAttribute("spikes", summary.spikes)
      try unit.setAttribute("completed_steps", summary.steps)
      try unit.setAttribute("final_train_loss", Double(summary.finalTrainLoss))
      try unit.setAttribute("final_eval_loss", Double(summary.finalEvalLoss ?? .nan))
      let previous = try unit.attribute("wall_seconds")?.doubleValue ?? 0
      try unit.setAttribute("wall_seconds", previous + summary.wallSeconds)
      try file.flush(durable: true)
      if summary.status != .interrupted {
        let root = try file.root
        try root.requireGroup("runs")
        try root.move(Store.incompleteGroup + "/" + RunFileWriter.stagingKey(runID), to: "/runs/" + runID)
        try file.flush(durable: true)
      }
    }
  }

  public var shouldStop: Bool { stopRequested || writeError != nil }

  public func close() throws {
    try file.close()
    if let writeError { throw writeError }
  }

  private func attempt(_ body: () throws -> Void) {
    guard writeError == nil else { return }
    do { try body() } catch { writeError = error }
  }
}
