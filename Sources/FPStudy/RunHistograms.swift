import FPEngine
import FPStore

/// The binade histograms of a run's rounded operands, every step, held in memory and written as
/// `metrics/histograms/` (docs/files.md "fpsim/run"):
///
///     operand      [P] strings, dimension scale: `<layer>.<operand>` (the telemetry names)
///     step         [T] int64, dimension scale: completed optimizer steps 1...T
///     binade       [B] int32, dimension scale: floor(log2 |x|), the binades from the lowest to the
///                  highest any operand reached in the run (a sub-range of -149...127; counts outside
///                  it are zero); -149...127 whole when no operand had a nonzero finite value
///     counts       [operand, step, binade] int32: nonzero finite values per binade, as they entered rounding
///     zeros, non_finite, flushed, saturated   [operand, step] int32
///
/// In memory each row keeps only the bins from its lowest to its highest nonzero one (a few dozen of
/// the 277), so a long run's histograms cost about as much as its other metrics.
struct RunHistograms {
  /// One operand's rows.
  struct Series {
    /// Per row: the index (binade + 149) of its first stored bin, and where its bins start in `values`.
    var first: [Int16] = []
    var start: [Int] = [0]
    var values: [Int32] = []
    var zeros: [Int32] = [], nonFinite: [Int32] = [], flushed: [Int32] = [], saturated: [Int32] = []

    var count: Int { zeros.count }

    mutating func append(_ h: BinadeHistogram) {
      let lo = h.counts.firstIndex { $0 != 0 }, hi = h.counts.lastIndex { $0 != 0 }
      if let lo, let hi {
        first.append(Int16(lo))
        values.append(contentsOf: h.counts[lo...hi])
      } else {
        first.append(0)
      }
      start.append(values.count)
      zeros.append(h.zeros)
      nonFinite.append(h.nonFinite)
      flushed.append(h.flushed)
      saturated.append(h.saturated)
    }

    /// The bin indices row r holds (empty when it has no nonzero finite value).
    func bins(_ r: Int) -> Range<Int> { Int(first[r])..<(Int(first[r]) + start[r + 1] - start[r]) }

    /// Row r over bin indices `range` (counts outside the row's bins are zero).
    func row(_ r: Int, over range: Range<Int>, into out: UnsafeMutablePointer<Int32>) {
      out.update(repeating: 0, count: range.count)
      let b = bins(r)
      for i in b where range.contains(i) { out[i - range.lowerBound] = values[start[r] + i - b.lowerBound] }
    }

    mutating func truncate(to rows: Int) {
      guard rows < count else { return }
      first.removeSubrange(rows...)
      start.removeSubrange((rows + 1)...)
      values.removeSubrange(start[rows]...)
      zeros.removeSubrange(rows...)
      nonFinite.removeSubrange(rows...)
      flushed.removeSubrange(rows...)
      saturated.removeSubrange(rows...)
    }
  }

  /// Operand name -> its rows.
  var series: [String: Series] = [:]

  /// The union over operands and rows of the bins that hold a count (nil: none).
  var binRange: Range<Int>? {
    var lo = Int.max, hi = Int.min
    for s in series.values {
      for r in 0..<s.count {
        let b = s.bins(r)
        if !b.isEmpty {
          lo = min(lo, b.lowerBound)
          hi = max(hi, b.upperBound)
        }
      }
    }
    return lo <= hi ? lo..<hi : nil
  }

  mutating func append(_ histograms: [BinadeHistogram], names: [String]) {
    guard histograms.count == names.count else { return }
    for (h, name) in zip(histograms, names) { series[name, default: Series()].append(h) }
  }

  mutating func truncate(to rows: Int) {
    for name in series.keys { series[name]!.truncate(to: rows) }
  }

  static let units = [
    "counts": "values as they entered rounding with floor(log2 |x|) = binade (nonzero finite values)",
    "zeros": "values that were zero as they entered rounding",
    "non_finite": "values that were Inf or NaN as they entered rounding",
    "flushed": "nonzero values the rounding made zero (metrics/flushed is this over the operand's size)",
    "saturated": "values the rounding clamped at the format's max (metrics/saturated is this over the operand's size)",
  ]

  /// Writes `histograms` into `metrics` (nothing when no operand has rows); `names` in telemetry order.
  func write(into metrics: H5Group, names: [String], steps: [Int64]) throws {
    let names = names.filter { (series[$0]?.count ?? 0) > 0 }
    guard !names.isEmpty else { return }
    let T = series[names[0]]!.count
    guard names.allSatisfy({ series[$0]!.count == T }), steps.count == T else { return }
    let bins = binRange ?? 0..<BinadeHistogram.binCount
    let B = bins.count, P = names.count
    let g = try metrics.createGroup("histograms")
    let operand = try g.createDimensionScale("operand", labels: names)
    try operand.setAttribute("units", "rounded GEMM operand <layer>.<operand>")
    let step = try g.createDimensionScale("step", values: steps)
    try step.setAttribute("units", "completed optimizer steps")
    let binade = try g.createDimensionScale("binade", values: bins.map { Int32($0 + BinadeHistogram.binades.lowerBound) })
    try binade.setAttribute("units", "floor(log2 |x|): bin b counts 2^b <= |x| < 2^(b+1)")
    let counts = try g.createDataset(
      "counts", type: .int32, shape: [P, T, B], chunk: [1, min(T, max(1, 65_536 / B)), B])
    var row = [Int32](repeating: 0, count: T * B)
    for (p, name) in names.enumerated() {
      let s = series[name]!
      row.withUnsafeMutableBufferPointer { out in
        for r in 0..<T { s.row(r, over: bins, into: out.baseAddress! + r * B) }
      }
      try counts.write(row, rows: p..<(p + 1))
    }
    try counts.attach(scales: [operand, step, binade])
    try counts.setAttribute("units", Self.units["counts"]!)
    for (kind, column) in [("zeros", \Series.zeros), ("non_finite", \.nonFinite), ("flushed", \.flushed), ("saturated", \.saturated)] {
      let d = try g.createDataset(kind, values: names.flatMap { series[$0]![keyPath: column] }, shape: [P, T], chunk: [1, min(T, 16_384)])
      try d.attach(scales: [operand, step])
      try d.setAttribute("units", Self.units[kind]!)
    }
  }

  /// Reads `metrics/histograms` back (a resumed run continues from a unit's rows); empty when absent.
  static func read(from metrics: H5Group, rows: Int) throws -> RunHistograms {
    var h = RunHistograms()
    guard try metrics.contains("histograms") else { return h }
    let g = try metrics.group("histograms")
    let names = try g.dataset("operand").readStrings()
    let binades = try g.dataset("binade").read(as: Int32.self)
    let counts = try g.dataset("counts").read(as: Int32.self)
    let P = names.count, B = binades.count
    guard let lo = binades.first.map({ Int($0) - BinadeHistogram.binades.lowerBound }), counts.count == P * rows * B else {
      throw StoreError(.schema, file: metrics.file.path, object: g.path, "does not hold \(rows) rows of \(P) operands")
    }
    var specials: [String: [Int32]] = [:]
    for kind in ["zeros", "non_finite", "flushed", "saturated"] {
      let v = try g.dataset(kind).read(as: Int32.self)
      guard v.count == P * rows else { throw StoreError(.schema, file: metrics.file.path, object: g.path + "/" + kind, "does not hold \(rows) rows") }
      specials[kind] = v
    }
    for (p, name) in names.enumerated() {
      var s = Series()
      for r in 0..<rows {
        var bh = BinadeHistogram()
        for b in 0..<B { bh.counts[lo + b] = counts[(p * rows + r) * B + b] }
        bh.zeros = specials["zeros"]![p * rows + r]
        bh.nonFinite = specials["non_finite"]![p * rows + r]
        bh.flushed = specials["flushed"]![p * rows + r]
        bh.saturated = specials["saturated"]![p * rows + r]
        s.append(bh)
      }
      h.series[name] = s
    }
    return h
  }
}
