import FPEngine
import FPStore
import Foundation

/// Measures sharpness on the checkpoints of the runs in a run file or a grid file, and (unless
/// `write` is off) records the results beside each run, one series per metric and variant of options
/// (``SharpnessStore``: measuring another step or variant adds; the same metric, options and step
/// again replaces exactly that value). For a grid whose `/results` exists, the sharpness arrays there
/// are then rebuilt from every run's series (``SharpnessResults``).
///
/// Runs are measured in parallel on `jobs` threads, each run on its own model instance (a task holds
/// all its buffers; the engine's results do not depend on threads), and recorded in run order by
/// the calling thread, the file's single writer, as soon as each and the ones before it are done;
/// worker threads only read checkpoints (FPStore serializes every HDF5 call). So the values, and the
/// order of the returned results, do not depend on `jobs`.
public struct SharpnessJob: Sendable {
  public enum Steps: Sendable { case last, all, chosen([Int]) }

  public var path: String
  public var metrics: [SharpnessMetric]
  public var steps: Steps
  public var parameters: SharpnessParameters
  /// Evaluate under the run's own precision recipe (default: float32).
  public var underRecipe: Bool

  public struct Result: Codable, Sendable, Equatable {
    public var run: String
    public var metric: String
    /// The options' canonical name (``SharpnessVariant/name``).
    public var variant: String
    public var step: Int
    public var value: Double
    /// hessian-top: power iterations run and whether the eigenvalue converged within the tolerance.
    public var iterations: Int? = nil
    public var converged: Bool? = nil
    /// For grid runs: the format (or recipe) and learning rate of the run.
    public var label: String? = nil
    public var lr: Double? = nil
  }

  /// Only runs whose id contains one of these strings (all runs when empty).
  public var runFilter: [String] = []
  /// Only the run with exactly this id (a single checkpoint named as FILE:/runs/<id>/checkpoints/step_N).
  public var runID: String? = nil
  /// Skip the metrics of `metrics` that do not apply to a run's model (`--metric all`) instead of
  /// refusing them.
  public var onlyApplicable = false
  /// Runs measured at once (threads). With one run, its model uses `jobs` threads instead.
  public var jobs = 1
  /// Record the results in the file (opened read-write). Off: the file is opened read-only, so this
  /// works while another process (h5py, xarray) has it open for reading.
  public var write = true

  public init(path: String, metrics: [SharpnessMetric], steps: Steps, parameters: SharpnessParameters, underRecipe: Bool) {
    self.path = path
    self.metrics = metrics
    self.steps = steps
    self.parameters = parameters
    self.underRecipe = underRecipe
  }

  /// One run to measure, everything checked before any measuring starts.
  struct Work: Sendable {
    var id: String
    var spec: RunSpec
    var steps: [Int]
    var metrics: [SharpnessMetric]
    var label: String?
    var lr: Double?
  }

  /// One run's measurements: per metric, a series of new points.
  struct Outcome: Sendable {
    var series: [SharpnessSeries]
    var results: [Result]
  }

  public func run(progress: @escaping @Sendable (String) -> Void = { _ in }) throws -> [Result] {
    let (file, header) = try open()
    defer { try? file.close() }
    let isGrid = header.schema == Schema.grid.name
    let work = try plan(file, header)
    let outcomes = Outcomes(count: work.count)
    let threads = max(1, min(jobs, work.count))
    let modelThreads = work.count == 1 ? max(1, jobs) : 1
    var workers: [Thread] = []
    for _ in 0..<threads {
      let t = Thread { [self] in
        while let i = outcomes.claim() {
          outcomes.finish(i, Swift.Result { try measure(work[i], file: file, threads: modelThreads, progress: outcomes.serialized(progress)) })
        }
        outcomes.workerDone()
      }
      t.stackSize = 8 << 20
      workers.append(t)
    }
    for t in workers { t.start() }
    // Record in run order as results arrive; after a failure, record what finished, then report it.
    var results: [Result] = []
    var failure: Error? = nil
    for i in work.indices {
      guard let outcome = outcomes.wait(i) else { break }
      switch outcome {
      case .success(let o):
        do {
          if write {
            let unit = try file.group("/runs/" + work[i].id)
            for s in o.series { try SharpnessStore.record(s, in: unit) }
          }
          results += o.results
        } catch {
          failure = failure ?? error
          outcomes.stop()
        }
      case .failure(let e):
        failure = failure ?? e
      }
    }
    outcomes.waitForWorkers(threads)
    if let failure { throw failure }
    if write && isGrid, let spec = try? JSONDecoder().decode(GridSpec.self, from: Data(header.config.utf8)) {
      try SharpnessResults.republish(in: file, spec: spec)
    }
    return results
  }

  /// Opens the file read-write to record, read-only otherwise. A write refused because another
  /// process has the file open (a notebook's h5py reader, say) is said plainly, with the way out.
  func open() throws -> (H5File, FileHeader) {
    do {
      return try Store.open(path, mode: write ? .readWrite : .readOnly)
    } catch let e as StoreError where write && e.message.contains("unable to lock file") {
      throw StoreError(
        .io, file: path,
        "is open in another program (a notebook's h5py.File or xarray data set?), and recording sharpness needs it closed: close it there (f.close() / ds.close()) and rerun, or measure without recording (--no-write)")
    }
  }

  /// The runs to measure with their steps and metrics; throws before anything is measured when a
  /// run, step or metric does not fit.
  func plan(_ file: H5File, _ header: FileHeader) throws -> [Work] {
    guard header.schema == Schema.run.name || header.schema == Schema.grid.name else {
      throw StoreError(.schema, file: path, "holds \(header.schema): sharpness reads fpsim/run and fpsim/grid files")
    }
    guard try file.root.contains("/runs") else {
      throw StoreError(.missingObject, file: path, "has no finished runs (an unfinished run: finish it with fpsim train --resume)")
    }
    let isGrid = header.schema == Schema.grid.name
    if let source = try file.root.attribute("exported_from")?.stringValue {
      throw SharpnessError("\(path) is an export of \(source) without checkpoints: measure sharpness on \(source), then export again")
    }
    let ids = try file.group("/runs").children().filter { $0.kind == .group }.map(\.name).sorted()
      .filter { id in runFilter.isEmpty || runFilter.contains { id.contains($0) } }
      .filter { id in runID == nil || id == runID }
    guard !ids.isEmpty else {
      throw StoreError(.missingObject, file: path, "no run matches \(runID.map { [$0] } ?? runFilter)")
    }
    var work: [Work] = []
    for id in ids {
      let unit = try file.group("/runs/" + id)
      let config = isGrid ? (try unit.attribute("config")?.stringValue ?? "") : header.config
      let spec = try RunSpec.decode(config, file: path)
      let applicable = SharpnessMetric.allCases.filter { m in metrics.contains(m) && Sharpness.applies(m, to: spec.model) }
      if !onlyApplicable, let m = metrics.first(where: { !applicable.contains($0) }) {
        let others = SharpnessMetric.allCases.filter { Sharpness.applies($0, to: spec.model) }.map(\.rawValue)
        throw SharpnessError(
          "\(m.rawValue) does not apply to \(spec.model): it needs a language model's next-token logits; use \(others.joined(separator: ", ")) or all")
      }
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
        chosen = Array(Set(s)).sorted()
      }
      let label = try unit.attribute("format")?.stringValue ?? (isGrid ? try unit.attribute("recipe")?.stringValue : nil)
      work.append(Work(
        id: id, spec: spec, steps: chosen, metrics: applicable, label: label, lr: try unit.attribute("grid_lr")?.doubleValue))
    }
    return work
  }

  /// Measures one run at its steps, on a model of its own (called on a worker thread).
  func measure(_ w: Work, file: H5File, threads: Int, progress: (String) -> Void) throws -> Outcome {
    var p = parameters
    p.seed = w.spec.training.seed
    let task = try w.spec.model.makeTask(
      dataDirectory: URL(fileURLWithPath: w.spec.dataDirectory), recipe: underRecipe ? w.spec.recipe : .fp32,
      seed: w.spec.training.seed, threads: threads)
    // Under the run's recipe, with the run's GEMM kernel too (`--gemm bf16`).
    if underRecipe && w.spec.training.bf16GEMMs == true { try task.precision.useBF16GEMMs() }
    let unit = try file.group("/runs/" + w.id)
    var values: [SharpnessMetric: [Double]] = [:]
    var iterations: [Int] = [], converged: [Int] = []
    var results: [Result] = []
    for step in w.steps {
      let checkpoint = try RunFileWriter.readCheckpoint(try unit.group("checkpoints/step_\(step)"))
      for t in task.parameters.tensors {
        guard let a = checkpoint.array("param/" + t.name), a.values.count == t.count else {
          throw StoreError(.schema, file: path, object: unit.path, "checkpoint step_\(step) lacks parameter \(t.name)")
        }
        a.values.withUnsafeBufferPointer { (task.parameters.values.pointer + t.offset).update(from: $0.baseAddress!, count: t.count) }
      }
      task.precision.step = step
      // Under the run's recipe, its loss scale at this checkpoint too (README "Sharpness").
      if underRecipe, let bits = checkpoint.integers["loss_scale_bits"] {
        task.precision.lossScale = Float(bitPattern: UInt32(truncatingIfNeeded: bits))
      }
      for m in w.metrics {
        progress("\(w.id) step \(step) \(m.rawValue)")
        var r = Result(
          run: w.id, metric: m.rawValue, variant: SharpnessVariant(metric: m, parameters: p, underRecipe: underRecipe).name,
          step: step, value: 0, label: w.label, lr: w.lr)
        if m == .hessianTop {
          let h = Sharpness.hessianTopDetailed(task, p)
          (r.value, r.iterations, r.converged) = (h.value, h.iterations, h.converged)
          iterations.append(h.iterations)
          converged.append(h.converged ? 1 : 0)
        } else {
          r.value = try Sharpness.measure(m, task: task, parameters: p)
        }
        values[m, default: []].append(r.value)
        results.append(r)
      }
    }
    let recipe = underRecipe ? w.spec.recipe.description : "fp32"
    let series = w.metrics.map { m -> SharpnessSeries in
      let variant = SharpnessVariant(metric: m, parameters: p, underRecipe: underRecipe)
      return SharpnessSeries(
        metric: m.rawValue, variant: variant.name, isStandard: variant.isStandard, attributes: variant.attributes(recipe: recipe),
        steps: w.steps, values: values[m] ?? [], iterations: m == .hessianTop ? iterations : nil,
        converged: m == .hessianTop ? converged : nil)
    }
    return Outcome(series: series, results: results)
  }
}

/// The results of the runs being measured, shared by the worker threads and the recording thread.
final class Outcomes: @unchecked Sendable {
  private let condition = NSCondition()
  private var slots: [Result<SharpnessJob.Outcome, Error>?]
  private var claimed = 0, finishedWorkers = 0
  private var stopped = false

  init(count: Int) { slots = Array(repeating: nil, count: count) }

  /// The next run to measure, or nil when all are taken or a run failed.
  func claim() -> Int? {
    condition.lock()
    defer { condition.unlock() }
    guard !stopped, claimed < slots.count else { return nil }
    claimed += 1
    return claimed - 1
  }

  func finish(_ i: Int, _ r: Result<SharpnessJob.Outcome, Error>) {
    condition.lock()
    slots[i] = r
    if case .failure = r { stopped = true }
    condition.broadcast()
    condition.unlock()
  }

  /// Run i's outcome once it is there; nil when it will never be (not started because a run failed).
  func wait(_ i: Int) -> Result<SharpnessJob.Outcome, Error>? {
    condition.lock()
    defer { condition.unlock() }
    while slots[i] == nil && !(stopped && i >= claimed) { condition.wait() }
    return slots[i]
  }

  /// No further runs start (those running finish).
  func stop() {
    condition.lock()
    stopped = true
    condition.broadcast()
    condition.unlock()
  }

  func workerDone() {
    condition.lock()
    finishedWorkers += 1
    condition.broadcast()
    condition.unlock()
  }

  func waitForWorkers(_ n: Int) {
    condition.lock()
    while finishedWorkers < n { condition.wait() }
    condition.unlock()
  }

  /// `progress`, one line at a time whatever thread calls it.
  func serialized(_ progress: @escaping @Sendable (String) -> Void) -> (String) -> Void {
    { line in
      self.condition.lock()
      progress(line)
      self.condition.unlock()
    }
  }
}
