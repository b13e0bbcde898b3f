import FPEngine
import Foundation

/// `fpsim bench train`: wall time of whole training steps (forward, backward, clipping, optimizer
/// update) of one model under one recipe after warm-up steps, and of a baseline recipe in the same
/// run, their steps alternating so that a shared machine's noise hits both alike.
public struct TrainBenchmark: Sendable {
  public var model: ModelSpec
  public var recipe: Recipe
  /// Timed alongside for the ratio (nil, or the same as `recipe`: none).
  public var baseline: Recipe?
  public var steps: Int
  public var warmup: Int
  public var threads: Int
  public var seed: UInt64
  public var dataDirectory: String
  /// What the recipe is timed against.
  public var comparison = Comparison.baseline
  /// Also time the step's GEMMs alone (`StepGEMMs`), a pass after each of the recipe's steps.
  public var gemmFloor = false
  /// Run the recipe (not the baseline) in the `--gemm bf16` mode (`TrainingConfig.bf16GEMMs`). The
  /// baseline may then be the recipe itself: the same recipe on sgemm.
  public var bf16GEMMs = false

  /// What `TrainBenchmark` times the recipe against, in the same run.
  public enum Comparison: Sendable, Equatable {
    /// `baseline` (nothing when it is nil or the recipe itself).
    case baseline
    /// The recipe itself with binade histograms off (the recipe's own run has them on): the ratio is
    /// the cost of the histograms.
    case withoutHistograms
    /// A second, identical trainer (an A/A run): the ratio is the comparison's own bias, against which
    /// a recipe's ratio is read. (On gpt-tiny mxfp4 at one thread the first trainer measured up to 2.4%
    /// slower than its copy, about 1% in the median, with no order effect: alternating which runs first
    /// in each step gave the same; at two threads the A/A ratios were 0.97-1.03. See docs/benchmarks.md.)
    case itself
  }

  public init(model: ModelSpec, recipe: Recipe, baseline: Recipe?, steps: Int, warmup: Int, threads: Int, seed: UInt64, dataDirectory: String) {
    self.model = model
    self.recipe = recipe
    self.baseline = baseline
    self.steps = steps
    self.warmup = warmup
    self.threads = threads
    self.seed = seed
    self.dataDirectory = dataDirectory
  }

  /// Runs the steps; `blasKernel` is recorded in the result as given.
  public func run(blasKernel: String) throws -> TrainBenchmarkResult {
    func trainer(_ r: Recipe, histograms: Bool = false, bf16: Bool = false) throws -> Trainer {
      let task = try model.makeTask(dataDirectory: URL(fileURLWithPath: dataDirectory), recipe: r, seed: seed, threads: threads)
      // One step more than run, so that the trainer's end-of-run evaluation never falls in the loop.
      return try Trainer(
        task: task,
        config: TrainingConfig(
          steps: warmup + steps + 1, learningRate: 1e-3, evalEvery: 0, seed: seed, binadeHistograms: histograms,
          bf16GEMMs: bf16 ? true : nil))
    }
    // The second trainer, if any, and the name it is reported under.
    let second: (recipe: Recipe, name: String)?
    switch comparison {
    case .baseline:
      second = baseline.flatMap {
        $0 != recipe ? ($0, $0.description) : bf16GEMMs ? ($0, "\($0) on sgemm") : nil
      }
    case .withoutHistograms: second = (recipe, "\(recipe) without binade histograms")
    case .itself: second = (recipe, "\(recipe) again (A/A: the comparison's own bias)")
    }
    var runs = [try trainer(recipe, histograms: comparison == .withoutHistograms, bf16: bf16GEMMs)]
    if let second { runs.append(try trainer(second.recipe, bf16: bf16GEMMs && comparison != .baseline)) }
    var times = [[Double]](repeating: [], count: runs.count), cpu = [Double](repeating: 0, count: runs.count)
    let gemms = gemmFloor ? StepGEMMs(task: runs[0].task) : nil
    // In the bf16 mode, the same pass on the bfloat16 kernel too.
    let bf16Buffer = gemms.map { FloatBuffer(count: bf16GEMMs ? $0.bf16WorkspaceCount : 0) }
    let bf16Workspace = bf16Buffer?.bf16Words
    var gemmTimes: [Double] = [], bf16Times: [Double] = []
    for s in 0..<(warmup + steps) {
      for (i, t) in runs.enumerated() {
        let c0 = Self.cpuSeconds()
        let wall = QuantizeBenchmark.seconds { _ = t.trainStep() }
        if s >= warmup {
          times[i].append(wall)
          cpu[i] += Self.cpuSeconds() - c0
        }
      }
      if let gemms {
        let g = QuantizeBenchmark.seconds { gemms.run(threads: threads) }
        let b = bf16Workspace.map { w in QuantizeBenchmark.seconds { gemms.run(threads: threads, bf16: w) } }
        if s >= warmup {
          gemmTimes.append(g)
          if let b { bf16Times.append(b) }
        }
      }
    }
    func round3(_ x: Double) -> Double { (x * 1e3).rounded() / 1e3 }
    let items = runs[0].task.itemsPerStep
    let m = Median.of(times[0])
    var result = TrainBenchmarkResult(
      model: model.description, recipe: recipe.description, seed: seed, warmup: warmup,
      steps: steps, threads: threads, itemsPerStep: items, msPerStep: round3(m * 1e3),
      msPerStepMin: round3(times[0].min()! * 1e3), cpuMsPerStep: round3(cpu[0] / Double(steps) * 1e3),
      tokensPerSecond: round3(Double(items) / m), peakRSSBytes: Self.peakRSSBytes(), blasKernel: blasKernel,
      gemm: bf16GEMMs ? "bf16" : "sgemm")
    if let gemms {
      let g = Median.of(gemmTimes)
      result.gemmFloor = TrainBenchmarkResult.GEMMFloor(
        msPerStep: round3(g * 1e3), gflopPerStep: round3(gemms.flops / 1e9), gflops: round3(gemms.flops / g / 1e9),
        shareOfStep: round3(g / m))
      if !bf16Times.isEmpty {
        let b = Median.of(bf16Times)
        result.gemmFloor?.bf16MsPerStep = round3(b * 1e3)
        result.gemmFloor?.bf16Gflops = round3(gemms.flops / b / 1e9)
      }
    }
    if let second {
      let b = Median.of(times[1])
      result.baseline = TrainBenchmarkResult.Baseline(
        recipe: second.name, msPerStep: round3(b * 1e3), cpuMsPerStep: round3(cpu[1] / Double(steps) * 1e3),
        ratio: round3(m / b), cpuRatio: round3(cpu[0] / cpu[1]))
    }
    return result
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

/// What `fpsim bench train` measures; its JSON names are these in snake_case (`ms_per_step`).
public struct TrainBenchmarkResult: Codable, Sendable {
  public var model: String
  public var recipe: String
  public var seed: UInt64
  public var warmup: Int
  public var steps: Int
  public var threads: Int
  /// Tokens (language models) or examples per step.
  public var itemsPerStep: Int
  /// Median wall time of a timed step, milliseconds.
  public var msPerStep: Double
  public var msPerStepMin: Double
  /// Mean CPU time of a timed step over all threads, milliseconds: with one thread, what the wall time
  /// would be on an idle machine (a shared machine's waits for a core are not in it).
  public var cpuMsPerStep: Double
  /// itemsPerStep / median step seconds.
  public var tokensPerSecond: Double
  /// Of the whole process: with a baseline, both models.
  public var peakRSSBytes: Int
  public var blasKernel: String
  /// The recipe's GEMMs: "sgemm", or "bf16" (`--gemm bf16`: those whose operands the recipe rounds to
  /// bfloat16 values run on the bfloat16 kernel).
  public var gemm: String = "sgemm"
  /// The baseline timed in the same run, its steps alternating with these (nil: none).
  public var baseline: Baseline? = nil
  /// The step's GEMMs alone, timed in the same run (nil unless asked for).
  public var gemmFloor: GEMMFloor? = nil

  /// The baseline's median wall and mean CPU time per step, and the recipe's ratios to them (wall:
  /// of the medians; CPU: of the means).
  public struct Baseline: Codable, Sendable {
    public var recipe: String
    public var msPerStep: Double
    public var cpuMsPerStep: Double
    public var ratio: Double
    public var cpuRatio: Double
  }

  /// `StepGEMMs` timed after each step: the median wall time of a pass, its floating-point operations
  /// (GFLOP), their rate (GFLOP/s), and the pass's time as a fraction of the recipe's median step; with
  /// `--gemm bf16` also a pass on the bfloat16 kernel.
  public struct GEMMFloor: Codable, Sendable {
    public var msPerStep: Double
    public var gflopPerStep: Double
    public var gflops: Double
    public var shareOfStep: Double
    /// With `--gemm bf16`: the same pass on the bfloat16 kernel, its median time and rate.
    public var bf16MsPerStep: Double? = nil
    public var bf16Gflops: Double? = nil
  }
}
