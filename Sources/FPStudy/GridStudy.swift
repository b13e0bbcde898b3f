import FPStore
import Foundation

/// A grid file's `/results` (docs/files.md "fpsim/grid") read for reports and comparisons, tolerant:
/// arrays it does not know are ignored, optional ones (`failed_to_learn`, `eval_loss`, `sharpness_*`,
/// `total_bits`, units attributes) are used when present, and what `/results` lacks is taken from the
/// runs (`/runs/<id>/metrics`) or left empty. Independent of the grid spec's Swift type, so a file is
/// read from its arrays alone.
public struct GridStudy: Sendable {
  public var path: String
  public var header: FileHeader
  public var values: GridValues
  /// Steps of `loss` ([T], completed steps).
  public var steps: [Int]
  /// Training loss [F, L, S, T], NaN after divergence (empty when absent).
  public var loss: [Float]
  /// Validation loss [F, L, S, E] at `evalSteps` (NaN where not evaluated or after divergence).
  public var evalSteps: [Int]
  public var evalLoss: [Float]
  public var finalTrain: [Double]
  public var divergedStep: [Int]
  /// nil when the file has no `failed_to_learn`.
  public var failedToLearn: [Bool]?
  public var failedToLearnMargin: Double?
  /// `sharpness_<metric>` [F, L, S, K] at `steps`, one entry per metric.
  public var sharpness: [Sharpness]
  /// The run group of each cell [F, L, S] (nil where the run is absent).
  public var runIDs: [String?]
  /// `units` attributes of the `/results` datasets.
  public var units: [String: String]
  /// `/results/saturated` and `/results/flushed` [F, L, S, T, K] (fraction per operand kind, mean
  /// over layers) with the operand kinds [K], when the file has them (else the report reads the runs).
  public var operands: [String] = []
  public var telemetry: [String: [Float]] = [:]
  /// The axes of `/results/histogram` [F, L, S, T, K, B] when the file has it (else empty): its
  /// operand kinds [K] and binades [B]. The counts themselves are read a box at a time where drawn.
  public var histogramOperands: [String] = []
  public var histogramBinades: [Int] = []

  public struct Sharpness: Sendable {
    public var metric: String
    public var steps: [Int]
    public var values: [Double]
  }

  public var F: Int { values.labels.count }
  public var L: Int { values.lrs.count }
  public var S: Int { values.seeds.count }

  /// Reads `/results` of an open grid file.
  public static func read(_ file: H5File) throws -> GridStudy {
    guard let header = try FileHeader.read(from: file) else {
      throw StoreError(.schema, file: file.path, "not an fpsim file (no \"schema\" root attribute); `fpsim inspect \(file.path)` shows what it holds")
    }
    guard try file.root.contains("results") else {
      throw StoreError(.schema, file: file.path, "has no /results yet (the grid is unfinished): finish it with `fpsim grid SPEC --out \(file.path)`")
    }
    let r = try file.group("/results")
    let names = Set(try r.children().map(\.name))
    // The first dimension: `recipe` (schema_version 2, or a version 1 recipe grid) or `format` (a
    // version 1 format grid); the labels are formats or recipes as `@label_kind` says (version 2).
    let dimension = names.contains("format") ? "format" : names.contains("recipe") ? "recipe" : nil
    guard let dimension, names.contains("lr"), names.contains("seed"), names.contains("final_eval_loss") else {
      throw StoreError(.schema, file: file.path, object: "/results", "lacks recipe (or format), lr, seed or final_eval_loss; rebuild it with `fpsim grid SPEC --out \(file.path)`")
    }
    let kind = dimension == "format" ? "format" : try r.attribute("label_kind")?.stringValue ?? "recipe"
    let labels = try r.dataset(dimension).readStrings()
    let lrs = try r.dataset("lr").read(as: Double.self)
    let seeds = try r.dataset("seed").read(as: Int64.self).map(Int.init)
    let n = labels.count * lrs.count * seeds.count
    func grid3<T: StoreElement>(_ name: String, _ type: T.Type) throws -> [T]? {
      guard names.contains(name) else { return nil }
      let d = try r.dataset(name)
      guard (try d.shape) == [labels.count, lrs.count, seeds.count] else {
        throw StoreError(.schema, file: file.path, object: "/results/\(name)", "has shape \((try d.shape)), expected [\(labels.count), \(lrs.count), \(seeds.count)]")
      }
      return try d.read(as: T.self)
    }
    let finalEval = try grid3("final_eval_loss", Double.self)!
    let diverged = try grid3("diverged", UInt8.self)?.map { $0 != 0 } ?? Array(repeating: false, count: n)
    var totalBits: [Int?]? = nil
    if names.contains("total_bits"), let bits = try? r.dataset("total_bits").read(as: Int64.self), bits.count == labels.count {
      totalBits = bits.map { $0 > 0 ? Int($0) : nil }
    }
    var values = GridValues(
      labelKind: kind, labels: labels, lrs: lrs, seeds: seeds, finalEval: finalEval, diverged: diverged, totalBits: totalBits)
    // The grid's own baseline (`/results@baseline`), when it names one of its labels.
    if let b = try r.attribute("baseline")?.stringValue, labels.contains(b) { values.defaultBaseline = b }
    var units: [String: String] = [:]
    for name in names {
      if let u = try? r.dataset(name).attribute("units")?.stringValue { units[name] = u }
    }
    let steps = names.contains("step") ? try r.dataset("step").read(as: Int64.self).map(Int.init) : []
    var loss: [Float] = []
    if names.contains("loss") {
      let d = try r.dataset("loss")
      if (try d.shape) == [labels.count, lrs.count, seeds.count, steps.count] { loss = try d.read(as: Float.self) }
    }
    var study = GridStudy(
      path: file.path, header: header, values: values, steps: steps, loss: loss, evalSteps: [], evalLoss: [],
      finalTrain: try grid3("final_loss", Double.self) ?? Array(repeating: .nan, count: n),
      divergedStep: try grid3("diverged_step", Int64.self)?.map(Int.init) ?? Array(repeating: -1, count: n),
      failedToLearn: try grid3("failed_to_learn", UInt8.self)?.map { $0 != 0 },
      failedToLearnMargin: (try? r.dataset("failed_to_learn").attribute("margin_nats")?.doubleValue)
        ?? (try? r.attribute("failed_to_learn_margin_nats")?.doubleValue),
      sharpness: [], runIDs: Array(repeating: nil, count: n), units: units)
    try study.readRunIDs(file)
    // Sharpness [F, L, S, K] with its step scale.
    if names.contains("sharpness_step") {
      let k = try r.dataset("sharpness_step").read(as: Int64.self).map(Int.init)
      for name in names.sorted()
      where name.hasPrefix("sharpness_") && name != "sharpness_step"
        && !["_last", "_iterations", "_converged"].contains(where: { name.hasSuffix($0) })
      {
        let d = try r.dataset(name)
        guard (try d.shape) == [labels.count, lrs.count, seeds.count, k.count] else { continue }
        let metric = (try? d.attribute("metric")?.stringValue) ?? String(name.dropFirst("sharpness_".count))
        study.sharpness.append(Sharpness(metric: metric, steps: k, values: try d.read(as: Double.self)))
      }
    }
    // Validation curves: /results/eval_loss when the file has it, else the runs' metrics.
    if names.contains("eval_loss") {
      let d = try r.dataset("eval_loss")
      let scale = ["eval_step", "eval_steps"].first { names.contains($0) }
      if (try d.shape).count == 4, Array((try d.shape).prefix(3)) == [labels.count, lrs.count, seeds.count] {
        let e = (try d.shape)[3]
        if let scale, let s = try? r.dataset(scale).read(as: Int64.self), s.count == e {
          study.evalSteps = s.map(Int.init)
          study.evalLoss = try d.read(as: Float.self)
        } else if e == steps.count {
          study.evalSteps = steps
          study.evalLoss = try d.read(as: Float.self)
        }
      }
    }
    if study.evalSteps.isEmpty { try study.readEvalCurves(file) }
    if names.contains("operand"), let ops = try? r.dataset("operand").readStrings() {
      for kind in ["saturated", "flushed"] where names.contains(kind) {
        let d = try r.dataset(kind)
        guard (try d.shape) == [labels.count, lrs.count, seeds.count, steps.count, ops.count] else { continue }
        study.telemetry[kind] = try d.read(as: Float.self)
        study.operands = ops
      }
    }
    if names.contains("histogram"), names.contains("binade"), names.contains("operand"),
      let ops = try? r.dataset("operand").readStrings(), let binades = try? r.dataset("binade").read(as: Int32.self),
      (try r.dataset("histogram").shape) == [labels.count, lrs.count, seeds.count, steps.count, ops.count, binades.count]
    {
      study.histogramOperands = ops
      study.histogramBinades = binades.map(Int.init)
    }
    return study
  }

  /// Maps runs to cells by their grid coordinates (`@format`/`@recipe`, `@grid_lr`, `@grid_seed`).
  mutating func readRunIDs(_ file: H5File) throws {
    guard try file.root.contains("runs") else { return }
    let runs = try file.group("/runs")
    for child in try runs.children() where child.kind == .group {
      let g = try runs.group(child.name)
      guard let label = try g.attribute(values.labelKind)?.stringValue,
        let lr = try g.attribute("grid_lr")?.doubleValue, let seed = try g.attribute("grid_seed")?.intValue,
        let f = values.labels.firstIndex(of: label), let l = values.lrs.firstIndex(of: lr),
        let s = values.seeds.firstIndex(of: seed)
      else { continue }
      runIDs[values.index(f, l, s)] = child.name
    }
  }

  /// Validation loss from each run's `metrics/eval_loss` at the rows where it was evaluated.
  mutating func readEvalCurves(_ file: H5File) throws {
    var perRun: [Int: [Int: Float]] = [:]
    var all = Set<Int>()
    for (i, id) in runIDs.enumerated() {
      guard let id, try file.root.contains("/runs/\(id)/metrics/eval_loss") else { continue }
      let step = try file.dataset("/runs/\(id)/metrics/step").read(as: Int64.self)
      let ev = try file.dataset("/runs/\(id)/metrics/eval_loss").read(as: Float.self)
      var m: [Int: Float] = [:]
      let cut = divergedStep[i] >= 0 && values.diverged[i] ? divergedStep[i] : Int.max
      for (s, v) in zip(step, ev) where v.isFinite && Int(s) < cut {
        m[Int(s)] = v
        all.insert(Int(s))
      }
      perRun[i] = m
    }
    evalSteps = all.sorted()
    let e = evalSteps.count
    evalLoss = [Float](repeating: .nan, count: runIDs.count * e)
    for (i, m) in perRun {
      for (k, s) in evalSteps.enumerated() { if let v = m[s] { evalLoss[i * e + k] = v } }
    }
  }

  /// Failed to learn per cell: the file's array, or false everywhere when it has none.
  public var failed: [Bool] { failedToLearn ?? Array(repeating: false, count: values.finalEval.count) }
}
