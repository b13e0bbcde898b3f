import FPEngine
import FPStore

/// The binade histograms of a grid's runs in `/results` (docs/files.md "fpsim/grid"): each run's
/// `metrics/histograms/counts` [operand, step, binade] summed over layers per operand kind (fwd_x, ...):
///
///     binade               [B] int32, dimension scale: the binades from the lowest to the highest any run reached
///     histogram            [label, lr, seed, step, operand, binade] int64
///     histogram_zeros, histogram_non_finite, histogram_flushed, histogram_saturated
///                          [label, lr, seed, step, operand] int64
///
/// -1 where nothing was recorded (a missing run, a run without histograms, a step after it stopped,
/// an operand kind its recipe does not round). Sums of counts, not means: a kind's histogram is that of
/// all its layers' values together. Written one label at a time (a label's slab is the largest buffer),
/// in chunks of one run's 64 steps, deflated: most bins are zero.
enum GridHistograms {
  static let specials = [("zeros", "histogram_zeros"), ("non_finite", "histogram_non_finite"), ("flushed", "histogram_flushed"), ("saturated", "histogram_saturated")]

  /// One run's histograms summed per kind: kind -> (counts [T, B] over `binades`, specials name -> [T]).
  struct RunSums {
    var first: Int
    var binCount: Int
    var steps: Int
    var counts: [String: [Int64]] = [:]
    var specials: [String: [String: [Int64]]] = [:]
  }

  static func read(_ run: H5Group) throws -> RunSums? {
    guard try run.contains("metrics/histograms") else { return nil }
    let g = try run.group("metrics/histograms")
    let names = try g.dataset("operand").readStrings()
    let binades = try g.dataset("binade").read(as: Int32.self)
    let counts = try g.dataset("counts").read(as: Int32.self)
    let P = names.count, B = binades.count
    guard P > 0, B > 0, counts.count % (P * B) == 0 else { return nil }
    let T = counts.count / (P * B)
    var s = RunSums(first: Int(binades[0]), binCount: B, steps: T)
    var special: [String: [Int32]] = [:]
    for (name, _) in specials { special[name] = try g.dataset(name).read(as: Int32.self) }
    for (p, name) in names.enumerated() {
      guard let kind = GEMMOperand.kind(ofTelemetryName: name) else { continue }
      var c = s.counts[kind] ?? [Int64](repeating: 0, count: T * B)
      for i in 0..<(T * B) { c[i] += Int64(counts[p * T * B + i]) }
      s.counts[kind] = c
      for (sname, _) in specials {
        var v = s.specials[kind]?[sname] ?? [Int64](repeating: 0, count: T)
        if let column = special[sname], column.count == P * T { for t in 0..<T { v[t] += Int64(column[p * T + t]) } }
        s.specials[kind, default: [:]][sname] = v
      }
    }
    return s
  }

  /// Writes the datasets into `g` when any run has histograms. `kinds` and `operand` are the operand
  /// axis `/results` already has; `finish` attaches scales and units as for the other datasets.
  static func write(
    into g: H5Group, spec: GridSpec, grid: H5File, kinds: [String], operand: H5Dataset,
    scales: (label: H5Dataset, lr: H5Dataset, seed: H5Dataset, step: H5Dataset),
    finish: (H5Dataset, [H5Dataset], String) throws -> Void
  ) throws {
    let runs = spec.runs
    // First pass: the binade range, from each run's scale alone.
    var lo = Int.max, hi = Int.min
    for r in runs where try grid.root.contains("/runs/" + r.id + "/metrics/histograms/binade") {
      let b = try grid.dataset("/runs/" + r.id + "/metrics/histograms/binade").read(as: Int32.self)
      if let f = b.first, let l = b.last {
        lo = min(lo, Int(f))
        hi = max(hi, Int(l))
      }
    }
    guard lo <= hi, !kinds.isEmpty else { return }
    let F = spec.labels.count, L = spec.lrs.count, S = spec.seeds.count, T = spec.steps, K = kinds.count, B = hi - lo + 1
    let binade = try g.createDimensionScale("binade", values: (lo...hi).map(Int32.init))
    try binade.setAttribute("units", "floor(log2 |x|): bin b counts 2^b <= |x| < 2^(b+1)")
    let counts = try g.createDataset(
      "histogram", type: .int64, shape: [F, L, S, T, K, B], chunk: [1, 1, 1, min(T, 64), K, B])
    try finish(
      counts, [scales.label, scales.lr, scales.seed, scales.step, operand, binade],
      "values of the operand kind (all layers) as they entered rounding, per binade floor(log2 |x|); -1: not recorded")
    var special: [(String, H5Dataset)] = []
    for (name, dataset) in specials {
      let d = try g.createDataset(dataset, type: .int64, shape: [F, L, S, T, K], chunk: [1, 1, 1, min(T, 4096), K])
      try finish(
        d, [scales.label, scales.lr, scales.seed, scales.step, operand],
        (RunHistograms.units[name] ?? name) + ", summed over layers; -1: not recorded")
      special.append((name, d))
    }
    let runsPerLabel = L * S
    for f in 0..<F {
      var slab = [Int64](repeating: -1, count: runsPerLabel * T * K * B)
      var slabSpecial = [String: [Int64]]()
      for (name, _) in specials { slabSpecial[name] = [Int64](repeating: -1, count: runsPerLabel * T * K) }
      for i in 0..<runsPerLabel {
        let r = runs[f * runsPerLabel + i]
        guard try grid.root.contains("/runs/" + r.id), let sums = try read(try grid.group("/runs/" + r.id)) else { continue }
        for (k, kind) in kinds.enumerated() {
          guard let c = sums.counts[kind] else { continue }
          for t in 0..<min(T, sums.steps) {
            let base = ((i * T + t) * K + k) * B
            for b in 0..<B { slab[base + b] = 0 }
            for b in 0..<sums.binCount { slab[base + sums.first - lo + b] = c[t * sums.binCount + b] }
            for (name, _) in specials { slabSpecial[name]![(i * T + t) * K + k] = sums.specials[kind]?[name]?[t] ?? -1 }
          }
        }
      }
      try counts.write(slab, rows: f..<(f + 1))
      for (name, d) in special { try d.write(slabSpecial[name]!, rows: f..<(f + 1)) }
    }
  }
}
