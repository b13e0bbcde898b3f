import FPStore
import Foundation

extension SVG {
  /// A heat map of binade (rows, lowest at the bottom) over steps (columns): each cell's shade is the
  /// fraction of that step's nonzero finite values in that binade, sqrt-scaled so that tails of a few
  /// percent stay visible (white 0, dark blue 1). `fractions[c][b]` for column c, binade index b.
  static func binadeHeatMap(
    title: String, steps: [Int64], binades: [Int], fractions: [[Double]], width: Double = 560, height: Double = 260
  ) -> String {
    let left = 52.0, right = width - 10, top = 22.0, bottom = height - 40
    var svg = open(width, height, title)
    guard let s0 = steps.first, let s1 = steps.last, let b0 = binades.first, let b1 = binades.last else {
      return svg + "<text x=\"\(px(width / 2))\" y=\"\(px(height / 2))\" text-anchor=\"middle\">no values</text></svg>"
    }
    // Columns span [step_c, step_c+1) (the last one step wide); rows [b, b + 1).
    let x = Axis(Double(s0), Double(s1 + 1), pixels: left, right), y = Axis(Double(b0), Double(b1 + 1), pixels: bottom, top)
    for (c, column) in fractions.enumerated() {
      let xa = x(Double(steps[c])), xb = c + 1 < steps.count ? x(Double(steps[c + 1])) : right
      for (b, f) in column.enumerated() where f > 0 {
        let shade = sqrt(min(1, f))
        let rgb = [(1 - shade) * 255 + shade * 20, (1 - shade) * 255 + shade * 50, (1 - shade) * 255 + shade * 120].map { Int($0.rounded()) }
        let ya = y(Double(binades[b] + 1)), yb = y(Double(binades[b]))
        svg += "<rect x=\"\(px(xa))\" y=\"\(px(ya))\" width=\"\(px(max(0.5, xb - xa)))\" height=\"\(px(max(0.5, yb - ya)))\" fill=\"\(String(format: "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]))\"/>"
      }
    }
    svg += frame(width: width, height: height, x: x, y: y, xTitle: "step", yTitle: "binade floor(log2 |x|)")
    svg += "<text x=\"\(px(left))\" y=\"14\" class=\"title\">\(escape(title))</text>"
    return svg + "</svg>"
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
      guard let dot = name.lastIndex(of: ".") else { continue }
      let kind = String(name[name.index(after: dot)...])
      if kinds[kind] == nil { order.append(kind) }
      var c = kinds[kind] ?? [Int64](repeating: 0, count: T * B)
      for i in 0..<(T * B) { c[i] += Int64(counts[p * T * B + i]) }
      kinds[kind] = c
    }
    let idx = ReportCurves.thin(T, maximum: options.maximumPoints)
    var s = "<h4>Binade histograms, all layers of each operand kind</h4><p class=\"note\">Each column is a step, each row a binade floor(log2 |x|) of the operand's nonzero finite values as they entered rounding; the darker, the larger that step's fraction of values there (square-root shade).</p><div class=\"panels\">"
    var rows: [[String]] = []
    for kind in order {
      let c = kinds[kind]!
      var fractions: [[Double]] = []
      for t in idx {
        let total = (0..<B).reduce(Int64(0)) { $0 + c[t * B + $1] }
        fractions.append((0..<B).map { total > 0 ? Double(c[t * B + $0]) / Double(total) : 0 })
        for b in 0..<B where c[t * B + b] > 0 { rows.append([kind, String(steps[t]), String(binades[b]), String(c[t * B + b])]) }
      }
      s += "<div>" + SVG.binadeHeatMap(title: kind, steps: idx.map { steps[$0] }, binades: binades, fractions: fractions) + "</div>"
    }
    return s + "</div>" + PageBuilder.table(nextPlot(), kind: "binades", header: ["operand", "step", "binade", "count"], rows: rows, leftColumns: 1, collapsed: true)
  }
}
