import FPFormats
import FPStore
import Foundation

/// A mean over n values with its two-sided t-interval (95% by default):
/// mean ± t_{(1+c)/2, n-1} · s / sqrt(n), s the sample standard deviation (divisor n - 1).
/// With n < 2 there is no interval (`low`, `high`, `standardDeviation` are nil).
public struct MeanInterval: Codable, Sendable, Equatable {
  public var n: Int
  public var mean: Double
  public var standardDeviation: Double?
  public var low: Double?
  public var high: Double?

  /// nil for no values; NaN values are the caller's to remove.
  public init?(_ values: [Double], confidence: Double = 0.95) {
    guard !values.isEmpty else { return nil }
    n = values.count
    mean = values.reduce(0, +) / Double(n)
    guard n >= 2 else { return }
    let m = mean
    let s = (values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(n - 1)).squareRoot()
    let half = StudentT.quantile((1 + confidence) / 2, df: Double(n - 1)) * s / Double(n).squareRoot()
    standardDeviation = s
    low = mean - half
    high = mean + half
  }

  /// True when the interval contains 0 (nil without an interval).
  public var containsZero: Bool? {
    guard let low, let high else { return nil }
    return low <= 0 && 0 <= high
  }
}

/// One label's final validation loss against the baseline's at one learning rate, paired by seed:
/// d_s = loss(label, lr, s) - loss(baseline, lr, s) over the seeds where both runs finished
/// (not diverged, finite loss); positive means the label's loss is higher (worse).
public struct PairedDifference: Codable, Sendable, Equatable {
  /// The file it came from (set by `fpsim compare`; nil for one grid).
  public var file: String?
  public var label: String
  public var baseline: String
  public var lr: Double
  /// Seeds in the grid, and pairs used (both runs finished).
  public var seeds: Int
  public var pairs: Int
  /// Seeds where the label's run diverged or has no finite final loss; the same for the baseline.
  public var labelDiverged: Int
  public var baselineDiverged: Int
  /// Mean final validation loss (nats per item) of the label and of the baseline over the pairs used.
  public var meanLoss: Double?
  public var baselineMeanLoss: Double?
  /// Mean paired difference with its 95% t-interval (nil without pairs).
  public var difference: MeanInterval?
  /// "baseline", "within seed noise", "higher loss than baseline", "lower loss than baseline",
  /// "one pair: no interval", "no finished pair".
  public var verdict: String
}

/// The values of a grid that the statistics need: final validation loss and divergence over
/// [label, lr, seed], row-major (seed fastest).
public struct GridValues: Sendable {
  public var labelKind: String
  public var labels: [String]
  public var lrs: [Double]
  public var seeds: [Int]
  public var finalEval: [Double]
  public var diverged: [Bool]
  /// Total bits of each label's format (nil for recipes or labels that are not formats).
  public var totalBits: [Int?]
  /// The baseline when none is asked for (the grid's `/results@baseline`); nil: the first label.
  public var defaultBaseline: String? = nil

  public init(
    labelKind: String, labels: [String], lrs: [Double], seeds: [Int], finalEval: [Double], diverged: [Bool],
    totalBits: [Int?]? = nil
  ) {
    precondition(finalEval.count == labels.count * lrs.count * seeds.count && diverged.count == finalEval.count)
    self.labelKind = labelKind
    self.labels = labels
    self.lrs = lrs
    self.seeds = seeds
    self.finalEval = finalEval
    self.diverged = diverged
    self.totalBits = totalBits ?? labels.map { labelKind == "format" ? GridValues.bits(ofFormat: $0) : nil }
  }

  public func index(_ f: Int, _ l: Int, _ s: Int) -> Int { (f * lrs.count + l) * seeds.count + s }

  /// A run finished: not diverged and a finite final validation loss.
  public func finished(_ f: Int, _ l: Int, _ s: Int) -> Bool {
    let i = index(f, l, s)
    return !diverged[i] && finalEval[i].isFinite
  }

  /// Bits of a format name (sign + exponent + mantissa: e8m7 -> 16, ue8m0 -> 8); nil when the
  /// name is not an element format.
  public static func bits(ofFormat name: String) -> Int? {
    guard let f = try? FloatFormat(parsing: name) else { return nil }
    return (f.signed ? 1 : 0) + f.exponentBits + f.mantissaBits
  }

  /// The index of the baseline: `name` when given (an error naming the labels when absent), else
  /// `defaultBaseline`, else the first label.
  public func baselineIndex(_ name: String?) throws -> Int {
    guard let name = name ?? defaultBaseline else { return 0 }
    guard let i = labels.firstIndex(of: name) else {
      throw StudyInputError(description: "no \(labelKind) '\(name)' to use as --baseline; this grid has \(labels.joined(separator: ", "))")
    }
    return i
  }
}

/// Bad input to a report or comparison (a `--baseline` that names no label, no file); its text is the whole message.
public struct StudyInputError: Error, CustomStringConvertible, Sendable {
  public var description: String
}

/// Differences to a baseline label, paired by seed, per learning rate (README "Reports and comparisons").
public enum PairedComparison {
  /// Every (label, lr) against the baseline (the first label, or `baseline`), label-major; the
  /// baseline's own rows are included with verdict "baseline".
  public static func compute(_ g: GridValues, baseline: String? = nil) throws -> [PairedDifference] {
    let b = try g.baselineIndex(baseline)
    var out: [PairedDifference] = []
    for f in g.labels.indices {
      for l in g.lrs.indices {
        var diffs: [Double] = [], mine: [Double] = [], theirs: [Double] = []
        var labelDiverged = 0, baselineDiverged = 0
        for s in g.seeds.indices {
          let a = g.finished(f, l, s), c = g.finished(b, l, s)
          if !a { labelDiverged += 1 }
          if !c { baselineDiverged += 1 }
          guard a && c else { continue }
          let x = g.finalEval[g.index(f, l, s)], y = g.finalEval[g.index(b, l, s)]
          mine.append(x)
          theirs.append(y)
          diffs.append(x - y)
        }
        let d = MeanInterval(diffs)
        let verdict: String
        if f == b {
          verdict = "baseline"
        } else if let d {
          if let zero = d.containsZero {
            verdict = zero ? "within seed noise" : (d.mean > 0 ? "higher loss than baseline" : "lower loss than baseline")
          } else {
            verdict = "one pair: no interval"
          }
        } else {
          verdict = "no finished pair"
        }
        out.append(PairedDifference(
          file: nil, label: g.labels[f], baseline: g.labels[b], lr: g.lrs[l], seeds: g.seeds.count, pairs: diffs.count,
          labelDiverged: labelDiverged, baselineDiverged: baselineDiverged, meanLoss: MeanInterval(mine)?.mean,
          baselineMeanLoss: MeanInterval(theirs)?.mean, difference: f == b ? nil : d, verdict: verdict))
      }
    }
    return out
  }

  /// The same from a grid file's `/results` (what the grid summary and `--json` can show).
  public static func compute(grid: H5File, baseline: String? = nil) throws -> [PairedDifference] {
    try compute(GridStudy.read(grid).values, baseline: baseline)
  }

  /// A text table: label, lr, pairs, mean loss, difference to the baseline [95% interval], verdict.
  public static func table(_ rows: [PairedDifference], kind: String = "format") -> String {
    let withFile = rows.contains { $0.file != nil }
    var lines = [(withFile ? "file  " : "") + "\(kind)  lr  seeds (pairs)  final eval loss  diff to baseline  95% CI  verdict"]
    for r in rows {
      var cells: [String] = []
      if withFile { cells.append(r.file ?? "-") }
      cells.append(r.label)
      cells.append(NumberText.number(r.lr))
      cells.append("\(r.seeds) (\(r.pairs))")
      cells.append(r.meanLoss.map { NumberText.fixed($0) } ?? "-")
      cells.append(r.difference.map { NumberText.signed($0.mean) } ?? "-")
      cells.append(r.difference?.low.map { "[\(NumberText.signed($0)), \(NumberText.signed(r.difference!.high!))]" } ?? "-")
      var v = r.verdict
      if r.labelDiverged > 0 && r.label != r.baseline { v += "; \(r.labelDiverged)/\(r.seeds) not finished" }
      if r.baselineDiverged > 0 { v += "; baseline \(r.baselineDiverged)/\(r.seeds) not finished" }
      cells.append(v)
      lines.append(cells.joined(separator: "  "))
    }
    return NumberText.columns(lines)
  }
}

/// The answer a bit-reduction grid asks: the fewest bits whose final validation loss stays within
/// `tolerance` nats of the baseline at every learning rate where the baseline finished.
///
/// A format passes at a learning rate when every one of its seeds finished and the mean paired
/// difference is at most the tolerance; it passes "confidently" when the upper end of the 95%
/// interval is at most the tolerance too. Its interval is the one at its worst learning rate
/// (largest mean difference).
public struct BitReduction: Codable, Sendable, Equatable {
  public struct Verdict: Codable, Sendable, Equatable {
    public var label: String
    public var bits: Int
    public var bitsRemoved: Int
    public var passes: Bool
    public var passesConfidently: Bool
    /// The learning rate with the largest mean difference and that difference with its interval.
    public var worstLR: Double?
    public var worst: MeanInterval?
    /// Learning rates where some seed of this format did not finish (while the baseline's did).
    public var unfinishedLRs: [Double]
  }

  public var baseline: String
  public var baselineBits: Int
  public var tolerance: Double
  public var formats: [Verdict]
  /// The passing format with the fewest bits (ties: the first in the grid), and the same for "confidently".
  public var fewestBits: Verdict?
  public var fewestBitsConfident: Verdict?

  /// nil when some label is not a format or the grid is a recipe grid.
  public static func compute(_ g: GridValues, baseline: String? = nil, tolerance: Double) throws -> BitReduction? {
    let b = try g.baselineIndex(baseline)
    guard g.labelKind == "format", let baseBits = g.totalBits[b], g.totalBits.allSatisfy({ $0 != nil }) else { return nil }
    let diffs = try PairedComparison.compute(g, baseline: g.labels[b])
    var verdicts: [Verdict] = []
    for (f, label) in g.labels.enumerated() {
      var passes = true, confident = true
      var worst: (Double, MeanInterval)? = nil
      var unfinished: [Double] = []
      for (l, lr) in g.lrs.enumerated() {
        let baselineFinished = g.seeds.indices.contains { g.finished(b, l, $0) }
        guard baselineFinished else { continue }  // nothing to compare with at this lr
        let allFinished = g.seeds.indices.allSatisfy { g.finished(f, l, $0) }
        if !allFinished { unfinished.append(lr); passes = false; confident = false; continue }
        let row = diffs[f * g.lrs.count + l]
        let d = f == b ? MeanInterval(Array(repeating: 0, count: row.pairs)) : row.difference
        guard let d else { passes = false; confident = false; continue }
        if worst == nil || d.mean > worst!.0 { worst = (lr, d) }
        if d.mean > tolerance { passes = false }
        if !(d.mean <= tolerance && (d.high ?? .infinity) <= tolerance) { confident = false }
      }
      if worst == nil { passes = false; confident = false }
      let bits = g.totalBits[f]!
      verdicts.append(Verdict(
        label: label, bits: bits, bitsRemoved: baseBits - bits, passes: passes, passesConfidently: confident,
        worstLR: worst?.0, worst: worst?.1, unfinishedLRs: unfinished))
    }
    func fewest(_ ok: (Verdict) -> Bool) -> Verdict? {
      verdicts.filter(ok).min { $0.bits < $1.bits }  // min keeps the first of equals
    }
    return BitReduction(
      baseline: g.labels[b], baselineBits: baseBits, tolerance: tolerance, formats: verdicts,
      fewestBits: fewest(\.passes), fewestBitsConfident: fewest(\.passesConfidently))
  }

  /// One paragraph of text: the answer and how it was reached.
  public var sentence: String {
    var s = "Fewest bits within \(NumberText.fixed(tolerance, 3)) nats of \(baseline) (\(baselineBits) bits) at every learning rate: "
    if let v = fewestBits {
      s += "\(v.label) (\(v.bits) bits, \(v.bitsRemoved) removed)"
      if let w = v.worst {
        s += "; worst mean difference \(NumberText.signed(w.mean))"
        if let lo = w.low, let hi = w.high { s += " [\(NumberText.signed(lo)), \(NumberText.signed(hi))]" }
        if let lr = v.worstLR { s += " at lr \(NumberText.number(lr))" }
      }
      s += ". "
    } else {
      s += "none. "
    }
    s += "With the whole 95% interval within the tolerance: "
    if let v = fewestBitsConfident, v.label != baseline {
      s += "\(v.label) (\(v.bits) bits)."
    } else {
      s += "no format but the baseline (more seeds narrow the interval)."
    }
    return s
  }
}

/// Number formatting shared by the tables, the page and the command line.
enum NumberText {
  /// Shortest round-trip text of a learning rate (3e-3 -> 0.003).
  static func number(_ d: Double) -> String {
    var s = "\(d)"
    // 0.009000000000000001 (3 x 0.003 computed) reads as 0.009: six significant digits when shorter.
    if s.count > 10 { s = String(format: "%.6g", d) }
    return s.hasSuffix(".0") ? String(s.dropLast(2)) : s
  }
  static func fixed(_ d: Double, _ digits: Int = 4) -> String {
    d.isFinite ? String(format: "%.\(digits)f", d) : (d.isNaN ? "NaN" : (d > 0 ? "inf" : "-inf"))
  }
  static func signed(_ d: Double, _ digits: Int = 4) -> String {
    d.isFinite ? String(format: "%+.\(digits)f", d) : fixed(d)
  }
  /// Six significant digits, the precision of the page's tables (float32 values keep ~7).
  static func g6(_ d: Double) -> String {
    d.isFinite ? String(format: "%.6g", d) : (d.isNaN ? "NaN" : (d > 0 ? "inf" : "-inf"))
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
