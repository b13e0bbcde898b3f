import FPEngine
import FPStore
import Foundation

/// Runs a `GridSpec`: a pool of worker processes (`fpsim worker`, each handed its run's `RunSpec` as
/// JSON on standard input) writing one run file each into a run directory, collected run by run into
/// the grid file (`/runs/<id>`, each an atomic unit), then the labelled arrays under `/results` and
/// the summary.
///
/// Everything is checked before anything is written: the spec (when it was built), the data files,
/// an existing grid file's spec, and the run files left by an earlier attempt (a run file written for
/// other settings is refused, naming the first setting that differs).
///
/// Resume: a run already in the grid file is skipped; a finished run file is collected; a run file
/// with an unfinished run is resumed from its last checkpoint; a broken one is set aside and its run
/// starts again. A killed grid therefore loses at most the runs in flight, and finishes with the same
/// results as one never killed (every run is deterministic, and `/results` is built in spec order).
/// A finished grid is opened read-only and left untouched, so rerunning it writes nothing (and works
/// while a notebook holds the file open).
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
  /// The data folder every run trains on (absolute).
  public let dataDirectory: String
  /// Keep the run files once they are in the grid file (default: remove them, and the run directory
  /// when it is empty, so that a grid is not stored twice).
  public var keepRuns = false
  /// Collect finished run files only, never train (`fpsim grid merge`).
  public var collectOnly = false

  public struct Progress: Sendable {
    public var done = 0, total = 0, running = 0, diverged = 0, failed = 0
    /// Optimizer steps done across all runs (finished runs count whole), and in all.
    public var stepsDone = 0, stepsTotal = 0
    public var elapsed = 0.0
    public var eta: Double? = nil
  }

  public init(
    spec: GridSpec, gridPath: String?, runDirectory: String, jobs: Int, shard: (Int, Int)? = nil, executable: String,
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws {
    self.spec = spec
    self.gridPath = gridPath
    self.runDirectory = runDirectory
    self.jobs = max(1, jobs)
    self.shard = shard
    self.executable = executable
    dataDirectory = try DataLocation.resolve(
      spec.data, model: try ModelSpec(parsing: spec.model), executable: executable, environment: environment)
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
  func logFile(_ run: GridSpec.Run) -> String { runDirectory + "/" + run.id + ".log" }

  /// Runs what is missing. `shouldStop` is polled while workers run (SIGINT, SIGTERM, SIGHUP); `report`
  /// gets progress at least once a second while runs are in flight. Returns the ids of runs that
  /// failed (their logs are beside their run files).
  public func run(shouldStop: @escaping () -> Bool, report: (Progress) -> Void) throws -> [String] {
    let runs = selectedRuns
    var progress = Progress()
    progress.total = runs.count
    progress.stepsTotal = runs.count * spec.steps
    let start = Date()

    // 1. What the grid file has already, read-only: a finished grid stops here, untouched.
    var inGrid = Set<String>()
    if let gridPath, FileManager.default.fileExists(atPath: gridPath) {
      let (file, header) = try Store.open(gridPath, expecting: .grid)
      defer { try? file.close() }
      try checkSameStudy(header.config, path: gridPath)
      for r in runs where try file.root.contains("/runs/" + r.id) {
        inGrid.insert(r.id)
        if try isDiverged(try file.group("/runs/" + r.id)) { progress.diverged += 1 }
      }
      if inGrid.count == runs.count, shard == nil, try GridResults.isUpToDate(file, spec: spec) {
        progress.done = runs.count
        progress.stepsDone = progress.stepsTotal
        report(progress)
        return []
      }
    }
    progress.done = inGrid.count
    progress.stepsDone = inGrid.count * spec.steps

    // 2. The run files of an earlier attempt: checked before anything is written.
    var toCollect: [GridSpec.Run] = [], toResume: [GridSpec.Run] = [], toStart: [GridSpec.Run] = [], broken: [String] = []
    for r in runs where !inGrid.contains(r.id) {
      switch try state(of: r) {
      case .finished: toCollect.append(r)
      case .resumable: toResume.append(r)
      case .broken: broken.append(r.id); toStart.append(r)
      case .absent: toStart.append(r)
      }
    }
    if collectOnly, let r = (toResume + toStart).first {
      throw GridError(
        "\(toResume.count + toStart.count) runs have no finished run file in \(runDirectory) (first: \(r.id)): run (or rerun) their shards first")
    }

    // Operand snapshots name layers of the model: a wrong name is refused here, before anything is
    // written, rather than by every worker (one model per grid, so one run per recipe checks all).
    if let names = spec.snapshotOperands, !names.isEmpty {
      var seen = Set<String>()
      for r in toResume + toStart where seen.insert(r.recipe).inserted {
        let rs = try spec.runSpec(r, dataDirectory: dataDirectory)
        let task = try rs.model.makeTask(
          dataDirectory: URL(fileURLWithPath: dataDirectory), recipe: rs.recipe, seed: rs.training.seed, threads: 1)
        do {
          _ = try Trainer(task: task, config: rs.training)
        } catch {
          throw GridError("snapshot_operands: \(error)")
        }
      }
    }

    // 3. Write: the grid file, the run directory, collected runs.
    let grid = try gridPath.map { try openGrid($0) }
    defer { try? grid?.close() }
    try Folders.create(runDirectory, for: "the run files")
    for id in broken { try setAside(runDirectory + "/" + id + ".h5") }
    for r in toCollect {
      if try finish(r, grid: grid) { progress.diverged += 1 }
      progress.done += 1
      progress.stepsDone += spec.steps
    }
    let startedSteps = progress.stepsDone
    report(progress)

    // 4. Train what is missing, `jobs` at a time.
    let todo = toResume.map { ($0, true) } + toStart.map { ($0, false) }
    var failed: [String] = []
    var running: [(run: GridSpec.Run, process: Process)] = []
    var next = 0
    var lastReport = Date.distantPast
    while next < todo.count || !running.isEmpty {
      if shouldStop() {
        for (_, p) in running where p.isRunning { kill(p.processIdentifier, SIGINT) }
        for (_, p) in running { p.waitUntilExit() }
        throw GridInterrupted(done: progress.done, total: progress.total)
      }
      while running.count < jobs && next < todo.count {
        running.append((todo[next].0, try launch(todo[next].0, resume: todo[next].1)))
        next += 1
      }
      progress.running = running.count
      guard let k = running.firstIndex(where: { !$0.process.isRunning }) else {
        if Date().timeIntervalSince(lastReport) >= 1 {
          progress.elapsed = Date().timeIntervalSince(start)
          let inFlight = running.reduce(0) { $0 + (stepsDone(in: logFile($1.run)) ?? 0) }
          var shown = progress
          shown.stepsDone += inFlight
          shown.eta = eta(done: shown.stepsDone - startedSteps, elapsed: shown.elapsed, left: shown.stepsTotal - shown.stepsDone)
          report(shown)
          lastReport = Date()
        }
        usleep(20_000)
        continue
      }
      let (r, p) = running.remove(at: k)
      if p.terminationStatus == 0, try state(of: r) == .finished {
        if try finish(r, grid: grid) { progress.diverged += 1 }
      } else {
        failed.append(r.id)
        progress.failed += 1
      }
      progress.done += 1
      progress.stepsDone += spec.steps
      progress.running = running.count
      progress.elapsed = Date().timeIntervalSince(start)
      progress.eta = eta(done: progress.stepsDone - startedSteps, elapsed: progress.elapsed, left: progress.stepsTotal - progress.stepsDone)
      report(progress)
      lastReport = Date()
    }
    if let grid, shard == nil, failed.isEmpty {
      try GridResults.write(spec: spec, into: grid, dataDirectory: dataDirectory)
      try grid.flush(durable: true)
      if !keepRuns { try? FileManager.default.removeItem(atPath: runDirectory) }
    }
    return failed
  }

  func eta(done: Int, elapsed: Double, left: Int) -> Double? {
    done > 0 ? elapsed / Double(done) * Double(left) : nil
  }

  /// The step count of the last `step N/T` progress line in a worker's log.
  func stepsDone(in log: String) -> Int? {
    guard let h = FileHandle(forReadingAtPath: log) else { return nil }
    defer { try? h.close() }
    let end = (try? h.seekToEnd()) ?? 0
    try? h.seek(toOffset: end > 512 ? end - 512 : 0)
    let tail = String(decoding: h.readDataToEndOfFile(), as: UTF8.self)
    guard let range = tail.range(of: "step ", options: .backwards) else { return nil }
    return Int(tail[range.upperBound...].prefix { $0.isNumber })
  }

  // MARK: Grid file

  func checkSameStudy(_ config: String, path: String) throws {
    guard let stored = try? JSONDecoder().decode(GridSpec.self, from: Data(config.utf8)), stored.sameStudy(as: spec) else {
      throw GridError(
        "\(path) was written by a different grid spec; mixing them would corrupt the results: write to a new --out (or restore the spec)")
    }
  }

  func openGrid(_ path: String) throws -> H5File {
    if FileManager.default.fileExists(atPath: path) {
      let file: H5File, header: FileHeader
      do { (file, header) = try Store.open(path, expecting: .grid, mode: .readWrite) } catch let e as StoreError {
        throw GridError.explainingLock(e, path: path)
      }
      do { try checkSameStudy(header.config, path: path) } catch {
        try? file.close()
        throw error
      }
      _ = try file.discardIncompleteUnits()
      return file
    }
    try Folders.createParent(of: path)
    let file = try Store.create(path, schema: .grid, config: try spec.json())
    try file.root.requireGroup("runs")
    try file.flush(durable: true)
    return file
  }

  /// Copies the finished run of `run`'s file into the grid as `/runs/<id>`, in one atomic unit. The run
  /// files stay until the whole grid and its `/results` are on disk (then, unless `keepRuns`, the run
  /// directory goes): a grid file damaged by a kill mid-write can still be rebuilt from them.
  func collect(_ run: GridSpec.Run, into grid: H5File) throws {
    try measureSharpness(run)
    let (source, header) = try Store.open(runFile(run), expecting: .run)
    defer { try? source.close() }
    let from = try source.group("/runs/run")
    let runs = try grid.root.requireGroup("runs")
    if try !runs.contains(run.id) {
      try runs.publishUnit(run.id) { unit in
        for child in try from.children() { try unit.copy(child.name, from: from, to: child.name) }
        for (name, value) in try from.attributes() { try unit.setAttribute(name, value) }
        try unit.setAttribute(spec.labelKind, spec.labels[run.labelIndex])
        try unit.setAttribute("grid_lr", run.lr)
        try unit.setAttribute("grid_seed", run.seed)
        try unit.setAttribute("config", header.config)  // the run's own specification, for sharpness
      }
      try grid.flush(durable: true)
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

  // MARK: Run files

  enum RunFileState: Equatable { case absent, finished, resumable, broken }

  /// What an earlier attempt left for `run` (`TrainingRuns.state`: a finished file, or a
  /// `<file>.partial/` folder of durable units to resume from); a finished or resumable run written
  /// for other settings is refused (it would put another study's numbers into this one).
  func state(of run: GridSpec.Run) throws -> RunFileState {
    let path = runFile(run)
    switch TrainingRuns.state(path: path) {
    case .absent: return .absent
    case .broken: return .broken
    case .finished:
      guard let (file, header) = try? Store.open(path, expecting: .run) else { return .broken }
      try? file.close()
      try checkRunFile(header.config, run: run, path: path)
      return .finished
    case .resumable:
      guard let config = RunFileWriter.scan(path: path).newest?.config else { return .broken }
      try checkRunFile(config, run: run, path: path)
      return .resumable
    }
  }

  /// Refuses a run file whose stored run description differs from the one this spec gives `run`
  /// (the data folder aside), naming the first setting that differs.
  func checkRunFile(_ config: String, run: GridSpec.Run, path: String) throws {
    let expected = try spec.runSpec(run, dataDirectory: "")
    guard var stored = try? RunSpec.decode(config, file: path) else {
      throw GridError("\(path) holds a run this fpsim cannot read: move it away, or write the grid to a new --out")
    }
    stored.dataDirectory = ""
    guard stored != expected else { return }
    let difference = RunSpecDifference.first(stored: stored, expected: expected) ?? "its settings"
    throw GridError(
      "\(path) was written for other settings (\(difference)): it is not a run of this grid; move it away or use another --runs-dir")
  }

  /// Moves a broken leftover (a kill during its first write, a full disk) out of the way, so that its
  /// run starts again and the leftover stays for inspection (`TrainingRuns.setAside`).
  func setAside(_ path: String) throws {
    for moved in try TrainingRuns.setAside(path: path) {
      FileHandle.standardError.write(Data("fpsim: a broken leftover of \(path) was set aside as \(moved); its run starts again\n".utf8))
    }
  }

  /// Collects a finished run (a shard leaves it in its file); returns whether it diverged.
  func finish(_ run: GridSpec.Run, grid: H5File?) throws -> Bool {
    if let grid {
      try collect(run, into: grid)
      return try isDiverged(try grid.group("/runs/" + run.id))
    }
    let (file, _) = try Store.open(runFile(run), expecting: .run)
    defer { try? file.close() }
    return try isDiverged(try file.group("/runs/run"))
  }

  func isDiverged(_ g: H5Group) throws -> Bool { try g.attribute("status")?.stringValue == "diverged" }

  // MARK: Workers

  /// Starts `fpsim worker` for `r`: a new run reads its `RunSpec` as JSON on standard input; an
  /// unfinished one resumes from its file.
  func launch(_ r: GridSpec.Run, resume: Bool) throws -> Process {
    let path = runFile(r)
    let threads = spec.threads ?? 1
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    var input: Data? = nil
    if resume {
      p.arguments = ["worker", "--resume", path, "--threads", "\(threads)"]
    } else {
      var runSpec = try spec.runSpec(r, dataDirectory: dataDirectory)
      runSpec.runID = "run"
      input = Data(try runSpec.json().utf8)
      p.arguments = ["worker", "--out", path, "--threads", "\(threads)"]
    }
    var environment = ProcessInfo.processInfo.environment
    environment["OPENBLAS_NUM_THREADS"] = "1"  // one BLAS thread per worker; fpsim's pool uses `threads`
    p.environment = environment
    _ = FileManager.default.createFile(atPath: logFile(r), contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logFile(r)))
    p.standardError = handle
    p.standardOutput = handle
    let pipe = Pipe()
    p.standardInput = input == nil ? FileHandle.nullDevice : pipe
    try p.run()
    if let input {
      pipe.fileHandleForWriting.write(input)
      try? pipe.fileHandleForWriting.close()
    }
    return p
  }
}

/// The first setting in which two run descriptions differ, as `training.steps: 800 in the run file,
/// 300 in the spec` (the JSON paths of their stored form).
enum RunSpecDifference {
  static func first(stored: RunSpec, expected: RunSpec) -> String? {
    func leaves(_ spec: RunSpec) -> [String: String] { (try? spec.json()).flatMap(JSONValue.init(parsing:))?.leaves ?? [:] }
    let a = leaves(stored), b = leaves(expected)
    for key in Set(a.keys).union(b.keys).sorted() where a[key] != b[key] {
      return "\(key): \(a[key] ?? "absent") in the run file, \(b[key] ?? "absent") in the spec"
    }
    return nil
  }
}

/// A grid stopped by SIGINT, SIGTERM or SIGHUP: everything finished is kept; rerunning the command resumes.
public struct GridInterrupted: Error, CustomStringConvertible {
  public let done: Int, total: Int
  public var description: String { "interrupted after \(done) of \(total) runs" }
}

/// A grid that cannot go on; the text is the whole one-line message.
public struct GridError: Error, CustomStringConvertible {
  public let description: String
  public init(_ text: String) { description = text }

  /// HDF5 refuses to open a file for writing while another program (h5py in a notebook) has it open;
  /// its own text speaks of locks. Say what happened and what to do.
  static func explainingLock(_ error: StoreError, path: String) -> Error {
    let text = "\(error)".lowercased()
    guard text.contains("lock") || text.contains("open for") || text.contains("unable to open") else { return error }
    return GridError(
      "\(path) is open in another program (a notebook's h5py.File or xarray data set?), and adding to it needs it closed: close it there (f.close() / ds.close()) and rerun; reading it alongside is fine")
  }
}
