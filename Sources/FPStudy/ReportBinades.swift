import FPEngine
import FPStore
import Foundation

extension SVG {
  /// The shade of a binade cell holding fraction `f` > 0 of its step's values: one of `binadeLevels`
  /// steps from white to dark blue on a log10 scale over six decades (1e-6 to 1), so that the tails
  /// where values underflow or saturate show beside the bulk; any nonzero fraction is at least a faint
  /// tint (level 2), 0 is not drawn. Cells of one level are drawn as one path, which keeps pages small.
  static let binadeLevels = 48
  static func binadeLevel(_ f: Double) -> Int {
    let shade = max(0.05, min(1, (log10(max(f, 1e-300)) + 6) / 6))
    return min(binadeLevels - 1, Int(shade * Double(binadeLevels)))
  }
  static func binadeShade(level: Int) -> String {
    let shade = (Double(level) + 0.5) / Double(binadeLevels)
    let rgb = [(1 - shade) * 255 + shade * 20, (1 - shade) * 255 + shade * 50, (1 - shade) * 255 + shade * 120].map { Int($0.rounded()) }
    return String(format: "#%02x%02x%02x", rgb[0], rgb[1], rgb[2])
  }

  /// Grey of a step column without values (not recorded: after a run stopped, or only zeros and
  /// non-finite values), so that it is not read as "0 everywhere".
  static let binadeMissing = "#d9d9d9"

  /// A heat map of binade (rows, lowest at the bottom) over steps (columns): each cell's shade is the
  /// fraction of that step's nonzero finite values in that binade (`binadeShade`). `fractions[c][b]` for
  /// column c, binade index b; a nil column is drawn grey (no values). Cells are the subpaths
  /// (`M...z`, one per nonzero fraction) of `<path class="cell">`, one path per shade level; grey
  /// columns are `<rect class="missing">`. Below 320 px wide the map is a
  /// small multiple: narrower margins, fewer ticks, a short axis title.
  static func binadeHeatMap(
    title: String, steps: [Int64], binades: [Int], fractions: [[Double]?], width: Double = 560, height: Double = 260
  ) -> String {
    let small = width < 320
    let left = 50.0, right = width - (small ? 16 : 14), top = 22.0, bottom = height - (small ? 34 : 40)
    var svg = open(width, height, title)
    guard let s0 = steps.first, let s1 = steps.last, let b0 = binades.first, let b1 = binades.last else {
      return svg + "<text x=\"\(px(width / 2))\" y=\"\(px(height / 2))\" text-anchor=\"middle\">no values</text></svg>"
    }
    // Columns span [step_c, step_c+1) (the last one step wide); rows [b, b + 1).
    let x = Axis(Double(s0), Double(s1 + 1), pixels: left, right), y = Axis(Double(b0), Double(b1 + 1), pixels: bottom, top)
    // Axes and grid lines first, under the cells; the outline again on top.
    let yTicks = SVG.ticks(Double(b0), Double(b1 + 1), count: small ? 4 : 6).filter { $0 == $0.rounded() }
    svg += frame(
      width: width, height: height, x: x, y: y, xTitle: "step", yTitle: small ? "binade" : "binade floor(log2 |x|)",
      xTicks: small ? SVG.ticks(Double(s0), Double(s1 + 1), count: 3) : nil, yTicks: yTicks)
    let empty = fractions.allSatisfy { $0 == nil }
    if empty {
      svg += "<rect x=\"\(px(left))\" y=\"\(px(top))\" width=\"\(px(right - left))\" height=\"\(px(bottom - top))\" class=\"missing\" fill=\"\(binadeMissing)\"/>"
      svg += "<text x=\"\(px((left + right) / 2))\" y=\"\(px((top + bottom) / 2 + 4))\" text-anchor=\"middle\">not recorded</text>"
    }
    var paths: [Int: String] = [:]  // shade level -> the cells' subpaths, one "M...z" each
    for (c, column) in fractions.enumerated() {
      // Each cell reaches 0.5 px into its right and lower neighbours (inside the frame), so that
      // anti-aliased edges leave no light seams between cells.
      let xa = x(Double(steps[c])), xb = min(right, (c + 1 < steps.count ? x(Double(steps[c + 1])) : right) + 0.5)
      let w = px(max(0.5, xb - xa))
      guard let column else {
        if !empty { svg += "<rect x=\"\(px(xa))\" y=\"\(px(top))\" width=\"\(w)\" height=\"\(px(bottom - top))\" class=\"missing\" fill=\"\(binadeMissing)\"/>" }
        continue
      }
      for (b, f) in column.enumerated() where f > 0 {
        let ya = y(Double(binades[b] + 1)), yb = min(bottom, y(Double(binades[b])) + 0.5)
        paths[binadeLevel(f), default: ""] += "M\(px(xa)) \(px(ya))h\(w)v\(px(max(0.5, yb - ya)))h-\(w)z"
      }
    }
    for (level, d) in paths.sorted(by: { $0.key < $1.key }) {
      svg += "<path class=\"cell\" fill=\"\(binadeShade(level: level))\" d=\"\(d)\"/>"
    }
    svg += "<rect x=\"\(px(left))\" y=\"\(px(top))\" width=\"\(px(right - left))\" height=\"\(px(bottom - top))\" class=\"frame\"/>"
    svg += "<text x=\"\(px(left))\" y=\"14\" class=\"title\">\(escape(title))</text>"
    return svg + "</svg>"
  }

  /// The colour key of the binade heat maps: the shades of fractions 1e-6 to 1 (log scale), with a
  /// white box for 0 and a grey one for "no values".
  static func binadeShadeKey(width: Double = 520) -> String {
    let left = 20.0, barRight = width - 190, top = 16.0, barHeight = 12.0
    var svg = open(width, 48, "colour key of the binade heat maps")
    svg += "<text x=\"\(px(left))\" y=\"11\" class=\"title\">fraction of the step's nonzero finite values in the binade (log scale)</text>"
    // Level i covers log10 fractions -6 + 6 i/L to -6 + 6 (i+1)/L; below level 2, cells are drawn at level 2.
    let n = binadeLevels
    for i in 0..<n {
      let a = left + (barRight - left) * Double(i) / Double(n), b = left + (barRight - left) * Double(i + 1) / Double(n)
      svg += "<rect x=\"\(px(a))\" y=\"\(px(top))\" width=\"\(px(b - a + 0.3))\" height=\"\(px(barHeight))\" fill=\"\(binadeShade(level: max(i, 2)))\"/>"
    }
    svg += "<rect x=\"\(px(left))\" y=\"\(px(top))\" width=\"\(px(barRight - left))\" height=\"\(px(barHeight))\" class=\"frame\"/>"
    for e in -6...0 {
      let cx = left + (barRight - left) * Double(e + 6) / 6
      svg += "<line x1=\"\(px(cx))\" x2=\"\(px(cx))\" y1=\"\(px(top + barHeight))\" y2=\"\(px(top + barHeight + 3))\" class=\"tick\"/>"
      svg += "<text x=\"\(px(cx))\" y=\"\(px(top + barHeight + 14))\" text-anchor=\"middle\">\(e == 0 ? "1" : "1e\(e)")</text>"
    }
    var gx = barRight + 20
    for (fill, label) in [("#ffffff", "0"), (binadeMissing, "no values")] {
      svg += "<rect x=\"\(px(gx))\" y=\"\(px(top))\" width=\"16\" height=\"\(px(barHeight))\" fill=\"\(fill)\" stroke=\"#888\"/>"
      svg += "<text x=\"\(px(gx + 21))\" y=\"\(px(top + barHeight - 2))\">\(label)</text>"
      gx += 50
    }
    return svg + "</svg>"
  }
}

/// Binade counts of one step turned into what the heat maps draw.
enum BinadeFractions {
  /// Each count over their sum; nil when the sum is 0 (the step had no nonzero finite value).
  static func of(_ counts: some Collection<Int64>) -> [Double]? {
    let total = counts.reduce(0, +)
    guard total > 0 else { return nil }
    return counts.map { Double($0) / Double(total) }
  }
}

extension PageBuilder {
  /// Heat maps of a run's binade histograms (metrics/histograms), one per operand kind, the counts
  /// summed over layers; nothing when the run recorded none. At most `maximumPoints` step columns.
  mutating func binadeHeatMaps(_ file: H5File, run: String) throws -> String {
    let base = "/runs/\(run)/metrics/histograms"
    guard try file.root.contains(base) else { return "" }
    let names = try file.dataset(base + "/operand").readStrings()
    let binades = try file.dataset(base + "/binade").read(as: Int32.self).map(Int.init)
    let steps = try file.dataset(base + "/step").read(as: Int64.self)
    let counts = try file.dataset(base + "/counts").read(as: Int32.self)
    let P = names.count, T = steps.count, B = binades.count
    guard P > 0, T > 0, B > 0, counts.count == P * T * B else { return "" }
    var kinds: [String: [Int64]] = [:], order: [String] = []
    for (p, name) in names.enumerated() {
      guard let kind = GEMMOperand.kind(ofTelemetryName: name) else { continue }
      if kinds[kind] == nil { order.append(kind) }
      var c = kinds[kind] ?? [Int64](repeating: 0, count: T * B)
      for i in 0..<(T * B) { c[i] += Int64(counts[p * T * B + i]) }
      kinds[kind] = c
    }
    let idx = ReportCurves.thin(T, maximum: options.maximumPoints)
    var s = "<h4>Binade histograms, all layers of each operand kind</h4><p class=\"note\">Each column is a step, each row a binade floor(log2 |x|) of the operand's nonzero finite values as they entered rounding; the darker, the larger that step's fraction of values there (log scale, key below). Grey: a step without nonzero finite values.</p>"
    s += SVG.binadeShadeKey() + "<div class=\"panels\">"
    var rows: [[String]] = []
    for kind in order {
      let c = kinds[kind]!
      var fractions: [[Double]?] = []
      for t in idx {
        fractions.append(BinadeFractions.of(c[(t * B)..<((t + 1) * B)]))
        for b in 0..<B where c[t * B + b] > 0 { rows.append([kind, String(steps[t]), String(binades[b]), String(c[t * B + b])]) }
      }
      s += "<div class=\"heatmap\" data-operand=\"\(SVG.escape(kind))\">"
      s += SVG.binadeHeatMap(title: kind, steps: idx.map { steps[$0] }, binades: binades, fractions: fractions) + "</div>"
    }
    return s + "</div>" + PageBuilder.table(nextPlot(), kind: "binades", header: ["operand", "step", "binade", "count"], rows: rows, leftColumns: 1, collapsed: true)
  }

  /// Heat maps of a grid's `/results/histogram` [label, lr, seed, step, operand, binade]: one row of
  /// small multiples per label (one map per operand kind) at the label's best learning rate
  /// (`BestLearningRate`; where every lr had a diverged seed, the lr where most seeds finished, then
  /// the lowest median). A cell is the mean over seeds of each seed's fraction of that step's values
  /// in the binade; a seed counts at a step where it recorded nonzero finite values. All maps share the
  /// binade range (the binades any of them reached) and the shade scale, so rows compare by eye.
  /// Each label is a `<details>` (open when there are at most 12 labels), with its numbers in a table.
  mutating func gridBinadeHeatMaps(file: H5File, g: GridStudy) throws -> String {
    let ops = g.histogramOperands, binades = g.histogramBinades
    let v = g.values, F = g.F, L = g.L, S = g.S, T = g.steps.count, K = ops.count, B = binades.count
    guard K > 0, B > 0, T > 0, F > 0, L > 0, S > 0 else { return "" }
    let d = try file.dataset("/results/histogram")
    let idx = ReportCurves.thin(T, maximum: options.maximumPoints / 3)
    struct Row {
      var lr: Int, choice: String
      /// [operand][column] -> mean fractions over the binades (nil: no seed had values) and seeds counted.
      var maps: [[[Double]?]], seeds: [[Int]]
    }
    var rows: [Row] = []
    var lo = Int.max, hi = Int.min
    for f in 0..<F {
      let (l, choice) = chooseLR(v, f)
      // [S, T, K, B] for label f at lr l: the only part of the array read.
      let counts = try d.read(as: Int64.self, box: [f..<(f + 1), l..<(l + 1), 0..<S, 0..<T, 0..<K, 0..<B])
      var maps: [[[Double]?]] = [], seeds: [[Int]] = []
      for k in 0..<K {
        var columns: [[Double]?] = [], used: [Int] = []
        for t in idx {
          var sum = [Double](repeating: 0, count: B), n = 0
          for s in 0..<S {
            let base = ((s * T + t) * K + k) * B
            // -1 in every bin: not recorded (run missing or stopped, operand not rounded).
            guard counts[base] >= 0, let fr = BinadeFractions.of(counts[base..<(base + B)]) else { continue }
            for b in 0..<B { sum[b] += fr[b] }
            n += 1
          }
          let column = n > 0 ? sum.map { $0 / Double(n) } : nil
          if let column, let first = column.firstIndex(where: { $0 > 0 }), let last = column.lastIndex(where: { $0 > 0 }) {
            lo = min(lo, first)
            hi = max(hi, last)
          }
          columns.append(column)
          used.append(n)
        }
        maps.append(columns)
        seeds.append(used)
      }
      rows.append(Row(lr: l, choice: choice, maps: maps, seeds: seeds))
    }
    var s = "<h2>Binade histograms</h2>"
    guard lo <= hi else { return s + "<p class=\"note\">The grid recorded binade histograms, but no run has nonzero finite values in them.</p>" }
    let shown = Array(binades[lo...hi])
    let steps = idx.map { Int64(g.steps[$0]) }
    s += "<p class=\"note\">Per \(v.labelKind), at its best learning rate (the lowest median final validation loss among the learning rates where no seed diverged), one heat map per GEMM operand kind: each column a step, each row a binade floor(log2 |x|) of the kind's values (all layers) as they entered rounding; the shade (log scale, key below) is the mean over seeds of each seed's fraction of that step's nonzero finite values in the binade. Grey: no seed recorded values at that step (a run that stopped, or an operand the \(v.labelKind) does not round). \(steps.count) of \(T) steps are shown; every map has binades \(shown.first!) to \(shown.last!), the range any of them reached. Open a \(v.labelKind)'s row by its name.</p>"
    s += SVG.binadeShadeKey()
    let kind = v.labelKind
    for (f, r) in rows.enumerated() {
      let lr = NumberText.number(v.lrs[r.lr])
      let heading = "\(v.labels[f]) — lr \(lr) (\(r.choice))"
      // A label that rounds no operand (fp32) gets a line, not a row of empty maps.
      if r.maps.allSatisfy({ $0.allSatisfy { $0 == nil } }) {
        s += "<p class=\"note heatrow\"><b>\(SVG.escape(v.labels[f]))</b>: no values recorded at lr \(lr) (a \(v.labelKind) that rounds no GEMM operand records no histograms).</p>"
        continue
      }
      s += "<details class=\"heatrow\"\(F <= 12 ? " open" : "")><summary>\(SVG.escape(heading))</summary><div class=\"panels\">"
      var table: [[String]] = []
      for (k, op) in ops.enumerated() {
        let fractions = r.maps[k].map { $0.map { Array($0[lo...hi]) } }
        s += "<div class=\"heatmap\" data-\(SVG.escape(kind))=\"\(SVG.escape(v.labels[f]))\" data-lr=\"\(lr)\" data-operand=\"\(SVG.escape(op))\">"
        s += SVG.binadeHeatMap(title: op, steps: steps, binades: shown, fractions: fractions, width: 196, height: 170) + "</div>"
        // One row per column: its nonzero run of binades, lowest first (zeros inside it written as 0).
        for (c, column) in fractions.enumerated() {
          guard let column, let first = column.firstIndex(where: { $0 > 0 }), let last = column.lastIndex(where: { $0 > 0 }) else {
            table.append([op, String(steps[c]), String(r.seeds[k][c]), "-", "-", "no values"])
            continue
          }
          table.append([op, String(steps[c]), String(r.seeds[k][c]), String(shown[first]), String(shown[last]),
                        column[first...last].map { $0 > 0 ? NumberText.g6($0) : "0" }.joined(separator: " ")])
        }
      }
      s += "</div>"
      s += PageBuilder.table(
        nextPlot(), kind: "grid-binades",
        header: ["operand", "step", "seeds", "lowest binade", "highest binade", "mean fraction in each binade from the lowest to the highest"],
        rows: table, leftColumns: 1, collapsed: true, caption: "numbers of these maps")
      s += "</details>"
    }
    return s
  }

  /// The learning rate a label's heat maps are drawn at, and why (shown on the page).
  func chooseLR(_ v: GridValues, _ f: Int) -> (Int, String) {
    let L = v.lrs.count, S = v.seeds.count
    if let best = BestLearningRate.choose(
      lrs: L, seeds: S, finalEval: { v.finalEval[v.index(f, $0, $1)] }, diverged: { v.diverged[v.index(f, $0, $1)] })
    {
      return (best.index, "best lr, mean over \(S) seed\(S == 1 ? "" : "s")")
    }
    // Every lr had a diverged or unfinished seed: the one where most finished, then the lowest median.
    var pick = 0, key = (finished: -1, median: Double.infinity)
    for l in 0..<L {
      let done = (0..<S).filter { v.finished(f, l, $0) }
      let median = Median.of(done.map { v.finalEval[v.index(f, l, $0)] })
      let m = median.isFinite ? median : .infinity
      if done.count > key.finished || (done.count == key.finished && m < key.median) { pick = l; key = (done.count, m) }
    }
    return (pick, "every lr had a diverged seed: the lr where most seeds finished")
  }
}
