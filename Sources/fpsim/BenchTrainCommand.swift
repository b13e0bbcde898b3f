import ArgumentParser
import FPEngine
import FPStudy
import Foundation

/// `fpsim bench train`: wall time of whole training steps (forward, backward, clipping, optimizer
/// update) of one model under one recipe, after warm-up steps, with the BLAS kernel that ran them.
struct BenchTrain: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Milliseconds per training step and tokens per second of a model under a precision recipe.",
    discussion: """
      Runs --warmup untimed steps, then --steps timed ones, and reports the median step time. No \
      evaluation and no files. The GEMMs run on --threads threads too (OpenBLAS itself on one each). \
      Unless the recipe is the baseline or --baseline is none, the same model under --baseline (fp32) is \
      timed in the same run, its steps alternating with the recipe's so that a shared machine's noise \
      hits both alike, and the ratio is reported. experiments/bench/train_vs_pytorch.sh compares fp32 \
      and uniform:e4m3fn with PyTorch on the same model.
      """)

  @Option(help: "Model preset: gpt-tiny, gpt-micro, llama-tiny, llama-micro, mlp, linreg.") var model: String = "gpt-tiny"
  @Option(help: "Precision recipe: fp32, bf16, uniform:FORMAT[:ROUNDING].") var recipe: String = "fp32"
  @Option(help: "Timed steps; the median is reported.") var steps: Int = 20
  @Option(help: "Untimed steps first (buffers, caches, branch predictors).") var warmup: Int = 3
  @Option(help: "Threads for every kernel, GEMMs included.") var threads: Int = 1
  @Option(help: "Seed of initialization, data order and stochastic rounding.") var seed: UInt64 = 0
  @Option(help: "Directory of the data sets.") var data: String = "data"
  @Option(help: "Recipe timed alongside for the ratio, or none.") var baseline: String = "fp32"
  @Flag(help: "Print JSON.") var json = false

  func validate() throws {
    guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
    guard warmup >= 0 else { throw ValidationError("--warmup must be 0 or more") }
    guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
  }

  func run() throws {
    let spec = try ModelSpec(parsing: model)
    let measured = try Recipe(parsing: recipe)
    let reference = baseline == "none" ? nil : try Recipe(parsing: baseline)
    func trainer(_ r: Recipe) throws -> Trainer {
      let task = try spec.makeTask(dataDirectory: URL(fileURLWithPath: data), recipe: r, seed: seed, threads: threads)
      // One step more than run, so that the trainer's end-of-run evaluation never falls in the loop.
      return try Trainer(task: task, config: TrainingConfig(steps: warmup + steps + 1, learningRate: 1e-3, evalEvery: 0, seed: seed))
    }
    var runs = [try trainer(measured)]
    if let reference, reference != measured { runs.append(try trainer(reference)) }
    var times = [[Double]](repeating: [], count: runs.count), cpu = [Double](repeating: 0, count: runs.count)
    for s in 0..<(warmup + steps) {
      for (i, t) in runs.enumerated() {
        let c0 = Self.cpuSeconds(), t0 = DispatchTime.now().uptimeNanoseconds
        _ = t.trainStep()
        if s >= warmup {
          times[i].append(Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
          cpu[i] += Self.cpuSeconds() - c0
        }
      }
    }
    func round3(_ x: Double) -> Double { (x * 1e3).rounded() / 1e3 }
    let items = runs[0].task.itemsPerStep
    let m = Median.of(times[0])
    var result = BenchTrainResult(
      model: spec.description, recipe: measured.description, seed: seed, warmup: warmup,
      steps: steps, threads: threads, itemsPerStep: items, msPerStep: round3(m * 1e3),
      msPerStepMin: round3(times[0].min()! * 1e3), cpuMsPerStep: round3(cpu[0] / Double(steps) * 1e3),
      tokensPerSecond: round3(Double(items) / m), peakRSSBytes: Self.peakRSSBytes(), blasKernel: BLASKernel.describe())
    if runs.count == 2, let reference {
      let b = Median.of(times[1])
      result.baseline = BenchTrainBaseline(
        recipe: reference.description, msPerStep: round3(b * 1e3), cpuMsPerStep: round3(cpu[1] / Double(steps) * 1e3),
        ratio: round3(m / b), cpuRatio: round3(cpu[0] / cpu[1]))
    }
    if json {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      encoder.keyEncodingStrategy = .convertToSnakeCase
      print(String(decoding: try encoder.encode(result), as: UTF8.self))
    } else {
      print(result.table)
    }
  }

  /// CPU time of the whole process (all threads), seconds.
  static func cpuSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
  }

  /// The process's peak resident set (Linux reports ru_maxrss in KiB).
  static func peakRSSBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024
  }
}

/// What `fpsim bench train` measures; JSON names are these in snake_case (`ms_per_step`).
struct BenchTrainResult: Codable {
  var model: String
  var recipe: String
  var seed: UInt64
  var warmup: Int
  var steps: Int
  var threads: Int
  /// Tokens (language models) or examples per step.
  var itemsPerStep: Int
  /// Median wall time of a timed step, milliseconds.
  var msPerStep: Double
  var msPerStepMin: Double
  /// Mean CPU time of a timed step over all threads, milliseconds: with one thread, what the wall time
  /// would be on an idle machine (a shared machine's waits for a core are not in it).
  var cpuMsPerStep: Double
  /// itemsPerStep / median step seconds.
  var tokensPerSecond: Double
  /// Of the whole process: with a baseline, both models.
  var peakRSSBytes: Int
  var blasKernel: String
  /// The baseline timed in the same run, its steps alternating with these (nil: none).
  var baseline: BenchTrainBaseline? = nil

  var table: String {
    let rows: [(String, String)] = [
      ("model", model), ("recipe", recipe), ("seed", "\(seed)"),
      ("steps", "\(steps) timed after \(warmup) warm-up"), ("ms_per_step", String(format: "%.2f (median; min %.2f)", msPerStep, msPerStepMin)),
      ("cpu_ms_per_step", String(format: "%.2f (mean, all threads)", cpuMsPerStep)),
      ("tokens_per_second", String(format: "%.0f (%d per step)", tokensPerSecond, itemsPerStep)),
      ("peak_rss_bytes", String(format: "%d (%.1f MiB)", peakRSSBytes, Double(peakRSSBytes) / 1_048_576)),
      ("blas_kernel", blasKernel), ("threads", "\(threads)"),
    ] + (baseline.map { b in
      [("baseline", "\(b.recipe) in the same run: " + String(format: "%.2f ms per step (CPU %.2f)", b.msPerStep, b.cpuMsPerStep)),
       ("ratio", String(format: "%.3f wall, %.3f CPU (recipe / baseline)", b.ratio, b.cpuRatio))]
    } ?? [])
    let width = rows.map(\.0.count).max()!
    return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
  }
}

/// The baseline of `fpsim bench train`: median wall and mean CPU time of its steps, and the recipe's
/// ratios to them (wall: of the medians; CPU: of the means).
struct BenchTrainBaseline: Codable {
  var recipe: String
  var msPerStep: Double
  var cpuMsPerStep: Double
  var ratio: Double
  var cpuRatio: Double
}
