import ArgumentParser
import FPEngine
import FPStudy
import Foundation

/// `fpsim bench train`: parses, runs `TrainBenchmark` (FPStudy) with the BLAS kernel named, prints.
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
  @Option(help: "Directory of the data sets (default: FPSIM_DATA, else the data shipped with fpsim).") var data: String?
  @Option(help: "Recipe timed alongside for the ratio, or none.") var baseline: String = "fp32"
  @Flag(help: "Time the recipe with binade histograms off as the baseline (their cost) instead of --baseline.")
  var histogramCost = false
  @Flag(help: "Time the recipe against an identical second copy (an A/A run): the ratio is the comparison's own bias.")
  var againstItself = false
  @Flag(help: "Also time the step's linear-layer GEMMs alone (the same shapes and threads, warm operands) after each step: the part of a step the BLAS takes. With --gemm bf16, on the bf16 kernel too.")
  var gemmFloor = false
  @Option(help: "The recipe's GEMMs: sgemm, or bf16 (those whose two operands the recipe rounds to bfloat16 values run on the AVX512-BF16 kernel; see fpsim train --help). With bf16, --baseline may name the recipe itself: the same recipe on sgemm.")
  var gemm: GEMMChoice = .sgemm
  @Flag(help: "Print JSON.") var json = false

  func validate() throws {
    guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
    guard warmup >= 0 else { throw ValidationError("--warmup must be 0 or more") }
    guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    guard !(histogramCost && againstItself) else {
      throw ValidationError("--histogram-cost and --against-itself each choose the baseline: give one")
    }
  }

  func run() throws {
    let spec = try ModelSpec(parsing: model)
    var bench = TrainBenchmark(
      model: spec, recipe: try Recipe(parsing: recipe), baseline: baseline == "none" ? nil : try Recipe(parsing: baseline),
      steps: steps, warmup: warmup, threads: threads, seed: seed,
      dataDirectory: try DataLocation.resolve(data, model: spec, executable: Grid.executablePath))
    bench.comparison = histogramCost ? .withoutHistograms : againstItself ? .itself : .baseline
    bench.gemmFloor = gemmFloor
    bench.bf16GEMMs = gemm == .bf16
    let result = try bench.run(blasKernel: BLASKernel.describe())
    if json {
      try printJSON(result)
    } else {
      print(Self.table(result))
    }
  }

  static func table(_ r: TrainBenchmarkResult) -> String {
    let rows: [(String, String)] = [
      ("model", r.model), ("recipe", r.recipe), ("seed", "\(r.seed)"),
      ("steps", "\(r.steps) timed after \(r.warmup) warm-up"), ("ms_per_step", String(format: "%.2f (median; min %.2f)", r.msPerStep, r.msPerStepMin)),
      ("cpu_ms_per_step", String(format: "%.2f (mean, all threads)", r.cpuMsPerStep)),
      ("tokens_per_second", String(format: "%.0f (%d per step)", r.tokensPerSecond, r.itemsPerStep)),
      ("peak_rss_bytes", String(format: "%d (%.1f MiB)", r.peakRSSBytes, Double(r.peakRSSBytes) / 1_048_576)),
      ("blas_kernel", r.blasKernel), ("gemm", r.gemm), ("threads", "\(r.threads)"),
    ] + (r.baseline.map { b in
      [("baseline", "\(b.recipe) in the same run: " + String(format: "%.2f ms per step (CPU %.2f)", b.msPerStep, b.cpuMsPerStep)),
       ("ratio", String(format: "%.3f wall, %.3f CPU (recipe / baseline)", b.ratio, b.cpuRatio))]
    } ?? []) + (r.gemmFloor.map { g in
      [("gemm_floor", String(format: "%.2f ms per step: %.2f GFLOP of linear-layer GEMMs at %.1f GFLOP/s, %.2f of the step", g.msPerStep, g.gflopPerStep, g.gflops, g.shareOfStep))]
        + (g.bf16MsPerStep.map { b in
          [("gemm_floor_bf16", String(format: "%.2f ms per step on the bf16 kernel, %.1f GFLOP/s", b, g.bf16Gflops ?? .nan))]
        } ?? [])
    } ?? [])
    let width = rows.map(\.0.count).max()!
    return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
  }
}
