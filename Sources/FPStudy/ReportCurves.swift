import FPEngine
import FPStore
import Foundation

/// Reductions the report draws: median and range over seeds at each step, steps thinned for the
/// page, and operand telemetry gathered from the runs' metrics.
enum ReportCurves {
  /// At most `maximum` indices of 0..<count, evenly spaced, always with the first and last.
  static func thin(_ count: Int, maximum: Int = 200) -> [Int] {
    guard count > maximum else { return Array(0..<count) }
    let stride = Int((Double(count - 1) / Double(maximum - 1)).rounded(.up))
    var out = Array(Swift.stride(from: 0, to: count, by: stride))
    if out.last != count - 1 { out.append(count - 1) }
    return out
  }

  /// (median, min, max) over seeds of `values` [F, L, S, T] at label f, lr l, for each of `indices` of T.
  static func band(_ values: [Float], F: Int, L: Int, S: Int, T: Int, f: Int, l: Int, indices: [Int]) -> [(Double, Double, Double)] {
    indices.map { t in
      let v = (0..<S).map { Double(values[((f * L + l) * S + $0) * T + t]) }.filter(\.isFinite)
      return (Median.of(v), v.min() ?? .nan, v.max() ?? .nan)
    }
  }

  /// One run's operand telemetry: kind ("saturated", "flushed") -> operand name -> values per metrics row.
  struct Telemetry {
    var steps: [Int] = []
    var series: [String: [String: [Float]]] = [:]
  }

  static let telemetryKinds = ["saturated", "flushed"]

  static func telemetry(_ file: H5File, run: String) throws -> Telemetry {
    var t = Telemetry()
    let base = "/runs/\(run)/metrics"
    guard try file.root.contains(base + "/step") else { return t }
    t.steps = try file.dataset(base + "/step").read(as: Int64.self).map(Int.init)
    for kind in telemetryKinds where try file.root.contains(base + "/" + kind) {
      let g = try file.group(base + "/" + kind)
      for c in try g.children() where c.kind == .dataset {
        t.series[kind, default: [:]][c.name] = try g.dataset(c.name).read(as: Float.self)
      }
    }
    return t
  }

  /// Mean over the operands of each kind, per row: kind -> operand kind -> [rows].
  static func byOperandKind(_ t: Telemetry) -> [String: [String: [Double]]] {
    var out: [String: [String: [Double]]] = [:]
    for (kind, ops) in t.series {
      var sums: [String: ([Double], [Int])] = [:]
      for (name, v) in ops {
        let k = GEMMOperand.kind(ofTelemetryName: name) ?? name
        var (s, n) = sums[k] ?? (Array(repeating: 0, count: t.steps.count), Array(repeating: 0, count: t.steps.count))
        for (i, x) in v.prefix(t.steps.count).enumerated() where x.isFinite { s[i] += Double(x); n[i] += 1 }
        sums[k] = (s, n)
      }
      out[kind] = sums.mapValues { s, n in zip(s, n).map { $1 > 0 ? $0 / Double($1) : .nan } }
    }
    return out
  }
}
