import FPEngine
import FPFormats
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
    /// Runs that did not diverge but did not learn either: at chance, worse than the baseline, or
    /// worse than the best learning rate (the union of those three rules).
    public var failedToLearnFraction: Double
    /// The fraction of runs whose status is each rule's (`RunStatus`), keyed by its name.
    public var statusFractions: [String: Double]
    /// The learning rate with the lowest median final validation loss over seeds (non-diverged runs).
    public var bestLR: Double?
    /// Median, minimum and maximum over seeds of the final validation loss at the best learning rate.
    public var medianEvalLoss: Double?
    public var minEvalLoss: Double?
    public var maxEvalLoss: Double?
    /// Learning rates at which every seed learned (status `learned`).
    public var stableLRs: [Double]

    enum CodingKeys: String, CodingKey {
      case label, runs, divergedFraction = "diverged_fraction", failedToLearnFraction = "failed_to_learn_fraction"
      case statusFractions = "status_fractions", bestLR = "best_lr", medianEvalLoss = "median_eval_loss"
      case minEvalLoss = "min_eval_loss", maxEvalLoss = "max_eval_loss", stableLRs = "stable_lrs"
    }
  }

  /// What a run's status says, in the order the rules are applied (the first that holds wins).
  /// Stored as `status` [label, lr, seed] with CF `flag_values` / `flag_meanings`.
  public enum RunStatus: UInt8, CaseIterable, Sendable {
    /// None of the rules below holds.
    case learned = 0
    /// The divergence rule of the run (non-finite loss, or the smoothed loss stayed `margin` above its
    /// running minimum for `patience` steps).
    case diverged = 1
    /// Not diverged, but the final validation loss is more than `blowup_margin` above the lowest
    /// validation loss the run reached: a slow blow-up that never crossed the divergence margin.
    case blewUp = 2
    /// The final validation loss is not finite, or within `chanceTolerance` (2%) of the model's chance
    /// level (`chance_loss`) or above it: the run learned nothing worth the name (a linear regression
    /// whose weights barely moved ends at 0.9999 of its chance level).
    case atChance = 3
    /// More than `failed_to_learn_margin` above the baseline's final validation loss at the same
    /// learning rate and seed (where the baseline did not diverge).
    case worseThanBaseline = 4
    /// More than `failed_to_learn_margin` above the best learning rate's for the same label and seed.
    case worseThanBestLR = 5
    /// The run is not in the grid file.
    case missing = 255

    public var name: String {
      switch self {
      case .learned: return "learned"
      case .diverged: return "diverged"
      case .blewUp: return "blew_up"
      case .atChance: return "at_chance"
      case .worseThanBaseline: return "worse_than_baseline"
      case .worseThanBestLR: return "worse_than_best_lr"
      case .missing: return "missing"
      }
    }
  }

  struct Cell {
    var present = false
    var finalLoss = Float.nan, finalEval = Float.nan, minEval = Float.nan
    var diverged = false, divergedStep = -1, spikes = 0
    var loss: [Float] = [], gradNorm: [Float] = []
    /// Step (completed optimizer steps) -> validation loss, where evaluated.
    var evals: [Int64: Float] = [:]
    /// Classifiers: step -> validation accuracy, where evaluated; the final one (NaN for others).
    var accuracies: [Int64: Float] = [:]
    var finalAccuracy = Float.nan
    /// Telemetry kind (`GridResults.telemetryKinds`) -> operand kind (fwd_x, ...) -> fraction per
    /// step, averaged over layers.
    var telemetry: [String: [String: [Float]]] = [:]
  }

  /// Everything derived from the runs: the cells in spec order, the statuses and the summary.
  struct Computed {
    var cells: [Cell]
    var status: [RunStatus]
    var rows: [Row]
    var chance: Double?
  }

  /// Whether `/results` was built from every run of `spec` (a grid rerun then has nothing to write).
  public static func isUpToDate(_ grid: H5File, spec: GridSpec) throws -> Bool {
    guard try grid.root.contains("/results") else { return false }
    return try grid.group("/results").attribute("runs_collected")?.intValue == spec.runCount
  }

  /// Reads every run of `spec` from the grid file (missing runs stay NaN) and replaces `/results`.
  /// `dataDirectory` gives the model's chance level.
  public static func write(spec: GridSpec, into grid: H5File, dataDirectory: String) throws {
    let chance = try ModelSpec(parsing: spec.model).chanceLoss(dataDirectory: dataDirectory)
    let c = try compute(spec: spec, grid: grid, chance: chance)
    try grid.root.publishUnit("results", replace: true) { g in try fill(g, spec: spec, grid: grid, c) }
  }

  static func fill(_ g: H5Group, spec: GridSpec, grid: H5File, _ c: Computed) throws {
      let cells = c.cells
      let F = spec.labels.count, L = spec.lrs.count, S = spec.seeds.count, T = spec.steps
      let label = try g.createDimensionScale(try labelDimension(of: grid, spec: spec), labels: spec.labels)
      let lr = try g.createDimensionScale("lr", values: spec.lrs)
      let seed = try g.createDimensionScale("seed", values: spec.seeds.map(Int64.init))
      let step = try g.createDimensionScale("step", values: (1...T).map(Int64.init))
      try lr.setAttribute("units", "peak learning rate")
      try seed.setAttribute("units", "seed (initialization, data order, stochastic rounding)")
      try step.setAttribute("units", "completed optimizer steps")
      try label.setAttribute("units", spec.labelKind == "format" ? "format of every GEMM operand" : "precision recipe")
      try g.setAttribute("label_kind", spec.labelKind)
      let coordinates = try labelCoordinates(spec: spec, in: g, label: label)
      func finish(_ d: H5Dataset, _ scales: [H5Dataset], units: String) throws {
        try d.attach(scales: scales)
        try d.setAttribute("units", units)
        if !coordinates.isEmpty { try d.setAttribute("coordinates", coordinates.joined(separator: " ")) }
      }
      @discardableResult func grid3<V: StoreElement>(_ name: String, _ f: (Int) -> V, units: String) throws -> H5Dataset {
        let d = try g.createDataset(name, values: (0..<cells.count).map(f), shape: [F, L, S])
        try finish(d, [label, lr, seed], units: units)
        return d
      }
      try grid3("final_loss", { cells[$0].finalLoss }, units: "nats per item (training loss at the last step)")
      try grid3("final_eval_loss", { cells[$0].finalEval }, units: "nats per item (validation, at the last step)")
      try grid3("min_eval_loss", { cells[$0].minEval }, units: "nats per item (lowest validation loss the run reached)")
      try grid3("diverged", { UInt8(cells[$0].diverged ? 1 : 0) }, units: "1 when the run diverged")
      try grid3("diverged_step", { Int64(cells[$0].divergedStep) }, units: "completed steps at divergence; -1: none")
      try grid3("spikes", { Int64(cells[$0].spikes) }, units: "count of loss spikes")
      let failed = try grid3(
        "failed_to_learn", { [.atChance, .worseThanBaseline, .worseThanBestLR].contains(c.status[$0]) ? UInt8(1) : 0 },
        units: "1 when the run did not diverge but did not learn (status at_chance, worse_than_baseline or worse_than_best_lr)")
      try failed.setAttribute("margin_nats", spec.failedToLearnMargin)
      let status = try grid3("status", { c.status[$0].rawValue }, units: "run status code (flag_meanings)")
      try status.setAttribute("flag_values", RunStatus.allCases.map { Int($0.rawValue) })
      try status.setAttribute("flag_meanings", RunStatus.allCases.map(\.name).joined(separator: " "))

      func grid4(_ name: String, _ series: (Cell) -> [Float], units: String) throws {
        var v = [Float](repeating: .nan, count: F * L * S * T)
        for (i, cell) in cells.enumerated() {
          for (t, x) in series(cell).prefix(T).enumerated() { v[i * T + t] = x }
        }
        try finish(try g.createDataset(name, values: v, shape: [F, L, S, T]), [label, lr, seed, step], units: units)
      }
      try grid4("loss", { $0.loss }, units: "nats per item (training loss); NaN after divergence")
      try grid4("grad_norm", { $0.gradNorm }, units: "global L2 norm of the gradient before clipping")

      // eval_loss [label, lr, seed, eval_step]: the steps at which any run was evaluated.
      let evalSteps = Array(Set(cells.flatMap { $0.evals.keys })).sorted()
      if !evalSteps.isEmpty {
        let es = try g.createDimensionScale("eval_step", values: evalSteps)
        try es.setAttribute("units", "completed optimizer steps")
        let v = cells.flatMap { cell in evalSteps.map { cell.evals[$0] ?? .nan } }
        try finish(
          try g.createDataset("eval_loss", values: v, shape: [F, L, S, evalSteps.count]), [label, lr, seed, es],
          units: "nats per item (validation)")
        // Classifiers (any run with an accuracy): the same over accuracy, and its final value.
        if cells.contains(where: { !$0.accuracies.isEmpty }) {
          let a = cells.flatMap { cell in evalSteps.map { cell.accuracies[$0] ?? .nan } }
          try finish(
            try g.createDataset("eval_accuracy", values: a, shape: [F, L, S, evalSteps.count]), [label, lr, seed, es],
            units: "fraction of the validation set classified correctly")
          try grid3("final_eval_accuracy", { cells[$0].finalAccuracy }, units: "fraction of the validation set classified correctly, at the last step")
        }
      }

      // saturated / flushed / scale_saturated / scale_underflow [label, lr, seed, step, operand]: the
      // mean over layers of each rounded operand kind's fraction (NaN where a recipe does not round
      // that operand).
      let kinds = GEMMOperand.allCases.map(\.description).filter { k in cells.contains { $0.telemetry["saturated"]?[k] != nil } }
      var operandScale: H5Dataset? = nil
      if !kinds.isEmpty {
        let op = try g.createDimensionScale("operand", labels: kinds)
        operandScale = op
        try op.setAttribute("units", "GEMM operand (fwd_x: forward input, fwd_w: weight, dgrad_*: data gradient GEMM, wgrad_*: weight gradient GEMM)")
        for (name, units) in Self.telemetryKinds {
          var v = [Float](repeating: .nan, count: F * L * S * T * kinds.count)
          for (i, cell) in cells.enumerated() {
            for (k, kind) in kinds.enumerated() {
              guard let series = cell.telemetry[name]?[kind] else { continue }
              for (t, x) in series.prefix(T).enumerated() { v[((i * T) + t) * kinds.count + k] = x }
            }
          }
          try finish(try g.createDataset(name, values: v, shape: [F, L, S, T, kinds.count]), [label, lr, seed, step, op], units: units)
        }
      }

      // histogram [label, lr, seed, step, operand, binade] and the special counts, when runs recorded them.
      if let operandScale {
        try GridHistograms.write(
          into: g, spec: spec, grid: grid, kinds: kinds, operand: operandScale, scales: (label, lr, seed, step),
          finish: { d, scales, units in try finish(d, scales, units: units) })
      }
      try SharpnessResults.write(into: g, grid: grid, spec: spec, labelScale: label, lrScale: lr, seedScale: seed)
      if let chance = c.chance { try g.setAttribute("chance_loss", chance) }
      try g.setAttribute("chance_loss_definition", chanceDefinition)
      try g.setAttribute("chance_tolerance", chanceTolerance)
      try g.setAttribute("baseline", spec.baselineLabel)
      try g.setAttribute("blowup_margin_nats", spec.blowupMargin ?? GridSpec.defaultBlowupMargin)
      try g.setAttribute("failed_to_learn_margin_nats", spec.failedToLearnMargin)
      try g.setAttribute("runs_collected", c.cells.filter(\.present).count)
      try g.setAttribute("summary_json", summaryJSON(c.rows))
      try g.setAttribute("summary", table(c.rows, kind: spec.labelKind))
  }

  /// A final validation loss within this fraction of the chance level counts as at chance.
  public static let chanceTolerance = 0.02

  /// The name of `/results`' first dimension: `recipe` in every grid from schema_version 2 on, so that
  /// a notebook selects `recipe=` whatever the grid's labels are (`@label_kind` says whether they are
  /// formats or recipes); version 1 files, kept as they were written, named it after the labels.
  static func labelDimension(of grid: H5File, spec: GridSpec) throws -> String {
    let version = try FileHeader.read(from: grid)?.schemaVersion ?? Schema.grid.version
    return version >= 2 ? "recipe" : spec.labelKind
  }

  /// The operand telemetry kinds collected into `/results` (from each run's `metrics/<kind>/`), with units.
  static let telemetryKinds: [(name: String, units: String)] = [
    ("saturated", "fraction of the operand's values changed by the clamp at the format's max, mean over layers"),
    ("flushed", "fraction of the operand's nonzero values rounded to zero, mean over layers"),
    ("scale_saturated", "block formats: fraction of blocks whose scale saturated at the scale format's max, mean over layers (0 for element formats)"),
    ("scale_underflow", "block formats: fraction of nonzero blocks whose scale underflowed the scale format's min, mean over layers (0 for element formats)"),
  ]

  static let chanceDefinition =
    "the loss of the best model that ignores its input: the entropy of the training text's character frequencies (language models), ln(classes) (classification), the variance of the standardized targets (regression)"

  /// Non-dimension coordinates along the label axis: a format's exponent, mantissa and total bits; a
  /// recipe grid's factors (every recipe key whose value differs between the recipes). Returns their names.
  static func labelCoordinates(spec: GridSpec, in g: H5Group, label: H5Dataset) throws -> [String] {
    var names: [String] = []
    if spec.labelKind == "format" {
      let formats = spec.labels.compactMap { try? FloatFormat(parsing: $0) }
      guard formats.count == spec.labels.count else { return [] }
      for (name, value, units) in [
        ("exponent_bits", { (f: FloatFormat) in f.exponentBits }, "bits"), ("mantissa_bits", { $0.mantissaBits }, "bits"),
        ("total_bits", { ($0.signed ? 1 : 0) + $0.exponentBits + $0.mantissaBits }, "bits (sign, exponent and mantissa)"),
      ] {
        let d = try g.createDataset(name, values: formats.map { Int64(value($0)) }, compression: .none)
        try d.attach(scales: [label])
        try d.setAttribute("units", units)
        names.append(name)
      }
      return names
    }
    let settings = spec.recipes.map { recipeSettings($0) }
    let keys = Set(settings.flatMap(\.keys)).sorted()
    for key in keys where key != "description" && key != "base" {
      let values = settings.map { $0[key] ?? "" }
      guard Set(values).count > 1 else { continue }
      let name = "factor_" + key.map { $0.isLetter || $0.isNumber ? $0 : "_" }.map(String.init).joined()
      let d = try g.createDataset(name, strings: values)
      try d.attach(scales: [label])
      try d.setAttribute("units", "recipe setting '\(key)'")
      names.append(name)
    }
    return names
  }

  /// A recipe's resolved settings as dotted keys (`forward.x.format` -> `mxfp4_e2m1`).
  static func recipeSettings(_ text: String) -> [String: String] {
    (try? Recipe(parsing: text)).flatMap { JSONValue(parsing: $0.json) }?.leaves ?? [:]
  }

  static func summaryJSON(_ rows: [Row]) throws -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]  // the same bytes whatever the process
    return String(decoding: try e.encode(rows), as: UTF8.self)
  }

  /// The summary of a grid file (for `fpsim inspect` and the end of `fpsim grid`): the one stored in
  /// `/results` when present (read-only), else computed from the runs without a chance level.
  public static func summary(of grid: H5File) throws -> (spec: GridSpec, rows: [Row]) {
    let header = try FileHeader.read(from: grid)
    guard let config = header?.config,
      let spec = try? JSONDecoder().decode(GridSpec.self, from: Data(config.utf8))
    else {
      throw StoreError(.schema, file: grid.path, "its grid spec does not decode; read it with the fpsim that wrote it")
    }
    if try grid.root.contains("/results"), let json = try grid.group("/results").attribute("summary_json")?.stringValue,
      let rows = try? JSONDecoder().decode([Row].self, from: Data(json.utf8))
    {
      return (spec, rows)
    }
    return (spec, try compute(spec: spec, grid: grid, chance: nil).rows)
  }

  static func compute(spec: GridSpec, grid: H5File, chance: Double?) throws -> Computed {
    var cells: [Cell] = []
    for r in spec.runs {
      var c = Cell()
      if try grid.root.contains("/runs/" + r.id) {
        c = try readCell(try grid.group("/runs/" + r.id))
      }
      cells.append(c)
    }
    let status = statuses(spec: spec, cells: cells, chance: chance)
    return Computed(cells: cells, status: status, rows: rows(spec: spec, cells: cells, status: status), chance: chance)
  }

  /// The summary rows from the cells and their statuses.
  static func rows(spec: GridSpec, cells: [Cell], status: [RunStatus]) -> [Row] {
    let L = spec.lrs.count, S = spec.seeds.count
    var rows: [Row] = []
    for (f, label) in spec.labels.enumerated() {
      let idx = { (l: Int, s: Int) in (f * L + l) * S + s }
      let mine = (0..<L).flatMap { l in (0..<S).map { status[idx(l, $0)] } }
      func fraction(_ ss: [RunStatus]) -> Double { Double(mine.filter(ss.contains).count) / Double(L * S) }
      let stable = (0..<L).filter { l in (0..<S).allSatisfy { status[idx(l, $0)] == .learned } }.map { spec.lrs[$0] }
      let best = BestLearningRate.choose(
        lrs: L, seeds: S, finalEval: { Double(cells[idx($0, $1)].finalEval) }, diverged: { cells[idx($0, $1)].diverged })
      var fractions: [String: Double] = [:]
      for s in RunStatus.allCases { fractions[s.name] = fraction([s]) }
      rows.append(Row(
        label: label, runs: L * S, divergedFraction: fraction([.diverged]),
        failedToLearnFraction: fraction([.atChance, .worseThanBaseline, .worseThanBestLR]), statusFractions: fractions,
        bestLR: best.map { spec.lrs[$0.index] }, medianEvalLoss: best?.median, minEvalLoss: best?.low, maxEvalLoss: best?.high,
        stableLRs: stable))
    }
    return rows
  }

  static func readCell(_ g: H5Group) throws -> Cell {
    var c = Cell()
    c.present = true
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
    if try g.contains("metrics/grad_norm") { c.gradNorm = try g.dataset("metrics/grad_norm").read(as: Float.self) }
    let steps = try g.dataset("metrics/step").read(as: Int64.self)
    let evals = try g.dataset("metrics/eval_loss").read(as: Float.self)
    for (s, e) in zip(steps, evals) where !e.isNaN { c.evals[s] = e }
    if try g.contains("metrics/eval_accuracy") {
      for (s, a) in zip(steps, try g.dataset("metrics/eval_accuracy").read(as: Float.self)) where !a.isNaN { c.accuracies[s] = a }
      c.finalAccuracy = Float(try g.attribute("final_eval_accuracy")?.doubleValue ?? .nan)
    }
    c.minEval = c.evals.values.filter(\.isFinite).min() ?? .nan
    for (kind, _) in Self.telemetryKinds where try g.contains("metrics/" + kind) {
      var sums: [String: (sum: [Float], n: Int)] = [:]
      for child in try g.group("metrics/" + kind).children() {
        guard let operand = GEMMOperand.kind(ofTelemetryName: child.name) else { continue }
        let v = try g.dataset("metrics/\(kind)/\(child.name)").read(as: Float.self)
        var entry = sums[operand] ?? ([Float](repeating: 0, count: v.count), 0)
        for i in 0..<min(v.count, entry.sum.count) { entry.sum[i] += v[i] }
        entry.n += 1
        sums[operand] = entry
      }
      c.telemetry[kind] = sums.mapValues { e in e.sum.map { $0 / Float(e.n) } }
    }
    return c
  }

  /// Each run's status (`RunStatus`), the first rule that holds. Without a chance level (`chance`
  /// nil: summaries of files written before it was stored) the at-chance rule is not applied.
  static func statuses(spec: GridSpec, cells: [Cell], chance: Double?) -> [RunStatus] {
    let F = spec.labels.count, L = spec.lrs.count, S = spec.seeds.count
    let blowup = spec.blowupMargin ?? GridSpec.defaultBlowupMargin, margin = spec.failedToLearnMargin
    let baseline = spec.labels.firstIndex(of: spec.baselineLabel) ?? 0
    var out = [RunStatus](repeating: .missing, count: cells.count)
    for f in 0..<F {
      for s in 0..<S {
        let ids = (0..<L).map { (f * L + $0) * S + s }
        let best = ids.filter { !cells[$0].diverged }.map { Double(cells[$0].finalEval) }.filter(\.isFinite).min()
        for (l, i) in ids.enumerated() {
          let c = cells[i]
          guard c.present else { continue }
          let e = Double(c.finalEval)
          let b = cells[(baseline * L + l) * S + s]
          if c.diverged {
            out[i] = .diverged
          } else if e.isFinite, c.minEval.isFinite, e > Double(c.minEval) + blowup {
            out[i] = .blewUp
          } else if !e.isFinite || (chance.map { e >= $0 * (1 - chanceTolerance) } ?? false) {
            out[i] = .atChance
          } else if f != baseline, b.present, !b.diverged, b.finalEval.isFinite, e > Double(b.finalEval) + margin {
            out[i] = .worseThanBaseline
          } else if let best, e > best + margin {
            out[i] = .worseThanBestLR
          } else {
            out[i] = .learned
          }
        }
      }
    }
    return out
  }

  public static func table(_ rows: [Row], kind: String) -> String {
    func n(_ d: Double?) -> String { d.map { String(format: "%.4f", $0) } ?? "-" }
    func pct(_ r: Row, _ s: RunStatus) -> String { String(format: "%.0f%%", 100 * (r.statusFractions[s.name] ?? 0)) }
    var lines = [
      "\(kind)  runs  diverged  blew up  at chance  worse than baseline  worse than best lr  best lr  eval loss median [min, max]  stable lrs"
    ]
    for r in rows {
      lines.append(
        "\(r.label)  \(r.runs)  \(pct(r, .diverged))  \(pct(r, .blewUp))  \(pct(r, .atChance))  \(pct(r, .worseThanBaseline))  \(pct(r, .worseThanBestLR))  "
          + "\(r.bestLR.map { GridSpec.number($0) } ?? "-")  \(n(r.medianEvalLoss)) [\(n(r.minEvalLoss)), \(n(r.maxEvalLoss))]  "
          + (r.stableLRs.isEmpty ? "none" : r.stableLRs.map { GridSpec.number($0) }.joined(separator: ", ")))
    }
    return NumberText.columns(lines)
  }
}
