import FPFormats

/// One rounded GEMM operand of one linear layer at one training step, as the GEMM saw it: the float32
/// input as it entered rounding (before a Hadamard transform, if the recipe has one) and the rounded
/// result, both row-major `rows x cols` in the operand's GEMM layout (`OperandLayout`: X is (N, C),
/// W is (OC, C), dY is (N, OC)); for block formats also each block's stored scale and its code. (In
/// the bf16 GEMM mode a tensor-scaled operand reaches its GEMM as element x block scale, the tensor
/// scale applied to the product; `rounded` holds the format's values all the same.)
///
/// Taken by `LinearGEMMs` at the steps the trainer asks for (`PrecisionRuntime.captureLayers`), handed
/// to the sink with the step's snapshot; the engine never writes it anywhere.
public struct OperandSnapshot: Sendable {
  /// The layer's name (as in telemetry names `<layer>.<operand>`).
  public var layer: String
  public var operand: GEMMOperand
  public var layout: OperandLayout
  public var input: [Float]
  public var rounded: [Float]
  /// The operand's format as `fpsim quantize --format` spells it (a preset name, or a spec).
  public var format: String
  public var rounding: String
  /// `saturate` or `ieee` (element formats); block formats always saturate.
  public var overflow: String
  /// Where the blocks run in `input`'s layout: `rows` (blocks along each row: consecutive values),
  /// `columns` (down each column: the GEMM reduces along rows), `tiles RxC`, `tensor`; `none` for
  /// element formats.
  public var blockAxis: String
  /// The format's block as its spec spells it (`32`, `16x16`, `row`, `tensor`); `none` for element formats.
  public var block: String
  /// Size of the random Hadamard transform applied along the reduction axis before rounding (nil: none).
  public var hadamard: Int?
  /// Block formats: each block's stored scale (a value of the scale format) in block order (blocks
  /// numbered along the blocking axis first: for `columns`, block b of column j is index j * ceil(rows/n) + b),
  /// its storage code in the scale format, and the scale format's name. Nil for element formats.
  public var scales: [Float]?
  public var scaleCodes: [UInt32]?
  public var scaleFormat: String?
  /// The loss scale the step's backward pass used (dY operands are multiplied by it).
  public var lossScale: Float
}

extension OperandSnapshot {
  /// The snapshot of operand `op` of `layer`: `input` rounded into `rounded` by `rounder` with random
  /// stream `stream` and Hadamard transform `hadamard`. Block scales are recomputed with
  /// `ReferenceBlockQuantizer` (the plain definition, with the same seed, stream and transform), which
  /// gives every block's scale; only at snapshot steps, so its speed does not matter.
  static func make(
    layer: String, operand op: GEMMOperand, layout: OperandLayout, input: UnsafePointer<Float>,
    rounded: UnsafePointer<Float>, rounder: any OperandRounder, seed: UInt64, stream: UInt64,
    hadamard: RandomHadamard?, lossScale: Float
  ) -> OperandSnapshot {
    let x = Array(UnsafeBufferPointer(start: input, count: layout.count))
    var s = OperandSnapshot(
      layer: layer, operand: op, layout: layout, input: x,
      rounded: Array(UnsafeBufferPointer(start: rounded, count: layout.count)), format: "", rounding: "",
      overflow: "saturate", blockAxis: "none", block: "none", hadamard: hadamard?.size, scales: nil, scaleCodes: nil, scaleFormat: nil,
      lossScale: lossScale)
    if let e = rounder as? ElementRounding {
      s.format = e.format.name
      s.rounding = "\(e.rounding)"
      s.overflow = e.overflow.rawValue
    } else if let b = rounder as? ScaledRounding {
      s.format = b.format.name
      s.rounding = "\(b.rounding)"
      s.block = "\(b.format.block)"
      switch b.format.block {
      case .vector: s.blockAxis = layout.reducesAlongRows ? "columns" : "rows"
      case .row: s.blockAxis = layout.reducesAlongRows ? "columns" : "rows"
      case .tile(let r, let c): s.blockAxis = "tiles \(r)x\(c)"
      case .tensor: s.blockAxis = "tensor"
      }
      let q = ReferenceBlockQuantizer(format: b.format, rounding: b.rounding, seed: seed, stream: stream)
      let r = q.quantize(x, rows: layout.rows, cols: layout.cols, axis: layout.reducesAlongRows ? 0 : 1, hadamard: hadamard)
      // The bf16 GEMM mode's operands with the tensor scale apart: the snapshot keeps the format's
      // values (as on sgemm); the GEMM multiplied element x block scale and scaled its product.
      if b.tensorScaleApart { s.rounded = r.values }
      s.scales = r.scales
      s.scaleCodes = r.scales.map { b.format.scale.code(ofRepresentable: $0) }
      s.scaleFormat = b.format.scale.name
    } else {
      s.format = rounder.description
    }
    return s
  }
}
