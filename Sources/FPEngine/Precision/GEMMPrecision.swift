import FPFormats

/// For each of the six operands of one linear layer, how it is rounded (nil: left in float32), and
/// for each of its three GEMMs the size of the random Hadamard transform applied to both operands along
/// the reduction dimension (nil: none). `GEMMPrecision.fp32` rounds nothing and takes exactly the code
/// path of a model without the hook.
public struct GEMMPrecision: Sendable {
  public var rounders: [(any OperandRounder)?]
  /// Indexed by `GEMM.rawValue`. Applied only where both operands are rounded and the reduction length
  /// is a multiple of the size (else that GEMM runs without it).
  public var hadamard: [Int?] = [nil, nil, nil]
  /// Clipped straight-through estimator: the gradient of a forward operand value that saturated is zero.
  public var clipSaturated = false

  public init(_ rounders: [GEMMOperand: any OperandRounder] = [:]) {
    self.rounders = GEMMOperand.allCases.map { rounders[$0] }
  }

  public static let fp32 = GEMMPrecision()

  /// Every operand of every GEMM rounded the same way.
  public static func uniform(_ r: any OperandRounder) -> GEMMPrecision {
    GEMMPrecision(Dictionary(uniqueKeysWithValues: GEMMOperand.allCases.map { ($0, r) }))
  }

  public subscript(_ operand: GEMMOperand) -> (any OperandRounder)? {
    get { rounders[operand.rawValue] }
    set { rounders[operand.rawValue] = newValue }
  }

  public var roundsNothing: Bool { rounders.allSatisfy { $0 == nil } }
}
