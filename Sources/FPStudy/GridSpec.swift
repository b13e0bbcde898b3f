import FPEngine
import FPFormats
import Foundation

/// A sweep over formats (or recipes), learning rates and seeds, as a value: parsed from a TOML or JSON
/// spec (commented examples in `experiments/`) or built from command-line flags, checked completely
/// before anything runs.
///
/// Keys: `model`; either `formats` (format names and ranges that take bits away one at a time:
/// `e8m7..e8m3` cuts the mantissa, `e8m7..e5m7` the exponent) with `rounding` (default `rne`) and
/// `recipe` (a template, default `uniform:{format}:{rounding}`), or `recipes` (recipe names); `lrs`;
/// `seeds` (a list or `"A..B"`); `steps`; optional `eval_every`, `checkpoint_every`, `warmup`,
/// `min_lr`, `optimizer`, `weight_decay`, `grad_clip`, `threads`, `snapshot_every`, `snapshot_tensors`,
/// `snapshot_operands`, `histograms`, `gemm` (`sgemm` or `bf16`, as `fpsim train --gemm`),
/// `data`, `[divergence]` `margin` and `patience`, `failed_to_learn_margin`, `blowup_margin`,
/// `baseline`, `name`, `sharpness_every` (a multiple of `checkpoint_every`) and `sharpness_metrics`.
/// Relative paths in a spec file (`data`, recipe files) are taken from the spec's folder.
public struct GridSpec: Codable, Sendable, Hashable {
  public var name: String
  public var model: String
  /// Axis labels (format names, or recipe names) and the recipe each one runs.
  public var labels: [String]
  public var recipes: [String]
  /// "format" when labels are formats, "recipe" otherwise: the name of the first results dimension.
  public var labelKind: String
  public var lrs: [Double]
  public var seeds: [Int]
  public var steps: Int
  public var evalEvery: Int
  public var checkpointEvery: Int
  public var warmup: Int?
  public var optimizer: String
  /// The data folder (absolute once resolved against the spec's folder); nil: FPSIM_DATA or the data
  /// shipped with fpsim (`DataLocation`). Not part of the study's identity (`sameStudy`).
  public var data: String?
  public var divergenceMargin: Double
  public var divergencePatience: Int
  /// A run "failed to learn" when its final validation loss is more than this many nats above the
  /// best learning rate's for the same format and seed.
  public var failedToLearnMargin: Double
  /// Measure sharpness on the checkpoints every this many steps (0: never), with these metrics.
  public var sharpnessEvery: Int = 0
  public var sharpnessMetrics: [String] = ["keskar-logits"]
  // The `fpsim train` options a spec may set (nil: train's default). Optional so that grid files
  // written before they existed decode, and their stored spec stays byte-identical.
  public var gradClip: Double? = nil
  public var weightDecay: Double? = nil
  public var minLR: Double? = nil
  /// Threads per worker (default 1; the grid's `--jobs` workers times this should match the cores).
  public var threads: Int? = nil
  public var snapshotEvery: Int? = nil
  public var snapshotTensors: [String]? = nil
  /// Linear layers whose rounded GEMM operands every snapshot holds (`fpsim train --snapshot-operands`).
  public var snapshotOperands: [String]? = nil
  /// Record binade histograms in every run (`fpsim train --histograms`); nil: off.
  public var histograms: Bool? = nil
  /// `bf16`: every run in the `--gemm bf16` mode (`TrainingConfig.bf16GEMMs`); nil: sgemm.
  public var gemm: String? = nil
  /// The label that runs are compared with at the same learning rate and seed (default: the first).
  public var baseline: String? = nil
  /// A run "blew up" when its final validation loss is more than this many nats above the lowest
  /// validation loss it reached (default `GridSpec.defaultBlowupMargin`).
  public var blowupMargin: Double? = nil

  public static let defaultBlowupMargin = 0.3
  /// Grids above this many runs need an explicit yes (`--yes`): they are refused with their size first.
  public static let largeGrid = 10_000

  public var runCount: Int { labels.count * lrs.count * seeds.count }
  public var baselineLabel: String { baseline ?? labels[0] }

  public struct Run: Hashable, Sendable {
    public var id: String
    public var labelIndex: Int, lrIndex: Int, seedIndex: Int
    public var recipe: String
    public var lr: Double
    public var seed: Int
  }

  /// Every run, in spec order (label, then learning rate, then seed).
  public var runs: [Run] { runs(limit: Int.max) }

  func runs(limit: Int) -> [Run] {
    var out: [Run] = []
    for (f, label) in labels.enumerated() {
      for (l, lr) in lrs.enumerated() {
        for (s, seed) in seeds.enumerated() {
          if out.count >= limit { return out }
          let id = "\(label)_lr\(GridSpec.number(lr))_s\(seed)".map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" ? $0 : "-" }
          out.append(Run(id: String(id), labelIndex: f, lrIndex: l, seedIndex: s, recipe: recipes[f], lr: lr, seed: seed))
        }
      }
    }
    return out
  }

  static func number(_ d: Double) -> String {
    let s = "\(d)"
    return s.hasSuffix(".0") ? String(s.dropLast(2)) : s
  }

  public init(
    name: String = "grid", model: String, labels: [String], recipes: [String], labelKind: String, lrs: [Double],
    seeds: [Int], steps: Int, evalEvery: Int = 100, checkpointEvery: Int = 0, warmup: Int? = nil,
    optimizer: String = "adamw", data: String? = nil, divergenceMargin: Double = 1.0, divergencePatience: Int = 50,
    failedToLearnMargin: Double = 0.5, sharpnessEvery: Int = 0, sharpnessMetrics: [String] = ["keskar-logits"],
    options: TrainOptions = TrainOptions(), file: String = "command line"
  ) throws {
    self.name = name
    self.model = model
    self.labels = labels
    self.recipes = recipes
    self.labelKind = labelKind
    self.lrs = lrs
    self.seeds = seeds
    self.steps = steps
    self.evalEvery = evalEvery
    self.checkpointEvery = checkpointEvery
    self.warmup = warmup
    self.optimizer = optimizer
    self.data = data
    self.divergenceMargin = divergenceMargin
    self.divergencePatience = divergencePatience
    self.failedToLearnMargin = failedToLearnMargin
    self.sharpnessEvery = sharpnessEvery
    self.sharpnessMetrics = sharpnessMetrics
    gradClip = options.gradClip
    weightDecay = options.weightDecay
    minLR = options.minLR
    threads = options.threads
    snapshotEvery = options.snapshotEvery
    snapshotTensors = options.snapshotTensors
    snapshotOperands = options.snapshotOperands
    histograms = options.histograms
    gemm = options.gemm
    baseline = options.baseline
    blowupMargin = options.blowupMargin
    try validate(file: file)
  }

  /// The optional keys, grouped so that callers name only those they set.
  public struct TrainOptions: Sendable {
    public var gradClip: Double?, weightDecay: Double?, minLR: Double?, threads: Int?
    public var snapshotEvery: Int?, snapshotTensors: [String]?, baseline: String?, blowupMargin: Double?
    public var snapshotOperands: [String]?, histograms: Bool?, gemm: String?
    public init(
      gradClip: Double? = nil, weightDecay: Double? = nil, minLR: Double? = nil, threads: Int? = nil,
      snapshotEvery: Int? = nil, snapshotTensors: [String]? = nil, baseline: String? = nil, blowupMargin: Double? = nil,
      snapshotOperands: [String]? = nil, histograms: Bool? = nil, gemm: String? = nil
    ) {
      self.snapshotOperands = snapshotOperands
      self.histograms = histograms
      self.gemm = gemm
      self.gradClip = gradClip
      self.weightDecay = weightDecay
      self.minLR = minLR
      self.threads = threads
      self.snapshotEvery = snapshotEvery
      self.snapshotTensors = snapshotTensors
      self.baseline = baseline
      self.blowupMargin = blowupMargin
    }
  }

  func validate(file: String) throws {
    func fail(_ problem: String) -> SpecError { SpecError(file: file, line: nil, problem: problem) }
    do { _ = try ModelSpec(parsing: model) } catch { throw fail("\(error)") }
    guard !labels.isEmpty else { throw fail("no formats or recipes: give formats = [...] or recipes = [...]") }
    guard !lrs.isEmpty else { throw fail("the learning-rate list is empty") }
    guard !seeds.isEmpty else { throw fail("the seed list is empty") }
    guard lrs.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw fail("learning rates must be positive") }
    guard steps > 0 else { throw fail("steps must be positive") }
    guard Set(labels).count == labels.count else { throw fail("a format or recipe appears twice: \(labels)") }
    guard Set(lrs).count == lrs.count, Set(seeds).count == seeds.count else {
      throw fail("a learning rate or seed appears twice")
    }
    for r in recipes {
      do { _ = try Recipe(parsing: r) } catch { throw fail("\(error)") }
    }
    if let b = baseline, !labels.contains(b) {
      throw fail("baseline '\(b)' is not one of the \(labelKind)s: \(labels.joined(separator: ", "))")
    }
    if let t = threads, t < 1 { throw fail("threads must be at least 1") }
    if let g = gemm, g != "sgemm" && g != "bf16" { throw fail("gemm must be \"sgemm\" or \"bf16\", got \"\(g)\"") }
    if let m = blowupMargin, !(m > 0 && m.isFinite) { throw fail("blowup_margin must be a positive number of nats") }
    guard failedToLearnMargin > 0, failedToLearnMargin.isFinite else {
      throw fail("failed_to_learn_margin must be a positive number of nats")
    }
    guard evalEvery >= 0, checkpointEvery >= 0 else { throw fail("eval_every and checkpoint_every must be 0 or positive") }
    // Every run's training configuration, exactly as its worker will get it (schedules, optimizer,
    // divergence rule): a spec that a worker would refuse is refused here, before anything starts.
    do {
      for (l, lr) in lrs.enumerated() {
        let run = Run(id: "", labelIndex: 0, lrIndex: l, seedIndex: 0, recipe: recipes[0], lr: lr, seed: seeds[0])
        try runSpec(run, dataDirectory: "").training.validate()
      }
    } catch { throw fail("\(error)") }
    if sharpnessEvery > 0 {
      guard checkpointEvery > 0, sharpnessEvery % checkpointEvery == 0 else {
        throw fail("sharpness_every (\(sharpnessEvery)) must be a multiple of checkpoint_every (\(checkpointEvery)): sharpness is measured on checkpoints")
      }
      for m in sharpnessMetrics where SharpnessMetric(rawValue: m) == nil {
        throw fail("unknown sharpness metric '\(m)': use keskar-logits, hessian-top or sam")
      }
    }
  }

  /// The steps at which sharpness is measured: multiples of `sharpnessEvery` up to `steps`.
  public var sharpnessSteps: [Int] {
    sharpnessEvery > 0 ? Array(stride(from: sharpnessEvery, through: steps, by: sharpnessEvery)) : []
  }

  // MARK: Parsing

  public init(file path: String) throws {
    let doc = try SpecDocument(contentsOf: path)
    try self.init(document: doc)
  }

  static let knownKeys: Set<String> = [
    "name", "model", "formats", "rounding", "recipe", "recipes", "lrs", "seeds", "steps", "eval_every",
    "checkpoint_every", "warmup", "optimizer", "data", "divergence.margin", "divergence.patience",
    "failed_to_learn_margin", "sharpness_every", "sharpness_metrics", "grad_clip", "weight_decay", "min_lr",
    "threads", "snapshot_every", "snapshot_tensors", "snapshot_operands", "histograms", "gemm", "baseline", "blowup_margin",
  ]

  public init(document doc: SpecDocument) throws {
    for key in doc.order where !GridSpec.knownKeys.contains(key) {
      throw doc.error(key, "unknown key; the keys are \(GridSpec.knownKeys.sorted().joined(separator: ", "))")
    }
    guard let model = try doc.string("model") else {
      throw SpecError(file: doc.file, line: nil, problem: "missing key 'model' (for example model = \"gpt-tiny\")")
    }
    let folder = URL(fileURLWithPath: doc.file).deletingLastPathComponent().path
    var labels: [String] = [], recipes: [String] = [], kind = "format"
    if let formats = doc.list("formats") {
      if doc.list("recipes") != nil { throw doc.error("recipes", "give formats or recipes, not both") }
      let rounding = try doc.string("rounding") ?? "rne"
      let template = try doc.string("recipe") ?? "uniform:{format}:{rounding}"
      guard template.contains("{format}") else { throw doc.error("recipe", "a template needs {format}") }
      for v in formats {
        guard case .string(let s) = v else { throw doc.error("formats", "format names are quoted strings") }
        do { labels += try GridSpec.expandFormats(s) } catch let e as FormatError { throw doc.error("formats", "'\(s)': \(e.description)") }
      }
      recipes = labels.map {
        GridSpec.resolveRecipeFile(
          template.replacingOccurrences(of: "{format}", with: $0).replacingOccurrences(of: "{rounding}", with: rounding),
          folder: folder)
      }
    } else if let list = doc.list("recipes") {
      kind = "recipe"
      for v in list {
        guard case .string(let s) = v else { throw doc.error("recipes", "recipe names are quoted strings") }
        labels.append(s)
      }
      recipes = labels.map { GridSpec.resolveRecipeFile($0, folder: folder) }
    } else {
      throw SpecError(file: doc.file, line: nil, problem: "missing key 'formats' or 'recipes'")
    }
    guard let lrValues = doc.list("lrs") else { throw SpecError(file: doc.file, line: nil, problem: "missing key 'lrs'") }
    let lrs = try lrValues.map { v -> Double in
      guard case .number(let d) = v else { throw doc.error("lrs", "learning rates are numbers") }
      return d
    }
    guard let seedValues = doc.list("seeds") else { throw SpecError(file: doc.file, line: nil, problem: "missing key 'seeds'") }
    var seeds: [Int] = []
    for v in seedValues {
      switch v {
      case .number(let d) where d == d.rounded() && d >= 0: seeds.append(Int(d))
      case .string(let s):
        do { seeds += try GridSpec.expandSeeds(s) } catch { throw doc.error("seeds", "\(error)") }
      default: throw doc.error("seeds", "seeds are non-negative integers or a range \"0..4\"")
      }
    }
    guard let steps = try doc.integer("steps") else { throw SpecError(file: doc.file, line: nil, problem: "missing key 'steps'") }
    for key in ["lrs", "seeds", "formats", "recipes"] where doc.list(key)?.isEmpty == true {
      throw doc.error(key, "the list is empty")
    }
    do {
      try self.init(
        name: try doc.string("name") ?? URL(fileURLWithPath: doc.file).deletingPathExtension().lastPathComponent,
        model: model, labels: labels, recipes: recipes, labelKind: kind, lrs: lrs, seeds: seeds, steps: steps,
        evalEvery: try doc.integer("eval_every") ?? 100, checkpointEvery: try doc.integer("checkpoint_every") ?? 0,
        warmup: try doc.integer("warmup"), optimizer: try doc.string("optimizer") ?? "adamw",
        data: try doc.string("data").map { DataLocation.absolute($0, base: folder) }, divergenceMargin: try doc.number("divergence.margin") ?? 1.0,
        divergencePatience: try doc.integer("divergence.patience") ?? 50,
        failedToLearnMargin: try doc.number("failed_to_learn_margin") ?? 0.5,
        sharpnessEvery: try doc.integer("sharpness_every") ?? 0,
        sharpnessMetrics: try (doc.list("sharpness_metrics") ?? [.string("keskar-logits")]).map { v -> String in
          guard case .string(let m) = v else { throw doc.error("sharpness_metrics", "metric names are quoted strings") }
          return m
        },
        options: TrainOptions(
          gradClip: try doc.number("grad_clip"), weightDecay: try doc.number("weight_decay"),
          minLR: try doc.number("min_lr"), threads: try doc.integer("threads"),
          snapshotEvery: try doc.integer("snapshot_every"),
          snapshotTensors: try doc.list("snapshot_tensors").map { list in
            try list.map { v -> String in
              guard case .string(let t) = v else { throw doc.error("snapshot_tensors", "tensor names are quoted strings") }
              return t
            }
          },
          baseline: try doc.string("baseline"), blowupMargin: try doc.number("blowup_margin"),
          snapshotOperands: try doc.list("snapshot_operands").map { list in
            try list.map { v -> String in
              guard case .string(let t) = v else { throw doc.error("snapshot_operands", "layer names are quoted strings") }
              return t
            }
          }, histograms: try doc.bool("histograms"), gemm: try doc.string("gemm")),
        file: doc.file)
    }
  }

  /// A recipe whose base is a relative `.toml`/`.json` file found in `folder` names it by its absolute
  /// path (`recipes/nvfp4.toml:hadamard=none` -> `/study/recipes/nvfp4.toml:hadamard=none`).
  static func resolveRecipeFile(_ recipe: String, folder: String) -> String {
    // The base is what precedes the overrides (`BASE:KEY=VALUE,...`), as `Recipe(parsing:)` reads it.
    var base = recipe[...]
    if let eq = recipe.firstIndex(of: "=") { base = recipe[..<eq].lastIndex(of: ":").map { recipe[..<$0] } ?? "" }
    let lower = base.lowercased()
    guard lower.hasSuffix(".toml") || lower.hasSuffix(".json") else { return recipe }
    let file = DataLocation.absolute(String(base), base: folder)
    // The recipe file's content, spelled canonically, so that the stored study depends neither on
    // where the file was nor on it staying there.
    guard let r = try? Recipe(parsing: file + recipe[base.endIndex...]) else { return recipe }
    return r.description
  }

  // MARK: Runs as the workers get them

  /// The complete description of `run` that its worker trains (the same values `fpsim train` builds
  /// from its flags: learning rates and margins pass through their decimal spelling, as the flags did).
  public func runSpec(_ run: Run, dataDirectory: String) throws -> RunSpec {
    func float(_ d: Double) -> Float { Float("\(d)") ?? Float(d) }
    let training = TrainingConfig(
      steps: steps, learningRate: float(run.lr), minLearningRate: minLR.map(float), warmupSteps: warmup,
      optimizer: try OptimizerConfig(name: optimizer, weightDecay: weightDecay.map(float)),
      gradClip: (gradClip ?? 1.0) > 0 ? float(gradClip ?? 1.0) : nil, evalEvery: evalEvery,
      checkpointEvery: checkpointEvery, snapshotEvery: snapshotEvery ?? 0, snapshotTensors: snapshotTensors,
      seed: UInt64(run.seed),
      divergence: DivergenceRule(margin: float(divergenceMargin), patience: divergencePatience),
      snapshotOperands: snapshotOperands, binadeHistograms: histograms == true ? true : nil,
      bf16GEMMs: gemm == "bf16" ? true : nil)
    return RunSpec(
      model: try ModelSpec(parsing: model), recipe: try Recipe(parsing: run.recipe), training: training,
      dataDirectory: dataDirectory)
  }

  /// Whether `other` describes the same study: everything but where the data and recipe files are
  /// (recipes compare by their resolved content) and the cosmetic name, so that a grid file, its spec
  /// and its data can move and still resume.
  public func sameStudy(as other: GridSpec) -> Bool {
    func normalized(_ g: GridSpec) -> GridSpec {
      var g = g
      g.data = nil
      g.name = ""
      g.recipes = g.recipes.map { (try? Recipe(parsing: $0).json) ?? $0 }
      return g
    }
    return normalized(self) == normalized(other)
  }

  /// `e8m7..e8m3` -> e8m7, e8m6, e8m5, e8m4, e8m3 (one bit at a time, from more bits to fewer);
  /// a plain name stays itself.
  public static func expandFormats(_ text: String) throws -> [String] {
    let parts = text.components(separatedBy: "..")
    guard parts.count == 2 else {
      do { _ = try FloatFormat(parsing: text) } catch {
        if (try? ScaledFormat(parsing: text)) != nil {
          throw FormatError.invalid(
            "'\(text)' is a block format: a grid runs block formats as recipes, with --recipes (or recipes = [...]): mxfp4, nvfp4, fp4:scale=ue5m3,block=16, or 'uniform:\(text)'")
        }
        throw error
      }
      return [text]
    }
    let a = try FloatFormat(parsing: parts[0]), b = try FloatFormat(parsing: parts[1])
    func shape(_ f: FloatFormat, _ e: Int, _ m: Int) -> String {
      (f.signed ? "" : "u") + "e\(e)m\(m)" + (f.policy == .ieee ? "" : f.policy.rawValue)
    }
    guard a.signed == b.signed, a.policy == b.policy else {
      throw FormatError.invalid("range '\(text)': both ends need the same sign and special values")
    }
    if a.exponentBits == b.exponentBits && a.mantissaBits != b.mantissaBits {
      guard a.mantissaBits > b.mantissaBits else {
        throw FormatError.invalid("range '\(text)' goes the wrong way: a range takes bits away, write \(parts[1])..\(parts[0])")
      }
      return stride(from: a.mantissaBits, through: b.mantissaBits, by: -1).map { shape(a, a.exponentBits, $0) }
    }
    if a.mantissaBits == b.mantissaBits && a.exponentBits != b.exponentBits {
      guard a.exponentBits > b.exponentBits else {
        throw FormatError.invalid("range '\(text)' goes the wrong way: a range takes bits away, write \(parts[1])..\(parts[0])")
      }
      return stride(from: a.exponentBits, through: b.exponentBits, by: -1).map { shape(a, $0, a.mantissaBits) }
    }
    throw FormatError.invalid("range '\(text)': the ends must differ in exponent bits or in mantissa bits, not both")
  }

  /// `"0..4"` -> 0, 1, 2, 3, 4.
  public static func expandSeeds(_ text: String) throws -> [Int] {
    let parts = text.components(separatedBy: "..")
    guard parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]), a >= 0 else {
      guard parts.count == 1, let v = Int(text), v >= 0 else {
        throw FormatError.invalid("seeds '\(text)': write integers or a range A..B")
      }
      return [v]
    }
    guard a <= b else { throw FormatError.invalid("seed range '\(text)' goes the wrong way: write \(b)..\(a)") }
    guard b - a < GridSpec.largeGrid else {
      throw FormatError.invalid("seed range '\(text)' holds more than \(GridSpec.largeGrid) seeds, the most a grid takes")
    }
    return Array(a...b)
  }

  /// A stable JSON form stored in the grid file; a resumed grid must have the same.
  public func json() throws -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]
    return String(decoding: try e.encode(self), as: UTF8.self)
  }
}
