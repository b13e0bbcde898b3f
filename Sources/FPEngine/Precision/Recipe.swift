import FPFormats

/// A precision recipe: for every GEMM of every linear layer (forward `Y = X W^T`, data gradient
/// `dX = dY W`, weight gradient `dW = dY^T X`), the format, rounding and overflow of each operand,
/// the random Hadamard transform of each GEMM, the gradient estimator, and the layers kept in high
/// precision (README "Precision recipes").
///
/// A recipe is a named preset, a file (JSON or a TOML subset), or either followed by inline
/// `key=value` overrides (see `Recipe(parsing:)` and `RecipeKeys`):
///
///     fp32 | bf16 | uniform:FORMAT[:ROUNDING] | mxfp8 | mxfp6 | mxfp4 | nvfp4 | fp4 | FILE
///     BASE:KEY=VALUE[,KEY=VALUE...]        e.g. mxfp4:backward-rounding=stochastic,hadamard=wgrad:16
///
/// Its `description` is the canonical spelling (the base and the settings that differ from it), which
/// parses back to an equal recipe; `Codable` gives the full resolved form as nested JSON whose keys are
/// the same keys (so a stored recipe is also a recipe file).
public struct Recipe: Hashable, Sendable, CustomStringConvertible {
  /// The canonical spelling of the preset (or family member) the recipe started from.
  public internal(set) var base: String
  /// Per operand, indexed by `GEMMOperand.rawValue`.
  public var operands: [OperandSetting]
  /// Hadamard size per GEMM, indexed by `GEMMKind.rawValue` (nil: none).
  public var hadamard: [Int?]
  /// Layers whose six operands all use `keepFormat` instead (and no Hadamard transform).
  public var keep: [LayerSelector]
  public var keepFormat: OperandSetting
  /// The linears the recipe quantizes at all (`layers=mlp|attention|all`); the others stay float32.
  public var layers: LinearGroup
  /// Round the operands of attention's QK^T and PV with the operand roles (`AttentionRounding`);
  /// false (the default): those products stay float32.
  public var attentionProducts: Bool
  public var estimator: GradientEstimator
  /// Loss scaling (none, static, or dynamic as in mixed-precision training).
  public var lossScaling: LossScaling
  /// Formats of the master weights and of the optimizer's moments, rounded after every update
  /// (nil format: float32, as by default).
  public var masterWeights: OperandSetting
  public var optimizerStates: OperandSetting

  /// Recipes are equal when they round alike, whatever base they were spelled from.
  public static func == (a: Recipe, b: Recipe) -> Bool {
    a.operands == b.operands && a.hadamard == b.hadamard && a.keep == b.keep && a.keepFormat == b.keepFormat
      && a.layers == b.layers && a.attentionProducts == b.attentionProducts
      && a.estimator == b.estimator && a.lossScaling == b.lossScaling && a.masterWeights == b.masterWeights
      && a.optimizerStates == b.optimizerStates
  }

  public func hash(into h: inout Hasher) {
    h.combine(operands)
    h.combine(hadamard)
    h.combine(keep)
    h.combine(keepFormat)
    h.combine(layers)
    h.combine(attentionProducts)
    h.combine(estimator)
    h.combine(lossScaling)
    h.combine(masterWeights)
    h.combine(optimizerStates)
  }

  /// Nothing rounded: the float32 model, bit for bit.
  public static let fp32 = Recipe(.fp32)

  init(base: String) {
    self.base = base
    operands = Array(repeating: OperandSetting(), count: GEMMOperand.allCases.count)
    hadamard = [nil, nil, nil]
    keep = []
    keepFormat = OperandSetting(format: .element(.bfloat16Format))
    layers = .all
    attentionProducts = false
    estimator = .straightThrough
    lossScaling = .none
    masterWeights = OperandSetting()
    optimizerStates = OperandSetting()
  }

  // MARK: The first recipe spellings, kept as a view

  /// The shape of simple recipes: nothing rounded, or every operand rounded to one element format.
  public enum Kind: Hashable, Codable, Sendable {
    case fp32
    case uniform(ElementRounding)
    /// Anything else (scaled formats, per-operand settings, Hadamard, kept layers ...).
    case custom
  }

  public init(_ kind: Kind) {
    switch kind {
    case .fp32, .custom: self.init(base: "fp32")
    case .uniform(let r):
      self.init(base: Recipe.uniformName(r))
      for op in GEMMOperand.allCases {
        operands[op.rawValue] = OperandSetting(format: .element(r.format), rounding: r.rounding, overflow: r.overflow)
      }
    }
  }

  public var kind: Kind {
    let first = operands[0]
    let plain = hadamard.allSatisfy { $0 == nil } && keep.isEmpty && layers == .all && !attentionProducts && estimator == .straightThrough
      && lossScaling == .none && masterWeights.format == nil && optimizerStates.format == nil
    guard plain, operands.allSatisfy({ $0 == first }) else { return .custom }
    switch first.format {
    case nil: return .fp32
    case .element(let f)?: return .uniform(ElementRounding(format: f, rounding: first.rounding, overflow: first.overflow))
    case .scaled?: return .custom
    }
  }

  static let bf16Rounding = ElementRounding(format: .bfloat16Format)

  static func uniformName(_ r: ElementRounding) -> String {
    if r == bf16Rounding { return "bf16" }
    let name = r.rounding == .rne ? "uniform:\(r.format.name)" : "uniform:\(r.format.name):\(r.rounding)"
    return r.overflow == .saturate ? name : name + ":overflow=\(r.overflow.rawValue)"
  }

  // MARK: Resolution per layer

  /// The rounding of the six operands of the linear layer `layer` and the Hadamard transforms of its
  /// GEMMs. A GEMM with a Hadamard transform rounds both operands (an operand the recipe leaves in
  /// float32 is "rounded" to float32, the identity on finite values), so that both see the same R.
  /// A layer outside `layers` is float32 whatever `keep` says (`validate` refuses a `keep` that could
  /// only name such layers); `keep` picks among the selected ones.
  public func precision(for layer: LinearLayerInfo) -> GEMMPrecision {
    guard layers.contains(layer) else { return .fp32 }
    if keep.contains(where: { $0.matches(layer) }) {
      guard let r = keepFormat.rounder else { return .fp32 }
      return .uniform(r)
    }
    var p = GEMMPrecision()
    for op in GEMMOperand.allCases { p[op] = operands[op.rawValue].rounder }
    for g in GEMMKind.allCases {
      guard let n = hadamard[g.rawValue] else { continue }
      p.hadamard[g.rawValue] = n
      let (a, b) = g.operands
      for op in [a, b] where p[op] == nil { p[op] = ElementRounding(format: .float32Format) }
    }
    p.clipSaturated = estimator == .clippedStraightThrough
    return p
  }
}

/// One operand's setting: its format (nil: left in float32), element rounding and overflow (element
/// formats; block formats always saturate).
public struct OperandSetting: Hashable, Sendable {
  public var format: AnyFormat?
  public var rounding: RoundingMode
  public var overflow: Overflow

  public init(format: AnyFormat? = nil, rounding: RoundingMode = .rne, overflow: Overflow = .saturate) {
    self.format = format
    self.rounding = rounding
    self.overflow = overflow
  }

  public var rounder: (any OperandRounder)? {
    switch format {
    case nil: return nil
    case .element(let f)?: return ElementRounding(format: f, rounding: rounding, overflow: overflow)
    case .scaled(let s)?: return ScaledRounding(format: s, rounding: rounding)
    }
  }
}

/// Loss scaling, to study narrow-exponent formats apart from gradient underflow: the loss (so every
/// gradient) is multiplied by S before the backward pass and the parameter gradients by 1/S after it
/// (exact: S is a power of two). A step whose gradients are not finite is skipped (no update).
/// - `fixed(S)`: S stays.
/// - `dynamic(initial:, interval:)`: as PyTorch's GradScaler: S halves at every skipped step and
///   doubles after `interval` consecutive good steps.
public enum LossScaling: Hashable, Codable, Sendable, CustomStringConvertible {
  case none
  case fixed(Float)
  case dynamic(initial: Float, interval: Int)

  public static let defaultDynamic = LossScaling.dynamic(initial: 65536, interval: 2000)

  public var description: String {
    switch self {
    case .none: return "none"
    case .fixed(let s): return "\(s)"
    case .dynamic(let s, let n): return "dynamic:\(s):\(n)"
    }
  }

  public var initialScale: Float {
    switch self {
    case .none: return 1
    case .fixed(let s), .dynamic(let s, _): return s
    }
  }
}

/// How the gradient passes an operand's rounding.
/// - `straightThrough` (`ste`): as if the rounding were the identity.
/// - `clippedStraightThrough` (`clipped-ste`): the identity, except that the gradient of a forward
///   operand value that saturated (its magnitude beyond what its format, or its block, can represent)
///   is zero, as the gradient of a clamp.
public enum GradientEstimator: String, Hashable, Codable, Sendable, CaseIterable {
  case straightThrough = "ste"
  case clippedStraightThrough = "clipped-ste"
}

/// Which linear layers a recipe keeps in high precision.
/// - `head`: the output layer (`lm_head`, the MLP's last layer).
/// - `first-block`, `last-block`, `first-blocks:K`, `last-blocks:K`: the first / last K blocks
///   (transformer blocks of a GPT or a Llama; the hidden layer of the MLP).
/// - `layer:NAME`: the layer called NAME and every layer whose name starts with `NAME.`.
public enum LayerSelector: Hashable, Sendable, CustomStringConvertible {
  case head
  case firstBlocks(Int)
  case lastBlocks(Int)
  case layer(String)

  public var description: String {
    switch self {
    case .head: return "head"
    case .firstBlocks(1): return "first-block"
    case .lastBlocks(1): return "last-block"
    case .firstBlocks(let k): return "first-blocks:\(k)"
    case .lastBlocks(let k): return "last-blocks:\(k)"
    case .layer(let n): return "layer:\(n)"
    }
  }

  public func matches(_ l: LinearLayerInfo) -> Bool {
    switch self {
    case .head: return l.isHead
    case .firstBlocks(let k): return l.block.map { $0 < k } ?? false
    case .lastBlocks(let k): return l.block.map { $0 >= l.blockCount - k } ?? false
    case .layer(let n): return l.name == n || l.name.hasPrefix(n + ".")
    }
  }
}

/// Which linear layers a recipe quantizes (`layers=`), by the layer's name:
/// - `attention`: a linear with a name component `attn` (GPT: `transformer.h.N.attn.c_attn`, `.attn.c_proj`)
///   or `self_attn` (Llama: `model.layers.N.self_attn.q_proj`, `k_proj`, `v_proj`, `o_proj`);
/// - `mlp`: a linear with a name component `mlp` (GPT: `.mlp.c_fc`, `.mlp.c_proj`; Llama: `.mlp.gate_proj`,
///   `up_proj`, `down_proj`);
/// - `all`: every linear, including `lm_head` (in neither group, as the MLP task's `fc1`, `fc2` and
///   linreg's `linear`), so `layers=mlp` quantizes only the MLP linears, as the Llama runs of Hu et al. 2025.
public enum LinearGroup: String, Hashable, Codable, Sendable, CaseIterable {
  case all, mlp, attention

  /// The group a layer name belongs to (nil: neither, as `lm_head`).
  public static func of(name: String) -> LinearGroup? {
    let parts = name.split(separator: ".")
    if parts.contains("attn") || parts.contains("self_attn") { return .attention }
    if parts.contains("mlp") { return .mlp }
    return nil
  }

  public func contains(_ l: LinearLayerInfo) -> Bool {
    self == .all || LinearGroup.of(name: l.name) == self
  }
}

/// What a recipe knows about a linear layer when it resolves its precision.
public struct LinearLayerInfo: Hashable, Sendable {
  /// Parameter-style name, e.g. `transformer.h.0.attn.c_attn` (GPT), `model.layers.0.self_attn.q_proj` (Llama) or `lm_head`.
  public var name: String
  /// Position among the model's linear layers, in forward order.
  public var index: Int
  public var inFeatures: Int
  public var outFeatures: Int
  /// The block the layer belongs to (a transformer block), of `blockCount`; nil outside blocks.
  public var block: Int?
  public var blockCount: Int
  /// The model's output layer.
  public var isHead: Bool

  public init(
    name: String, index: Int, inFeatures: Int, outFeatures: Int, block: Int? = nil, blockCount: Int = 0,
    isHead: Bool = false
  ) {
    self.name = name
    self.index = index
    self.inFeatures = inFeatures
    self.outFeatures = outFeatures
    self.block = block
    self.blockCount = blockCount
    self.isHead = isHead
  }
}

public enum RecipeError: Error, CustomStringConvertible, Equatable {
  case unknown(String)
  case badFormat(String, String)
  /// A key of an override or a file, and what is wrong with it or its value.
  case badKey(String, String)
  case badFile(String, String)

  public var description: String {
    switch self {
    case .unknown(let t):
      return "unknown recipe '\(t)': use \(Recipe.presetNames.joined(separator: ", ")), uniform:FORMAT[:ROUNDING], a .json or .toml file, or BASE:KEY=VALUE,... (fpsim recipes lists them)"
    case .badFormat(let t, let why):
      return "recipe '\(t)': \(why)"
    case .badKey(let key, let why):
      return "recipe key '\(key)': \(why)"
    case .badFile(let path, let why):
      return "recipe file '\(path)': \(why)"
    }
  }
}

extension FloatFormat {
  static let bfloat16Format = try! FloatFormat(parsing: "bfloat16")
  static let float32Format = try! FloatFormat(parsing: "float32")
}
