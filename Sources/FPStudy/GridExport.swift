import FPStore
import Foundation

/// `fpsim grid export`: a finished grid without the bulk, small enough to commit beside a study.
///
/// The copy keeps the header (schema, version, creation, the spec as `config`), `/results` whole
/// (H5Ocopy: the same values and attributes; the dimension scales attached again), and of every run
/// its attributes, its per-step series (`metrics/train_loss`, `eval_loss`, `grad_norm`, ...) and its
/// sharpness series. It leaves out `checkpoints`, `snapshots` and the per-layer telemetry groups under
/// `metrics` (`amax`, `saturated`, ..., and `histograms`: about 500 small datasets a run, most of a
/// grid's size once the checkpoints are gone; `/results` keeps their means, and the histograms' sums,
/// per operand kind). It is still an `fpsim/grid`
/// file: `fpsim grid` on the same spec sees it finished and writes nothing,
/// `fpsim report`, `compare` and `inspect` read it, xarray opens its `/results`. Sharpness cannot be
/// measured on it (no checkpoints): the root attribute `exported_from` says where the full file was.
public enum GridExport {
  /// What an export leaves out of each run (recorded in the root attribute `exported_without`).
  public static let omitted = ["checkpoints", "snapshots", "metrics/<per-layer telemetry groups>"]

  public struct Summary: Sendable {
    public var runs: Int
    public var bytesBefore: Int
    public var bytesAfter: Int
  }

  /// Writes the export of the grid at `source` to `destination` atomically (all or nothing); refuses
  /// an unfinished grid (its `/results` would not describe every run) and an existing destination.
  @discardableResult
  public static func export(_ source: String, to destination: String) throws -> Summary {
    guard URL(fileURLWithPath: source).standardizedFileURL.path != URL(fileURLWithPath: destination).standardizedFileURL.path else {
      throw GridError("grid export: --out is the grid file itself; name a new file")
    }
    let (grid, header) = try Store.open(source, expecting: .grid)
    defer { try? grid.close() }
    let root = try grid.root
    guard try root.contains("results"), try root.contains("runs") else {
      throw GridError("\(source) has no /results yet: finish the grid (rerun `fpsim grid` on it) before exporting")
    }
    let runs = try root.group("runs").children().map(\.name)
    let collected = try root.group("results").attribute("runs_collected")?.intValue ?? -1
    guard collected == runs.count else {
      throw GridError("\(source) is not finished (\(collected) of \(runs.count) runs in /results): rerun `fpsim grid` on it, then export")
    }
    if FileManager.default.fileExists(atPath: destination) {
      throw GridError("\(destination) exists; export writes a new file: remove it or choose another --out")
    }
    try Folders.createParent(of: destination)
    try Store.writeAtomically(to: destination, schema: .grid, config: header.config) { out in
      let top = try out.root
      for (name, value) in try root.attributes() { try top.setAttribute(name, value) }
      try top.setAttribute("exported_from", URL(fileURLWithPath: source).lastPathComponent)
      try top.setAttribute("exported_without", omitted)
      try top.copyKeepingScales("results", from: root, to: "results")
      let into = try top.createGroup("runs")
      let from = try root.group("runs")
      for id in runs {
        let run = try from.group(id)
        let copy = try into.createGroup(id)
        for child in try run.children() where child.name != "checkpoints" && child.name != "snapshots" {
          guard child.name == "metrics" else {
            try copy.copy(child.name, from: run, to: child.name)
            continue
          }
          let metrics = try run.group("metrics"), kept = try copy.createGroup("metrics")
          for series in try metrics.children() where series.kind == .dataset {
            try kept.copy(series.name, from: metrics, to: series.name)
          }
          for (name, value) in try metrics.attributes() { try kept.setAttribute(name, value) }
        }
        for (name, value) in try run.attributes() { try copy.setAttribute(name, value) }
      }
    }
    return Summary(runs: runs.count, bytesBefore: fileSize(source), bytesAfter: fileSize(destination))
  }

  static func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
  }
}
