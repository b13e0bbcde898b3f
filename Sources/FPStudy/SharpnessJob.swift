import FPEngine
import FPStore
import Foundation

/// Measures sharpness on the checkpoints of the runs in a run file or a grid file, and writes the
/// results back beside each run: `/runs/<id>/sharpness/<metric>` with datasets `step` (int64 [K]) and
/// `value` (float64 [K]) and the metric's parameters as attributes, published as one unit that
/// replaces any earlier one (computing again replaces, never duplicates). For a grid, the value at
/// each run's last measured checkpoint also goes to `/results/sharpness_<metric>_last` [format, lr, seed].
public struct SharpnessJob {
  public enum Steps: Sendable { case last, all, chosen([Int]) }

  public var path: String
  public var metrics: [SharpnessMetric]
  public var steps: Steps
  public var parameters: SharpnessParameters
  /// Evaluate under the run's own precision recipe (default: float32).
  public var underRecipe: Bool

  public struct Result: Codable, Sendable {
    public var run: String
    public var metric: String
    public var step: Int
    public var value: Double
    /// For grid runs: the format (or recipe) and learning rate of the run.
    public var label: String? = nil
    public var lr: Double? = nil
  }

  /// Only runs whose id contains one of these strings (all runs when empty).
  public var runFilter: [String] = []
  /// Only the run with exactly this id (a single checkpoint named as FILE:/runs/<id>/checkpoints/step_N).
  public var runID: String? = nil

  public init(path: String, metrics: [SharpnessMetric], steps: Steps, parameters: SharpnessParameters, underRecipe: Bool) {
    self.path = path
    self.metrics = metrics
    self.steps = steps
    self.parameters = parameters
    self.underRecipe = underRecipe
  }

  public func run(progress: (String) -> Void = { _ in }) throws -> [Result] {
    let (file, header) = try Store.open(path, mode: .readWrite)
    defer { try? file.close() }
    guard header.schema == Schema.run.name || header.schema == Schema.grid.name else {
      throw StoreError(.schema, file: path, "holds \(header.schema): sharpness reads fpsim/run and fpsim/grid files")
    }
    guard try file.root.contains("/runs") else {
      throw StoreError(.missingObject, file: path, "has no finished runs (an unfinished run: finish it with fpsim train --resume)")
    }
    let runs = try file.group("/runs").children().filter { $0.kind == .group }.map(\.name).sorted()
      .filter { id in runFilter.isEmpty || runFilter.contains { id.contains($0) } }
      .filter { id in runID == nil || id == runID }
    guard !runs.isEmpty else {
      throw StoreError(.missingObject, file: path, "no run matches \(runID.map { [$0] } ?? runFilter)")
    }
    var results: [Result] = []
    for id in runs {
      let unit = try file.group("/runs/" + id)
      let config = header.schema == Schema.run.name ? header.config : (try unit.attribute("config")?.stringValue ?? "")
      let spec = try RunSpec.decode(config, file: path)
      guard try unit.contains("checkpoints") else {
        throw StoreError(.missingObject, file: path, object: unit.path, "has no checkpoints: train with --checkpoint-every N")
      }
      let available = try unit.group("checkpoints").children().compactMap { c -> Int? in
        c.name.hasPrefix("step_") ? Int(c.name.dropFirst(5)) : nil
      }.sorted()
      let chosen: [Int]
      switch steps {
      case .last: chosen = available.last.map { [$0] } ?? []
      case .all: chosen = available
      case .chosen(let s):
        for step in s where !available.contains(step) {
          throw StoreError(.missingObject, file: path, object: unit.path, "has no checkpoint at step \(step) (it has \(available))")
        }
        chosen = s
      }
      var p = parameters
      p.seed = spec.training.seed
      let task = try spec.model.makeTask(
        dataDirectory: URL(fileURLWithPath: spec.dataDirectory), recipe: underRecipe ? spec.recipe : .fp32,
        seed: spec.training.seed)
      var values: [SharpnessMetric: [Double]] = [:]
      for step in chosen {
        let checkpoint = try RunFileWriter.readCheckpoint(try unit.group("checkpoints/step_\(step)"))
        for t in task.parameters.tensors {
          guard let a = checkpoint.array("param/" + t.name), a.values.count == t.count else {
            throw StoreError(.schema, file: path, object: unit.path, "checkpoint step_\(step) lacks parameter \(t.name)")
          }
          a.values.withUnsafeBufferPointer { (task.parameters.values.pointer + t.offset).update(from: $0.baseAddress!, count: t.count) }
        }
        task.precision.step = step
        for m in metrics {
          progress("\(id) step \(step) \(m.rawValue)")
          let v = try Sharpness.measure(m, task: task, parameters: p)
          values[m, default: []].append(v)
          let label = try unit.attribute("format")?.stringValue ?? (header.schema == Schema.grid.name ? try unit.attribute("recipe")?.stringValue : nil)
          results.append(Result(
            run: id, metric: m.rawValue, step: step, value: v, label: label,
            lr: try unit.attribute("grid_lr")?.doubleValue))
        }
      }
      let group = try unit.requireGroup("sharpness")
      for m in metrics {
        try group.publishUnit(m.rawValue, replace: true) { g in
          try g.createDataset("step", values: chosen.map(Int64.init))
          try g.createDataset("value", values: values[m] ?? [])
          try g.setAttribute("under_recipe", underRecipe ? spec.recipe.description : "fp32")
          switch m {
          case .keskarLogits:
            try g.setAttribute("epsilon", p.epsilon)
            try g.setAttribute("ascent_steps", p.ascentSteps)
            try g.setAttribute("batch", "validation batch 0, last position of each sequence")
          case .hessianTop:
            try g.setAttribute("power_iterations", p.powerIterations)
            try g.setAttribute("tolerance", p.tolerance)
            try g.setAttribute("difference_step", p.differenceStep)
            try g.setAttribute("batch", p.batch)
          case .sam:
            try g.setAttribute("rho", p.rho)
            try g.setAttribute("batch", p.batch)
          }
        }
      }
    }
    if header.schema == Schema.grid.name { try writeGridResults(file, header: header) }
    return results
  }

  /// `/results/sharpness_<metric>_last` [format, lr, seed]: each run's value at its last measured step.
  func writeGridResults(_ file: H5File, header: FileHeader) throws {
    guard try file.root.contains("/results"),
      let spec = try? JSONDecoder().decode(GridSpec.self, from: Data(header.config.utf8))
    else { return }
    let results = try file.group("/results")
    for m in metrics {
      let name = "sharpness_" + m.rawValue.replacingOccurrences(of: "-", with: "_") + "_last"
      var v = [Double](repeating: .nan, count: spec.runs.count)
      for (i, r) in spec.runs.enumerated() {
        let p = "/runs/\(r.id)/sharpness/\(m.rawValue)/value"
        if try file.root.contains(p) { v[i] = try file.dataset(p).read(as: Double.self).last ?? .nan }
      }
      if try results.contains(name) { try results.delete(name) }
      let d = try results.createDataset(name, values: v, shape: [spec.labels.count, spec.lrs.count, spec.seeds.count])
      try d.attach(scales: [try results.dataset(spec.labelKind), try results.dataset("lr"), try results.dataset("seed")])
      try file.flush(durable: true)
    }
  }
}
