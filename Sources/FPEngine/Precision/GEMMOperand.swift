import FPFormats

/// The three GEMMs of a linear layer `Y = X W^T` and their two operands each:
///
///     forward          Y  = X  W^T    operands X (N,C),   W (OC,C)
///     data gradient    dX = dY W      operands dY (N,OC), W (OC,C)
///     weight gradient  dW = dY^T X    operands dY (N,OC), X (N,C)
///
/// Each of the six may be rounded independently (straight-through: the gradient passes the rounding
/// as if it were the identity; accumulation stays float32).
public enum GEMMOperand: Int, CaseIterable, Codable, Sendable, CustomStringConvertible {
  case forwardX, forwardW, dataGradDY, dataGradW, weightGradDY, weightGradX

  /// Short label used in telemetry names (`<layer>.<label>`).
  public var description: String {
    switch self {
    case .forwardX: return "fwd_x"
    case .forwardW: return "fwd_w"
    case .dataGradDY: return "dgrad_dy"
    case .dataGradW: return "dgrad_w"
    case .weightGradDY: return "wgrad_dy"
    case .weightGradX: return "wgrad_x"
    }
  }
}

extension GEMMOperand {
  /// The operand kind of a telemetry name `<layer>.<operand>` (`LinearGEMMs.telemetryNames`): the text
  /// after the last dot ("transformer.h.0.attn.c_attn.fwd_x" -> "fwd_x"), an operand's `description`;
  /// nil for a name without a dot. Readers of run files group the layers' telemetry and histograms by it.
  public static func kind(ofTelemetryName name: String) -> String? {
    name.lastIndex(of: ".").map { String(name[name.index(after: $0)...]) }
  }

  /// The GEMM this operand belongs to.
  public var gemm: GEMMKind {
    switch self {
    case .forwardX, .forwardW: return .forward
    case .dataGradDY, .dataGradW: return .dataGrad
    case .weightGradDY, .weightGradX: return .weightGrad
    }
  }
}

/// The three GEMMs of a linear layer (see `GEMMOperand`); names as recipes spell them.
public enum GEMMKind: Int, CaseIterable, Codable, Sendable, CustomStringConvertible {
  case forward, dataGrad, weightGrad

  public var description: String {
    switch self {
    case .forward: return "forward"
    case .dataGrad: return "dgrad"
    case .weightGrad: return "wgrad"
    }
  }

  public var operands: (GEMMOperand, GEMMOperand) {
    switch self {
    case .forward: return (.forwardX, .forwardW)
    case .dataGrad: return (.dataGradDY, .dataGradW)
    case .weightGrad: return (.weightGradDY, .weightGradX)
    }
  }
}

/// The shape of a GEMM operand as stored (row-major `rows x cols`) and the direction its GEMM reduces
/// along. Blocks of a scaled format and Hadamard groups run along the reduction dimension: along rows
/// of X and W in the forward GEMM (the last axis), down the columns of W in the data gradient, down the
/// columns of dY and X in the weight gradient (`reducesAlongRows`: the reduction index is the row index).
public struct OperandLayout: Hashable, Sendable {
  public var rows: Int
  public var cols: Int
  /// True when the GEMM sums down each column (the reduction index is the row index).
  public var reducesAlongRows: Bool
  public var count: Int { rows * cols }
  /// Length of the reduction dimension.
  public var reductionLength: Int { reducesAlongRows ? rows : cols }

  public init(rows: Int, cols: Int, reducesAlongRows: Bool) {
    self.rows = rows
    self.cols = cols
    self.reducesAlongRows = reducesAlongRows
  }
}
