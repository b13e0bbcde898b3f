import FPEngine
import FPFormats
import FPStore
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Writes one training run as durable units that are never modified in place, then the finished
/// `fpsim/run` file in one atomic step (docs/files.md "fpsim/run" and "A run while it trains").
///
/// While the run trains, nothing exists at `path`. Its progress lives in the folder `<path>.partial/`:
/// - `unit_000000000.h5`, written when the run starts: the run's configuration (enough to start again);
/// - `unit_<N>.h5` (N zero-padded to 9 digits) at every checkpoint after N completed steps: the run's
///   attributes so far, all metrics rows 1...N, the checkpoint `step_N` and the snapshots taken since the
///   previous unit, in the layout of a staged run (`/.incomplete/runs%2F<id>`).
/// Each unit is written to `<unit>.tmp-<pid>`, closed, `fsync`ed and renamed (``Store/writeAtomically``),
/// so a unit is on disk whole or not at all, and no unit is ever opened for writing again. When the run
/// completes or diverges, `path` is written the same way (metrics from memory, checkpoints and snapshots
/// copied from the units) and the folder is then removed. A kill at any instant therefore leaves either
/// the finished file, or the folder whose newest unit is a complete, correct state to resume from; the
/// metrics rows after that unit are lost and recomputed (bit for bit) by the resumed run.
public final class RunFileWriter: TrainingSink {
  /// The finished run file (absent until the run ends).
  public let path: String
  public let runID: String
  /// The run's configuration (the file header's `config`).
  public let config: String
  /// `<path>.partial`.
  public let folder: String
  /// Set (from a signal handler, say) to end the run after its current step.
  public var stopRequested = false
  /// Called after every step with its metrics (progress display).
  public var onStep: ((StepMetrics) -> Void)?
  /// Extra string attributes of the run (the environment: BLAS kernel, threads), written at begin.
  public var environment: [String: String] = [:]
  /// Items (tokens, examples) per step, known once the run begins.
  public private(set) var itemsPerStep = 0
  /// The first error writing a unit or the file; training stops at the next step when set.
  public private(set) var writeError: Error?
  /// What was set aside (renamed `<name>.broken-<n>`) before this writer started, for the user.
  public internal(set) var setAside: [String] = []
  /// Set when `TrainingRuns.start` found this same run unfinished and continued it from this step.
  public internal(set) var continuedFrom: Int?

  private var names: [String] = []
  private var attributes: [String: AttributeValue] = [:]
  private var metrics = RunMetrics()
  /// Snapshots taken since the last unit (they go into the next unit, or the finished file).
  private var pendingSnapshots: [(step: Int, tensors: [NamedArray], operands: [OperandSnapshot])] = []
  /// Steps of the published units, ascending (0 first).
  private var units: [Int]
  /// Wall seconds of earlier sessions, and when this one began.
  private var earlierSeconds: Double
  private var sessionStart = DispatchTime.now().uptimeNanoseconds
  /// The evaluation of the last step that was due one (Trainer's `lastEvalLoss`, which a restore
  /// does not carry over), for `final_eval_loss`.
  private var evalEvery = 0, totalSteps = 0
  private let lock: Int32

  static func stagingKey(_ runID: String) -> String { "runs%2F" + runID }
  static let stagingGroup = Store.incompleteGroup + "/"

  /// `<path>.partial`, where a run in progress keeps its units.
  public static func folder(for path: String) -> String { path + ".partial" }

  static func unitName(_ step: Int) -> String {
    let digits = String(step)
    return "unit_" + String(repeating: "0", count: max(0, 9 - digits.count)) + digits + ".h5"
  }

  /// The steps of the unit files in `folder` (by name; not validated), ascending.
  static func unitSteps(in folder: String) -> [Int] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    return entries.compactMap { name -> Int? in
      guard name.hasPrefix("unit_"), name.hasSuffix(".h5") else { return nil }
      let digits = name.dropFirst(5).dropLast(3)
      guard digits.count == 9, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
      return Int(digits)
    }.sorted()
  }

  func unitPath(_ step: Int) -> String { folder + "/" + Self.unitName(step) }

  /// Starts a new run at `path`: creates `<path>.partial/` and publishes unit 0 (the configuration).
  /// The caller has checked that neither `path` nor a resumable folder exists.
  static func create(path: String, runID: String = "run", config: String) throws -> RunFileWriter {
    let folder = folder(for: path)
    try Store.makeDirectory(folder)
    do {
      let lock = try lockFolder(folder, path: path)
      let w = RunFileWriter(path: path, runID: runID, config: config, units: [], earlierSeconds: 0, lock: lock)
      try w.publishUnit(step: 0, checkpoint: nil)
      return w
    } catch {
      // Nothing of value is in the folder yet: leave no trace under the --out name.
      try? FileManager.default.removeItem(atPath: folder)
      throw error
    }
  }

  init(path: String, runID: String, config: String, units: [Int], earlierSeconds: Double, lock: Int32) {
    self.path = path
    self.runID = runID
    self.config = config
    self.folder = Self.folder(for: path)
    self.units = units
    self.earlierSeconds = earlierSeconds
    self.lock = lock
  }

  deinit { if lock >= 0 { Glibc.close(lock) } }

  /// Takes an exclusive lock on `<folder>/lock` for this process's lifetime (released by the kernel
  /// when the process dies), so two processes never write the same run.
  ///
  /// - Parameter wait: block until the holder exits instead of refusing (a resume that finds the run
  ///   still being trained by an orphaned worker of a killed grid waits for it, then looks again).
  static func lockFolder(_ folder: String, path: String, wait: Bool = false) throws -> Int32 {
    let fd = Glibc.open(folder + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      throw StoreError(.io, file: path, "cannot create \(folder)/lock: \(String(cString: strerror(errno)))")
    }
    if flock(fd, LOCK_EX | LOCK_NB) == 0 { return fd }
    if wait {
      while flock(fd, LOCK_EX) != 0 {
        guard errno == EINTR else { break }
      }
      return fd
    }
    Glibc.close(fd)
    throw StoreError(.invalidArgument, file: path, "another fpsim process is training this run; wait for it to finish")
  }

  /// Thrown by a resume that waited for another process training the same run, which finished it.
  public struct FinishedElsewhere: Error, CustomStringConvertible {
    public let path: String
    public var description: String { "\(path): finished by another fpsim process while this one waited" }
  }

  // MARK: Resume

  /// What a valid unit holds for a resume.
  struct LoadedUnit {
    var step: Int
    var metrics: RunMetrics
    var checkpoint: Checkpoint?
    var attributes: [String: AttributeValue]
  }

  /// Reads and checks unit `step` of `folder` whole: header (`config` equal to `expectedConfig` when
  /// given), the staged run, `step` metrics rows counting 1...step, and the checkpoint `step_<step>`.
  static func loadUnit(_ folder: String, step: Int, expectedConfig: String?) throws -> (LoadedUnit, config: String, runID: String) {
    let file = folder + "/" + unitName(step)
    let (f, header) = try Store.open(file, expecting: .run)
    defer { try? f.close() }
    if let expectedConfig, header.config != expectedConfig {
      throw StoreError(.schema, file: file, "holds another run's configuration than unit 0")
    }
    let staging = try f.root.group(Store.incompleteGroup)
    guard let key = try staging.children().map(\.name).first(where: { $0.hasPrefix("runs%2F") }) else {
      throw StoreError(.missingObject, file: file, "holds no staged run")
    }
    let unit = try staging.group(key)
    let metrics = try RunMetrics.read(from: unit, rows: step)
    var checkpoint: Checkpoint? = nil
    if step > 0 {
      guard try unit.contains("checkpoints/step_\(step)") else {
        throw StoreError(.missingObject, file: file, object: unit.path, "has no checkpoint step_\(step)")
      }
      checkpoint = try readCheckpoint(try unit.group("checkpoints/step_\(step)"))
      for kind in ["checkpoints", "snapshots"] where try unit.contains(kind) {
        for child in try unit.group(kind).children() { _ = try unit.group(kind + "/" + child.name) }
      }
    }
    var attributes: [String: AttributeValue] = [:]
    for (name, value) in try unit.attributes() { attributes[name] = value }
    return (LoadedUnit(step: step, metrics: metrics, checkpoint: checkpoint, attributes: attributes), header.config, String(key.dropFirst("runs%2F".count)))
  }

  /// Looks at `<path>.partial/`: returns the newest unit to resume from and the units below it, all
  /// checked to open. A unit that does not open or check, and every unit after it, is listed in
  /// `broken` (with the reason of the first). Reads only.
  static func scan(path: String) -> (newest: (LoadedUnit, config: String, runID: String)?, units: [Int], broken: [Int], reason: String?) {
    let folder = folder(for: path)
    let steps = unitSteps(in: folder)
    guard steps.first == 0 else {
      return (nil, [], steps, steps.isEmpty ? "\(folder) holds no complete unit" : "\(folder) has no unit_000000000.h5")
    }
    // Unit 0 gives the configuration every later unit must carry.
    let config: String
    do {
      config = try loadUnit(folder, step: 0, expectedConfig: nil).config
    } catch {
      return (nil, [], steps, "\(error)")
    }
    // The newest unit that loads whole wins; the units below it are checked to open (their
    // checkpoints and snapshots go into the finished file).
    var reason: String? = nil
    var top = steps.count - 1
    while top >= 0 {
      do {
        let loaded = try loadUnit(folder, step: steps[top], expectedConfig: config)
        var good = true
        for s in steps[1..<max(1, top)] {
          do {
            let (f, header) = try Store.open(folder + "/" + unitName(s), expecting: .run)
            let has = try f.root.contains(Store.incompleteGroup + "/" + stagingKey(loaded.runID) + "/checkpoints/step_\(s)")
            let same = header.config == config && has
            try? f.close()
            if !same { throw StoreError(.schema, file: folder + "/" + unitName(s), "is not a unit of this run") }
          } catch {
            reason = reason ?? "\(error)"
            // Resume below the broken unit instead.
            top = steps.firstIndex(of: s)! - 1
            good = false
            break
          }
        }
        if good { return (loaded, Array(steps[...top]), Array(steps[(top + 1)...]), reason) }
      } catch {
        reason = reason ?? "\(error)"
        top -= 1
      }
    }
    return (nil, [], steps, reason)
  }

  /// Opens the run in progress at `path` (its folder `<path>.partial/`) for resuming: the newest
  /// complete unit is the starting point; broken units after it are set aside. Throws when there is
  /// nothing to resume, with what to do.
  static func reopenForResume(path: String) throws -> (RunFileWriter, config: String, checkpoint: Checkpoint?) {
    let folder = folder(for: path)
    if FileManager.default.fileExists(atPath: path) {
      // Opening checks it is an fpsim run file (and says what is wrong when it is not).
      let (f, _) = try Store.open(path, expecting: .run)
      let finished = (try? f.root.contains("/runs")) == true
      try? f.close()
      if finished {
        // Everything of the folder went into the file before it was published: a leftover is stale.
        if FileManager.default.fileExists(atPath: folder) { try? FileManager.default.removeItem(atPath: folder) }
        throw StoreError(.invalidArgument, file: path, "has no unfinished run to resume (its run is complete)")
      }
      throw StoreError(
        .invalidArgument, file: path,
        "holds an unfinished run of an older fpsim, written in place, which cannot be resumed safely: move it aside and train again")
    }
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
      throw StoreError(.noSuchFile, file: path, "no such run: neither the file nor \(folder) exists")
    }
    let lock = try lockFolder(folder, path: path, wait: true)
    if !FileManager.default.fileExists(atPath: folder + "/" + unitName(0)), FileManager.default.fileExists(atPath: path) {
      // The process we waited for published the run and removed the folder.
      Glibc.close(lock)
      throw FinishedElsewhere(path: path)
    }
    Store.removeStaleTemporaries(inFolder: folder)
    // A writer killed while publishing the run file leaves <path>.tmp-<pid> beside it.
    _ = try? Store.removeStaleTemporaries(of: path)
    let scanned = scan(path: path)
    guard let (newest, config, runID) = scanned.newest else {
      Glibc.close(lock)
      throw StoreError(
        .schema, file: path,
        "cannot resume: \(scanned.reason ?? "no complete unit") (move \(folder) aside and train again)")
    }
    let w = RunFileWriter(
      path: path, runID: runID, config: config, units: scanned.units,
      earlierSeconds: newest.attributes["wall_seconds"]?.doubleValue ?? 0, lock: lock)
    for step in scanned.broken {
      if let moved = try? TrainingRuns.moveAside(w.unitPath(step)) { w.setAside.append(moved) }
    }
    w.metrics = newest.metrics
    w.attributes = newest.attributes
    return (w, config, newest.checkpoint)
  }

  // MARK: Checkpoints

  public static func readCheckpoint(_ g: H5Group) throws -> Checkpoint {
    var arrays: [NamedArray] = []
    func walk(_ group: H5Group, _ prefix: String) throws {
      for child in try group.children() {
        let name = prefix.isEmpty ? child.name : prefix + "/" + child.name
        if child.kind == .group {
          try walk(try group.group(child.name), name)
        } else {
          let d = try group.dataset(child.name)
          let shape = try d.shape, values = try d.read(as: Float.self)
          guard shape.reduce(1, *) == values.count else {
            throw StoreError(.schema, file: g.file.path, object: d.path, "holds \(values.count) values for shape \(shape)")
          }
          arrays.append(NamedArray(name: name, shape: shape, values: values))
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

  // MARK: Writing

  private func writeAttributes(_ g: H5Group) throws {
    for (k, v) in attributes.sorted(by: { $0.key < $1.key }) { try g.setAttribute(k, v) }
  }

  private var sessionSeconds: Double { Double(DispatchTime.now().uptimeNanoseconds - sessionStart) * 1e-9 }

  private static func writeCheckpoint(_ checkpoint: Checkpoint, into all: H5Group) throws {
    let g = try all.createGroup("step_\(checkpoint.step)")
    try g.setAttribute("format_version", checkpoint.version)
    for (k, v) in checkpoint.integers.sorted(by: { $0.key < $1.key }) { try g.setAttribute(k, Int(v)) }
    for a in checkpoint.arrays { try g.createDataset(a.name, values: a.values, shape: a.shape) }
  }

  private static func writeSnapshot(step: Int, tensors: [NamedArray], operands: [OperandSnapshot], into all: H5Group) throws {
    let g = try all.createGroup("step_\(step)")
    try g.setAttribute("step", step)
    try g.setAttribute("units", "step: completed optimizer steps; tensors: float32 values at that step")
    for t in tensors {
      let d = try g.createDataset(t.name, values: t.values, shape: t.shape)
      try d.setAttribute(
        "tensor", t.name.hasPrefix("grad/") ? "gradient of parameter \(t.name.dropFirst(5)) as the optimizer used it (after clipping)" : "parameter \(t.name) (master weights)")
    }
    if !operands.isEmpty { try writeOperands(operands, step: step, into: try g.createGroup("operands")) }
  }

  /// `operands/<layer>/<operand>/`: `input` and `rounded` (float32, the operand's GEMM layout), and for
  /// block formats `scales` (float32) and `scale_codes` (the scale format's codes), with attributes
  /// naming the format, rounding, blocking axis and step (docs/files.md "Operand snapshots").
  static func writeOperands(_ operands: [OperandSnapshot], step: Int, into all: H5Group) throws {
    for o in operands {
      let layer = try all.contains(o.layer) ? try all.group(o.layer) : try all.createGroup(o.layer)
      let g = try layer.createGroup(o.operand.description)
      let shape = [o.layout.rows, o.layout.cols]
      try g.createDataset("input", values: o.input, shape: shape)
        .setAttribute("units", "float32 values as they entered rounding (before a Hadamard transform), row-major [rows, cols] in the GEMM's layout")
      try g.createDataset("rounded", values: o.rounded, shape: shape)
        .setAttribute("units", o.hadamard == nil ? "float32 values the GEMM read" : "float32 values the GEMM read: the rounding of input transformed along the reduction axis")
      if let scales = o.scales, let codes = o.scaleCodes {
        try g.createDataset("scales", values: scales).setAttribute("units", "each block's stored scale (a value of scale_format), in block order")
        let bits = (try? FloatFormat(parsing: o.scaleFormat ?? "")).map(\.bitCount) ?? 32
        try CodeStorage(bits: bits).createDataset(in: g, "scale_codes", codes: codes)
          .setAttribute("units", "storage code of each scale in scale_format")
        try g.setAttribute("scale_format", o.scaleFormat ?? "")
      }
      try g.setAttribute("step", step)
      try g.setAttribute("layer", o.layer)
      try g.setAttribute("operand", o.operand.description)
      try g.setAttribute("format", o.format)
      try g.setAttribute("rounding", o.rounding)
      try g.setAttribute("overflow", o.overflow)
      try g.setAttribute("block_axis", o.blockAxis)
      try g.setAttribute("block", o.block)
      try g.setAttribute("reduction_axis", o.layout.reducesAlongRows ? 0 : 1)
      try g.setAttribute("hadamard", o.hadamard ?? 0)
      try g.setAttribute("loss_scale", Double(o.lossScale))
    }
  }

  /// Publishes unit `step` (a new file, renamed into place): everything up to `step` completed steps.
  private func publishUnit(step: Int, checkpoint: Checkpoint?) throws {
    precondition(metrics.count == step, "a unit after \(step) steps holds \(metrics.count) metrics rows")
    let due = pendingSnapshots.filter { $0.step <= step }
    try Store.writeAtomically(to: unitPath(step), schema: .run, config: config, overwrite: true) { file in
      let unit = try file.root.requireGroup(Store.incompleteGroup).createGroup(Self.stagingKey(runID))
      var attributes = self.attributes
      if step > 0 {
        attributes["wall_seconds"] = .double(earlierSeconds + sessionSeconds)
        attributes["completed_steps"] = .int(step)
      }
      for (k, v) in attributes.sorted(by: { $0.key < $1.key }) { try unit.setAttribute(k, v) }
      if step > 0 || metrics.count > 0 { try metrics.write(into: unit, names: names) }
      if !due.isEmpty {
        let all = try unit.createGroup("snapshots")
        for s in due { try Self.writeSnapshot(step: s.step, tensors: s.tensors, operands: s.operands, into: all) }
      }
      if let checkpoint { try Self.writeCheckpoint(checkpoint, into: try unit.createGroup("checkpoints")) }
    }
    pendingSnapshots.removeAll { $0.step <= step }
    units.removeAll { $0 >= step }
    units.append(step)
  }

  /// Writes the finished run file at `path` atomically, then removes the folder.
  private func publishRun() throws {
    try Store.writeAtomically(to: path, schema: .run, config: config) { file in
      let run = try file.root.createGroup("runs").createGroup(runID)
      try writeAttributes(run)
      try metrics.write(into: run, names: names)
      // Checkpoints and snapshots, copied whole (H5Ocopy keeps their layout) from the units.
      var snapshots: H5Group? = nil, checkpoints: H5Group? = nil
      for step in units where step > 0 {
        let (source, _) = try Store.open(unitPath(step), expecting: .run)
        defer { try? source.close() }
        let unit = try source.group(Self.stagingGroup + Self.stagingKey(runID))
        for kind in ["snapshots", "checkpoints"] where try unit.contains(kind) {
          let from = try unit.group(kind)
          let into: H5Group
          if kind == "snapshots" {
            snapshots = try snapshots ?? run.createGroup(kind)
            into = snapshots!
          } else {
            checkpoints = try checkpoints ?? run.createGroup(kind)
            into = checkpoints!
          }
          for child in try from.children() where !(try into.contains(child.name)) {
            try into.copy(child.name, from: from, to: child.name)
          }
        }
      }
      if !pendingSnapshots.isEmpty {
        snapshots = try snapshots ?? run.createGroup("snapshots")
        for s in pendingSnapshots { try Self.writeSnapshot(step: s.step, tensors: s.tensors, operands: s.operands, into: snapshots!) }
      }
    }
    try? FileManager.default.removeItem(atPath: folder)
  }

  // MARK: TrainingSink

  public func begin(_ run: RunDescription) {
    itemsPerStep = run.itemsPerStep
    // StepMetrics carry telemetry in this order.
    names = run.telemetryNames
    evalEvery = run.config.evalEvery
    totalSteps = run.config.steps
    sessionStart = DispatchTime.now().uptimeNanoseconds
    attributes["model"] = .string(run.model.description)
    attributes["recipe"] = .string(run.recipe.description)
    attributes["recipe_json"] = .string(run.recipe.json)  // fully resolved, per operand
    // The learning rate as given (0.003, not the float32 0.003000000026): its shortest decimal.
    attributes["lr"] = .double(Double("\(run.config.learningRate)") ?? Double(run.config.learningRate))
    attributes["seed"] = .int(Int(bitPattern: UInt(run.config.seed)))
    attributes["steps"] = .int(run.config.steps)
    attributes["parameter_count"] = .int(run.parameterCount)
    attributes["items_per_step"] = .int(run.itemsPerStep)
    attributes["status"] = .string("running")
    for (k, v) in environment { attributes[k] = .string(v) }
    attributes["gemm"] = .string(run.config.bf16GEMMs == true ? "bf16" : "sgemm")
    if run.config.bf16GEMMs == true { attributes["bf16_gemms"] = .int(run.bf16GEMMs.count) }
    if let skipped = run.hadamardSkipped { attributes["hadamard_skipped"] = .string(skipped.joined(separator: ",")) }
    let rule = run.config.divergence
    attributes["divergence_smoothing"] = .double(Double(rule.smoothing))
    attributes["divergence_margin"] = .double(Double(rule.margin))
    attributes["divergence_patience"] = .int(rule.patience)
    attributes["spike_margin"] = .double(Double(rule.spikeMargin))
    attributes["divergence_warmup_steps"] = .int(rule.warmupSteps ?? run.config.resolvedWarmupSteps)
  }

  public func record(_ m: StepMetrics) {
    metrics.append(m, names: names)
    onStep?(m)
  }

  public func snapshot(step: Int, tensors: [NamedArray]) {
    snapshot(step: step, tensors: tensors, operands: [])
  }

  public func snapshot(step: Int, tensors: [NamedArray], operands: [OperandSnapshot]) {
    pendingSnapshots.append((step + 1, tensors, operands))  // after step + 1 completed steps
  }

  public func checkpoint(_ checkpoint: Checkpoint) {
    attempt { try publishUnit(step: checkpoint.step, checkpoint: checkpoint) }
  }

  /// The value of `column` (evaluation loss or accuracy) at the last step that evaluated (the trainer
  /// evaluates at multiples of `evalEvery` and at the last step), NaN when none did.
  private func lastEvaluated(_ column: [Float]) -> Float {
    for i in stride(from: metrics.count - 1, through: 0, by: -1) {
      let s = Int(metrics.step[i])
      if s == totalSteps || (evalEvery > 0 && s % evalEvery == 0) { return column[i] }
    }
    return .nan
  }

  public func end(_ summary: RunSummary) {
    // An interrupted run keeps its units for --resume; nothing else to write.
    guard summary.status != .interrupted else { return }
    attempt {
      attributes["status"] = .string(summary.status.rawValue)
      attributes["diverged_step"] = .int(summary.divergedStep ?? -1)
      attributes["spikes"] = .int(summary.spikes)
      attributes["completed_steps"] = .int(summary.steps)
      // From the rows, not the summary: a run resumed from its last checkpoint has not itself
      // computed the last loss or the last evaluation.
      attributes["final_train_loss"] = .double(Double(metrics.trainLoss.last ?? .nan))
      attributes["final_eval_loss"] = .double(Double(lastEvaluated(metrics.evalLoss)))
      if metrics.evalAccuracy.contains(where: { !$0.isNaN }) {
        attributes["final_eval_accuracy"] = .double(Double(lastEvaluated(metrics.evalAccuracy)))
      }
      attributes["wall_seconds"] = .double(earlierSeconds + summary.wallSeconds)
      try publishRun()
    }
  }

  public var shouldStop: Bool { stopRequested || writeError != nil }

  /// Ends the writer; throws the first write error, if any.
  public func close() throws {
    if let writeError { throw writeError }
  }

  private func attempt(_ body: () throws -> Void) {
    guard writeError == nil else { return }
    do { try body() } catch { writeError = error }
  }
}
