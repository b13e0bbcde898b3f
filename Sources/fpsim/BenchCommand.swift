import ArgumentParser

/// `fpsim bench ...`: throughput figures, machine-readable with --json.
struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Measure throughput (each benchmark times a baseline or peer in the same run).",
    subcommands: [BenchQuantize.self, BenchStore.self, BenchTrain.self, BenchGrid.self, BenchAttention.self])
}
