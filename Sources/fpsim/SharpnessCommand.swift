import ArgumentParser
import FPStudy
import Foundation

/// `fpsim sharpness FILE`: sharpness on the checkpoints of a run or grid file, written back into it.
struct SharpnessCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sharpness",
    abstract: "Measure loss-landscape sharpness on the checkpoints of a run or grid file; store it beside the runs.")

  @Argument(help: "An fpsim/run or fpsim/grid file, or one checkpoint in it: FILE:/runs/<id>/checkpoints/step_N.")
  var file: String
  @Option(help: "keskar-logits, hessian-top, sam, or all.") var metric: String = "keskar-logits"
  @Option(help: "Checkpoints: last, all, or comma-separated steps.") var steps: String = "last"
  @Option(help: "keskar-logits: box half-width factor epsilon.") var epsilon: Double = 1e-3
  @Option(help: "keskar-logits: projected gradient ascent steps.") var ascentSteps: Int = 20
  @Option(help: "hessian-top: power iterations at most.") var iterations: Int = 100
  @Option(help: "hessian-top: relative tolerance of the eigenvalue.") var tolerance: Double = 1e-4
  @Option(help: "sam: ascent radius rho.") var rho: Double = 0.05
  @Flag(help: "Evaluate under the run's own precision recipe instead of float32.") var underRecipe = false
  @Option(help: "Grids: only runs whose id contains one of these comma-separated strings (e.g. e8m3,_s0).")
  var runs: String?
  @Option(help: "Runs measured at once (grids; with one run, its model's threads). Default: the cores.")
  var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
  @Flag(help: "Measure only: open the file read-only and record nothing (works while h5py or xarray hold it).")
  var noWrite = false
  @Flag(help: "Print JSON.") var json = false

  func run() throws {
    let metrics: [SharpnessMetric]
    if metric == "all" {
      metrics = SharpnessMetric.allCases  // those that apply to each run's model
    } else {
      metrics = try metric.split(separator: ",").map { m in
        guard let v = SharpnessMetric(rawValue: String(m)) else {
          throw CLIError("unknown metric '\(m)': use keskar-logits, hessian-top, sam or all")
        }
        return v
      }
    }
    guard epsilon >= 0 else { throw CLIError("--epsilon must be non-negative, got \(epsilon)") }
    guard rho > 0, iterations > 0, ascentSteps >= 0, tolerance > 0 else {
      throw CLIError("--rho, --iterations and --tolerance must be positive")
    }
    guard jobs >= 1 else { throw CLIError("--jobs must be at least 1, got \(jobs)") }
    let chosen: SharpnessJob.Steps
    switch steps {
    case "last": chosen = .last
    case "all": chosen = .all
    default:
      chosen = .chosen(try steps.split(separator: ",").map {
        guard let s = Int($0) else { throw CLIError("--steps: '\($0)' is not a step; use last, all or 250,500") }
        return s
      })
    }
    var p = SharpnessParameters()
    p.epsilon = epsilon
    p.ascentSteps = ascentSteps
    p.powerIterations = iterations
    p.tolerance = tolerance
    p.rho = rho
    // One checkpoint named by its path inside the file.
    var path = file, single: (run: String, step: Int)? = nil
    if let r = file.range(of: ":/runs/") {
      let parts = file[r.upperBound...].split(separator: "/").map(String.init)
      guard parts.count == 3, parts[1] == "checkpoints", parts[2].hasPrefix("step_"), let n = Int(parts[2].dropFirst(5)) else {
        throw CLIError("'\(file)': a single checkpoint is FILE:/runs/<id>/checkpoints/step_N")
      }
      path = String(file[..<r.lowerBound])
      single = (parts[0], n)
    }
    var job = SharpnessJob(
      path: path, metrics: metrics, steps: single.map { .chosen([$0.step]) } ?? chosen, parameters: p,
      underRecipe: underRecipe)
    job.runFilter = runs.map { $0.split(separator: ",").map(String.init) } ?? []
    job.runID = single?.run
    job.onlyApplicable = metric == "all"
    job.jobs = jobs
    job.write = !noWrite
    let results = try job.run { FileHandle.standardError.write(Data("\($0)\n".utf8)) }
    let stopped = results.filter { $0.converged == false }.count
    if stopped > 0 {
      FileHandle.standardError.write(Data(
        "hessian-top: \(stopped) of \(results.filter { $0.converged != nil }.count) values stopped at --iterations \(iterations) without converging to --tolerance \(tolerance)\n".utf8))
    }
    if json {
      let e = JSONEncoder()
      e.outputFormatting = [.prettyPrinted, .sortedKeys]
      print(String(decoding: try e.encode(results), as: UTF8.self))
      return
    }
    if results.contains(where: { $0.label != nil }) {
      // Grids: per format (or recipe), learning rate, metric and step, the mean and range over seeds.
      struct Key: Hashable { let label: String, lr: Double, metric: String, step: Int }
      var groups: [Key: [Double]] = [:]
      var order: [Key] = []
      for r in results {
        let k = Key(label: r.label ?? r.run, lr: r.lr ?? .nan, metric: r.metric, step: r.step)
        if groups[k] == nil { order.append(k) }
        groups[k, default: []].append(r.value)
      }
      print("format  lr  metric  step  seeds  mean  [min, max]")
      for k in order {
        let v = groups[k]!
        let mean = v.reduce(0, +) / Double(v.count)
        print("\(k.label)  \(k.lr)  \(k.metric)  \(k.step)  \(v.count)  \(String(format: "%.6g", mean))  [\(String(format: "%.6g", v.min()!)), \(String(format: "%.6g", v.max()!))]")
      }
      return
    }
    print("run  metric  step  value  iterations")
    for r in results {
      let detail = r.iterations.map { "\($0)" + (r.converged == true ? "" : " (not converged)") } ?? "-"
      print("\(r.run)  \(r.metric)  \(r.step)  \(String(format: "%.6g", r.value))  \(detail)")
    }
  }
}
