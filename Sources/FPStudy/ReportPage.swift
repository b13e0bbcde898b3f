import FPStore
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// What `fpsim report` draws and how.
public struct ReportOptions: Sendable {
  /// Steps on a log10 axis in the curve plots.
  public var logSteps = false
  /// Baseline label for the paired differences (default: each grid's first label).
  public var baseline: String? = nil
  /// Tolerance in nats for the bit-reduction answer.
  public var tolerance = 0.05
  /// The command that made the page, shown on it.
  public var command = ""
  /// The fpsim that made the page.
  public var fpsimVersion = "0.1.0"
  /// Points per curve at most (steps are thinned evenly, first and last kept).
  public var maximumPoints = 150

  public init(logSteps: Bool = false, baseline: String? = nil, tolerance: Double = 0.05, command: String = "", fpsimVersion: String = "0.1.0") {
    self.logSteps = logSteps
    self.baseline = baseline
    self.tolerance = tolerance
    self.command = command
    self.fpsimVersion = fpsimVersion
  }
}

/// One self-contained HTML page (inline CSS and SVG, no script, nothing from the network) for grid
/// and run files (README "Reports and comparisons"). Every plot is followed by a table of the numbers
/// it shows (`<table class="data" data-plot="...">`, six significant digits).
public enum Report {
  /// Builds the page for `paths` (grid and run files, in order; run files side by side).
  public static func html(paths: [String], options: ReportOptions) throws -> String {
    guard !paths.isEmpty else { throw StudyInputError(description: "no file to report: give grid or run files") }
    var body = ""
    var runs: [(path: String, file: H5File, header: FileHeader)] = []
    var opened: [H5File] = []
    defer { for f in opened { try? f.close() } }
    var plotCounter = 0
    var page = PageBuilder(options: options, counter: plotCounter)
    for path in paths {
      let (file, header) = try Store.open(path)
      opened.append(file)
      switch header.schema {
      case Schema.grid.name:
        body += try page.grid(file: file, header: header)
      case Schema.run.name:
        runs.append((path, file, header))
      default:
        throw StoreError(.schema, file: path, "is a \(header.schema) file; fpsim report draws grid and run files")
      }
    }
    if !runs.isEmpty { body += try page.runs(runs) }
    plotCounter = page.counter
    let title = paths.map { ($0 as NSString).lastPathComponent }.joined(separator: ", ")
    var head = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    head += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    head += "<meta name=\"generator\" content=\"fpsim \(SVG.escape(options.fpsimVersion))\">"
    head += "<title>fpsim report: \(SVG.escape(title))</title><style>\(css)</style></head><body>\n"
    head += "<header><h1>fpsim report</h1><p class=\"meta\">\(SVG.escape(title))</p>"
    head += "<p class=\"meta\">made by fpsim \(SVG.escape(options.fpsimVersion))"
    if !options.command.isEmpty { head += " with <code>\(SVG.escape(options.command))</code>" }
    head += "; \(plotCounter) figures, each followed by the table of its numbers.</p></header>\n"
    return head + body + "<footer>Losses are in nats per item (token or example); steps are completed optimizer steps. Intervals are 95% Student-t intervals over seeds.</footer>\n</body></html>\n"
  }

  /// Writes the page atomically: `<out>.tmp-<pid>`, flushed to disk, then renamed onto `out`.
  public static func write(paths: [String], to out: String, options: ReportOptions) throws {
    let text = try html(paths: paths, options: options)
    let tmp = "\(out).tmp-\(getpid())"
    guard FileManager.default.createFile(atPath: tmp, contents: nil) else {
      throw StoreError(.io, file: out, "cannot create \(tmp): check that the folder exists and is writable")
    }
    do {
      let h = try FileHandle(forWritingTo: URL(fileURLWithPath: tmp))
      try h.write(contentsOf: Data(text.utf8))
      try h.synchronize()
      try h.close()
      guard rename(tmp, out) == 0 else {
        throw StoreError(.io, file: out, "cannot rename \(tmp) onto it: \(String(cString: strerror(errno)))")
      }
    } catch {
      unlink(tmp)
      throw error
    }
  }

  static let css = """
    body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;max-width:1280px;margin:0 auto;padding:16px 24px;background:#fff}
    h1{font-size:24px;margin:4px 0}h2{font-size:20px;margin:28px 0 6px;border-bottom:2px solid #4e79a7;padding-bottom:3px}
    h3{font-size:16px;margin:22px 0 4px}h4{font-size:13px;margin:12px 0 2px;color:#444}p.meta{color:#555;margin:2px 0}p.note{color:#444;margin:4px 0 8px;max-width:900px}
    .answer{background:#eef4fa;border-left:4px solid #4e79a7;padding:8px 12px;margin:10px 0;max-width:1000px}
    svg{display:block;margin:6px 0;font-size:11px;font-family:inherit;max-width:100%;height:auto}svg text{fill:#333}svg text.title{font-size:12px;font-weight:600}svg text.note{fill:#555}
    svg .grid{stroke:#e4e4e4;stroke-width:1}svg .tick{stroke:#666}svg .frame{fill:none;stroke:#888}
    .panels{display:flex;flex-wrap:wrap;gap:6px 18px}.panels>div{flex:0 1 auto}.side{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:12px 28px}
    table{border-collapse:collapse;font-size:12px;margin:4px 0 10px;font-variant-numeric:tabular-nums}th,td{border:1px solid #ddd;padding:2px 7px;text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}
    details{margin:2px 0 12px}summary{cursor:pointer;color:#4e79a7}pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:320px;font-size:12px}
    details.heatrow{margin:4px 0 8px}details.heatrow>summary{font-weight:600;color:#333}details.heatrow .panels{gap:2px 8px}
    footer{color:#666;margin:30px 0 10px;font-size:12px;border-top:1px solid #ddd;padding-top:6px}
    """
}

/// Builds the sections of the page; counts the plots so each table names the plot it belongs to.
struct PageBuilder {
  var options: ReportOptions
  var counter: Int

  /// Axis titles with units of the sharpness metrics (README "Sharpness").
  static let sharpnessUnits = [
    "keskar-logits": "keskar-logits phi (percent of 1 + loss)",
    "hessian-top": "top eigenvalue of the loss Hessian",
    "sam": "SAM sharpness (nats per item)",
  ]

  mutating func nextPlot() -> String {
    counter += 1
    return "plot\(counter)"
  }

  static func table(_ id: String, kind: String, header: [String], rows: [[String]], leftColumns: Int = 1, collapsed: Bool = false, caption: String = "numbers of this plot") -> String {
    var t = "<table class=\"data\" data-plot=\"\(id)\" data-kind=\"\(SVG.escape(kind))\"><thead><tr>"
    for (i, h) in header.enumerated() { t += "<th\(i < leftColumns ? " class=\"l\"" : "")>\(SVG.escape(h))</th>" }
    t += "</tr></thead><tbody>"
    for r in rows {
      t += "<tr>"
      for (i, c) in r.enumerated() { t += "<td\(i < leftColumns ? " class=\"l\"" : "")>\(SVG.escape(c))</td>" }
      t += "</tr>"
    }
    t += "</tbody></table>"
    return collapsed ? "<details><summary>\(SVG.escape(caption)) (\(rows.count) rows)</summary>\(t)</details>" : t
  }

  static func header(_ path: String, _ h: FileHeader) -> String {
    var s = "<p class=\"meta\">file <code>\(SVG.escape(path))</code> · schema \(SVG.escape(h.schema)) v\(h.schemaVersion) · written by fpsim \(SVG.escape(h.fpsimVersion)) · created \(SVG.escape(h.created))</p>"
    s += "<details><summary>the specification that made this file (its stored config)</summary><pre>\(SVG.escape(prettyJSON(h.config)))</pre></details>"
    return s
  }

  static func prettyJSON(_ text: String) -> String {
    guard let o = try? JSONSerialization.jsonObject(with: Data(text.utf8)),
      let d = try? JSONSerialization.data(withJSONObject: o, options: [.prettyPrinted, .sortedKeys])
    else { return text }
    return String(decoding: d, as: UTF8.self)
  }

  // MARK: Grid

  mutating func grid(file: H5File, header: FileHeader) throws -> String {
    let g = try GridStudy.read(file)
    let v = g.values, F = g.F, L = g.L, S = g.S
    let kind = v.labelKind
    var s = "<section class=\"grid\"><h2>Grid \(SVG.escape((file.path as NSString).lastPathComponent))</h2>"
    s += PageBuilder.header(file.path, header)
    s += "<p class=\"note\">\(F) \(kind)s × \(L) learning rates × \(S) seeds = \(F * L * S) runs"
    if let last = g.steps.last { s += ", \(last) steps each" }
    s += ".</p>"
    let diffs = try PairedComparison.compute(v, baseline: options.baseline)
    let bits = try BitReduction.compute(v, baseline: options.baseline, tolerance: options.tolerance)
    if let bits { s += "<p class=\"answer\">\(SVG.escape(bits.sentence))</p>" }

    // Curves: one panel per learning rate, one line per label (median over seeds, min-max band).
    let stepTitle = "step (optimizer updates\(options.logSteps ? ", log scale" : ""))"
    func curves(_ title: String, _ values: [Float], _ steps: [Int], what: String) -> String {
      let T = steps.count
      guard T > 0, values.count == F * L * S * T else { return "" }
      let idx = ReportCurves.thin(T, maximum: options.maximumPoints)
      var out = "<h3>\(SVG.escape(title))</h3><p class=\"note\">Median over \(S) seeds (line) and min–max over seeds (band), per learning rate. NaN after a divergence, so a line ends where its runs diverged.</p><div class=\"panels\">"
      // Wide table: lr, step, then median, min, max of each label.
      var rows: [[String]] = []
      for l in 0..<L {
        var series: [SVG.Series] = []
        let bands = (0..<F).map { ReportCurves.band(values, F: F, L: L, S: S, T: T, f: $0, l: l, indices: idx) }
        let xs = idx.map { Double(steps[$0]) }
        for f in 0..<F {
          let b = bands[f]
          series.append(SVG.Series(
            name: v.labels[f], color: SVG.color(f), points: zip(xs, b).map { ($0, $1.0) }, band: zip(xs, b).map { ($0, $1.1, $1.2) }))
        }
        for (k, t) in idx.enumerated() {
          rows.append([NumberText.number(v.lrs[l]), String(steps[t])] + bands.flatMap { [NumberText.g6($0[k].0), NumberText.g6($0[k].1), NumberText.g6($0[k].2)] })
        }
        out += "<div>" + SVG.linePlot(
          title: "\(title), lr \(NumberText.number(v.lrs[l]))", series: series, xTitle: stepTitle + " — lr \(NumberText.number(v.lrs[l]))",
          yTitle: "\(what) (nats per item)", logX: options.logSteps, width: L > 1 ? 600 : 760) + "</div>"
      }
      let id = nextPlot()
      out += "</div>" + PageBuilder.table(id, kind: "curve-\(what == "training loss" ? "train" : "eval")", header: ["lr", "step"] + v.labels.flatMap { ["\($0) median", "\($0) min", "\($0) max"] }, rows: rows, leftColumns: 0, collapsed: true)
      return out
    }
    s += "<h2>Loss curves</h2>"
    s += curves("Training loss", g.loss, g.steps, what: "training loss")
    s += curves("Validation loss", g.evalLoss, g.evalSteps, what: "validation loss")

    // Stability map.
    var dCounts = Array(repeating: Array(repeating: 0, count: L), count: F)
    var fCounts = dCounts
    let failed = g.failed
    for f in 0..<F { for l in 0..<L { for s2 in 0..<S {
      let i = v.index(f, l, s2)
      if v.diverged[i] { dCounts[f][l] += 1 }
      if failed[i] { fCounts[f][l] += 1 }
    } } }
    s += "<h2>Stability</h2><p class=\"note\">Runs per cell that diverged (loss non-finite, or stayed the divergence margin above its running minimum for the patience) and that failed to learn (did not diverge, but ended more than \(g.failedToLearnMargin.map { NumberText.number($0) } ?? "the margin") nats above the best learning rate's validation loss for the same \(kind) and seed).</p>"
    s += SVG.stabilityMap(labels: v.labels, lrs: v.lrs, diverged: dCounts, failed: g.failedToLearn == nil ? nil : fCounts, seeds: S, labelKind: kind)
    var stabRows: [[String]] = []
    for f in 0..<F { for l in 0..<L {
      stabRows.append([v.labels[f], NumberText.number(v.lrs[l]), String(S), String(dCounts[f][l]), NumberText.g6(Double(dCounts[f][l]) / Double(S)), g.failedToLearn == nil ? "-" : String(fCounts[f][l]), g.failedToLearn == nil ? "-" : NumberText.g6(Double(fCounts[f][l]) / Double(S))])
    } }
    s += PageBuilder.table(nextPlot(), kind: "stability", header: [kind, "lr", "seeds", "diverged", "fraction diverged", "failed to learn", "fraction failed"], rows: stabRows, collapsed: true)

    // Final validation loss: against bits removed (format grids) and paired differences.
    s += "<h2>Final validation loss and paired differences</h2>"
    if let bits {
      let removed = bits.formats.map(\.bitsRemoved)
      var series: [(name: String, color: String, points: [SVG.IntervalPoint])] = []
      var rows: [[String]] = []
      for l in 0..<L {
        var pts: [SVG.IntervalPoint] = []
        for f in 0..<F {
          let vals = (0..<S).filter { v.finished(f, l, $0) }.map { v.finalEval[v.index(f, l, $0)] }
          let m = MeanInterval(vals)
          pts.append(SVG.IntervalPoint(x: Double(removed[f]), mean: m?.mean ?? .nan, low: m?.low, high: m?.high))
          rows.append([v.labels[f], String(bits.formats[f].bits), String(removed[f]), NumberText.number(v.lrs[l]), String(vals.count),
                       m.map { NumberText.g6($0.mean) } ?? "-", m?.low.map(NumberText.g6) ?? "-", m?.high.map(NumberText.g6) ?? "-"])
        }
        series.append(("lr \(NumberText.number(v.lrs[l]))", SVG.color(l), pts))
      }
      let ticks = Array(Set(removed)).sorted().map(Double.init)
      s += "<h3>Final validation loss against bits removed</h3><p class=\"note\">Mean over the seeds that finished (diverged runs left out; their count is in the table) with its 95% t-interval, one colour per learning rate. Bits = sign + exponent + mantissa; removed = \(bits.baselineBits) (\(SVG.escape(bits.baseline))) minus that.</p>"
      s += SVG.intervalPlot(title: "final validation loss against bits removed", series: series, xTitle: "bits removed from \(bits.baseline) (\(bits.baselineBits) bits)", yTitle: "final validation loss (nats per item)", xTicks: ticks, width: 760)
      s += PageBuilder.table(nextPlot(), kind: "bits", header: [kind, "bits", "bits removed", "lr", "seeds finished", "mean", "95% low", "95% high"], rows: rows)
    }
    // Paired differences: a bar chart for recipe grids (and any grid without bit counts).
    if bits == nil {
      let rows = diffs.filter { $0.label != $0.baseline }
      var bars: [(label: String, color: String, mean: Double?, low: Double?, high: Double?, note: String)] = []
      for r in rows {
        let li = v.lrs.firstIndex(of: r.lr) ?? 0
        bars.append(("\(r.label) @ lr \(NumberText.number(r.lr))", SVG.color(li), r.difference?.mean, r.difference?.low, r.difference?.high, r.verdict))
      }
      s += "<h3>Paired difference to \(SVG.escape(diffs.first?.baseline ?? ""))</h3><p class=\"note\">Per learning rate, the mean over seeds of (final validation loss of the \(kind) − that of the baseline with the same seed) and its 95% t-interval; positive is worse. Pairs where either run diverged are left out.</p>"
      if !bars.isEmpty {
        s += SVG.intervalBars(title: "paired difference to baseline", rows: bars, xTitle: "difference in final validation loss to \(diffs.first?.baseline ?? "") (nats per item)")
      }
    }
    s += "<h3>Paired statistics</h3><p class=\"note\">d = loss(\(kind), seed) − loss(baseline, seed), over the seeds where both finished; mean ± t<sub>0.975, n−1</sub>·s/√n. \"within seed noise\": the interval contains 0. One pair gives no interval.</p>"
    let diffRows = diffs.map { r -> [String] in
      [r.label, NumberText.number(r.lr), String(r.seeds), String(r.pairs), r.meanLoss.map(NumberText.g6) ?? "-",
       r.difference.map { NumberText.g6($0.mean) } ?? "-", r.difference?.low.map(NumberText.g6) ?? "-",
       r.difference?.high.map(NumberText.g6) ?? "-", r.verdict + (r.labelDiverged > 0 && r.label != r.baseline ? " (\(r.labelDiverged) not finished)" : "")]
    }
    s += PageBuilder.table(nextPlot(), kind: "paired", header: [kind, "lr", "seeds", "pairs", "mean final eval loss", "diff to baseline", "95% low", "95% high", "verdict"], rows: diffRows, leftColumns: 1)
    if let bits {
      let rows = bits.formats.map { f -> [String] in
        [f.label, String(f.bits), String(f.bitsRemoved), f.passes ? "yes" : "no", f.passesConfidently ? "yes" : "no",
         f.worstLR.map(NumberText.number) ?? "-", f.worst.map { NumberText.g6($0.mean) } ?? "-",
         f.worst?.low.map(NumberText.g6) ?? "-", f.worst?.high.map(NumberText.g6) ?? "-",
         f.unfinishedLRs.isEmpty ? "" : f.unfinishedLRs.map(NumberText.number).joined(separator: ", ")]
      }
      s += "<h3>Bit reduction, tolerance \(NumberText.number(options.tolerance)) nats</h3>"
      s += PageBuilder.table(nextPlot(), kind: "bit-reduction", header: [kind, "bits", "removed", "mean within tol at every lr", "95% interval within tol", "worst lr", "worst mean diff", "95% low", "95% high", "lrs with unfinished seeds"], rows: rows)
    }

    // Sharpness.
    if !g.sharpness.isEmpty {
      s += "<h2>Sharpness</h2><p class=\"note\">Median over seeds at each measured checkpoint, per learning rate; × marks a run's last measurement before it diverged, at its divergence step.</p>"
      for sh in g.sharpness {
        let K = sh.steps.count
        var rows: [[String]] = []
        s += "<h3>\(SVG.escape(sh.metric))</h3><div class=\"panels\">"
        for l in 0..<L {
          var series: [SVG.Series] = [], markers: [SVG.Marker] = []
          for f in 0..<F {
            let vals = sh.values.map(Float.init)
            let b = ReportCurves.band(vals, F: F, L: L, S: S, T: K, f: f, l: l, indices: Array(0..<K))
            let xs = sh.steps.map(Double.init)
            series.append(SVG.Series(name: v.labels[f], color: SVG.color(f), points: zip(xs, b).map { ($0, $1.0) }, band: zip(xs, b).map { ($0, $1.1, $1.2) }))
            for (k, st) in sh.steps.enumerated() { rows.append([v.labels[f], NumberText.number(v.lrs[l]), String(st), NumberText.g6(b[k].0), NumberText.g6(b[k].1), NumberText.g6(b[k].2)]) }
            for s2 in 0..<S where v.diverged[v.index(f, l, s2)] {
              let i = v.index(f, l, s2), ds = g.divergedStep[i]
              let last = (0..<K).last { sh.values[i * K + $0].isFinite && (ds < 0 || sh.steps[$0] <= ds) }
              if let last {
                markers.append(SVG.Marker(x: Double(max(ds, sh.steps[last])), y: sh.values[i * K + last], color: SVG.color(f), title: "\(v.labels[f]) seed \(v.seeds[s2]) diverged at step \(ds)"))
              }
            }
          }
          s += "<div>" + SVG.linePlot(title: "\(sh.metric), lr \(NumberText.number(v.lrs[l]))", series: series, markers: markers, xTitle: "step (optimizer updates) — lr \(NumberText.number(v.lrs[l]))", yTitle: PageBuilder.sharpnessUnits[sh.metric] ?? "\(sh.metric) sharpness", logX: options.logSteps, width: L > 1 ? 600 : 760) + "</div>"
        }
        s += "</div>" + PageBuilder.table(nextPlot(), kind: "sharpness-\(sh.metric)", header: [kind, "lr", "step", "median", "min", "max"], rows: rows, collapsed: true)
      }
    }

    // Telemetry from the runs' metrics: mean over the runs of a label (all lrs and seeds) per step.
    s += try gridTelemetry(file: file, g: g)
    // Binade histograms (`/results/histogram`), when the grid recorded them.
    s += try gridBinadeHeatMaps(file: file, g: g)
    return s + "</section>\n"
  }

  mutating func gridTelemetry(file: H5File, g: GridStudy) throws -> String {
    let v = g.values
    // label -> kind -> operand kind -> (sum, count) per step index of the grid's steps
    let T = g.steps.count
    guard T > 0 else { return "" }
    let stepIndex = Dictionary(uniqueKeysWithValues: g.steps.enumerated().map { ($1, $0) })
    var acc: [String: [String: ([Double], [Int])]] = [:]  // "\(f)|kind|op"
    var operandKinds = Set<String>()
    if !g.telemetry.isEmpty {
      // /results/saturated, /results/flushed [F, L, S, T, K]: already the mean over layers per run.
      let K = g.operands.count
      for (kind, values) in g.telemetry {
        for f in 0..<g.F {
          for (k, op) in g.operands.enumerated() {
            var sum = [Double](repeating: 0, count: T), n = [Int](repeating: 0, count: T)
            for l in 0..<g.L { for s in 0..<g.S { for t in 0..<T {
              let x = values[((v.index(f, l, s) * T) + t) * K + k]
              if x.isFinite { sum[t] += Double(x); n[t] += 1 }
            } } }
            if n.contains(where: { $0 > 0 }) {
              operandKinds.insert(op)
              acc["\(f)|\(kind)", default: [:]][op] = (sum, n)
            }
          }
        }
      }
    }
    for f in 0..<g.F where g.telemetry.isEmpty {
      for l in 0..<g.L { for s in 0..<g.S {
        guard let id = g.runIDs[v.index(f, l, s)] else { continue }
        let t = try ReportCurves.telemetry(file, run: id)
        for (kind, ops) in ReportCurves.byOperandKind(t) {
          for (op, vals) in ops {
            operandKinds.insert(op)
            let key = "\(f)|\(kind)"
            var (sum, n) = acc[key]?[op] ?? (Array(repeating: 0, count: T), Array(repeating: 0, count: T))
            for (r, x) in vals.enumerated() where x.isFinite { if let k = stepIndex[t.steps[r]] { sum[k] += x; n[k] += 1 } }
            acc[key, default: [:]][op] = (sum, n)
          }
        }
      } }
    }
    guard !operandKinds.isEmpty else { return "" }
    var s = "<h2>Operand telemetry</h2><p class=\"note\">Fraction of each GEMM operand's values that saturated (clamped at the format's largest value) and that flushed to zero (non-zero values rounded to 0), averaged over the layers of an operand kind and over all runs of a \(v.labelKind) (every learning rate and seed), per step.</p>"
    let idx = ReportCurves.thin(T, maximum: options.maximumPoints / 2)
    for kind in ReportCurves.telemetryKinds {
      s += "<h3>\(kind == "saturated" ? "Saturated" : "Flushed to zero")</h3><div class=\"panels\">"
      var rows: [[String]] = []
      var allZero: [String] = []
      for op in operandKinds.sorted() {
        var series: [SVG.Series] = []
        var columns: [[Double]] = []
        // An operand kind whose fraction is 0 at every step for every label is named, not drawn.
        let values = (0..<g.F).compactMap { acc["\($0)|\(kind)"]?[op] }.flatMap { sum, n in zip(sum, n).filter { $1 > 0 }.map { $0.0 } }
        if values.allSatisfy({ $0 == 0 }) { allZero.append(op); continue }
        for f in 0..<g.F {
          let mean = acc["\(f)|\(kind)"]?[op].map { sum, n in idx.map { n[$0] > 0 ? sum[$0] / Double(n[$0]) : .nan } } ?? idx.map { _ in .nan }
          columns.append(mean)
          series.append(SVG.Series(name: v.labels[f], color: SVG.color(f), points: zip(idx, mean).map { (Double(g.steps[$0]), $1) }))
        }
        for (k, t) in idx.enumerated() { rows.append([op, String(g.steps[t])] + columns.map { NumberText.g6($0[k]) }) }
        s += "<div>" + SVG.linePlot(title: "\(kind) \(op)", series: series, xTitle: "step (optimizer updates) — operand \(op)", yTitle: "fraction \(kind) (of values)", logX: options.logSteps, yFromZero: true, width: 390, height: 250) + "</div>"
      }
      s += "</div>"
      if !allZero.isEmpty { s += "<p class=\"note\">0 at every step for every \(v.labelKind): \(allZero.joined(separator: ", ")).</p>" }
      if rows.isEmpty { continue }
      s += PageBuilder.table(nextPlot(), kind: "telemetry-\(kind)", header: ["operand", "step"] + v.labels.map { "\($0) fraction \(kind)" }, rows: rows, leftColumns: 1, collapsed: true)
    }
    return s
  }

  // MARK: Runs

  mutating func runs(_ files: [(path: String, file: H5File, header: FileHeader)]) throws -> String {
    struct RunData {
      var name: String, path: String, header: FileHeader, file: H5File, id: String, group: H5Group
      var step: [Int], train: [Float], eval: [Float], gradNorm: [Float]
    }
    var data: [RunData] = []
    for (path, file, header) in files {
      guard try file.root.contains("runs"), let id = try file.group("/runs").children().first(where: { $0.kind == .group })?.name else {
        throw StoreError(.schema, file: path, "has no finished run under /runs (an unfinished run is resumed with `fpsim train --resume`)")
      }
      let g = try file.group("/runs/" + id)
      let m = "/runs/\(id)/metrics/"
      func col(_ n: String) throws -> [Float] { try file.root.contains(m + n) ? try file.dataset(m + n).read(as: Float.self) : [] }
      data.append(RunData(
        name: (path as NSString).lastPathComponent, path: path, header: header, file: file, id: id, group: g,
        step: try file.dataset(m + "step").read(as: Int64.self).map(Int.init), train: try col("train_loss"),
        eval: try col("eval_loss"), gradNorm: try col("grad_norm")))
    }
    var s = "<section class=\"runs\"><h2>Run\(data.count > 1 ? "s" : "") \(SVG.escape(data.map(\.name).joined(separator: ", ")))</h2>"
    let stepTitle = "step (optimizer updates\(options.logSteps ? ", log scale" : ""))"
    // Curves of all runs together.
    var trainSeries: [SVG.Series] = [], evalRows: [[String]] = [], gradSeries: [SVG.Series] = []
    var markers: [SVG.Marker] = []
    for (k, r) in data.enumerated() {
      let idx = ReportCurves.thin(r.step.count, maximum: options.maximumPoints)
      trainSeries.append(SVG.Series(name: "\(r.name) train", color: SVG.color(k), points: idx.map { (Double(r.step[$0]), Double(r.train[$0])) }, width: 1.4))
      let ev = r.step.indices.filter { $0 < r.eval.count && r.eval[$0].isFinite }
      trainSeries.append(SVG.Series(name: "\(r.name) validation", color: SVG.color(k), points: ev.map { (Double(r.step[$0]), Double(r.eval[$0])) }, dashed: true, width: 2.2))
      if !r.gradNorm.isEmpty {
        gradSeries.append(SVG.Series(name: r.name, color: SVG.color(k), points: idx.map { (Double(r.step[$0]), Double(r.gradNorm[$0])) }))
      }
      let ds = try r.group.attribute("diverged_step")?.intValue ?? -1
      if ds >= 0, let row = r.step.lastIndex(where: { $0 <= ds }) {
        markers.append(SVG.Marker(x: Double(r.step[row]), y: Double(r.train[row]), color: SVG.color(k), title: "\(r.name) diverged at step \(ds)"))
      }
      for i in idx { evalRows.append([r.name, String(r.step[i]), NumberText.g6(Double(r.train[i])), i < r.eval.count ? NumberText.g6(Double(r.eval[i])) : "-", i < r.gradNorm.count ? NumberText.g6(Double(r.gradNorm[i])) : "-"]) }
    }
    s += "<h3>Loss</h3><p class=\"note\">Training loss (solid) and validation loss (dashed, where evaluated)\(markers.isEmpty ? "" : "; × marks a divergence").</p>"
    s += SVG.linePlot(title: "loss", series: trainSeries, markers: markers, xTitle: stepTitle, yTitle: "loss (nats per item)", logX: options.logSteps, width: 900, height: 340)
    if !gradSeries.isEmpty {
      s += "<h3>Gradient norm</h3>" + SVG.linePlot(title: "gradient norm", series: gradSeries, xTitle: stepTitle, yTitle: "gradient norm (before clipping)", logX: options.logSteps, logY: true, width: 900, height: 260)
    }
    s += PageBuilder.table(nextPlot(), kind: "run-curves", header: ["run", "step", "train loss", "validation loss", "gradient norm"], rows: evalRows, collapsed: true)
    // Each run: attributes, telemetry, snapshot histograms, side by side.
    s += "<div class=\"side\">"
    for (k, r) in data.enumerated() {
      s += "<div><h3>\(SVG.escape(r.name))</h3>" + PageBuilder.header(r.path, r.header)
      var attrs: [[String]] = []
      for (name, value) in try r.group.attributes() where !["recipe_json", "config"].contains(name) {
        attrs.append([name, value.description])
      }
      s += PageBuilder.table("attributes-\(k)", kind: "run-attributes", header: ["attribute", "value"], rows: attrs, leftColumns: 2, collapsed: true, caption: "run attributes")
      let t = try ReportCurves.telemetry(r.file, run: r.id)
      let byKind = ReportCurves.byOperandKind(t)
      if !byKind.isEmpty {
        let idx = ReportCurves.thin(t.steps.count, maximum: options.maximumPoints)
        var rows: [[String]] = []
        for kind in ReportCurves.telemetryKinds {
          guard let ops = byKind[kind] else { continue }
          var series: [SVG.Series] = []
          s += "<h4>Fraction \(kind == "saturated" ? "saturated" : "flushed to zero"), mean over layers</h4>"
          for (j, op) in ops.keys.sorted().enumerated() {
            let pts = idx.map { (Double(t.steps[$0]), ops[op]![$0]) }
            series.append(SVG.Series(name: op, color: SVG.color(j), points: pts))
            for (x, y) in pts { rows.append([kind, op, String(Int(x)), NumberText.g6(y)]) }
          }
          s += SVG.linePlot(title: "\(kind) by operand", series: series, xTitle: stepTitle, yTitle: "fraction \(kind) (of values)", logX: options.logSteps, yFromZero: true, width: 560, height: 250)
        }
        s += PageBuilder.table(nextPlot(), kind: "run-telemetry", header: ["kind", "operand", "step", "fraction (mean over layers)"], rows: rows, leftColumns: 2, collapsed: true)
      }
      s += try binadeHeatMaps(r.file, run: r.id)
      s += try snapshotHistograms(r.file, run: r.id, color: SVG.color(k))
      s += "</div>"
    }
    return s + "</div></section>\n"
  }

  /// Histograms of the last snapshot's tensors (40 bins between min and max), at most 12 tensors.
  mutating func snapshotHistograms(_ file: H5File, run: String, color: String) throws -> String {
    let base = "/runs/\(run)/snapshots"
    guard try file.root.contains(base) else { return "" }
    let steps = try file.group(base).children().compactMap { c -> Int? in c.name.hasPrefix("step_") ? Int(c.name.dropFirst(5)) : nil }
    guard let last = steps.max() else { return "" }
    var tensors: [String] = []
    func walk(_ g: H5Group, _ prefix: String) throws {
      for c in try g.children() {
        // Operand snapshots (`operands/`) are GEMM inputs, not model tensors: the binade heat maps show them.
        if c.kind == .dataset { tensors.append(prefix + c.name) } else if c.kind == .group, !(prefix.isEmpty && c.name == "operands") {
          try walk(try g.group(c.name), prefix + c.name + "/")
        }
      }
    }
    try walk(try file.group("\(base)/step_\(last)"), "")
    let shown = Array(tensors.sorted().prefix(12))
    var s = "<h3>Snapshot at step \(last): value histograms</h3><p class=\"note\">\(shown.count) of \(tensors.count) tensors, 40 equal bins between each tensor's minimum and maximum.</p><div class=\"panels\">"
    var rows: [[String]] = []
    for name in shown {
      let x = try file.dataset("\(base)/step_\(last)/\(name)").read(as: Float.self).filter(\.isFinite)
      guard let lo = x.min(), let hi = x.max() else { continue }
      let bins = 40, w = hi > lo ? Double(hi - lo) / Double(bins) : 1
      var counts = [Int](repeating: 0, count: bins)
      for v in x { counts[min(bins - 1, Int((Double(v - lo)) / w))] += 1 }
      let edges = (0...bins).map { Double(lo) + Double($0) * w }
      s += "<div>" + SVG.histogram(title: name, edges: edges, counts: counts, xTitle: "value of \(name)", color: color) + "</div>"
      for i in 0..<bins { rows.append([name, NumberText.g6(edges[i]), NumberText.g6(edges[i + 1]), String(counts[i])]) }
    }
    return s + "</div>" + PageBuilder.table(nextPlot(), kind: "histograms", header: ["tensor", "bin low", "bin high", "count"], rows: rows, leftColumns: 1, collapsed: true)
  }
}
