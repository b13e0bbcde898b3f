import FPEngine
import FPStore

/// The `metrics/` rows of a run held in memory, one array per dataset (docs/files.md "fpsim/run").
///
/// A run's metrics are never appended to a file in place: every durable unit of a training run
/// (`RunFileWriter`) and the finished run file are written whole from these columns, so a kill can
/// never leave a half-written row or chunk behind.
struct RunMetrics {
  var step: [Int64] = []
  var trainLoss: [Float] = []
  var evalLoss: [Float] = []
  /// Classifiers' validation accuracy, NaN where not evaluated; written only when some row has one.
  var evalAccuracy: [Float] = []
  var gradNorm: [Float] = []
  var lr: [Float] = []
  var lossScale: [Float] = []
  var skipped: [UInt8] = []
  var stepSeconds: [Double] = []
  /// kind (`saturated`, `flushed`, ...) -> operand name -> column.
  var telemetry: [String: [String: [Float]]] = [:]
  /// Per rounded operand, every step: the binade histogram (`metrics/histograms/`).
  var histograms = RunHistograms()

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

  var count: Int { step.count }

  /// Appends one step's row; `names` is the order of the telemetry arrays in `m`.
  mutating func append(_ m: StepMetrics, names: [String]) {
    // `step` counts completed optimizer steps (1 after the first update), as checkpoints do.
    step.append(Int64(m.step + 1))
    trainLoss.append(m.trainLoss)
    evalLoss.append(m.evalLoss ?? .nan)
    evalAccuracy.append(m.evalAccuracy ?? .nan)
    gradNorm.append(m.gradNorm)
    lr.append(m.learningRate)
    lossScale.append(m.lossScale)
    skipped.append(m.skipped ? 1 : 0)
    stepSeconds.append(m.seconds)
    for kind in Self.telemetryKinds {
      let v = Self.telemetry(kind, m)
      for (i, name) in names.enumerated() { telemetry[kind, default: [:]][name, default: []].append(i < v.count ? v[i] : .nan) }
    }
    histograms.append(m.histograms, names: names)
  }

  /// Keeps the first `rows` rows.
  mutating func truncate(to rows: Int) {
    step.removeSubrange(min(rows, step.count)...)
    trainLoss.removeSubrange(min(rows, trainLoss.count)...)
    evalLoss.removeSubrange(min(rows, evalLoss.count)...)
    evalAccuracy.removeSubrange(min(rows, evalAccuracy.count)...)
    gradNorm.removeSubrange(min(rows, gradNorm.count)...)
    lr.removeSubrange(min(rows, lr.count)...)
    lossScale.removeSubrange(min(rows, lossScale.count)...)
    skipped.removeSubrange(min(rows, skipped.count)...)
    stepSeconds.removeSubrange(min(rows, stepSeconds.count)...)
    for (kind, columns) in telemetry {
      for (name, column) in columns { telemetry[kind]![name] = Array(column.prefix(rows)) }
    }
    histograms.truncate(to: rows)
  }

  /// Writes `metrics/` into `unit`: growable datasets, chunks of 1024 rows, default compression, the
  /// layout and attributes `fpsim train` has always written. `names` gives the telemetry operands.
  func write(into unit: H5Group, names: [String]) throws {
    let m = try unit.createGroup("metrics")
    func column<T: StoreElement>(_ name: String, _ values: [T]) throws -> H5Dataset {
      let d = try m.createDataset(name, type: T.elementType, shape: [0], growable: true, chunk: [1024])
      if !values.isEmpty { try d.append(values) }
      return d
    }
    _ = try column("step", step)
    try column("train_loss", trainLoss).setAttribute("units", "nats per item")
    try column("eval_loss", evalLoss).setAttribute("units", "nats per item; NaN where not evaluated")
    if evalAccuracy.contains(where: { !$0.isNaN }) {
      try column("eval_accuracy", evalAccuracy).setAttribute("units", "fraction of the validation set classified correctly; NaN where not evaluated")
    }
    _ = try column("grad_norm", gradNorm)
    _ = try column("lr", lr)
    _ = try column("loss_scale", lossScale)
    _ = try column("skipped", skipped)
    try column("step_seconds", stepSeconds).setAttribute("units", "seconds (wall time, not reproducible)")
    for kind in Self.telemetryKinds {
      let g = try m.createGroup(kind)
      for name in names {
        let values = telemetry[kind]?[name] ?? []
        let d = try g.createDataset(name, type: .float32, shape: [0], growable: true, chunk: [1024])
        if !values.isEmpty { try d.append(values) }
      }
    }
    try histograms.write(into: m, names: names, steps: step)
  }

  /// Reads `metrics/` of `unit` and checks that every column has `rows` rows and that `step` is
  /// 1, 2, ..., rows (what a unit published after `rows` completed steps holds).
  static func read(from unit: H5Group, rows: Int) throws -> RunMetrics {
    var r = RunMetrics()
    guard try unit.contains("metrics") else {
      if rows == 0 { return r }
      throw StoreError(.missingObject, file: unit.file.path, object: unit.path, "has no metrics")
    }
    let m = try unit.group("metrics")
    func read<T: StoreElement>(_ g: H5Group, _ name: String) throws -> [T] {
      let values = try g.dataset(name).read(as: T.self)
      guard values.count == rows else {
        throw StoreError(.schema, file: unit.file.path, object: g.path + "/" + name, "has \(values.count) rows, expected \(rows)")
      }
      return values
    }
    r.step = try read(m, "step")
    guard r.step == (0..<rows).map({ Int64($0 + 1) }) else {
      throw StoreError(.schema, file: unit.file.path, object: m.path + "/step", "does not count 1...\(rows)")
    }
    r.trainLoss = try read(m, "train_loss")
    r.evalLoss = try read(m, "eval_loss")
    r.evalAccuracy = try m.contains("eval_accuracy") ? read(m, "eval_accuracy") : [Float](repeating: .nan, count: rows)
    r.gradNorm = try read(m, "grad_norm")
    r.lr = try read(m, "lr")
    r.lossScale = try read(m, "loss_scale")
    r.skipped = try read(m, "skipped")
    r.stepSeconds = try read(m, "step_seconds")
    for kind in telemetryKinds where try m.contains(kind) {
      let g = try m.group(kind)
      for child in try g.children() { r.telemetry[kind, default: [:]][child.name] = try read(g, child.name) }
    }
    r.histograms = try RunHistograms.read(from: m, rows: rows)
    return r
  }
}
