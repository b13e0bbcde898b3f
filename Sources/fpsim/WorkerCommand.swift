import ArgumentParser
import FPEngine
import FPStudy
import Foundation

/// `fpsim worker`: what a grid runs for each of its runs (not for users). A new run reads its complete
/// description, a `RunSpec` as JSON, from standard input, so that the grid hands the library's own
/// value to the worker rather than a command line rebuilt from it; an unfinished run resumes from
/// its file. Progress lines (`step N/T ...`) go to standard error, which the grid keeps as the run's
/// log and reads to count the steps done.
struct Worker: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Train one run of a grid from a RunSpec (JSON on standard input); used by fpsim grid.",
    shouldDisplay: false)

  @Option(help: "The run file to write (must not exist).") var out: String?
  @Option(help: "Finish the unfinished run in this file.") var resume: String?
  @Option(help: "Threads for GEMMs and kernels.") var threads: Int = 1

  func validate() throws {
    guard (out == nil) != (resume == nil) else { throw ValidationError("give --out FILE (RunSpec JSON on standard input) or --resume FILE") }
    guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
  }

  func run() throws {
    // A worker whose grid died (SIGKILL, a lost node) stops after its current step, resumable, rather
    // than training on with no one to collect it (and racing a rerun of the grid for its file).
    let parent = getppid()
    TrainingSession.shouldStopExtra = { getppid() != parent }
    if let resume {
      try TrainingSession.resume(path: resume, threads: threads, progressLines: 100)
      return
    }
    let input = FileHandle.standardInput.readDataToEndOfFile()
    let spec = try RunSpec.decode(String(decoding: input, as: UTF8.self), file: "standard input")
    try TrainingSession.start(spec, path: out!, threads: threads, progressLines: 100)
  }
}

/// A training run as the command line drives it: the environment recorded in the run file (the BLAS
/// kernel and threads, whoever starts the run), Ctrl-C handling, progress on standard error and the
/// closing line.
enum TrainingSession {
  /// Polled after every step: true stops the run as Ctrl-C does.
  nonisolated(unsafe) static var shouldStopExtra: () -> Bool = { false }

  static func start(_ spec: RunSpec, path: String, threads: Int, progressLines: Int = 20) throws {
    if FileManager.default.fileExists(atPath: path) {
      throw CLIError("\(path) exists: choose another --out, or continue it with --resume \(path)")
    }
    try Folders.createParent(of: path)
    try drive(path: path, threads: threads, progressLines: progressLines) { configure in
      try TrainingRuns.start(spec, path: path, threads: threads, configure: configure)
    }
  }

  static func resume(path: String, threads: Int, progressLines: Int = 20) throws {
    try drive(path: TrainingRuns.runPath(path), threads: threads, progressLines: progressLines) { configure in
      try TrainingRuns.resume(path: path, threads: threads, configure: configure).1
    }
  }

  /// Runs `train` with the writer set up as every session needs it (signals, the environment recorded
  /// in the run file, progress, notes about leftovers), then prints the closing line for `path`.
  private static func drive(
    path: String, threads: Int, progressLines: Int,
    _ train: ((RunFileWriter, RunSpec) -> Void) throws -> RunSummary
  ) throws {
    let progress = Progress(lines: progressLines)
    let interrupt = InterruptFlag()
    let summary: RunSummary
    do {
      summary = try train { w, spec in
        interrupt.watch(w)
        noteSetAside(w)
        w.environment = ["blas_kernel": BLASKernel.describe(), "threads": "\(threads)"]
        progress.total = spec.training.steps
        w.onStep = {
          progress.update($0, items: w.itemsPerStep)
          if shouldStopExtra() { w.stopRequested = true }
        }
      }
    } catch let done as RunFileWriter.FinishedElsewhere {
      print(done.description)  // another process finished this run while this one waited for it
      return
    }
    progress.finish()
    report(summary, path: path)
  }

  /// What the library did with leftovers before training: continued the same run, set aside broken ones.
  private static func noteSetAside(_ w: RunFileWriter) {
    if let step = w.continuedFrom {
      FileHandle.standardError.write(Data("fpsim: note: continuing the unfinished run in \(w.folder) from step \(step) (same configuration)\n".utf8))
    }
    for moved in w.setAside {
      FileHandle.standardError.write(Data("fpsim: note: set aside a broken leftover of this run as \(moved)\n".utf8))
    }
  }

  private static func report(_ s: RunSummary, path: String) {
    var eval = s.finalEvalLoss.map { " eval loss \(String(format: "%.4f", $0))," } ?? ""
    if let a = s.finalEvalAccuracy { eval += " eval accuracy \(String(format: "%.2f", 100 * a))%," }
    var line = "\(path): \(s.status.rawValue) after \(s.steps) steps, train loss \(String(format: "%.4f", s.finalTrainLoss)),\(eval) \(String(format: "%.1f", s.wallSeconds)) s"
    if let d = s.divergedStep { line += ", diverged at step \(d)" }
    switch s.bf16GEMMCount {
    case 0?: line += "; --gemm bf16: no GEMM has two bfloat16 operands in this recipe, all ran on sgemm"
    case let n?: line += ", \(n) GEMMs on the bf16 kernel"
    case nil: break
    }
    print(line)
    if s.status == .interrupted {
      FileHandle.standardError.write(Data("fpsim: interrupted; continue with: fpsim train --resume \(path)\n".utf8))
      Foundation.exit(130)
    }
  }
}
