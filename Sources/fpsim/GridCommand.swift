import ArgumentParser
import FPStore
import FPStudy
import Foundation

/// `fpsim grid`: a sweep over formats (or recipes), learning rates and seeds.
struct Grid: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run a sweep of training runs in parallel, resumably, into one HDF5 grid file.",
    discussion: """
      fpsim grid SPEC.toml --out results/study.h5       (a spec file, TOML or JSON; see experiments/)
      fpsim grid --model gpt-tiny --formats e8m7..e8m3 --rounding rtz --lrs 1e-3,3e-3 --seeds 0..4 --steps 1000 --out sweep.h5
      Rerunning the same command resumes: finished runs are kept, unfinished ones continue.
      """,
    subcommands: [GridRun.self, GridMerge.self, GridExportCommand.self], defaultSubcommand: GridRun.self)
}

/// What both `grid` and `grid merge` take to know the sweep: a spec file or the same keys as flags.
struct GridSpecOptions: ParsableArguments {
  @Argument(help: "The grid spec (TOML or JSON). Or give --model, --formats/--recipes, --lrs, --seeds, --steps.")
  var spec: String?

  @Option(help: "Model preset: gpt-tiny, gpt-micro, llama-tiny, llama-micro, mlp, linreg.") var model: String?
  @Option(help: "Comma-separated formats and ranges (e8m7..e8m3).") var formats: String?
  @Option(help: "Recipes (instead of --formats), separated by ';' (recipes may hold commas: 'fp32;fp4:scale=ue5m3,block=16'), or the option repeated; commas separate recipes that hold no '='.")
  var recipes: [String] = []
  @Option(help: "Rounding of the formats (rne, rtz, stochastic, ...).") var rounding: String = "rne"
  @Option(help: "Comma-separated learning rates.") var lrs: String?
  @Option(help: "Seeds: a range A..B or a comma-separated list.") var seeds: String?
  @Option(help: "Steps per run.") var steps: Int?
  @Option(help: "Evaluate every N steps.") var evalEvery: Int = 100
  @Option(help: "Checkpoint every N steps (0: only at the end).") var checkpointEvery: Int = 0
  @Option(help: "Optimizer: adamw, sgd or signsgd.") var optimizer: String = "adamw"
  @Option(help: "Linear warmup steps (default min(100, steps / 10)).") var warmup: Int?
  @Option(help: "The format or recipe every run is compared with at its learning rate and seed (default: the first).")
  var baseline: String?
  @Option(help: "Directory of the data sets (default: FPSIM_DATA, else the data shipped with fpsim).") var data: String?
  @Option(help: "The grid file.") var out: String
  @Option(help: "Where the workers' run files go (default: the grid file's name + .runs).") var runsDir: String?

  func resolve() throws -> GridSpec {
    if let spec {
      if model != nil || formats != nil || !recipes.isEmpty || lrs != nil || seeds != nil || steps != nil {
        throw CLIError("give either a spec file or --model/--formats/--lrs/--seeds/--steps flags, not both")
      }
      return try GridSpec(file: spec)
    }
    guard let model, let lrs, let seeds, let steps, formats != nil || !recipes.isEmpty else {
      throw CLIError("give a spec file, or --model, --formats (or --recipes), --lrs, --seeds and --steps")
    }
    var labels: [String] = [], recipeList: [String] = [], kind = "format"
    if let formats {
      for f in formats.split(separator: ",") { labels += try GridSpec.expandFormats(String(f)) }
      recipeList = labels.map { "uniform:\($0):\(rounding)" }
    } else {
      labels = GridSpecOptions.splitRecipes(recipes)
      recipeList = labels
      kind = "recipe"
    }
    let lrValues = try lrs.split(separator: ",").map { s -> Double in
      guard let d = Double(s), d.isFinite else { throw CLIError("--lrs: '\(s)' is not a number") }
      return d
    }
    var seedValues: [Int] = []
    for s in seeds.split(separator: ",") { seedValues += try GridSpec.expandSeeds(String(s)) }
    return try GridSpec(
      name: URL(fileURLWithPath: out).deletingPathExtension().lastPathComponent, model: model, labels: labels,
      recipes: recipeList, labelKind: kind, lrs: lrValues, seeds: seedValues, steps: steps, evalEvery: evalEvery,
      checkpointEvery: checkpointEvery, warmup: warmup, optimizer: optimizer,
      data: data.map { DataLocation.absolute($0, base: FileManager.default.currentDirectoryPath) },
      options: GridSpec.TrainOptions(baseline: baseline))
  }

  /// `--recipes` values: each split at ';', or at ',' when it holds no '=' (then no recipe in it has
  /// options, so commas can only separate recipes).
  static func splitRecipes(_ values: [String]) -> [String] {
    values.flatMap { v -> [String] in
      let separator: Character = v.contains(";") || v.contains("=") ? ";" : ","
      return v.split(separator: separator).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
  }

  var runDirectory: String { runsDir ?? GridRunner.defaultRunDirectory(for: out) }
}

struct GridRun: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "run", abstract: "Run (or resume) a grid.")

  @OptionGroup var options: GridSpecOptions
  @Option(help: "Worker processes (default: the number of cores).") var jobs: Int?
  @Option(help: "Run only slice I of N (I/N, from 0); defaults to SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT. Shards write run files only: assemble them with `fpsim grid merge`.")
  var shard: String?
  @Flag(help: "Print the summary as JSON.") var json = false
  @Flag(help: "Run a grid of more than 10,000 runs (refused otherwise, after printing its size).") var yes = false
  @Flag(help: "Keep the run files in the run directory once they are in the grid file.") var keepRuns = false

  func run() throws {
    let spec = try options.resolve()
    let shard = try parseShard()
    let jobs = self.jobs ?? ProcessInfo.processInfo.activeProcessorCount
    guard jobs >= 1 else { throw CLIError("--jobs must be at least 1") }
    if spec.runCount > GridSpec.largeGrid && !yes {
      throw CLIError(
        "this grid has \(spec.runCount) runs (\(spec.labels.count) \(spec.labelKind)s x \(spec.lrs.count) learning rates x \(spec.seeds.count) seeds) of \(spec.steps) steps: pass --yes to run it")
    }
    let runner = try GridRunner(
      spec: spec, gridPath: shard == nil ? options.out : nil, runDirectory: options.runDirectory, jobs: jobs,
      shard: shard, executable: Grid.executablePath)
    runner.keepRuns = keepRuns || shard != nil
    let stop = StopFlag()
    let terminal = isatty(STDERR_FILENO) == 1
    let failed: [String]
    do {
      failed = try runner.run(shouldStop: { stop.requested }) { p in
        var line = "runs \(p.done)/\(p.total) (\(p.running) running), steps \(p.stepsDone)/\(p.stepsTotal), diverged \(p.diverged)"
        if p.failed > 0 { line += ", failed \(p.failed)" }
        line += ", elapsed \(Int(p.elapsed)) s"
        if let eta = p.eta { line += ", ETA \(Int(eta)) s" }
        FileHandle.standardError.write(Data((terminal ? "\r\(line)   " : "\(line)\n").utf8))
      }
    } catch let e as GridInterrupted {
      FileHandle.standardError.write(Data("\nfpsim: \(e); finished runs are kept. Resume with the same command.\n".utf8))
      Foundation.exit(130)
    }
    if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
    if !failed.isEmpty {
      throw CLIError("\(failed.count) runs failed (\(failed.prefix(3).joined(separator: ", "))...): see their .log files in \(options.runDirectory), then rerun to retry them")
    }
    if shard != nil {
      print("shard done: run files in \(options.runDirectory); assemble with fpsim grid merge")
      return
    }
    try Grid.printSummary(options.out, json: json)
  }

  func parseShard() throws -> (Int, Int)? {
    let env = ProcessInfo.processInfo.environment
    let text = shard ?? env["SLURM_ARRAY_TASK_ID"].flatMap { id in env["SLURM_ARRAY_TASK_COUNT"].map { "\(id)/\($0)" } }
    guard let text else { return nil }
    let parts = text.split(separator: "/").compactMap { Int($0) }
    guard parts.count == 2, parts[1] >= 1, (0..<parts[1]).contains(parts[0]) else {
      throw CLIError("--shard '\(text)': write I/N with 0 <= I < N, as 0/4")
    }
    return (parts[0], parts[1])
  }
}

struct GridMerge: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "merge", abstract: "Assemble the run files that shards wrote into the grid file.")

  @OptionGroup var options: GridSpecOptions
  @Flag(help: "Print the summary as JSON.") var json = false
  @Flag(help: "Keep the run files once they are in the grid file.") var keepRuns = false

  func run() throws {
    let spec = try options.resolve()
    let runner = try GridRunner(spec: spec, gridPath: options.out, runDirectory: options.runDirectory, jobs: 1, executable: Grid.executablePath)
    runner.collectOnly = true
    runner.keepRuns = keepRuns
    let failed = try runner.run(shouldStop: { false }) { _ in }
    if !failed.isEmpty { throw CLIError("\(failed.count) runs failed while merging; see their .log files") }
    try Grid.printSummary(options.out, json: json)
  }
}

struct GridExportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export",
    abstract: "Copy a finished grid without checkpoints and snapshots: /results and every run's metrics, small enough to commit.",
    discussion: "fpsim grid export results/study.h5 --out experiments/study/results.h5")

  @Argument(help: "The finished grid file.") var file: String
  @Option(help: "The new, smaller grid file (must not exist).") var out: String

  func run() throws {
    let s = try GridExport.export(file, to: out)
    print("\(out): \(s.runs) runs, \(Grid.megabytes(s.bytesAfter)) (from \(Grid.megabytes(s.bytesBefore)) in \(file))")
  }
}

extension Grid {
  static func megabytes(_ bytes: Int) -> String { String(format: "%.2f MB", Double(bytes) / 1e6) }

  /// The running binary, which the workers run too.
  static var executablePath: String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
  }

  /// The summary, then the seed-paired differences to the baseline (and, for bit-reduction grids, the
  /// fewest bits within `GridSummaryJSON.tolerance` nats of it at every learning rate); `--json` gives
  /// the three as one object.
  static func printSummary(_ path: String, json: Bool) throws {
    let file = try H5File.open(path)
    defer { try? file.close() }
    let (spec, rows) = try GridResults.summary(of: file)
    let values = try GridStudy.read(file).values
    let paired = try PairedComparison.compute(values, baseline: spec.baseline)
    let bits = try BitReduction.compute(values, baseline: spec.baseline, tolerance: GridSummaryJSON.tolerance)
    if json {
      let e = JSONEncoder()
      e.outputFormatting = [.prettyPrinted, .sortedKeys]
      print(String(decoding: try e.encode(GridSummaryJSON(summary: rows, pairedDifferences: paired, bitReduction: bits)), as: UTF8.self))
    } else {
      print("\(path): \(spec.runs.count) runs of \(spec.model), \(spec.steps) steps each")
      print(GridResults.table(rows, kind: spec.labelKind), terminator: "")
      print("\nfinal validation loss paired by seed with \(spec.baselineLabel) (mean difference, 95% t-interval over seeds):")
      print(PairedComparison.table(paired, kind: spec.labelKind), terminator: "")
      if let bits { print(bits.sentence) }
    }
  }
}

/// `fpsim grid --json`: the summary rows, the paired differences and the bit-reduction answer.
struct GridSummaryJSON: Encodable {
  static let tolerance = 0.05
  var summary: [GridResults.Row]
  var pairedDifferences: [PairedDifference]
  var bitReduction: BitReduction?
  enum CodingKeys: String, CodingKey {
    case summary, pairedDifferences = "paired_differences", bitReduction = "bit_reduction"
  }
}

/// SIGINT, SIGTERM or SIGHUP (Ctrl-C, `kill`, a closed terminal, a cluster's time limit) sets the
/// flag; the grid stops launching, interrupts its workers (they keep their checkpoints) and exits,
/// saying how to resume.
final class StopFlag: @unchecked Sendable {
  private(set) var requested = false
  private var sources: [DispatchSourceSignal] = []
  init() {
    for sig in [SIGINT, SIGTERM, SIGHUP] {
      signal(sig, SIG_IGN)
      let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
      s.setEventHandler { [weak self] in self?.requested = true }
      s.resume()
      sources.append(s)
    }
  }
}
