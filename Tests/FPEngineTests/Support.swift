import Foundation
import FPEngine

/// The repository root (three levels above this file) and its data folder.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
  .deletingLastPathComponent()
let dataDirectory = repositoryRoot.appendingPathComponent("data")

/// A small GPT on the Shakespeare text for fast end-to-end tests.
let gptMicro = ModelSpec.gpt(layers: 2, heads: 2, width: 32, context: 32, batch: 8, evalBatches: 2)

func makeTrainer(
  _ model: ModelSpec, recipe: String, seed: UInt64 = 0, threads: Int = 2, config: TrainingConfig
) throws -> Trainer {
  var c = config
  c.seed = seed
  let task = try model.makeTask(dataDirectory: dataDirectory, recipe: try Recipe(parsing: recipe), seed: seed, threads: threads)
  return try Trainer(task: task, config: c)
}

/// Bit patterns of everything reproducible in a run's metrics (wall time excluded).
func fingerprint(_ metrics: [StepMetrics]) -> [[UInt32]] {
  metrics.map { m in
    [UInt32(m.step), m.trainLoss.bitPattern, (m.evalLoss ?? .nan).bitPattern, m.gradNorm.bitPattern, m.learningRate.bitPattern]
      + m.saturated.map(\.bitPattern) + m.flushed.map(\.bitPattern) + m.amax.map(\.bitPattern)
      + m.scaleSaturated.map(\.bitPattern) + m.scaleUnderflow.map(\.bitPattern) + [m.lossScale.bitPattern, m.skipped ? 1 : 0]
  }
}
