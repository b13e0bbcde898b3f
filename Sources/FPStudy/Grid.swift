import FPStore
import Foundation

/// Runs a `GridSpec`: a pool of `fpsim train` worker processes writing one run file each into a run
/// directory, collected run by run into the grid file (`/runs/<id>`, each an atomic unit), then the
/// labelled arrays under `/results` and the summary.
///
/// Resume: a run already in the grid file is skipped; a finished run file is collected; a run file
/// with an unfinished run is resumed from its last checkpoint; anything else starts fresh. A killed
/// grid therefore loses at most the runs in flight, and finishes with the same results as one never
/// killed (every run is deterministic, and `/results` is built in spec order, not completion order).
public final class GridRunner {
  public let spec: GridSpec
  /// The grid file; nil for a shard, which only writes run files.
  public let gridPath: String?
  public let runDirectory: String
  public let jobs: Int
  /// Runs whose spec index i has i % count == index.
  public let shard: (index: Int, count: Int)?
  /// The `fpsim` executable the workers run.
  public let executable: String

  public struct Progress: Sendable {
    public var done = 0, total = 0, running = 0, diverged = 0, failed = 0
    public var elapsed = 0.0
    public var eta: Double? = nil
  }

  public init(
    spec: GridSpec, gridPath: String?, runDirectory: String, jobs: Int, shard: (Int, Int)? = nil, executable: String
  ) {
    self.spec = spec
    self.gridPath = gridPath
    self.runDirectory = runDirectory
    self.jobs = max(1, jobs)
    self.shard = shard
    self.executable = executable
  }

  public static func defaultRunDirectory(for gridPath: String) -> String {
    (gridPath.hasSuffix(".h5") ? String(gridPath.dropLast(3)) : gridPath) + ".runs"
  }

  public var selectedRuns: [GridSpec.Run] {
    let all = spec.runs
    guard let (i, n) = shard else { return all }
    return all.enumerated().filter { $0.offset % n == i }.map(\.element)
  }

  func runFile(_ run: GridSpec.Run) -> String { runDirectory + "/" + run.id + ".h5" }

  /// Runs what is missing. `shouldStop` is polled between launches (SIGINT); `report` gets progress.
  /// Returns the ids of runs that failed (their logs are beside their run files).
  public func run(shouldStop: @escaping () -> Bool, report: (Progress) -> Void) throws -> [String] {
    try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
    let grid = try gridPath.map { try openGrid($0) }
    defer { try? grid?.close() }
    let runs = selectedRuns
    var progress = Progress()
    progress.total = runs.count
    let start = Date()
    var todo: [GridSpec.Run] = []
    for r in runs {
      if let grid, try grid.root.contains("/runs/" + r.id) {
        progress.done += 1
        if try isDiverged(try grid.group("/runs/" + r.id)) { progress.diverged += 1 }
        continue
      }
      if try finishedRunFile(runFile(r)) {
        if let grid { try collect(r, into: grid) }
        progress.done += 1
        continue
      }
      todo.append(r)
    }
    let startedDone = progress.done
    report(progress)

    var failed: [String] = []
    var running: [(run: GridSpec.Run, process: Process)] = []
    var next = 0
    while next < todo.count || !running.isEmpty {
      if shouldStop() {
        for (_, p) in running where p.isRunning { kill(p.processIdentifier, SIGINT) }
        for (_, p) in running { p.waitUntilExit() }
        throw GridInterrupted(done: progress.done, total: progress.total)
      }
      while running.count < jobs && next < todo.count {
        running.append((todo[next], try launch(todo[next])))
        next += 1
      }
      progress.running = running.count
      // Wait for the first worker to finish.
      var finishedIndex: Int? = nil
      while finishedIndex == nil && !shouldStop() {
        finishedIndex = running.firstIndex { !$0.process.isRunning }
        if finishedIndex == nil { usleep(20_000) }
      }
      guard let k = finishedIndex else { continue }
      let (r, p) = running.remove(at: k)
      if p.terminationStatus == 0, try finishedRunFile(runFile(r)) {
        if let grid { try collect(r, into: grid) }
        if try runDiverged(runFile(r)) { progress.diverged += 1 }
      } else {
        failed.append(r.id)
        progress.failed += 1
      }
      progress.done += 1
      progress.running = running.count
      progress.elapsed = Date().timeIntervalSince(start)
      let finishedHere = progress.done - startedDone
      if finishedHere > 0 {
        progress.eta = progress.elapsed / Double(finishedHere) * Double(progress.total - progress.done)
      }
      report(progress)
    }
    if let grid, shard == nil, failed.isEmpty { try GridResults.write(spec: spec, into: grid) }
    return failed
  }

  // MARK: Grid file

  func openGrid(_ path: String) throws -> H5File {
    let config = try spec.json()
    if FileManager.default.fileExists(atPath: path) {
      let (file, header) = try Store.open(path, expecting: .grid, mode: .readWrite)
      guard header.config == config else {
        try? file.close()
        throw StoreError(
          .invalidArgument, file: path,
          "was written by a different grid spec; mixing them would corrupt the results: write to a new --out (or restore the spec)")
      }
      _ = try file.discardIncompleteUnits()
      return file
    }
    let file = try Store.create(path, schema: .grid, config: config)
    try file.root.requireGroup("runs")
    try file.flush(durable: true)
    return file
  }

  /// Copies the finished run of `run`'s file into the grid as `/runs/<id>`, in one atomic unit.
  func collect(_ run: GridSpec.Run, into grid: H5File) throws {
    try measureSharpness(run)
    let (source, header) = try Store.open(runFile(run), expecting: .run)
    defer { try? source.close() }
    let from = try source.group("/runs/run")
    let runs = try grid.root.requireGroup("runs")
    if try runs.contains(run.id) { return }
    try runs.publishUnit(run.id) { unit in
      for child in try from.children() { try unit.copy(child.name, from: from, to: child.name) }
      for (name, value) in try from.attributes() { try unit.setAttribute(name, value) }
      try unit.setAttribute(spec.labelKind, spec.labels[run.labelIndex])
      try unit.setAttribute("grid_lr", run.lr)
      try unit.setAttribute("grid_seed", run.seed)
      try unit.setAttribute("config", header.config)  // the run's own specification, for sharpness
    }
  }

  /// With `sharpness_every`, measures the run file's checkpoints at those steps (once: a run file
  /// that has them already is left as it is), so the sharpness travels with the run into the grid.
  func measureSharpness(_ run: GridSpec.Run) throws {
    guard spec.sharpnessEvery > 0 else { return }
    let path = runFile(run)
    let metrics = spec.sharpnessMetrics.compactMap(SharpnessMetric.init(rawValue:))
    let (file, _) = try Store.open(path, expecting: .run)
    let missing = try metrics.filter { !(try file.root.contains("/runs/run/sharpness/\($0.rawValue)")) }
    let available = try file.group("/runs/run/checkpoints").children().compactMap { Int($0.name.dropFirst("step_".count)) }
    try file.close()
    guard !missing.isEmpty else { return }
    let steps = spec.sharpnessSteps.filter(available.contains)
    guard !steps.isEmpty else { return }  // a run that diverged before the first measured step
    _ = try SharpnessJob(
      path: path, metrics: missing, steps: .chosen(steps), parameters: SharpnessParameters(), underRecipe: false
    ).run()
  }

  func finishedRunFile(_ path: String) throws -> Bool {
    guard FileManager.default.fileExists(atPath: path) else { return false }
    guard let (file, _) = try? Store.open(path, expecting: .run) else { return false }
    defer { try? file.close() }
    return try file.root.contains("/runs/run")
  }

  func runDiverged(_ path: String) throws -> Bool {
    let (file, _) = try Store.open(path, expecting: .run)
    defer { try? file.close() }
    return try isDiverged(try file.group("/runs/run"))
  }

  func isDiverged(_ g: H5Group) throws -> Bool { try g.attribute("status")?.stringValue == "diverged" }

  // MARK: Workers

  func launch(_ r: GridSpec.Run) throws -> Process {
    let path = runFile(r)
    var arguments: [String]
    if FileManager.default.fileExists(atPath: path), (try? RunFileWriter.reopen(path: path)).map({ try? $0.0.close(); return true }) == true {
      arguments = ["train", "--resume", path, "--threads", "1"]
    } else {
      try? FileManager.default.removeItem(atPath: path)
      arguments = [
        "train", "--model", spec.model, "--recipe", r.recipe, "--lr", "\(r.lr)", "--seed", "\(r.seed)",
        "--steps", "\(spec.steps)", "--eval-every", "\(spec.evalEvery)",
        "--checkpoint-every", "\(spec.checkpointEvery)", "--optimizer", spec.optimizer, "--data", spec.data,
        "--divergence-margin", "\(spec.divergenceMargin)", "--divergence-patience", "\(spec.divergencePatience)",
        "--threads", "1", "--out", path,
      ]
      if let w = spec.warmup { arguments += ["--warmup", "\(w)"] }
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment["OPENBLAS_NUM_THREADS"] = "1"  // one BLAS thread per worker; the pool uses the cores
    p.environment = environment
    let log = runDirectory + "/" + r.id + ".log"
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    p.standardError = handle
    p.standardOutput = handle
    p.standardInput = FileHandle.nullDevice
    try p.run()
    return p
  }
}

/// A grid stopped by SIGINT: everything finished is kept; rerunning the command resumes.
public struct GridInterrupted: Error, CustomStringConvertible {
  public let done: Int, total: Int
  public var description: String { "interrupted after \(done) of \(total) runs" }
}
