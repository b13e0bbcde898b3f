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
/// `optimizer`, `data`, `[divergence]` `margin` and `patience`, `failed_to_learn_margin`, `name`,
/// `sharpness_every` (a multiple of `checkpoint_every`) and `sharpness_metrics`.
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
  public var data: String
  public var divergenceMargin: Double
  public var divergencePatience: Int
  /// A run "failed to learn" when its final validation loss is more than this many nats above the
  /// best learning rate's for the same format and seed.
  public var failedToLearnMargin: Double
  /// Measure sharpness on the checkpoints every this many steps (0: never), with these metrics.
  public var sharpnessEvery: Int = 0
  public var sharpnessMetrics: [String] = ["keskar-logits"]

  public struct Run: Hashable, Sendable {
    public var id: String
    public var labelIndex: Int, lrIndex: Int, seedIndex: Int
    public var recipe: String
    public var lr: Double
    public var seed: Int
  }

  /// Every run, in spec order (label, then learning rate, then seed).
  public var runs: [Run] {
    var out: [Run] = []
    for (f, label) in labels.enumerated() {
      for (l, lr) in lrs.enumerated() {
        for (s, seed) in seeds.enumerated() {
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
    optimizer: String = "adamw", data: String = "data", divergenceMargin: Double = 1.0, divergencePatience: Int = 50,
    failedToLearnMargin: Double = 0.5, sharpnessEvery: Int = 0, sharpnessMetrics: [String] = ["keskar-logits"],
    file: String = "command line"
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
    try validate(file: file)
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
      do { _ = try Recipe(parsing: r) } catch { throw fail("recipe '\(r)': \(error)") }
    }
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
    "failed_to_learn_margin", "sharpness_every", "sharpness_metrics",
  ]

  public init(document doc: SpecDocument) throws {
    for key in doc.order where !GridSpec.knownKeys.contains(key) {
      throw doc.error(key, "unknown key; the keys are \(GridSpec.knownKeys.sorted().joined(separator: ", "))")
    }
    guard let model = try doc.string("model") else {
      throw SpecError(file: doc.file, line: nil, problem: "missing key 'model' (for example model = \"gpt-tiny\")")
    }
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
        template.replacingOccurrences(of: "{format}", with: $0).replacingOccurrences(of: "{rounding}", with: rounding)
      }
    } else if let list = doc.list("recipes") {
      kind = "recipe"
      for v in list {
        guard case .string(let s) = v else { throw doc.error("recipes", "recipe names are quoted strings") }
        labels.append(s)
      }
      recipes = labels
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
        data: try doc.string("data") ?? "data", divergenceMargin: try doc.number("divergence.margin") ?? 1.0,
        divergencePatience: try doc.integer("divergence.patience") ?? 50,
        failedToLearnMargin: try doc.number("failed_to_learn_margin") ?? 0.5,
        sharpnessEvery: try doc.integer("sharpness_every") ?? 0,
        sharpnessMetrics: try (doc.list("sharpness_metrics") ?? [.string("keskar-logits")]).map { v -> String in
          guard case .string(let m) = v else { throw doc.error("sharpness_metrics", "metric names are quoted strings") }
          return m
        }, file: doc.file)
    }
  }

  /// `e8m7..e8m3` -> e8m7, e8m6, e8m5, e8m4, e8m3 (one bit at a time, from more bits to fewer);
  /// a plain name stays itself.
  public static func expandFormats(_ text: String) throws -> [String] {
    let parts = text.components(separatedBy: "..")
    guard parts.count == 2 else {
      _ = try FloatFormat(parsing: text)
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
    return Array(a...b)
  }

  /// A stable JSON form stored in the grid file; a resumed grid must have the same.
  public func json() throws -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]
    return String(decoding: try e.encode(self), as: UTF8.self)
  }
}
