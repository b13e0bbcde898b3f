import ArgumentParser
import FPStudy

/// `fpsim bench attention`: parses, runs `AttentionBenchmark` (FPStudy) and prints its result.
struct BenchAttention: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "attention",
    abstract: "Milliseconds of the causal attention kernels, next to the plain-loop reference kernels.")

  @Option(help: "Sequences per batch (gpt-tiny and llama-tiny train 16).")
  var batch: Int = 16

  @Option(help: "Sequence length T (the tiny models' context, 128).")
  var context: Int = 128

  @Option(help: "Model width C (128 in the tiny models); the head size is C / heads.")
  var width: Int = 128

  @Option(help: "Attention heads (4 in the tiny models).")
  var heads: Int = 4

  @Option(help: "Threads.")
  var threads: Int = 1

  @Option(help: "Timed calls of each kernel; the median is reported.")
  var repeats: Int = 21

  @Flag(help: "Print JSON.")
  var json = false

  func run() throws {
    let r = try AttentionBenchmark(batch: batch, context: context, width: width, heads: heads, threads: threads, repeats: repeats).run()
    if json {
      try printJSON(r)
      return
    }
    func line(_ name: String, _ ms: Double, _ gflop: Double, _ reference: Double) -> String {
      "  \(name) \(String(format2: ms)) ms (\(String(format2: gflop / ms * 1e3)) GFLOP/s), reference \(String(format2: reference)) ms (\(String(format2: reference / ms)) x)"
    }
    print("attention B=\(r.batch) T=\(r.context) C=\(r.width) heads=\(r.heads), threads=\(r.threads), median of \(r.repeats)\(r.blocked ? "" : " (head size not a multiple of 16: the reference kernels both times)")")
    print(line("forward: ", r.forwardMs, r.forwardGflop, r.referenceForwardMs))
    print(line("backward:", r.backwardMs, r.backwardGflop, r.referenceBackwardMs))
  }
}
