import ArgumentParser
import FPEngine
import FPStudy
import Foundation

/// `fpsim bench grid`: parses, runs `GridBenchmark` (FPStudy) with this executable as the workers, prints.
struct BenchGrid: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "grid",
    abstract: "Runs per hour of a fixed small grid with 1 and 2 worker processes (a whole study's throughput).",
    discussion: """
      Writes a grid spec (--model, --recipe, seeds 0..<--runs, --steps each, one learning rate) into a \
      fresh temporary folder and runs it as `fpsim grid SPEC --jobs J` does (worker processes, run \
      files collected into a grid file with /results), once per J in --jobs, each from scratch; the \
      folders are removed afterwards. Reports per J the wall time from the first launch to the \
      finished grid file, runs per hour, the speed-up against the first J (of the same repeat: --repeats K \
      times the J values K times over, alternating, and adds their medians), the workers' CPU time \
      (per run: it grows when workers share caches and memory bandwidth) and the grid process's own, \
      the CPU time other programs took meanwhile and the load average as the grid started and ended \
      (the machine's other work: wall times and speed-ups move with it), \
      and whether the grids' /results arrays (loss, grad_norm, eval_loss, final_loss, \
      final_eval_loss, min_eval_loss) are bit-identical across the J values, as they must be. \
      Progress goes to standard error.
      """)

  @Option(help: "Model preset: gpt-tiny, gpt-micro, llama-tiny, llama-micro, mlp, linreg.") var model: String = "gpt-tiny"
  @Option(help: "Precision recipe of every run: fp32, bf16, uniform:FORMAT[:ROUNDING], mxfp4, ...") var recipe: String = "fp32"
  @Option(help: "Runs in the grid (seeds 0..<N).") var runs: Int = 4
  @Option(help: "Steps per run.") var steps: Int = 100
  @Option(help: "Evaluate every N steps (and at the last step).") var evalEvery: Int = 50
  @Option(help: "Learning rate of every run.") var lr: Double = 1e-3
  @Option(help: "Worker counts to time, comma separated; speed-ups are against the first.") var jobs: String = "1,2"
  @Option(help: "Threads per worker (the spec's threads key).") var threads: Int = 1
  @Option(help: "Time every worker count this many times, alternating; the summary gives medians.") var repeats: Int = 1
  @Option(help: "Directory of the data sets (default: FPSIM_DATA, else the data shipped with fpsim).") var data: String?
  @Option(help: "Directory for the temporary grid folders (default: the system temporary directory).") var dir: String?
  @Flag(help: "Print JSON.") var json = false

  func validate() throws {
    guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
    guard evalEvery >= 1 else { throw ValidationError("--eval-every must be at least 1") }
    guard lr.isFinite && lr > 0 else { throw ValidationError("--lr must be a positive number") }
    guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
    guard parsedJobs() != nil else {
      throw ValidationError("bad --jobs '\(jobs)': give worker counts of at least 1, comma separated, as 1,2")
    }
  }

  func parsedJobs() -> [Int]? {
    let list = jobs.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !list.isEmpty, list.allSatisfy({ ($0 ?? 0) >= 1 }) else { return nil }
    return list.compactMap { $0 }
  }

  func run() throws {
    // The model and recipe are checked here, before any folder or worker exists.
    _ = try ModelSpec(parsing: model)
    _ = try Recipe(parsing: recipe)
    let cwd = FileManager.default.currentDirectoryPath
    var bench = GridBenchmark(
      model: model, recipe: recipe, runs: runs, steps: steps, evalEvery: evalEvery, lr: lr, jobs: parsedJobs() ?? [1],
      threads: threads, data: data.map { DataLocation.absolute($0, base: cwd) },
      directory: DataLocation.absolute(dir ?? FileManager.default.temporaryDirectory.path, base: cwd),
      executable: Grid.executablePath)
    bench.repeats = repeats
    let stop = StopFlag()
    var lastDone = -1
    let result: GridBenchmarkResult
    do {
      result = try bench.run(shouldStop: { stop.requested }) { r, j, p in
        // One line per finished run (and one as each grid starts), not the runner's once a second.
        guard p.done != lastDone else { return }
        lastDone = p.done == p.total ? -1 : p.done
        FileHandle.standardError.write(Data(
          "bench grid: \(repeats > 1 ? "repeat \(r)/\(repeats), " : "")--jobs \(j): runs \(p.done)/\(p.total), elapsed \(String(format: "%.1f", p.elapsed)) s\n".utf8))
      }
    } catch let e as GridInterrupted {
      FileHandle.standardError.write(Data("fpsim: bench grid \(e); its temporary folders are removed\n".utf8))
      Foundation.exit(130)
    }
    if json {
      try printJSON(result)
    } else {
      print(Self.table(result))
    }
    if !result.identical {
      throw CLIError("bench grid: the grids' /results differ between worker counts; every run should be deterministic (a bug: report it)")
    }
  }

  static func table(_ r: GridBenchmarkResult) -> String {
    func mib(_ b: Int) -> String { String(format: "%.1f MiB", Double(b) / 1_048_576) }
    var lines = [
      "grid: \(r.runs) runs of \(r.model) (\(r.recipe), lr \(r.lr)), \(r.steps) steps each, eval every \(r.evalEvery), \(r.threadsPerWorker) thread(s) per worker",
      "jobs  repeat  runs  diverged  wall s    runs/hour  speed-up  worker CPU s  CPU s/run  grid CPU s  other CPU s  load avg    identical",
    ]
    for m in r.measurements {
      lines.append(
        String(format: "%4d  %6d  %4d  %8d  %7.1f  %9.1f  %7.2fx  %12.1f  %9.2f  %10.2f  %11.1f  ", m.jobs, m.repeat, m.runsFinished,
          m.diverged, m.wallSeconds, m.runsPerHour, m.speedup, m.workerCPUSeconds, m.cpuSecondsPerRun, m.gridProcessCPUSeconds,
          m.otherCPUSeconds)
          + m.loadAverage.map { String(format: "%.2f", $0) }.joined(separator: "-").padding(toLength: 10, withPad: " ", startingAt: 0)
          + "  " + (m.identicalToFirst ? "yes" : "NO"))
    }
    if r.repeats > 1 {
      for m in r.summary {
        lines.append(String(format: "%4d  median  %4d            %7.1f  %9.1f  %7.2fx                %9.2f", m.jobs, r.runs, m.wallSeconds,
          m.runsPerHour, m.speedup, m.cpuSecondsPerRun))
      }
    }
    lines.append("results bit-identical across jobs: \(r.identical ? "yes" : "NO") (\(r.comparedArrays.joined(separator: ", ")))")
    lines.append("peak RSS: largest worker \(mib(r.workerPeakRSSBytes)), grid process \(mib(r.peakRSSBytes))")
    return lines.joined(separator: "\n")
  }
}
