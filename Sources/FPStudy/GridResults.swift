import FPStore
import Foundation

/// The labelled arrays of a grid file's `/results` group and the per-format summary
/// (docs/files.md "fpsim/grid", README "Grids").
public enum GridResults {
  /// One row of the summary: per format (or recipe) across learning rates and seeds.
  public struct Row: Codable, Sendable {
    public var label: String
    public var runs: Int
    public var divergedFraction: Double
    public var failedToLearnFraction: Double
    /// The learning rate with the lowest median final validation loss over seeds (non-diverged runs).
    public var bestLR: Double?
    /// Median, minimum and maximum over seeds of the final validation loss at the best learning rate.
    public var medianEvalLoss: Double?
    public var minEvalLoss: Double?
    public var maxEvalLoss: Double?
    /// Learning rates at which every seed converged and learned.
    public var stableLRs: [Double]
  }

  struct Cell {
    var finalLoss = Float.nan, finalEval = Float.nan
    var diverged = false, divergedStep = -1, spikes = 0
    var loss: [Float] = []
  }

  /// Reads every run of `spec` from the grid file (missing runs stay NaN) and replaces `/results`.
  public static func write(spec: GridSpec, into grid: H5File) throws {
    let (cells, summary) = try compute(spec: spec, grid: grid)
    let F = spec.labels.count, L = spec.lrs.count, S = spec.seeds.count, T = spec.steps
    let root = try grid.root
    try root.publishUnit("results", replace: true) { g in
      let label = try g.createDimensionScale(spec.labelKind, labels: spec.labels)
      let lr = try g.createDimensionScale("lr", values: spec.lrs)
      let seed = try g.createDimensionScale("seed", values: spec.seeds.map(Int64.init))
      let step = try g.createDimensionScale("step", values: (1...T).map(Int64.init))
      func grid3<T: StoreElement>(_ name: String, _ f: (Cell) -> T, units: String? = nil) throws {
        let d = try g.createDataset(name, values: cells.map(f), shape: [F, L, S])
        try d.attach(scales: [label, lr, seed])
        if let units { try d.setAttribute("units", units) }
      }
      try grid3("final_loss", { $0.finalLoss }, units: "nats per item (training loss at the last step)")
      try grid3("final_eval_loss", { $0.finalEval }, units: "nats per item (validation)")
      try grid3("diverged", { UInt8($0.diverged ? 1 : 0) })
      try grid3("diverged_step", { Int64($0.divergedStep) })
      try grid3("spikes", { Int64($0.spikes) })
      let failed = failedToLearn(spec: spec, cells: cells)
      let f = try g.createDataset("failed_to_learn", values: failed.map { UInt8($0 ? 1 : 0) }, shape: [F, L, S])
      try f.attach(scales: [label, lr, seed])
      try f.setAttribute("margin_nats", spec.failedToLearnMargin)
      var loss = [Float](repeating: .nan, count: F * L * S * T)
      for (i, c) in cells.enumerated() {
        for (t, v) in c.loss.prefix(T).enumerated() { loss[i * T + t] = v }
      }
      let l = try g.createDataset("loss", values: loss, shape: [F, L, S, T])
      try l.attach(scales: [label, lr, seed, step])
      try l.setAttribute("units", "nats per item; NaN after divergence")
      if spec.sharpnessEvery > 0 {
        // sharpness_<metric> [format, lr, seed, sharpness_step]: NaN where not measured.
        let K = spec.sharpnessSteps
        let kScale = try g.createDimensionScale("sharpness_step", values: K.map(Int64.init))
        for metric in spec.sharpnessMetrics {
          var v = [Double](repeating: .nan, count: spec.runs.count * K.count)
          for (i, r) in spec.runs.enumerated() {
            let base = "/runs/\(r.id)/sharpness/\(metric)"
            guard try grid.root.contains(base + "/value") else { continue }
            let steps = try grid.dataset(base + "/step").read(as: Int64.self)
            let values = try grid.dataset(base + "/value").read(as: Double.self)
            for (s, value) in zip(steps, values) {
              if let k = K.firstIndex(of: Int(s)) { v[i * K.count + k] = value }
            }
          }
          let d = try g.createDataset(
            "sharpness_" + metric.replacingOccurrences(of: "-", with: "_"), values: v, shape: [F, L, S, K.count])
          try d.attach(scales: [label, lr, seed, kScale])
          try d.setAttribute("metric", metric)
        }
      }
      let e = JSONEncoder()
      e.keyEncodingStrategy = .convertToSnakeCase
      e.outputFormatting = [.sortedKeys]  // the same bytes whatever the process
      try g.setAttribute("summary_json", String(decoding: try e.encode(summary), as: UTF8.self))
      try g.setAttribute("summary", table(summary, kind: spec.labelKind))
    }
  }

  /// The summary of a grid file (for `fpsim inspect` and the end of `fpsim grid`).
  public static func summary(of grid: H5File) throws -> (spec: GridSpec, rows: [Row]) {
    let header = try FileHeader.read(from: grid)
    guard let config = header?.config,
      let spec = try? JSONDecoder().decode(GridSpec.self, from: Data(config.utf8))
    else {
      throw StoreError(.schema, file: grid.path, "its grid spec does not decode; read it with the fpsim that wrote it")
    }
    return (spec, try compute(spec: spec, grid: grid).1)
  }

  static func compute(spec: GridSpec, grid: H5File) throws -> ([Cell], [Row]) {
    var cells: [Cell] = []
    for r in spec.runs {
      var c = Cell()
      if try grid.root.contains("/runs/" + r.id) {
        let g = try grid.group("/runs/" + r.id)
        c.finalLoss = Float(try g.attribute("final_train_loss")?.doubleValue ?? .nan)
        c.finalEval = Float(try g.attribute("final_eval_loss")?.doubleValue ?? .nan)
        c.diverged = try g.attribute("status")?.stringValue == "diverged"
        c.divergedStep = try g.attribute("diverged_step")?.intValue ?? -1
        c.spikes = try g.attribute("spikes")?.intValue ?? 0
        c.loss = try g.dataset("metrics/train_loss").read(as: Float.self)
        if c.diverged && c.divergedStep >= 0 {
          // NaN from the divergence on (steps count from 1).
          for t in max(0, c.divergedStep)..<c.loss.count { c.loss[t] = .nan }
        }
      }
      cells.append(c)
    }
    let failed = failedToLearn(spec: spec, cells: cells)
    let L = spec.lrs.count, S = spec.seeds.count
    var rows: [Row] = []
    for (f, label) in spec.labels.enumerated() {
      let idx = { (l: Int, s: Int) in (f * L + l) * S + s }
      var diverged = 0, failures = 0
      for l in 0..<L { for s in 0..<S { if cells[idx(l, s)].diverged { diverged += 1 }; if failed[idx(l, s)] { failures += 1 } } }
      var best: (lr: Double, median: Double, lo: Double, hi: Double)? = nil
      var stable: [Double] = []
      for l in 0..<L {
        let evals = (0..<S).map { Double(cells[idx(l, $0)].finalEval) }
        let ok = (0..<S).allSatisfy { !cells[idx(l, $0)].diverged && !failed[idx(l, $0)] && cells[idx(l, $0)].finalEval.isFinite }
        if ok { stable.append(spec.lrs[l]) }
        let finite = evals.filter(\.isFinite).sorted()
        guard finite.count == S else { continue }
        let median = S % 2 == 1 ? finite[S / 2] : (finite[S / 2 - 1] + finite[S / 2]) / 2
        if best == nil || median < best!.median { best = (spec.lrs[l], median, finite.first!, finite.last!) }
      }
      rows.append(Row(
        label: label, runs: L * S, divergedFraction: Double(diverged) / Double(L * S),
        failedToLearnFraction: Double(failures) / Double(L * S), bestLR: best?.lr, medianEvalLoss: best?.median,
        minEvalLoss: best?.lo, maxEvalLoss: best?.hi, stableLRs: stable))
    }
    return (cells, rows)
  }

  /// Failed to learn: not diverged, but the final validation loss is more than the margin above the
  /// best learning rate's for the same format and seed (or not finite).
  static func failedToLearn(spec: GridSpec, cells: [Cell]) -> [Bool] {
    let L = spec.lrs.count, S = spec.seeds.count
    var out = [Bool](repeating: false, count: cells.count)
    for f in 0..<spec.labels.count {
      for s in 0..<S {
        let ids = (0..<L).map { (f * L + $0) * S + s }
        let best = ids.map { cells[$0].finalEval }.filter(\.isFinite).min()
        for i in ids where !cells[i].diverged {
          let e = cells[i].finalEval
          if let best { out[i] = !e.isFinite || Double(e) > Double(best) + spec.failedToLearnMargin }
        }
      }
    }
    return out
  }

  public static func table(_ rows: [Row], kind: String) -> String {
    func n(_ d: Double?) -> String { d.map { String(format: "%.4f", $0) } ?? "-" }
    var lines = ["\(kind)  runs  diverged  failed-to-learn  best lr  eval loss median [min, max]  stable lrs"]
    for r in rows {
      lines.append(
        "\(r.label)  \(r.runs)  \(String(format: "%.0f%%", 100 * r.divergedFraction))  \(String(format: "%.0f%%", 100 * r.failedToLearnFraction))  "
          + "\(r.bestLR.map { GridSpec.number($0) } ?? "-")  \(n(r.medianEvalLoss)) [\(n(r.minEvalLoss)), \(n(r.maxEvalLoss))]  "
          + (r.stableLRs.isEmpty ? "none" : r.stableLRs.map { GridSpec.number($0) }.joined(separator: ", ")))
    }
    return columns(lines)
  }

  /// Aligns two-space separated columns.
  static func columns(_ lines: [String]) -> String {
    let cells = lines.map { $0.components(separatedBy: "  ") }
    let width = (0..<(cells.map(\.count).max() ?? 0)).map { i in cells.map { i < $0.count ? $0[i].count : 0 }.max() ?? 0 }
    return cells.map { row in
      row.enumerated().map { i, c in i == row.count - 1 ? c : c.padding(toLength: width[i], withPad: " ", startingAt: 0) }
        .joined(separator: "  ")
    }.joined(separator: "\n") + "\n"
  }
}
