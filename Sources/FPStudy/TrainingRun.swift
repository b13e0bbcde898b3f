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

/// What is at a run file's path, for a grid deciding what to do with a run (docs/files.md "A run
/// while it trains").
public enum RunFileState: Equatable, Sendable {
  /// Neither the file nor `<path>.partial/` exists: start the run.
  case absent
  /// The file holds a finished run (completed or diverged): collect it.
  case finished
  /// `<path>.partial/` holds a run in progress whose newest complete unit is after `step` completed
  /// steps (0: only its configuration): `fpsim train --resume PATH` continues it.
  case resumable(step: Int)
  /// Something is there that cannot be used as it is (a file that is not a finished fpsim run, a
  /// folder with no complete unit); ``TrainingRuns/setAside(path:)`` moves it out of the way.
  case broken(reason: String)
}

/// Starts and resumes training runs that write `fpsim/run` files.
public enum TrainingRuns {
  /// The run file a user names: `--resume` accepts the `--out` path or its `.partial` folder.
  public static func runPath(_ given: String) -> String {
    var p = given
    while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
    return p.hasSuffix(".partial") ? String(p.dropLast(".partial".count)) : p
  }

  /// What is at `path` (the `--out` path of a run); reads only.
  public static func state(path: String) -> RunFileState {
    let folder = RunFileWriter.folder(for: path)
    let fm = FileManager.default
    if fm.fileExists(atPath: path) {
      do {
        let (f, _) = try Store.open(path, expecting: .run)
        defer { try? f.close() }
        let runs = try f.root.contains("/runs") ? try f.root.group("/runs").children() : []
        if runs.isEmpty {
          return .broken(reason: "\(path) holds no finished run (an unfinished run of an older fpsim, written in place)")
        }
        return .finished
      } catch {
        return .broken(reason: "\(error)")
      }
    }
    guard fm.fileExists(atPath: folder) else { return .absent }
    let scanned = RunFileWriter.scan(path: path)
    if let newest = scanned.newest { return .resumable(step: newest.0.step) }
    return .broken(reason: scanned.reason ?? "\(folder) holds no complete unit")
  }

  /// Moves what is broken at `path` out of the way, keeping what can be used: a file there that is
  /// not a finished run becomes `<path>.broken-<n>`, and a `<path>.partial/` folder with no complete
  /// unit becomes `<path>.partial.broken-<n>` (n the smallest free number). A folder that can be
  /// resumed is kept; a leftover folder beside a finished file is removed (the file holds all of it).
  /// Returns the new names. Call it only when no process is writing the run.
  @discardableResult
  public static func setAside(path: String) throws -> [String] {
    var moved: [String] = []
    let folder = RunFileWriter.folder(for: path)
    let fm = FileManager.default
    switch state(path: path) {
    case .absent, .resumable: return []
    case .finished:
      if fm.fileExists(atPath: folder) { try? fm.removeItem(atPath: folder) }
      return []
    case .broken:
      if fm.fileExists(atPath: path) { moved.append(try moveAside(path)) }
      if fm.fileExists(atPath: folder), RunFileWriter.scan(path: path).newest == nil { moved.append(try moveAside(folder)) }
    }
    return moved
  }

  /// Refuses a recipe whose `keep=layer:NAME` matches no linear layer of the model (a typo would
  /// otherwise keep nothing and round every layer), listing the model's layer names.
  static func checkKeptLayers(_ recipe: Recipe, task: any TrainingTask) throws {
    let layers = task.precision.layers.map(\.info)
    for selector in recipe.keep {
      guard case .layer(let name) = selector, !layers.contains(where: { selector.matches($0) }) else { continue }
      throw RecipeError.badKey(
        "keep", "layer '\(name)' is not a layer of \(task.model): use one of \(layers.map(\.name).joined(separator: ", ")) (or a prefix ending before a '.')")
    }
  }

  /// Renames `path` to `<path>.broken-<n>`, n = 1, 2, ... the first free; returns the new name.
  static func moveAside(_ path: String) throws -> String {
    var n = 1
    while FileManager.default.fileExists(atPath: "\(path).broken-\(n)") { n += 1 }
    let target = "\(path).broken-\(n)"
    try Store.renameDurably(path, to: target)
    return target
  }

  /// Trains `spec` from scratch into a new run at `path`. Refuses when `path` exists, or when
  /// `<path>.partial/` holds another run; when it holds this very run (the same configuration, as
  /// when a killed command is given again), continues it as `resume` would (the writer's
  /// `continuedFrom` says from which step). A broken folder is set aside first (listed in the
  /// writer's `setAside`).
  public static func start(
    _ spec: RunSpec, path: String, threads: Int = 1, configure: (RunFileWriter, RunSpec) -> Void = { _, _ in }
  ) throws -> RunSummary {
    try spec.training.validate()
    let task = try spec.model.makeTask(
      dataDirectory: URL(fileURLWithPath: spec.dataDirectory), recipe: spec.recipe, seed: spec.training.seed,
      threads: threads)
    try checkKeptLayers(spec.recipe, task: task)
    let trainer = try Trainer(task: task, config: spec.training)
    if FileManager.default.fileExists(atPath: path) {
      throw StoreError(.invalidArgument, file: path, "exists: choose another --out, or continue it with --resume \(path)")
    }
    var setAside: [String] = []
    _ = try? Store.removeStaleTemporaries(of: path)
    switch state(path: path) {
    case .resumable(let step):
      // The same command again (the same configuration, so the same run, bit for bit): continue it.
      if let unit = RunFileWriter.scan(path: path).newest, unit.config == (try spec.json()) {
        return try resume(path: path, threads: threads) { w, s in
          w.continuedFrom = unit.0.step
          configure(w, s)
        }.1
      }
      throw StoreError(
        .invalidArgument, file: path,
        "has an unfinished run of another configuration (\(RunFileWriter.folder(for: path)), \(step) steps done): continue it with --resume \(path), or move that folder away")
    case .broken: setAside = try self.setAside(path: path)
    case .absent, .finished: break
    }
    let writer = try RunFileWriter.create(path: path, runID: spec.runID, config: try spec.json())
    writer.setAside = setAside
    configure(writer, spec)
    let summary = trainer.run(sink: writer)
    try writer.close()
    return summary
  }

  /// Continues the unfinished run at `path` (the `--out` path it was started with, or its `.partial`
  /// folder) from its newest complete unit to its configured end. The finished file is bit-identical,
  /// in every dataset, to that of a run never interrupted (only wall times and `created` differ).
  public static func resume(path given: String, threads: Int = 1, configure: (RunFileWriter, RunSpec) -> Void = { _, _ in }) throws
    -> (RunSpec, RunSummary)
  {
    let path = runPath(given)
    let (writer, json, checkpoint) = try RunFileWriter.reopenForResume(path: path)
    let spec = try RunSpec.decode(json, file: path)
    let task = try spec.model.makeTask(
      dataDirectory: URL(fileURLWithPath: spec.dataDirectory), recipe: spec.recipe, seed: spec.training.seed,
      threads: threads)
    let trainer = try Trainer(task: task, config: spec.training)
    if let checkpoint { try trainer.restore(checkpoint) }
    configure(writer, spec)
    let summary = trainer.run(sink: writer)
    try writer.close()
    return (spec, summary)
  }
}

extension RunFileWriter {
  /// Whether `path` can be resumed, in the shape the grid has called since before units existed:
  /// returns a writer to close when ``TrainingRuns/state(path:)`` is `.resumable`, else throws.
  /// (Kept for `GridRunner` until it switches to `state(path:)`; it writes nothing.)
  public static func reopen(path: String) throws -> (RunRef, config: String) {
    guard case .resumable = TrainingRuns.state(path: path) else {
      throw StoreError(.invalidArgument, file: path, "has no unfinished run to resume")
    }
    return (RunRef(), "")
  }

  /// Nothing to close: see ``reopen(path:)``.
  public struct RunRef: Sendable {
    public func close() throws {}
  }
}
