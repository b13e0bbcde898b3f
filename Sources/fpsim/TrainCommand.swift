import ArgumentParser
import FPEngine
import FPStudy
import Foundation

/// `fpsim train`: one training run into an `fpsim/run` file, or `--resume FILE` to finish one.
struct Train: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Train a model with every GEMM operand rounded by a precision recipe; write an fpsim/run file.",
    discussion: """
      Models: gpt-tiny (nanoGPT, 4 layers, 4 heads, width 128, context 128, batch 16, on data/shakespeare.txt), \
      gpt-micro, llama-tiny (RMSNorm, rotary, SwiGLU width 384, no biases, untied head; otherwise as \
      gpt-tiny), llama-micro, mlp (digits), linreg (diabetes). Recipes: fp32, bf16, uniform:FORMAT[:ROUNDING] \
      (e.g. uniform:e8m4:rtz, the bit reduction of "To FP8 and Back"), mxfp8, mxfp6, mxfp4, nvfp4, \
      fp4[:scale=..,block=..], recipe files and key=value overrides: `fpsim recipes` lists them.
      """)

  @Option(help: "Model preset: gpt-tiny, gpt-micro, llama-tiny, llama-micro, mlp, linreg.") var model: String = "gpt-tiny"
  @Option(help: "Precision recipe: fp32, bf16, uniform:FORMAT[:ROUNDING], mxfp8, mxfp6, mxfp4, nvfp4, fp4[:...], a .toml/.json file, with :KEY=VALUE overrides (see fpsim recipes).")
  var recipe: String = "fp32"
  @Option(parsing: .unconditional, help: "Peak learning rate.", transform: LearningRateArgument.parse) var lr: Float = 1e-3
  @Option(parsing: .unconditional, help: "Floor of the cosine decay (default lr / 10).") var minLr: Float?
  @Option(parsing: .unconditional, help: "Linear warmup steps (default min(100, steps / 10)).") var warmup: Int?
  @Option(parsing: .unconditional, help: "Optimizer steps.") var steps: Int = 2000
  // Parsed by hand so that `--seed -1` says what is wrong (swift-argument-parser would call -1 a flag).
  @Option(parsing: .unconditional, help: "Seed of initialization, data order and stochastic rounding (0 to 2^64-1).")
  var seed: String = "0"
  @Option(help: "adamw (betas 0.9, 0.95, weight decay 0.1 on matrices), sgd or signsgd (momentum 0.9).")
  var optimizer: String = "adamw"
  @Option(parsing: .unconditional, help: "Weight decay (default 0.1 for adamw, 0 otherwise).") var weightDecay: Float?
  @Option(parsing: .unconditional, help: "Gradient-norm clipping threshold, or 0 for none.") var gradClip: Float = 1.0
  @Option(parsing: .unconditional, help: "Evaluate on the validation split every N steps (and at the end).") var evalEvery: Int = 100
  @Option(parsing: .unconditional, help: "Write a checkpoint every N steps (and at the end); 0: never (no resume, no sharpness).") var checkpointEvery: Int = 250
  @Option(parsing: .unconditional, help: "Write a snapshot of tensors every N steps; 0: never.") var snapshotEvery: Int = 0
  @Option(help: "Comma-separated tensors to snapshot (parameter names, grad/NAME); default all parameters.")
  var snapshotTensors: String?
  @Option(help: "Comma-separated linear layers whose rounded GEMM operands (input, rounded, block scales) every snapshot also holds.")
  var snapshotOperands: String?
  @Flag(help: "Record the binade histogram of every rounded GEMM operand at every step (metrics/histograms; about 1-2% of a step).")
  var histograms = false
  @Option(help: ArgumentHelp(
    "GEMM kernel: sgemm (float32, the default), or bf16: GEMMs whose two operands the recipe rounds to bfloat16 values run on the AVX512-BF16 kernel.",
    discussion: "bf16 multiplies the same operand values, with its own order of float32 sums and with subnormals flushed to zero, so its results differ from sgemm's in the last bits; NVFP4 and tensor-scale formats enter it as element x block scale, their float32 tensor scales applied once to each product. The run file records it (@gemm, and bf16GEMMs in its config)."))
  var gemm: GEMMChoice = .sgemm
  @Option(parsing: .unconditional, help: "Divergence: loss margin (nats) above the running minimum of the smoothed loss.") var divergenceMargin: Float = 1.0
  @Option(parsing: .unconditional, help: "Divergence: steps the loss must stay above the margin.") var divergencePatience: Int = 50
  @Option(help: "Directory of the data sets (default: FPSIM_DATA, else the data shipped with fpsim).") var data: String?
  @Option(parsing: .unconditional, help: "Threads for GEMMs and kernels (results do not depend on it).") var threads: Int = 1
  @Option(help: "The run file to write (must not exist); while training, the run lives in FILE.partial/.") var out: String?
  @Option(help: "Finish the unfinished run started with --out FILE from its last checkpoint.") var resume: String?

  func validate() throws {
    if resume == nil && out == nil { throw ValidationError("give --out FILE for a new run, or --resume FILE") }
    if resume != nil && out != nil { throw ValidationError("--resume continues the run it names: drop --out") }
    guard threads >= 1 else { throw CLIError("--threads must be at least 1, got \(threads)") }
    guard resume == nil else { return }
    _ = try Self.parseSeed(seed)
    guard lr.isFinite && lr > 0 else { throw CLIError("--lr: the learning rate must be a positive number, got \(lr)") }
    if let m = minLr, !(m.isFinite && m >= 0) { throw CLIError("--min-lr must be a number from 0 to --lr, got \(m)") }
    if let w = warmup, w < 0 { throw CLIError("--warmup must be 0 or a positive number of steps, got \(w)") }
    guard steps >= 1 else { throw CLIError("--steps must be a positive number of steps, got \(steps)") }
    if let d = weightDecay, !(d.isFinite && d >= 0) { throw CLIError("--weight-decay must be a finite number >= 0, got \(d)") }
    guard gradClip.isFinite && gradClip >= 0 else { throw CLIError("--grad-clip must be a finite number >= 0 (0: no clipping), got \(gradClip)") }
    for (flag, v) in [("--eval-every", evalEvery), ("--checkpoint-every", checkpointEvery), ("--snapshot-every", snapshotEvery)] where v < 0 {
      throw CLIError("\(flag) must be 0 (never) or a positive number of steps, got \(v)")
    }
    guard divergenceMargin.isFinite && divergenceMargin > 0 else {
      throw CLIError("--divergence-margin must be a positive number of nats, got \(divergenceMargin)")
    }
    guard divergencePatience >= 1 else { throw CLIError("--divergence-patience must be at least 1 step, got \(divergencePatience)") }
  }

  /// A seed: a decimal integer from 0 to 2^64-1.
  static func parseSeed(_ text: String) throws -> UInt64 {
    guard let v = UInt64(text) else {
      throw CLIError("--seed \(Echo.quoted(text)) is not a seed: seeds are integers from 0 to 18446744073709551615")
    }
    return v
  }

  func run() throws {
    if let path = resume {
      try TrainingSession.resume(path: path, threads: threads)
      return
    }
    let path = out!
    if FileManager.default.fileExists(atPath: path) {
      throw CLIError("\(path) exists: choose another --out, or continue it with --resume \(path)")
    }
    let training = TrainingConfig(
      steps: steps, learningRate: lr, minLearningRate: minLr, warmupSteps: warmup,
      optimizer: try OptimizerConfig(name: optimizer, weightDecay: weightDecay),
      gradClip: gradClip > 0 ? gradClip : nil, evalEvery: evalEvery, checkpointEvery: checkpointEvery,
      snapshotEvery: snapshotEvery, snapshotTensors: snapshotTensors.map { $0.split(separator: ",").map(String.init) },
      seed: try Self.parseSeed(seed), divergence: DivergenceRule(margin: divergenceMargin, patience: divergencePatience),
      snapshotOperands: snapshotOperands.map { $0.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) } },
      binadeHistograms: histograms ? true : nil, bf16GEMMs: gemm == .bf16 ? true : nil)
    let model = try ModelSpec(parsing: model)
    let spec = RunSpec(
      model: model, recipe: try Recipe(parsing: recipe), training: training,
      dataDirectory: try DataLocation.resolve(data, model: model, executable: Grid.executablePath))
    try TrainingSession.start(spec, path: path, threads: threads)
  }
}

/// SIGINT, and SIGTERM (what Slurm sends every process of a job at `scancel` and at its time limit, before
/// SIGKILL 30 s later), ask the run to stop after its current step (the run stays resumable). Dying at once
/// on SIGTERM could cut off a write of the run file half-way, leaving a file that cannot be resumed.
final class InterruptFlag: @unchecked Sendable {
  private var sources: [DispatchSourceSignal] = []
  func watch(_ writer: RunFileWriter) {
    nonisolated(unsafe) let w = writer
    for number in [SIGINT, SIGTERM] {
      signal(number, SIG_IGN)
      let s = DispatchSource.makeSignalSource(signal: number, queue: .global())
      s.setEventHandler { w.stopRequested = true }
      s.resume()
      sources.append(s)
    }
  }
}

/// One progress line: redrawn in place on a terminal, otherwise a plain line `lines` times a run
/// (every 5% by default).
final class Progress {
  var total: Int?
  let lines: Int
  init(lines: Int = 20) { self.lines = lines }
  private let terminal = isatty(STDERR_FILENO) == 1
  private var started = DispatchTime.now().uptimeNanoseconds
  private var stepsSeen = 0.0
  private var lastPrinted = -1
  private var drew = false

  func update(_ m: StepMetrics, items: Int) {
    let done = m.step + 1
    let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
    stepsSeen += 1
    let perSecond = stepsSeen / max(elapsed, 1e-9)
    var text = "step \(done)" + (self.total.map { "/\($0)" } ?? "") + "  loss \(String(format: "%.4f", m.trainLoss))"
    if let e = m.evalLoss { text += "  eval \(String(format: "%.4f", e))" }
    text += "  \(String(format: "%.0f", perSecond * Double(items))) items/s"
    if let t = self.total, perSecond > 0 { text += "  ETA \(Int(Double(t - done) / perSecond)) s" }
    if terminal {
      FileHandle.standardError.write(Data("\r\(text)   ".utf8))
      drew = true
    } else if let t = self.total, done * lines / max(t, 1) != lastPrinted {
      lastPrinted = done * lines / max(t, 1)
      FileHandle.standardError.write(Data("\(text)\n".utf8))
    }
  }

  func finish() {
    if drew { FileHandle.standardError.write(Data("\n".utf8)) }
  }
}
