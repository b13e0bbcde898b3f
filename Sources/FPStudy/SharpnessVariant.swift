import FPStore

/// The options one sharpness value is measured with: the metric, the parameters that change its
/// value for that metric, and whether it ran under the run's precision recipe. Values measured with
/// the same variant form one series per run (`/runs/<id>/sharpness/<metric>/<variant name>/`,
/// docs/files.md); another variant is another series beside it.
///
/// The name is canonical: the options that the command line sets, always, in a fixed order
/// (`epsilon=0.001,ascent_steps=20`, `power_iterations=100,tolerance=0.0001`, `rho=0.05`), then
/// library-only options only when they differ from their defaults (`difference_step`, `batch`),
/// then `,under_recipe` when measured under the run's recipe. Numbers are written as Swift prints
/// them (the shortest text that reads back to the same Double), so equal options give equal names.
public struct SharpnessVariant: Hashable, Sendable {
  public let metric: SharpnessMetric
  /// `parameters` with every field that does not affect `metric` reset to its default (and the
  /// seed, which is the run's, to 0), so that equal variants compare equal.
  public let parameters: SharpnessParameters
  public let underRecipe: Bool

  public init(metric: SharpnessMetric, parameters p: SharpnessParameters, underRecipe: Bool) {
    var q = SharpnessParameters()
    switch metric {
    case .keskarLogits:
      q.epsilon = p.epsilon
      q.ascentSteps = p.ascentSteps
    case .hessianTop:
      q.powerIterations = p.powerIterations
      q.tolerance = p.tolerance
      q.differenceStep = p.differenceStep
      q.batch = p.batch
    case .sam:
      q.rho = p.rho
      q.batch = p.batch
    }
    self.metric = metric
    self.parameters = q
    self.underRecipe = underRecipe
  }

  /// The default options in float32: what a grid spec's `sharpness_every` measures, and the variant
  /// whose `/results` array is named `sharpness_<metric>` alone.
  public static func standard(_ metric: SharpnessMetric) -> SharpnessVariant {
    SharpnessVariant(metric: metric, parameters: SharpnessParameters(), underRecipe: false)
  }

  public var isStandard: Bool { self == .standard(metric) }

  /// The options as attributes (name, value), in the order of the name; `inName` says whether the
  /// option is part of the canonical name.
  public var options: [(name: String, value: AttributeValue, inName: Bool)] {
    let p = parameters, d = SharpnessParameters()
    switch metric {
    case .keskarLogits:
      return [("epsilon", .double(p.epsilon), true), ("ascent_steps", .int(p.ascentSteps), true)]
    case .hessianTop:
      return [
        ("power_iterations", .int(p.powerIterations), true), ("tolerance", .double(p.tolerance), true),
        ("difference_step", .double(p.differenceStep), p.differenceStep != d.differenceStep),
        ("batch", .int(p.batch), p.batch != d.batch),
      ]
    case .sam:
      return [("rho", .double(p.rho), true), ("batch", .int(p.batch), p.batch != d.batch)]
    }
  }

  public var name: String {
    var parts = options.filter(\.inName).map { o -> String in
      switch o.value {
      case .double(let x): return "\(o.name)=\(x)"
      case .int(let n): return "\(o.name)=\(n)"
      default: return "\(o.name)=\(o.value)"
      }
    }
    if underRecipe { parts.append("under_recipe") }
    return parts.joined(separator: ",")
  }

  /// The variant's attributes: `metric`, `variant` (the name), every option, and `under_recipe`
  /// ("fp32", or the recipe the values were measured under).
  func attributes(recipe: String) -> [String: AttributeValue] {
    var a: [String: AttributeValue] = ["metric": .string(metric.rawValue), "variant": .string(name)]
    for o in options { a[o.name] = o.value }
    a["under_recipe"] = .string(underRecipe ? recipe : "fp32")
    if metric == .keskarLogits { a["data"] = .string("validation batch 0, last position of each sequence") }
    return a
  }

  /// The variant of a series stored by an fpsim before variants (docs/files.md: the metric group
  /// itself held `step` and `value`, its options as attributes). Options it lacks take their defaults.
  init(metric: SharpnessMetric, legacyAttributes g: H5Group) throws {
    var p = SharpnessParameters()
    func double(_ name: String) throws -> Double? { try g.attribute(name)?.doubleValue }
    func int(_ name: String) throws -> Int? {
      guard let v = try g.attribute(name) else { return nil }
      if case .string = v { return nil }  // keskar-logits stored a description under "batch"
      return v.intValue
    }
    p.epsilon = try double("epsilon") ?? p.epsilon
    p.ascentSteps = try int("ascent_steps") ?? p.ascentSteps
    p.powerIterations = try int("power_iterations") ?? p.powerIterations
    p.tolerance = try double("tolerance") ?? p.tolerance
    p.differenceStep = try double("difference_step") ?? p.differenceStep
    p.rho = try double("rho") ?? p.rho
    p.batch = try int("batch") ?? p.batch
    let recipe = try g.attribute("under_recipe")?.stringValue ?? "fp32"
    self.init(metric: metric, parameters: p, underRecipe: recipe != "fp32")
  }
}
