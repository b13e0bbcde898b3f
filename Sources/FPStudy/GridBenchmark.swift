import FPEngine
import FPStore
import Foundation

/// `fpsim bench grid`: a whole study's throughput. A fixed small grid (one model, one recipe, one
/// learning rate, seeds 0..<runs) is written as a spec file into a fresh temporary folder and run by
/// `GridRunner`, the worker processes `fpsim grid` uses, once per worker count in `jobs`, each from
/// scratch in its own folder (removed afterwards). Each measurement is the wall time from the first
/// worker's launch to the finished grid file with its `/results` (collection and results included),
/// as runs per hour. The grids' `/results` arrays are compared bit for bit across the worker counts:
/// every run is deterministic, so any difference is a bug.
public struct GridBenchmark: Sendable {
  public var model: String
  public var recipe: String
  /// Runs in the grid: seeds 0..<runs.
  public var runs: Int
  public var steps: Int
  /// Validation every this many steps (a study evaluates as it trains; the last step always is).
  public var evalEvery: Int
  public var lr: Double
  /// Worker counts, each timed on its own fresh grid; speed-ups are against the first.
  public var jobs: [Int]
  /// Threads per worker (the spec's `threads`).
  public var threads: Int
  /// Every worker count is timed this many times, the counts alternating (1, 2, 1, 2, ...), so that
  /// a shared machine's changing load hits them alike; the summary takes medians.
  public var repeats = 1
  /// The data folder (absolute), or nil: FPSIM_DATA, else the data shipped with fpsim.
  public var data: String?
  /// Where the temporary folders go.
  public var directory: String
  /// The `fpsim` executable the workers run.
  public var executable: String

  public init(
    model: String, recipe: String, runs: Int, steps: Int, evalEvery: Int, lr: Double, jobs: [Int], threads: Int,
    data: String?, directory: String, executable: String
  ) {
    self.model = model
    self.recipe = recipe
    self.runs = runs
    self.steps = steps
    self.evalEvery = evalEvery
    self.lr = lr
    self.jobs = jobs
    self.threads = threads
    self.data = data
    self.directory = directory
    self.executable = executable
  }

  /// The grid spec every measurement runs, as the TOML file `fpsim grid SPEC` reads.
  public var specText: String {
    func quoted(_ s: String) -> String {
      "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
    var lines = [
      "# fpsim bench grid: \(runs) runs of \(model) (\(recipe)), \(steps) steps each",
      "name = \"bench-grid\"",
      "model = \(quoted(model))",
      "recipes = [\(quoted(recipe))]",
      "lrs = [\(GridSpec.number(lr))]",
      "seeds = \"0..\(runs - 1)\"",
      "steps = \(steps)",
      "eval_every = \(evalEvery)",
      "threads = \(threads)",
    ]
    if let data { lines.append("data = \(quoted(data))") }
    return lines.joined(separator: "\n") + "\n"
  }

  /// Runs the grid once per worker count, `repeats` times over. `report` gets each grid's repeat,
  /// worker count and progress (at least once a second); `shouldStop` is polled as `GridRunner.run`
  /// does (a stop throws `GridInterrupted`, after the workers have stopped and the folder is removed).
  public func run(shouldStop: @escaping () -> Bool, report: (_ repeat: Int, _ jobs: Int, GridRunner.Progress) -> Void) throws
    -> GridBenchmarkResult
  {
    var measurements: [GridBenchmarkResult.Measurement] = []
    var first: ResultBits? = nil
    for r in 1...repeats {
      let before = measurements.count
      for j in jobs {
        var (m, bits) = try measure(jobs: j, shouldStop: shouldStop) { report(r, j, $0) }
        m.repeat = r
        if let first {
          m.identicalToFirst = bits == first
        } else {
          first = bits
        }
        // Against the first worker count of the same repeat, timed just before.
        m.speedup = measurements.count > before ? Self.round3(measurements[before].wallSeconds / m.wallSeconds) : 1
        measurements.append(m)
      }
    }
    // Per worker count, the medians over the repeats.
    let summary = jobs.enumerated().map { (k, j) -> GridBenchmarkResult.Summary in
      let mine = measurements.enumerated().filter { $0.offset % jobs.count == k }.map(\.element)
      let wall = Median.of(mine.map(\.wallSeconds))
      let firstWall = Median.of(measurements.enumerated().filter { $0.offset % jobs.count == 0 }.map(\.element.wallSeconds))
      return GridBenchmarkResult.Summary(
        jobs: j, wallSeconds: Self.round3(wall), runsPerHour: Self.round3(Double(runs) / wall * 3600),
        speedup: Self.round3(firstWall / wall), cpuSecondsPerRun: Self.round3(Median.of(mine.map(\.cpuSecondsPerRun))))
    }
    return GridBenchmarkResult(
      model: model, recipe: recipe, runs: runs, steps: steps, evalEvery: evalEvery, lr: lr, threadsPerWorker: threads,
      repeats: repeats, spec: specText, measurements: measurements, summary: summary,
      identical: measurements.allSatisfy(\.identicalToFirst), comparedArrays: ResultBits.names,
      workerPeakRSSBytes: Self.childrenUsage().peakRSSBytes, peakRSSBytes: TrainBenchmark.peakRSSBytes())
  }

  /// One grid with `jobs` workers, from scratch in a temporary folder that is removed afterwards.
  func measure(jobs: Int, shouldStop: @escaping () -> Bool, report: (GridRunner.Progress) -> Void) throws -> (
    GridBenchmarkResult.Measurement, ResultBits
  ) {
    let folder = try Self.temporaryFolder(in: directory, prefix: "fpsim-bench-grid-jobs\(jobs)-")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let specPath = folder + "/bench-grid.toml", gridPath = folder + "/bench-grid.h5"
    try Data(specText.utf8).write(to: URL(fileURLWithPath: specPath))
    let spec = try GridSpec(file: specPath)
    let runDirectory = GridRunner.defaultRunDirectory(for: gridPath)
    let runner = try GridRunner(spec: spec, gridPath: gridPath, runDirectory: runDirectory, jobs: jobs, executable: executable)
    runner.keepRuns = true  // the logs of failed runs are read below; the whole folder goes anyway

    let before = Self.childrenUsage(), loadBefore = Self.loadAverage(), selfBefore = TrainBenchmark.cpuSeconds()
    let busyBefore = Self.machineBusySeconds()
    let t0 = DispatchTime.now().uptimeNanoseconds
    let failed = try runner.run(shouldStop: shouldStop, report: report)
    let wall = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
    // This process's CPU time is the grid's own work (launching, collecting, /results).
    let after = Self.childrenUsage(), selfCPU = TrainBenchmark.cpuSeconds() - selfBefore
    let busy = Self.machineBusySeconds().flatMap { b in busyBefore.map { b - $0 } }
    if let id = failed.first {
      let log = (try? String(contentsOfFile: runDirectory + "/" + id + ".log", encoding: .utf8)) ?? ""
      let last = log.split(separator: "\n").last.map(String.init) ?? "no log"
      throw GridError("bench grid: \(failed.count) of \(runs) runs failed with \(jobs) jobs (\(id): \(last))")
    }

    let (file, _) = try Store.open(gridPath, expecting: .grid)
    defer { try? file.close() }
    let results = try file.group("/results")
    let collected = try results.attribute("runs_collected")?.intValue ?? 0
    let diverged = try file.dataset("/results/diverged").read(as: UInt8.self).filter { $0 != 0 }.count
    let bits = try ResultBits(file)
    let cpu = after.cpuSeconds - before.cpuSeconds
    let measurement = GridBenchmarkResult.Measurement(
      jobs: jobs, repeat: 1, runsFinished: collected, diverged: diverged, wallSeconds: Self.round3(wall),
      runsPerHour: Self.round3(Double(collected) / wall * 3600), speedup: 1,
      workerCPUSeconds: Self.round3(cpu), cpuSecondsPerRun: Self.round3(cpu / Double(max(1, collected))),
      gridProcessCPUSeconds: Self.round3(selfCPU),
      otherCPUSeconds: busy.map { Self.round3(max(0, $0 - cpu - selfCPU)) } ?? -1,
      gridFileBytes: (try? FileManager.default.attributesOfItem(atPath: gridPath)[.size] as? Int) ?? 0,
      loadAverage: [loadBefore, Self.loadAverage()], identicalToFirst: true)
    return (measurement, bits)
  }

  /// The `/results` arrays compared across worker counts, as bit patterns (NaN-safe equality).
  struct ResultBits: Equatable {
    static let names = ["loss", "grad_norm", "eval_loss", "final_loss", "final_eval_loss", "min_eval_loss"]
    var arrays: [[UInt32]]

    init(_ file: H5File) throws {
      // All float32 ([runs] or [runs, steps] per recipe and learning rate).
      // (eval_loss is absent when no run was evaluated; its absence is compared too.)
      let results = try file.group("/results")
      arrays = try Self.names.map { name in
        try results.contains(name) ? try results.dataset(name).read(as: Float.self).map(\.bitPattern) : []
      }
    }
  }

  static func round3(_ x: Double) -> Double { (x * 1e3).rounded() / 1e3 }

  /// A new empty folder `directory/prefixXXXXXX` (mkdtemp).
  static func temporaryFolder(in directory: String, prefix: String) throws -> String {
    var template = Array((directory + "/" + prefix + "XXXXXX").utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
      throw GridError("bench grid: cannot create a temporary folder in \(directory) (\(String(cString: strerror(errno)))): pass --dir with a writable folder")
    }
    return String(cString: made)
  }

  /// CPU time and the largest peak resident set of the waited-for child processes (the workers);
  /// Linux reports ru_maxrss in KiB, of the single largest child.
  static func childrenUsage() -> (cpuSeconds: Double, peakRSSBytes: Int) {
    var u = rusage()
    getrusage(RUSAGE_CHILDREN.rawValue, &u)
    let cpu = Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6
    return (cpu, u.ru_maxrss * 1024)
  }

  /// The one-minute load average (the machine's other work shows here: these workers add up to
  /// `jobs` to it), rounded to 0.01; -1 where the system does not say (JSON has no NaN).
  static func loadAverage() -> Double {
    var l = [0.0, 0.0, 0.0]
    guard getloadavg(&l, 3) >= 1 else { return -1 }
    return (l[0] * 100).rounded() / 100
  }

  /// CPU time all cores spent busy since boot (Linux /proc/stat: user, nice, system, irq, softirq,
  /// steal), seconds; nil where there is no /proc/stat.
  static func machineBusySeconds() -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
      let line = text.split(separator: "\n").first, line.hasPrefix("cpu ")
    else { return nil }
    let f = line.split(separator: " ").dropFirst().compactMap { Double($0) }
    guard f.count >= 8 else { return nil }
    let ticks = f[0] + f[1] + f[2] + f[5] + f[6] + f[7]  // idle (3) and iowait (4) left out
    return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
  }
}

/// What `fpsim bench grid` measures; its JSON names are these in snake_case (`runs_per_hour`).
public struct GridBenchmarkResult: Codable, Sendable {
  public var model: String
  public var recipe: String
  public var runs: Int
  public var steps: Int
  public var evalEvery: Int
  public var lr: Double
  public var threadsPerWorker: Int
  public var repeats: Int
  /// The spec file every grid ran (TOML).
  public var spec: String
  /// Every grid, in the order run (repeat by repeat, the worker counts in their order within each).
  public var measurements: [Measurement]
  /// Per worker count: the median over the repeats.
  public var summary: [Summary]
  /// Every grid's `comparedArrays` were bit-identical to the first grid's.
  public var identical: Bool
  public var comparedArrays: [String]
  /// The largest peak resident set of any one worker, over all grids (getrusage RUSAGE_CHILDREN).
  public var workerPeakRSSBytes: Int
  /// Of the benchmark's own process, which collects the runs and writes the grid files.
  public var peakRSSBytes: Int

  public struct Measurement: Codable, Sendable {
    public var jobs: Int
    /// 1 to `repeats`.
    public var `repeat`: Int
    /// Runs in the finished grid's `/results` (`runs_collected`).
    public var runsFinished: Int
    public var diverged: Int
    /// From the first launch to the finished grid file with `/results`.
    public var wallSeconds: Double
    public var runsPerHour: Double
    /// The wall time of the first worker count in the same repeat over this one's.
    public var speedup: Double
    /// CPU time of all workers (user + system), and per run.
    public var workerCPUSeconds: Double
    public var cpuSecondsPerRun: Double
    /// CPU time of the grid process itself while this grid ran (launching workers, polling them,
    /// collecting run files into the grid file, writing /results): its serial share.
    public var gridProcessCPUSeconds: Double
    /// CPU time the machine spent on other programs while this grid ran (all cores' busy time from
    /// /proc/stat less the workers' and the grid process's; -1 without /proc/stat). On 2 cores,
    /// near the wall time means another program held a core the whole time.
    public var otherCPUSeconds: Double
    public var gridFileBytes: Int
    /// The one-minute load average as the grid started and as it ended. On a machine doing other
    /// work, the wall time (and the speed-up) moves with it, the CPU time per run much less.
    public var loadAverage: [Double]
    /// `/results` bit-identical to the first measurement's (true for the first).
    public var identicalToFirst: Bool
  }

  /// The median wall time over the repeats, the runs per hour it gives, the first worker count's
  /// median wall time over this one's, and the median CPU time per run.
  public struct Summary: Codable, Sendable {
    public var jobs: Int
    public var wallSeconds: Double
    public var runsPerHour: Double
    public var speedup: Double
    public var cpuSecondsPerRun: Double
  }
}
