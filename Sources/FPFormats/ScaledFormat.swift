/// A block-scaled (microscaling) format: elements in a small format, each block sharing one scale in a
/// scale format, optionally under a second-level float32 tensor scale.
///
/// Spec grammar (case-insensitive), or a preset name:
///
///     ELEMENT/SCALE/BLOCK[:OPTION[:OPTION...]]
///
/// - ELEMENT: any `FloatFormat` name (`e2m1`, `e4m3fn`, `int4`, ...).
/// - SCALE: `ue8m0` (power-of-two scales, MX rules), `ue4m3`, `ue5m3`, `ue5m3ieee`, `e4m3fn` (E4M3 used
///   as a scale), `bf16`, `fp32`, or any format name.
/// - BLOCK: `N` (N consecutive values along the blocking axis), `RxC` (2-D tiles of a matrix), `row`
///   (one scale per row of a matrix), `tensor` (one scale for everything).
/// - OPTION: `tensor-scale` (second-level float32 scale), `rule=floor|ceil` (power-of-two scales),
///   `scale-rounding=MODE` (how a scale with mantissa bits is rounded: any `RoundingMode`, as `rne`,
///   `up` or `stochastic`). `up` (toward +infinity) makes every scale at least amax / max_elem, so no
///   element of a block exceeds the element format's max (none saturates); for power-of-two scales the
///   same is `rule=ceil` (a scale rounding there is refused: the rule alone chooses those scales).
///
/// Presets: `mxfp8_e4m3`, `mxfp8_e5m2`, `mxfp6_e2m3`, `mxfp6_e3m2`, `mxfp4_e2m1` (also `mxfp8`, `mxfp6`,
/// `mxfp4`), `mxint8` (OCP MX v1.0: block 32, UE8M0 scales) and `nvfp4` (E2M1, blocks of 16, E4M3
/// scales, float32 tensor scale, in the operation order of NVIDIA's reference implementation).
public struct ScaledFormat: Hashable, Codable, Sendable, CustomStringConvertible {
  public enum Block: Hashable, Codable, Sendable, CustomStringConvertible {
    case vector(Int)
    case tile(rows: Int, cols: Int)
    case row
    case tensor

    public var description: String {
      switch self {
      case .vector(let n): return "\(n)"
      case .tile(let r, let c): return "\(r)x\(c)"
      case .row: return "row"
      case .tensor: return "tensor"
      }
    }
  }

  /// How a block's scale is chosen.
  /// - `floor`: OCP MX: shared exponent floor(log2(amax)) - emax_elem (power-of-two scales).
  /// - `ceil`: NVIDIA MXFP8 / torchao RCEIL: shared exponent ceil(log2(amax / max_elem)).
  /// - `amax`: scale = amax / max_elem rounded to the scale format (non-power-of-two scales).
  /// - `nvfp4`: NVIDIA's NVFP4 reference procedure (see `BlockQuantizer`).
  public enum ScaleRule: String, Hashable, Codable, Sendable, CaseIterable {
    case floor, ceil, amax, nvfp4
  }

  public var name: String
  public var element: FloatFormat
  public var scale: FloatFormat
  public var block: Block
  public var tensorScale: Bool
  public var rule: ScaleRule
  /// Rounding of the scale itself (`rne` or stochastic); elements use the quantizer's rounding.
  public var scaleRounding: RoundingMode

  public var description: String { name }

  /// Largest element magnitude and its binade exponent (emax_elem of the MX specification).
  public var elementMax: Float { element.maxFinite }
  public var elementEmax: Int { Int(element.maxFinite.exponent) }

  /// Storage bits per value including the block scale (and the tensor scale, over `count` values).
  public func bitsPerValue(count: Int, blockSize: Int) -> Double {
    Double(element.bitCount) + Double(scale.bitCount) / Double(blockSize)
      + (tensorScale ? 32 / Double(max(count, 1)) : 0)
  }

  public init(
    name: String? = nil, element: FloatFormat, scale: FloatFormat, block: Block, tensorScale: Bool = false,
    rule: ScaleRule? = nil, scaleRounding: RoundingMode = .rne
  ) throws {
    try ScaledFormat.validate(block)
    let powerOfTwoScale = scale.mantissaBits == 0
    let chosen = rule ?? (powerOfTwoScale ? .floor : .amax)
    if (chosen == .floor || chosen == .ceil) && !powerOfTwoScale {
      throw FormatError.invalid("scale rule \(chosen.rawValue) makes power-of-two scales: use a UE8M0 scale, or rule=amax")
    }
    if chosen == .amax && powerOfTwoScale {
      throw FormatError.invalid("power-of-two scale \(scale.name) takes rule floor or ceil, not amax")
    }
    if case .stochastic = scaleRounding, powerOfTwoScale {
      throw FormatError.invalid("stochastic scale rounding needs a scale with mantissa bits (ue4m3, ue5m3, bf16)")
    }
    if scaleRounding != .rne && powerOfTwoScale {
      throw FormatError.invalid(
        "power-of-two scale \(scale.name) is chosen by its rule, not rounded: for scales toward +infinity write rule=ceil")
    }
    self.element = element
    self.scale = scale
    self.block = block
    self.tensorScale = tensorScale
    self.rule = chosen
    self.scaleRounding = scaleRounding
    self.name = ""
    self.name = name ?? spec
  }

  /// The spelling in the spec grammar that parses back to this format.
  public var spec: String {
    var s = "\(element.name)/\(scale.name)/\(block)"
    if tensorScale { s += ":tensor-scale" }
    let defaultRule: ScaleRule = scale.mantissaBits == 0 ? .floor : .amax
    if rule != defaultRule && rule != .nvfp4 { s += ":rule=\(rule.rawValue)" }
    if scaleRounding != .rne { s += ":scale-rounding=\(scaleRounding)" }
    return s
  }

  // MARK: Presets

  public static let presetNames = [
    "mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp4_e2m1", "mxint8", "nvfp4",
  ]

  public static func preset(_ name: String) throws -> ScaledFormat? {
    func mx(_ n: String, _ elem: String) throws -> ScaledFormat {
      try ScaledFormat(
        name: n, element: FloatFormat(parsing: elem), scale: FloatFormat(parsing: "ue8m0"), block: .vector(32))
    }
    switch name.lowercased() {
    case "mxfp8_e4m3", "mxfp8": return try mx("mxfp8_e4m3", "e4m3fn")
    case "mxfp8_e5m2": return try mx("mxfp8_e5m2", "e5m2")
    case "mxfp6_e2m3", "mxfp6": return try mx("mxfp6_e2m3", "e2m3")
    case "mxfp6_e3m2": return try mx("mxfp6_e3m2", "e3m2")
    case "mxfp4_e2m1", "mxfp4": return try mx("mxfp4_e2m1", "e2m1")
    case "mxint8":
      // OCP MX INT8: two's-complement-range integers with an implicit scale of 2^-6 (max 127/64, emax 0),
      // symmetric here (-127...127) as in the MX reference.
      let int8 = try FloatFormat(
        name: "int8_mx", exponentBits: 0, mantissaBits: 7, bias: 0, policy: .finite, isInteger: true)
      return try ScaledFormat(name: "mxint8", element: int8, scale: FloatFormat(parsing: "ue8m0"), block: .vector(32))
    case "nvfp4":
      return try ScaledFormat(
        name: "nvfp4", element: FloatFormat(parsing: "e2m1"), scale: FloatFormat(parsing: "e4m3fn"),
        block: .vector(16), tensorScale: true, rule: .nvfp4)
    default: return nil
    }
  }

  /// Parses a preset name or an `ELEMENT/SCALE/BLOCK[:OPTION...]` spec.
  public init(parsing text: String) throws {
    if let p = try ScaledFormat.preset(text) {
      self = p
      return
    }
    var parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
    let fields = parts.removeFirst().split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    guard fields.count == 3 else {
      throw FormatError.invalid(
        "'\(text)' is not a block format: write ELEMENT/SCALE/BLOCK (as e2m1/ue5m3/16) or a preset (\(ScaledFormat.presetNames.joined(separator: ", ")))")
    }
    let element = try FloatFormat(parsing: fields[0])
    let scale = try FloatFormat(parsing: fields[1] == "fp32" ? "float32" : fields[1])
    let block = try ScaledFormat.parseBlock(fields[2], in: text)
    var tensorScale = false
    var rule: ScaleRule? = nil
    var scaleRounding = RoundingMode.rne
    for option in parts {
      let kv = option.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
      switch (kv[0], kv.count == 2 ? kv[1] : nil) {
      case ("", _):
        throw FormatError.invalid("empty option in '\(text)': remove the stray ':' or write tensor-scale, rule=... or scale-rounding=...")
      case (_, ""?):
        throw FormatError.invalid("option '\(kv[0])' in '\(text)' has no value after '='")
      case ("tensor-scale", nil): tensorScale = true
      case ("rule", let v?):
        guard let r = ScaleRule(rawValue: v), r != .nvfp4 else {
          throw FormatError.invalid("unknown scale rule '\(v)' in '\(text)': use floor, ceil or amax")
        }
        rule = r
      case ("scale-rounding", let v?): scaleRounding = try RoundingMode(parsing: v)
      default:
        throw FormatError.invalid(
          "unknown option '\(option)' in '\(text)': use tensor-scale, rule=floor|ceil|amax or scale-rounding=rne|up|stochastic")
      }
    }
    try self.init(
      name: text, element: element, scale: scale, block: block, tensorScale: tensorScale, rule: rule,
      scaleRounding: scaleRounding)
  }

  /// The most values one block or tile may hold (2^24): bounded so that block arithmetic (rows x
  /// cols, block counts, offsets) can never overflow.
  public static let maxBlockValues = 1 << 24

  /// Refuses blocks of fewer than 1 or more than ``maxBlockValues`` values.
  public static func validate(_ block: Block) throws {
    let dims: [Int]
    switch block {
    case .vector(let n): dims = [n]
    case .tile(let r, let c): dims = [r, c]
    default: return
    }
    guard dims.allSatisfy({ $0 >= 1 }) else {
      throw FormatError.invalid("block size must be at least 1 (as in e2m1/ue8m0/32 or 16x16)")
    }
    // Each side is checked first, so the product cannot overflow.
    guard dims.allSatisfy({ $0 <= maxBlockValues }), dims.reduce(1, *) <= maxBlockValues else {
      throw FormatError.invalid("block \(block) holds more than \(maxBlockValues) (2^24) values")
    }
  }

  static func parseBlock(_ s: String, in text: String) throws -> Block {
    let t = s.lowercased()
    if t == "row" { return .row }
    if t == "tensor" { return .tensor }
    let dims = t.split(separator: "x", omittingEmptySubsequences: false)
    let values = dims.compactMap { Int($0) }
    guard values.count == dims.count, (1...2).contains(values.count) else {
      throw FormatError.invalid("block '\(s)' in '\(text)': use a size (32), a tile (16x16), row or tensor")
    }
    guard values.allSatisfy({ $0 >= 1 }) else {
      throw FormatError.invalid("block '\(s)' in '\(text)': a block holds at least 1 value")
    }
    guard values.allSatisfy({ $0 <= maxBlockValues }), values.reduce(1, { $0 * $1 }) <= maxBlockValues else {
      throw FormatError.invalid("block '\(s)' in '\(text)': a block holds at most \(maxBlockValues) (2^24) values")
    }
    return values.count == 1 ? .vector(values[0]) : .tile(rows: values[0], cols: values[1])
  }
}

/// Either kind of format a user can name: a plain element format or a block-scaled one.
public enum AnyFormat: Hashable, Codable, Sendable, CustomStringConvertible {
  case element(FloatFormat)
  case scaled(ScaledFormat)

  public init(parsing text: String) throws {
    if text.contains("/") || ScaledFormat.presetNames.contains(text.lowercased())
      || ["mxfp8", "mxfp6", "mxfp4"].contains(text.lowercased())
    {
      self = .scaled(try ScaledFormat(parsing: text))
    } else {
      self = .element(try FloatFormat(parsing: text))
    }
  }

  public var description: String {
    switch self {
    case .element(let f): return f.name
    case .scaled(let s): return s.name
    }
  }

  /// The format of the stored elements.
  public var elementFormat: FloatFormat {
    switch self {
    case .element(let f): return f
    case .scaled(let s): return s.element
    }
  }
}
