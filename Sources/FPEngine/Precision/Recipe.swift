import FPFormats
import Foundation  // trimmingCharacters

/// A precision recipe: which rounding every GEMM operand of a model gets (DESIGN.md "Precision recipe").
///
/// Spellings (first part of the recipe system):
/// - `fp32`: nothing is rounded; bit-identical to a model without the hook.
/// - `bf16`: every GEMM operand rounded to bfloat16, round-to-nearest-even, saturating.
/// - `uniform:FORMAT[:ROUNDING]`: every operand of every GEMM (forward X and W, data-gradient dY and W,
///   weight-gradient dY and X) rounded to one element format (any `FloatFormat` spelling) with the given
///   rounding (default `rne`; `stochastic[:BITS]` allowed), saturating, no scaling.
///   `uniform:e8m3:rtz` is the bit-reduction setting of "To FP8 and Back".
///
/// The recipe resolves per linear layer (`precision(for:)`), so per-layer and per-operand choices, block
/// scaling and Hadamard transforms slot in as further cases without touching the models.
public struct Recipe: Hashable, Codable, Sendable, CustomStringConvertible {
  public enum Kind: Hashable, Codable, Sendable {
    case fp32
    case uniform(ElementRounding)
  }

  public let kind: Kind

  public init(_ kind: Kind) { self.kind = kind }

  public static let fp32 = Recipe(.fp32)

  /// The canonical spelling, which parses back to the same recipe.
  public var description: String {
    switch kind {
    case .fp32: return "fp32"
    case .uniform(let r):
      if r == Recipe.bf16Rounding { return "bf16" }
      return r.rounding == .rne ? "uniform:\(r.format.name)" : "uniform:\(r.format.name):\(r.rounding)"
    }
  }

  static let bf16Rounding = ElementRounding(format: try! FloatFormat(parsing: "bfloat16"))

  public init(parsing text: String) throws {
    let t = text.trimmingCharacters(in: .whitespaces)
    switch t.lowercased() {
    case "fp32", "float32", "none":
      self.init(.fp32)
      return
    case "bf16", "bfloat16":
      self.init(.uniform(Recipe.bf16Rounding))
      return
    default: break
    }
    let parts = t.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
    guard parts.count >= 2, parts[0].lowercased() == "uniform", !parts[1].isEmpty else {
      throw RecipeError.unknown(text)
    }
    let format: FloatFormat
    do { format = try FloatFormat(parsing: parts[1]) } catch let e as FormatError {
      throw RecipeError.badFormat(text, e.description)
    }
    var rounding = RoundingMode.rne
    if parts.count == 3 {
      do { rounding = try RoundingMode(parsing: parts[2]) } catch let e as FormatError {
        throw RecipeError.badFormat(text, e.description)
      }
    }
    self.init(.uniform(ElementRounding(format: format, rounding: rounding)))
  }

  /// The rounding of the six operands of the linear layer `layer`.
  public func precision(for layer: LinearLayerInfo) -> GEMMPrecision {
    switch kind {
    case .fp32: return .fp32
    case .uniform(let r): return .uniform(r)
    }
  }
}

/// What a recipe knows about a linear layer when it resolves its precision.
public struct LinearLayerInfo: Hashable, Sendable {
  /// Parameter-style name, e.g. `transformer.h.0.attn.c_attn` or `lm_head`.
  public var name: String
  /// Position among the model's linear layers, in forward order.
  public var index: Int
  public var inFeatures: Int
  public var outFeatures: Int

  public init(name: String, index: Int, inFeatures: Int, outFeatures: Int) {
    self.name = name
    self.index = index
    self.inFeatures = inFeatures
    self.outFeatures = outFeatures
  }
}

public enum RecipeError: Error, CustomStringConvertible, Equatable {
  case unknown(String)
  case badFormat(String, String)

  public var description: String {
    switch self {
    case .unknown(let t):
      return "unknown recipe '\(t)': use fp32, bf16 or uniform:FORMAT[:ROUNDING] (for example uniform:e4m3fn or uniform:e8m3:rtz)"
    case .badFormat(let t, let why):
      return "recipe '\(t)': \(why)"
    }
  }
}
