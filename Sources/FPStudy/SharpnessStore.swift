import FPStore

/// One run's values of one sharpness metric measured with one variant of options, by step.
public struct SharpnessSeries: Sendable {
  /// The metric's name as stored (`keskar-logits`, `hessian-top`, `sam`, or a newer fpsim's).
  public var metric: String
  /// The variant's canonical name (``SharpnessVariant/name``).
  public var variant: String
  /// Whether the variant is the metric's default options in float32 (``SharpnessVariant/standard(_:)``).
  public var isStandard: Bool
  /// The variant group's attributes (options, `under_recipe`, ...), sorted by name.
  public var attributes: [String: AttributeValue]
  /// Completed steps of the checkpoints measured, ascending, each once; `values[k]` belongs to `steps[k]`.
  public var steps: [Int]
  public var values: [Double]
  /// hessian-top only: power iterations run and whether the eigenvalue converged (1) or stopped at
  /// the iteration limit (0); -1 where not recorded (values stored by an fpsim before these existed).
  public var iterations: [Int]?
  public var converged: [Int]?
}

/// Where a run keeps its sharpness (docs/files.md "Sharpness"):
///
///     /runs/<id>/sharpness/<metric>/<variant>/
///         step        int64 [K]     completed steps of the checkpoints measured, ascending
///         value       float64 [K]
///         iterations  int64 [K]     hessian-top only
///         converged   int64 [K]     hessian-top only: 1 converged, 0 stopped at power_iterations
///         @metric, @variant, @<each option>, @under_recipe
///
/// Each variant group is one unit (FPStore `publishUnit`): recording a measurement rewrites that
/// variant's group with its old points plus the new ones, a step measured again taking the new value;
/// every other variant and metric is left as it is, bit for bit.
///
/// Files written before variants kept one series per metric in the metric group itself
/// (`/runs/<id>/sharpness/<metric>/{step,value}`, options as its attributes). They read as that one
/// variant; the first new measurement of that metric moves it into its variant group.
enum SharpnessStore {
  /// Every series stored under `run` (a `/runs/<id>` group), sorted by metric, then variant name.
  static func series(in run: H5Group) throws -> [SharpnessSeries] {
    guard try run.contains("sharpness") else { return [] }
    let sharpness = try run.group("sharpness")
    var out: [SharpnessSeries] = []
    for m in try sharpness.children() where m.kind == .group {
      let g = try sharpness.group(m.name)
      if try g.contains("value") {
        if let s = try legacySeries(g, metric: m.name) { out.append(s) }
        continue
      }
      for v in try g.children() where v.kind == .group {
        out.append(try read(try g.group(v.name), metric: m.name, variant: v.name))
      }
    }
    return out.sorted { ($0.metric, $0.variant) < ($1.metric, $1.variant) }
  }

  /// Records new points of one series: merged with what the variant holds (a step already there
  /// takes the new value), published as one unit replacing only that variant's group.
  static func record(_ new: SharpnessSeries, in run: H5Group) throws {
    let sharpness = try run.requireGroup("sharpness")
    if try sharpness.contains(new.metric + "/value"), let old = try legacySeries(try sharpness.group(new.metric), metric: new.metric) {
      // Move the old layout's series into its variant group (the metric group is replaced as one unit).
      try sharpness.publishUnit(new.metric, replace: true) { g in
        try write(old, to: try g.createGroup(old.variant))
      }
    }
    let metric = try sharpness.requireGroup(new.metric)
    var merged = new
    if try metric.contains(new.variant) {
      let old = try read(try metric.group(new.variant), metric: new.metric, variant: new.variant)
      merged = merge(old, new)
    }
    try metric.publishUnit(new.variant, replace: true) { try write(merged, to: $0) }
  }

  /// `old`'s points at steps `new` does not have, and all of `new`'s, ascending by step. Values are
  /// copied, never recomputed, so the points kept are bit for bit the ones stored.
  static func merge(_ old: SharpnessSeries, _ new: SharpnessSeries) -> SharpnessSeries {
    let replaced = Set(new.steps)
    var points: [(step: Int, value: Double, iterations: Int, converged: Int)] = []
    for (k, s) in old.steps.enumerated() where !replaced.contains(s) {
      points.append((s, old.values[k], old.iterations?[k] ?? -1, old.converged?[k] ?? -1))
    }
    for (k, s) in new.steps.enumerated() {
      points.append((s, new.values[k], new.iterations?[k] ?? -1, new.converged?[k] ?? -1))
    }
    points.sort { $0.step < $1.step }
    var out = new
    out.steps = points.map(\.step)
    out.values = points.map(\.value)
    if old.iterations != nil || new.iterations != nil {
      out.iterations = points.map(\.iterations)
      out.converged = points.map(\.converged)
    }
    return out
  }

  static func write(_ s: SharpnessSeries, to g: H5Group) throws {
    try g.createDataset("step", values: s.steps.map(Int64.init))
    try g.createDataset("value", values: s.values)
    if let iterations = s.iterations { try g.createDataset("iterations", values: iterations.map(Int64.init)) }
    if let converged = s.converged { try g.createDataset("converged", values: converged.map(Int64.init)) }
    for (name, value) in s.attributes.sorted(by: { $0.key < $1.key }) { try g.setAttribute(name, value) }
  }

  static func read(_ g: H5Group, metric: String, variant: String) throws -> SharpnessSeries {
    let steps = try g.dataset("step").read(as: Int64.self).map(Int.init)
    let values = try g.dataset("value").read(as: Double.self)
    guard steps.count == values.count else {
      throw StoreError(.schema, file: g.file.path, object: g.path, "has \(steps.count) steps but \(values.count) values")
    }
    let iterations = try g.contains("iterations") ? try g.dataset("iterations").read(as: Int64.self).map(Int.init) : nil
    let converged = try g.contains("converged") ? try g.dataset("converged").read(as: Int64.self).map(Int.init) : nil
    let standard = SharpnessMetric(rawValue: metric).map { SharpnessVariant.standard($0).name == variant } ?? false
    var attributes: [String: AttributeValue] = [:]
    for (name, value) in try g.attributes() { attributes[name] = value }
    return SharpnessSeries(
      metric: metric, variant: variant, isStandard: standard, attributes: attributes, steps: steps, values: values,
      iterations: iterations, converged: converged)
  }

  /// The old layout's one series, as the variant its attributes describe (nil for a metric this
  /// build does not know: its options cannot be named).
  static func legacySeries(_ g: H5Group, metric: String) throws -> SharpnessSeries? {
    guard let m = SharpnessMetric(rawValue: metric) else { return nil }
    let variant = try SharpnessVariant(metric: m, legacyAttributes: g)
    var s = try read(g, metric: metric, variant: variant.name)
    s.isStandard = variant.isStandard
    s.attributes["metric"] = .string(metric)
    s.attributes["variant"] = .string(variant.name)
    if m == .hessianTop && s.iterations == nil {
      s.iterations = Array(repeating: -1, count: s.steps.count)
      s.converged = Array(repeating: -1, count: s.steps.count)
    }
    return s
  }
}
