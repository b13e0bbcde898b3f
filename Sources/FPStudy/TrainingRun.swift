import FPEngine
import FPStore
import Foundation

/// Everything that defines one training run: stored as the run file's `config` (JSON), so that
/// `--resume` rebuilds exactly the same run.
public struct RunSpec: Codable, Sendable, Hashable {
  public var model: ModelSpec
  public var recipe: Recipe
  public var training: TrainingConfig
  /// Where `shakespeare.txt`, `digits.csv.gz` and the diabetes files are.
  public var dataDirectory: String
  /// Run identifier inside the file (`/runs/<id>`).
  public var runID: String

  public init(model: ModelSpec, recipe: Recipe, training: TrainingConfig, dataDirectory: String, runID: String = "run") {
    self.model = model
    self.recipe = recipe
    self.training = training
    self.dataDirectory = dataDirectory
    self.runID = runID
  }

  public func json() throws -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]
    return String(decoding: try e.encode(self), as: UTF8.self)
  }

  public static func decode(_ json: String, file: String) throws -> RunSpec {
    do {
      return try JSONDecoder().decode(RunSpec.self, from: Data(json.utf8))
    } catch {
      throw StoreError(.schema, file: file, "its run configuration does not decode (\(error)); resume it with the fpsim that wrote it")
    }
  }
}

/// Starts and resumes training runs that write `fpsim/run` files.
public enum TrainingRuns {
  /// Trains `spec` from scratch into a new file at `path`.
  public static func start(
    _ spec: RunSpec, path: String, threads: Int = 1, configure: (RunFileWriter, RunSpec) -> Void = { _, _ in }
  ) throws -> RunSummary {
    try spec.training.validate()
    let task = try spec.model.makeTask(
      dataDirectory: URL(fileURLWithPath: spec.dataDirectory), recipe: spec.recipe, seed: spec.training.seed,
      threads: threads)
    let trainer = try Trainer(task: task, config: spec.training)
    let writer = try RunFileWriter.create(path: path, runID: spec.runID, config: try spec.json())
    configure(writer, spec)
    let summary = trainer.run(sink: writer)
    try writer.close()
    return summary
  }

  /// Continues the unfinished run in `path` from its last checkpoint to its configured end (from the
  /// start when it has none). The result is bit-identical to a run never interrupted.
  public static func resume(path: String, threads: Int = 1, configure: (RunFileWriter, RunSpec) -> Void = { _, _ in }) throws
    -> (RunSpec, RunSummary)
  {
    let (writer, json) = try RunFileWriter.reopen(path: path)
    do {
      let spec = try RunSpec.decode(json, file: path)
      let task = try spec.model.makeTask(
        dataDirectory: URL(fileURLWithPath: spec.dataDirectory), recipe: spec.recipe, seed: spec.training.seed,
        threads: threads)
      let trainer = try Trainer(task: task, config: spec.training)
      let start = try writer.checkpointSteps().last ?? 0
      if start > 0 { try trainer.restore(try writer.readCheckpoint(step: start)) }
      try writer.truncate(after: start)
      configure(writer, spec)
      let summary = trainer.run(sink: writer)
      try writer.close()
      return (spec, summary)
    } catch {
      try? writer.close()
      throw error
    }
  }
}
