import FPStore
import Foundation

/// The sharpness arrays of a grid's `/results` (docs/files.md "fpsim/grid"), built from whatever the
/// runs store (``SharpnessStore``): every metric and variant found, whoever measured it (a grid spec's
/// `sharpness_every`, or `fpsim sharpness` afterwards), so rebuilding `/results` never loses one.
///
///     sharpness_step                    int64 [K]   dimension scale: every step measured in any run
///     sharpness_<metric>[_<variant>]    float64 [<label>, lr, seed, sharpness_step]   NaN where not measured
///     <that name>_iterations, _converged  int64 [same]   hessian-top only; -1 where not measured or not recorded
///
/// `<metric>` with `-` as `_`; the variant suffix is absent for the default options in float32
/// (``SharpnessVariant/standard(_:)``), else the variant's name with `=` and `,` as `_`
/// (`sharpness_sam_rho_0.1`, `sharpness_keskar_logits_epsilon_0.01_ascent_steps_20_under_recipe`).
/// Each array carries `metric`, `variant` (the canonical name), its options, `under_recipe`
/// (1: measured under each run's own recipe) and `units`.
public enum SharpnessResults {
  /// Writes the sharpness arrays into `results` (a `/results` group being built, or the existing one
  /// after ``republish(in:spec:)`` removed the old arrays), reading the runs of `spec` from `grid`.
  /// The three scales label the first three axes (the ones `/results` already has). Writes nothing
  /// when no run has sharpness.
  public static func write(
    into results: H5Group, grid: H5File, spec: GridSpec, labelScale: H5Dataset, lrScale: H5Dataset, seedScale: H5Dataset
  ) throws {
    let runs = spec.runs
    var stored: [[SharpnessSeries]] = []
    for r in runs {
      let path = "/runs/" + r.id
      stored.append(try grid.root.contains(path) ? try SharpnessStore.series(in: try grid.group(path)) : [])
    }
    // One array per (metric, variant), in name order; the sharpness_step axis is the union of steps.
    struct Key: Hashable, Comparable {
      let metric: String, variant: String
      static func < (a: Key, b: Key) -> Bool { (a.metric, a.variant) < (b.metric, b.variant) }
    }
    var first: [Key: SharpnessSeries] = [:]
    var steps = Set<Int>()
    for list in stored {
      for s in list {
        let key = Key(metric: s.metric, variant: s.variant)
        if first[key] == nil { first[key] = s }
        steps.formUnion(s.steps)
      }
    }
    guard !first.isEmpty else { return }
    let K = steps.sorted()
    let column = Dictionary(uniqueKeysWithValues: K.enumerated().map { ($0.element, $0.offset) })
    let F = spec.labels.count, L = spec.lrs.count, S = spec.seeds.count
    let kScale = try results.createDimensionScale("sharpness_step", values: K.map(Int64.init))
    try kScale.setAttribute("units", "completed training steps of the checkpoints measured")
    let scales = [labelScale, lrScale, seedScale, kScale]
    for key in first.keys.sorted() {
      let example = first[key]!
      var values = [Double](repeating: .nan, count: runs.count * K.count)
      var iterations = [Int64](repeating: -1, count: runs.count * K.count)
      var converged = [Int64](repeating: -1, count: runs.count * K.count)
      var hasIterations = false
      for (i, list) in stored.enumerated() {
        guard let s = list.first(where: { $0.metric == key.metric && $0.variant == key.variant }) else { continue }
        for (k, step) in s.steps.enumerated() {
          let at = i * K.count + column[step]!
          values[at] = s.values[k]
          if let it = s.iterations, let c = s.converged {
            hasIterations = true
            iterations[at] = Int64(it[k])
            converged[at] = Int64(c[k])
          }
        }
      }
      let name = arrayName(metric: key.metric, variant: key.variant, standard: example.isStandard)
      let d = try results.createDataset(name, values: values, shape: [F, L, S, K.count])
      try d.attach(scales: scales)
      try describe(d, example)
      try d.setAttribute("units", units(key.metric))
      if hasIterations {
        let it = try results.createDataset(name + "_iterations", values: iterations, shape: [F, L, S, K.count])
        try it.attach(scales: scales)
        try describe(it, example)
        try it.setAttribute("units", "power iterations run; -1 where not measured or not recorded")
        let c = try results.createDataset(name + "_converged", values: converged, shape: [F, L, S, K.count])
        try c.attach(scales: scales)
        try describe(c, example)
        try c.setAttribute(
          "units", "1 converged within the tolerance, 0 stopped at power_iterations; -1 where not measured or not recorded")
      }
    }
  }

  /// Replaces the sharpness arrays of an existing `/results` in place (`fpsim sharpness` on a grid
  /// file): removes every `sharpness_*` dataset, then ``write(into:grid:spec:labelScale:lrScale:seedScale:)``.
  /// Nothing else in `/results` is touched. Does nothing when the grid has no `/results` yet (it is
  /// built, sharpness included, when the grid finishes).
  public static func republish(in grid: H5File, spec: GridSpec) throws {
    guard try grid.root.contains("/results") else { return }
    let results = try grid.group("/results")
    let old = try results.children().filter { $0.kind == .dataset && $0.name.hasPrefix("sharpness_") }.map(\.name)
    for name in old where name != "sharpness_step" {
      // Detach first so the format, lr and seed scales keep no reference to a deleted array.
      let d = try results.dataset(name)
      for (axis, scaleNames) in try d.dimensionScaleNames().enumerated() {
        for scaleName in scaleNames where try results.contains(scaleName) {
          try d.detach(scale: try results.dataset(scaleName), fromDimension: axis)
        }
      }
      try results.delete(name)
    }
    if old.contains("sharpness_step") { try results.delete("sharpness_step") }
    try write(
      into: results, grid: grid, spec: spec, labelScale: try results.dataset(try GridResults.labelDimension(of: grid, spec: spec)),
      lrScale: try results.dataset("lr"), seedScale: try results.dataset("seed"))
    try grid.flush(durable: true)
  }

  /// `sharpness_<metric>` for the default options in float32, else `sharpness_<metric>_<variant>`,
  /// with `-`, `=` and `,` as `_`.
  public static func arrayName(metric: String, variant: String, standard: Bool) -> String {
    func clean(_ s: String) -> String {
      String(s.map { $0 == "-" || $0 == "=" || $0 == "," ? "_" : $0 })
    }
    return "sharpness_" + clean(metric) + (standard ? "" : "_" + clean(variant))
  }

  /// `metric`, `variant`, the options, and `under_recipe` as 0/1 (the runs' recipes differ).
  static func describe(_ d: H5Dataset, _ s: SharpnessSeries) throws {
    try d.setAttribute("metric", s.metric)
    try d.setAttribute("variant", s.variant)
    for (name, value) in s.attributes.sorted(by: { $0.key < $1.key })
    where !["metric", "variant", "under_recipe", "units"].contains(name) {
      try d.setAttribute(name, value)
    }
    try d.setAttribute("under_recipe", s.variant.hasSuffix("under_recipe") ? 1 : 0)
  }

  static func units(_ metric: String) -> String {
    switch SharpnessMetric(rawValue: metric) {
    case .keskarLogits: return "percent: 100 (max loss increase over the logit box) / (1 + loss), mean over the batch"
    case .hessianTop: return "training-loss units per squared parameter unit (largest-magnitude Hessian eigenvalue)"
    case .sam: return "training-loss units (nats per item; mean squared error for linreg): L(theta + rho g/|g|) - L(theta)"
    case nil: return "as stored under /runs/<id>/sharpness/\(metric)"
    }
  }
}
