import Foundation

/// Inline SVG drawing for the report page: line plots with bands and markers, interval (error-bar)
/// plots, horizontal bars with intervals, histograms and a two-panel stability map. Pure text out;
/// coordinates are rounded to 0.1 px to keep the page small.
enum SVG {
  /// Tableau 10: distinct, readable on white, and safe for the common colour-vision deficiencies in pairs.
  static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]
  static func color(_ i: Int) -> String { palette[i % palette.count] }

  static func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
  }
  static func px(_ v: Double) -> String {
    let r = (v * 10).rounded() / 10
    return r == r.rounded() ? String(Int(r)) : String(format: "%.1f", r)
  }

  /// Tick values: 1, 2 or 5 times a power of ten, about `count` of them, inside [lo, hi].
  static func ticks(_ lo: Double, _ hi: Double, count: Int = 6) -> [Double] {
    guard hi > lo, lo.isFinite, hi.isFinite else { return [lo] }
    let raw = (hi - lo) / Double(count)
    let p = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * p }.first { $0 >= raw } ?? 10 * p
    var out: [Double] = []
    var v = ceil(lo / step) * step
    while v <= hi + step * 1e-9 {
      out.append(abs(v) < step * 1e-9 ? 0 : v)
      v += step
    }
    return out
  }

  /// Tick label: compact, without trailing zeros (1000 -> "1000", 0.0003 -> "3e-04").
  static func tickLabel(_ v: Double) -> String {
    if v == 0 { return "0" }
    if abs(v) >= 1e5 || abs(v) < 1e-3 { return String(format: "%.0e", v) }
    var s = String(format: "%.4f", v)
    while s.hasSuffix("0") { s.removeLast() }
    if s.hasSuffix(".") { s.removeLast() }
    return s
  }

  /// A linear or log10 axis mapping data to pixels.
  struct Axis {
    var lo: Double, hi: Double, a: Double, b: Double, log: Bool
    init(_ lo: Double, _ hi: Double, pixels a: Double, _ b: Double, log: Bool = false) {
      var lo = log ? Foundation.log10(Swift.max(lo, 1e-300)) : lo
      var hi = log ? Foundation.log10(Swift.max(hi, 1e-300)) : hi
      if !(hi > lo) { lo -= 0.5; hi += 0.5 }
      self.lo = lo; self.hi = hi; self.a = a; self.b = b; self.log = log
    }
    func callAsFunction(_ v: Double) -> Double {
      let x = log ? Foundation.log10(v) : v
      return a + (x - lo) / (hi - lo) * (b - a)
    }
    var tickValues: [Double] {
      if !log { return SVG.ticks(lo, hi) }
      let decades = Int(floor(lo))...Int(ceil(hi))
      var out: [Double] = []
      for d in decades {
        for m in (decades.count <= 3 ? [1.0, 2, 5] : [1.0]) {
          let v = m * pow(10, Double(d))
          let lv = Foundation.log10(v)
          if lv >= lo - 1e-9 && lv <= hi + 1e-9 { out.append(v) }
        }
      }
      // Less than a decade (steps 20..40): the ends, so the axis has a scale.
      if out.count < 2 { out = [pow(10, lo), pow(10, hi)].map { ($0 * 1e6).rounded() / 1e6 } }
      return out
    }
  }

  struct Series {
    var name: String
    var color: String
    var points: [(Double, Double)]
    /// A shaded band (x, low, high), drawn under the line.
    var band: [(Double, Double, Double)] = []
    var dashed = false
    var width = 1.8
  }

  struct Marker {
    var x: Double, y: Double, color: String, title: String
  }

  /// Frame: the plot area, axes, ticks, grid lines and axis titles.
  static func frame(width: Double, height: Double, x: Axis, y: Axis, xTitle: String, yTitle: String, xTicks: [Double]? = nil, xTickLabel: ((Double) -> String)? = nil, yTicks: [Double]? = nil) -> String {
    var s = ""
    for t in yTicks ?? y.tickValues {
      let py = y(t)
      s += "<line x1=\"\(px(x.a))\" x2=\"\(px(x.b))\" y1=\"\(px(py))\" y2=\"\(px(py))\" class=\"grid\"/>"
      s += "<text x=\"\(px(x.a - 5))\" y=\"\(px(py + 4))\" text-anchor=\"end\">\(tickLabel(t))</text>"
    }
    for t in xTicks ?? x.tickValues {
      let pxv = x(t)
      s += "<line x1=\"\(px(pxv))\" x2=\"\(px(pxv))\" y1=\"\(px(y.a))\" y2=\"\(px(y.a + 4))\" class=\"tick\"/>"
      s += "<text x=\"\(px(pxv))\" y=\"\(px(y.a + 16))\" text-anchor=\"middle\">\(escape((xTickLabel ?? tickLabel)(t)))</text>"
    }
    s += "<rect x=\"\(px(x.a))\" y=\"\(px(y.b))\" width=\"\(px(x.b - x.a))\" height=\"\(px(y.a - y.b))\" class=\"frame\"/>"
    // Centred under the plot area, but moved right (or left) as far as needed to stay inside the SVG:
    // a long title under a narrow plot with a legend (the telemetry panels) was cut at the left edge.
    // Width estimated at 7.8 px a character (12 px semibold measured about 7.2 in Chromium).
    let half = Double(xTitle.count) * 3.9
    let cx = Swift.max(half + 4, Swift.min((x.a + x.b) / 2, width - half - 4))
    s += "<text x=\"\(px(cx))\" y=\"\(px(height - 6))\" text-anchor=\"middle\" class=\"title\">\(escape(xTitle))</text>"
    s += "<text transform=\"translate(14 \(px((y.a + y.b) / 2))) rotate(-90)\" text-anchor=\"middle\" class=\"title\">\(escape(yTitle))</text>"
    return s
  }

  static func open(_ width: Double, _ height: Double, _ label: String) -> String {
    "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(px(width)) \(px(height))\" width=\"\(px(width))\" height=\"\(px(height))\" role=\"img\" aria-label=\"\(escape(label))\">"
  }

  static func legend(_ items: [(String, String)], x: Double, y: Double, dashed: [Bool] = []) -> String {
    var s = ""
    for (i, (name, color)) in items.enumerated() {
      let yy = y + Double(i) * 15
      let dash = i < dashed.count && dashed[i] ? " stroke-dasharray=\"4 2\"" : ""
      s += "<line x1=\"\(px(x))\" x2=\"\(px(x + 16))\" y1=\"\(px(yy))\" y2=\"\(px(yy))\" stroke=\"\(color)\" stroke-width=\"3\"\(dash)/>"
      s += "<text x=\"\(px(x + 20))\" y=\"\(px(yy + 4))\">\(escape(name))</text>"
    }
    return s
  }

  /// Lines (NaN breaks a line) with optional min-max bands and markers; a legend on the right.
  static func linePlot(
    title: String, series: [Series], markers: [Marker] = [], xTitle: String, yTitle: String, logX: Bool = false,
    logY: Bool = false, yFromZero: Bool = false, width: Double = 600, height: Double = 320
  ) -> String {
    let legendWidth = min(170.0, 30 + 7 * Double(series.map(\.name.count).max() ?? 0))
    let left = 62.0, right = width - legendWidth - 10, top = 12.0, bottom = height - 42
    var xs: [Double] = [], ys: [Double] = []
    for s in series {
      for (x, y) in s.points where y.isFinite && x.isFinite { xs.append(x); ys.append(y) }
      for (x, lo, hi) in s.band where lo.isFinite && hi.isFinite { xs.append(x); ys += [lo, hi] }
    }
    for m in markers where m.y.isFinite { xs.append(m.x); ys.append(m.y) }
    if logX { xs = xs.filter { $0 > 0 } }
    if logY { ys = ys.filter { $0 > 0 } }
    var svg = open(width, height, title)
    guard let x0 = xs.min(), let x1 = xs.max(), let y0 = ys.min(), let y1 = ys.max() else {
      return svg + "<text x=\"\(px(width / 2))\" y=\"\(px(height / 2))\" text-anchor=\"middle\">no finite values</text></svg>"
    }
    let pad = logY ? 0 : (y1 - y0) * 0.04
    let x = Axis(x0, x1, pixels: left, right, log: logX)
    // Fractions start at 0 (a flat 0 is drawn at the bottom, not mid-plot with negative ticks).
    let yLow = yFromZero ? min(0, y0) : (logY ? y0 : y0 - pad)
    let yHigh = yFromZero && y1 <= 0 ? 1e-6 : (logY ? y1 : y1 + pad)
    let y = Axis(yLow, yHigh, pixels: bottom, top, log: logY)
    svg += frame(width: width, height: height, x: x, y: y, xTitle: xTitle, yTitle: yTitle)
    svg += "<g>"
    for s in series where !s.band.isEmpty {
      let pts = s.band.filter { $0.1.isFinite && $0.2.isFinite && (!logX || $0.0 > 0) }
      guard pts.count > 1 else { continue }
      var d = "M" + pts.map { "\(px(x($0.0))),\(px(y($0.2)))" }.joined(separator: "L")
      d += "L" + pts.reversed().map { "\(px(x($0.0))),\(px(y($0.1)))" }.joined(separator: "L") + "Z"
      svg += "<path d=\"\(d)\" fill=\"\(s.color)\" fill-opacity=\"0.16\" stroke=\"none\"/>"
    }
    for s in series {
      var d = "", pen = false
      for (a, b) in s.points {
        guard a.isFinite, b.isFinite, !logX || a > 0, !logY || b > 0 else { pen = false; continue }
        d += (pen ? "L" : "M") + "\(px(x(a))),\(px(y(b)))"
        pen = true
      }
      guard !d.isEmpty else { continue }
      svg += "<path d=\"\(d)\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"\(s.width)\"\(s.dashed ? " stroke-dasharray=\"5 3\"" : "") stroke-linejoin=\"round\"><title>\(escape(s.name))</title></path>"
    }
    for m in markers where m.y.isFinite {
      let cx = x(m.x), cy = y(m.y)
      svg += "<path d=\"M\(px(cx - 4)),\(px(cy - 4))L\(px(cx + 4)),\(px(cy + 4))M\(px(cx - 4)),\(px(cy + 4))L\(px(cx + 4)),\(px(cy - 4))\" stroke=\"\(m.color)\" stroke-width=\"2.2\"><title>\(escape(m.title))</title></path>"
    }
    svg += "</g>"
    svg += legend(series.map { ($0.name, $0.color) }, x: right + 12, y: top + 8, dashed: series.map(\.dashed))
    return svg + "</svg>"
  }

  /// Points with vertical intervals, one series per colour, joined by thin lines.
  struct IntervalPoint { var x: Double, mean: Double, low: Double?, high: Double? }
  static func intervalPlot(
    title: String, series: [(name: String, color: String, points: [IntervalPoint])], xTitle: String, yTitle: String,
    xTicks: [Double], width: Double = 600, height: Double = 320, reference: Double? = nil, referenceLabel: String = ""
  ) -> String {
    let legendWidth = min(170.0, 30 + 7 * Double(series.map(\.name.count).max() ?? 0))
    let left = 62.0, right = width - legendWidth - 10, top = 12.0, bottom = height - 42
    var ys: [Double] = []
    for s in series { for p in s.points { ys += [p.mean, p.low ?? p.mean, p.high ?? p.mean].filter(\.isFinite) } }
    if let reference { ys.append(reference) }
    var svg = open(width, height, title)
    guard let y0 = ys.min(), let y1 = ys.max(), let x0 = xTicks.min(), let x1 = xTicks.max() else {
      return svg + "<text x=\"\(px(width / 2))\" y=\"\(px(height / 2))\" text-anchor=\"middle\">no finite values</text></svg>"
    }
    let padY = (y1 - y0) * 0.06 + 1e-9, padX = max((x1 - x0) * 0.05, 0.5)
    let x = Axis(x0 - padX, x1 + padX, pixels: left, right), y = Axis(y0 - padY, y1 + padY, pixels: bottom, top)
    svg += frame(width: width, height: height, x: x, y: y, xTitle: xTitle, yTitle: yTitle, xTicks: xTicks, xTickLabel: { String(Int($0)) })
    if let reference {
      svg += "<line x1=\"\(px(x.a))\" x2=\"\(px(x.b))\" y1=\"\(px(y(reference)))\" y2=\"\(px(y(reference)))\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>"
      svg += "<text x=\"\(px(x.a + 4))\" y=\"\(px(y(reference) - 4))\" class=\"note\">\(escape(referenceLabel))</text>"
    }
    let n = Double(series.count)
    for (k, s) in series.enumerated() {
      let dx = (Double(k) - (n - 1) / 2) * 5  // side by side so intervals do not hide each other
      let pts = s.points.filter(\.mean.isFinite)
      if pts.count > 1 {
        svg += "<polyline points=\"" + pts.map { "\(px(x($0.x) + dx)),\(px(y($0.mean)))" }.joined(separator: " ") + "\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"1.2\" stroke-opacity=\"0.6\"/>"
      }
      for p in pts {
        let cx = x(p.x) + dx
        if let lo = p.low, let hi = p.high, lo.isFinite, hi.isFinite {
          svg += "<path d=\"M\(px(cx)),\(px(y(lo)))L\(px(cx)),\(px(y(hi)))M\(px(cx - 3)),\(px(y(lo)))L\(px(cx + 3)),\(px(y(lo)))M\(px(cx - 3)),\(px(y(hi)))L\(px(cx + 3)),\(px(y(hi)))\" stroke=\"\(s.color)\" stroke-width=\"1.4\"/>"
        }
        svg += "<circle cx=\"\(px(cx))\" cy=\"\(px(y(p.mean)))\" r=\"3.2\" fill=\"\(s.color)\"><title>\(escape(s.name)): \(NumberText.g6(p.mean))</title></circle>"
      }
    }
    svg += legend(series.map { ($0.name, $0.color) }, x: right + 12, y: top + 8)
    return svg + "</svg>"
  }

  /// Horizontal bars from 0 to `mean` with interval whiskers, one row per item, a zero line.
  static func intervalBars(
    title: String, rows: [(label: String, color: String, mean: Double?, low: Double?, high: Double?, note: String)],
    xTitle: String, width: Double = 760
  ) -> String {
    let labelWidth = min(280.0, 16 + 6.6 * Double(rows.map(\.label.count).max() ?? 0))
    let rowHeight = 22.0, top = 10.0
    let height = top + rowHeight * Double(rows.count) + 48
    let left = labelWidth, right = width - 150, bottom = height - 42
    var vs: [Double] = [0]
    for r in rows { vs += [r.mean, r.low, r.high].compactMap { $0 }.filter(\.isFinite) }
    let lo = vs.min()!, hi = vs.max()!, pad = (hi - lo) * 0.06 + 1e-9
    let x = Axis(lo - pad, hi + pad, pixels: left, right)
    var svg = open(width, height, title)
    for t in x.tickValues {
      svg += "<line x1=\"\(px(x(t)))\" x2=\"\(px(x(t)))\" y1=\"\(px(top))\" y2=\"\(px(bottom))\" class=\"grid\"/>"
      svg += "<text x=\"\(px(x(t)))\" y=\"\(px(bottom + 16))\" text-anchor=\"middle\">\(tickLabel(t))</text>"
    }
    svg += "<line x1=\"\(px(x(0)))\" x2=\"\(px(x(0)))\" y1=\"\(px(top))\" y2=\"\(px(bottom))\" stroke=\"#333\" stroke-width=\"1.2\"/>"
    for (i, r) in rows.enumerated() {
      let cy = top + rowHeight * (Double(i) + 0.5)
      svg += "<text x=\"\(px(left - 6))\" y=\"\(px(cy + 4))\" text-anchor=\"end\">\(escape(r.label))</text>"
      if let m = r.mean, m.isFinite {
        let a = min(x(0), x(m)), b = max(x(0), x(m))
        svg += "<path d=\"M\(px(a)),\(px(cy - 7))H\(px(b))V\(px(cy + 7))H\(px(a))Z\" fill=\"\(r.color)\" fill-opacity=\"0.75\"><title>\(escape(r.label)): \(NumberText.g6(m))</title></path>"
      }
      if let l = r.low, let h = r.high, l.isFinite, h.isFinite {
        svg += "<path d=\"M\(px(x(l))),\(px(cy))H\(px(x(h)))M\(px(x(l))),\(px(cy - 5))V\(px(cy + 5))M\(px(x(h))),\(px(cy - 5))V\(px(cy + 5))\" stroke=\"#222\" stroke-width=\"1.4\"/>"
      }
      svg += "<text x=\"\(px(right + 8))\" y=\"\(px(cy + 4))\" class=\"note\">\(escape(r.note))</text>"
    }
    svg += "<text x=\"\(px((left + right) / 2))\" y=\"\(px(height - 6))\" text-anchor=\"middle\" class=\"title\">\(escape(xTitle))</text>"
    return svg + "</svg>"
  }

  /// A histogram: bars over [edges[i], edges[i+1]) with heights `counts`.
  static func histogram(title: String, edges: [Double], counts: [Int], xTitle: String, color: String, width: Double = 340, height: Double = 200) -> String {
    let left = 52.0, right = width - 10, top = 22.0, bottom = height - 40
    var svg = open(width, height, title)
    guard edges.count == counts.count + 1, let e0 = edges.first, let e1 = edges.last, let c1 = counts.max(), c1 > 0 else {
      return svg + "<text x=\"\(px(width / 2))\" y=\"\(px(height / 2))\" text-anchor=\"middle\">no finite values</text></svg>"
    }
    let x = Axis(e0, e1, pixels: left, right), y = Axis(0, Double(c1) * 1.05, pixels: bottom, top)
    svg += frame(width: width, height: height, x: x, y: y, xTitle: xTitle, yTitle: "count")
    var d = ""
    for (i, c) in counts.enumerated() where c > 0 {
      d += "M\(px(x(edges[i]))),\(px(y(0)))V\(px(y(Double(c))))H\(px(x(edges[i + 1])))V\(px(y(0)))Z"
    }
    svg += "<path d=\"\(d)\" fill=\"\(color)\" fill-opacity=\"0.8\" stroke=\"\(color)\" stroke-width=\"0.5\"/>"
    svg += "<text x=\"\(px(left))\" y=\"14\" class=\"title\">\(escape(title))</text>"
    return svg + "</svg>"
  }

  /// Two heat maps side by side (label x learning rate): fraction diverged and fraction that failed
  /// to learn, each cell coloured by its fraction and showing "k/n".
  static func stabilityMap(labels: [String], lrs: [Double], diverged: [[Int]], failed: [[Int]]?, seeds: Int, labelKind: String) -> String {
    let cellW = max(44.0, min(70.0, 300.0 / Double(max(1, lrs.count)))), cellH = 22.0
    let labelWidth = min(220.0, 14 + 6.6 * Double(labels.map(\.count).max() ?? 0))
    let panelW = max(labelWidth + cellW * Double(lrs.count) + 24, labelWidth + 250)
    let panels = failed == nil ? 1 : 2
    let width = panelW * Double(panels) + 10, top = 30.0
    let height = top + cellH * Double(labels.count) + 46
    var svg = open(width, height, "stability map")
    func panel(_ counts: [[Int]], _ x0: Double, _ title: String, _ hue: (Double) -> String) {
      svg += "<text x=\"\(px(x0 + labelWidth))\" y=\"16\" class=\"title\">\(escape(title))</text>"
      for (f, label) in labels.enumerated() {
        let y = top + cellH * Double(f)
        svg += "<text x=\"\(px(x0 + labelWidth - 6))\" y=\"\(px(y + cellH / 2 + 4))\" text-anchor=\"end\">\(escape(label))</text>"
        for l in lrs.indices {
          let k = counts[f][l], frac = seeds > 0 ? Double(k) / Double(seeds) : 0
          let x = x0 + labelWidth + cellW * Double(l)
          svg += "<rect x=\"\(px(x))\" y=\"\(px(y))\" width=\"\(px(cellW - 2))\" height=\"\(px(cellH - 2))\" fill=\"\(hue(frac))\"><title>\(escape(label)) lr \(NumberText.number(lrs[l])): \(k)/\(seeds)</title></rect>"
          svg += "<text x=\"\(px(x + cellW / 2 - 1))\" y=\"\(px(y + cellH / 2 + 4))\" text-anchor=\"middle\" fill=\"\(frac > 0.55 ? "#fff" : "#222")\">\(k)/\(seeds)</text>"
        }
      }
      for (l, lr) in lrs.enumerated() {
        svg += "<text x=\"\(px(x0 + labelWidth + cellW * (Double(l) + 0.5) - 1))\" y=\"\(px(top + cellH * Double(labels.count) + 14))\" text-anchor=\"middle\">\(escape(NumberText.number(lr)))</text>"
      }
      svg += "<text x=\"\(px(x0 + labelWidth + cellW * Double(lrs.count) / 2))\" y=\"\(px(height - 8))\" text-anchor=\"middle\" class=\"title\">peak learning rate</text>"
    }
    // White to red (diverged) and white to purple (failed to learn): interpolated in sRGB.
    func ramp(_ to: (Double, Double, Double)) -> (Double) -> String {
      { f in
        // 0 is a pale grey-blue (visibly a cell), 1 the full colour.
        let base = (236.0, 241.0, 246.0)
        let c = [(1 - f) * base.0 + f * to.0, (1 - f) * base.1 + f * to.1, (1 - f) * base.2 + f * to.2].map { Int($0.rounded()) }
        return String(format: "#%02x%02x%02x", c[0], c[1], c[2])
      }
    }
    panel(diverged, 0, "runs diverged (of \(seeds) seeds)", ramp((200, 40, 40)))
    if let failed { panel(failed, panelW, "runs failed to learn (of \(seeds) seeds)", ramp((110, 60, 160))) }
    return svg + "</svg>"
  }
}
