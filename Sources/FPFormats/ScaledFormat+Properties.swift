/// A block-scaled format's properties as ordered (key, value) pairs, for `fpsim formats SPEC` and its
/// JSON (the element and scale formats' own properties are `FloatFormat.properties`).
///
/// Storage cost, counted per value: `element bits + scale bits / values per block`, exactly (MXFP4:
/// 4 + 8/32 = 4.25; NVFP4: 4 + 8/16 = 4.5). A float32 tensor scale adds 32 bits per tensor, i.e.
/// 32/N per value for a tensor of N values (NVFP4 on 2^20 values: 4.5 + 2^-15); it is reported
/// separately (`tensor_scale_bits`) because it depends on the tensor, not on the format.
extension ScaledFormat {
  /// Bits of the second-level (tensor) scale, a float32, once per tensor.
  public static let tensorScaleBits = 32

  /// The block's extent per axis: `[n]` for blocks of n, `[r, c]` for tiles; nil for `row` and
  /// `tensor` blocks, whose size is the tensor's.
  public var blockShape: [Int]? {
    switch block {
    case .vector(let n): return [n]
    case .tile(let r, let c): return [r, c]
    case .row, .tensor: return nil
    }
  }

  /// Values that share one block scale (nil when the tensor's shape decides it).
  public var valuesPerBlock: Int? { blockShape.map { $0.reduce(1, *) } }

  /// element bits + scale bits / values per block (exact in Double for every block size that is a
  /// power of two, and the nearest Double otherwise); nil for `row` and `tensor` blocks. The tensor
  /// scale is not included (see the type's comment).
  public var bitsPerValueWithoutTensorScale: Double? {
    valuesPerBlock.map { Double(element.bitCount) + Double(scale.bitCount) / Double($0) }
  }

  /// The same count as a formula: `4 + 8/32`, `4 + 8/16 + 32/N` (N values in the tensor), `4 + 8/C`
  /// (C values in a row).
  public var bitsPerValueFormula: String {
    var s = "\(element.bitCount) + \(scale.bitCount)/"
    switch block {
    case .vector(let n): s += "\(n)"
    case .tile(let r, let c): s += "\(r * c)"
    case .row: s += "C"
    case .tensor: s += "N"
    }
    if tensorScale { s += " + \(Self.tensorScaleBits)/N" }
    return s
  }

  /// A spelling in the spec grammar that parses back to this format, nil for `nvfp4`, whose scale rule
  /// (NVIDIA's operation order) has no spelling but the preset name.
  public var genericSpec: String? { rule == .nvfp4 ? nil : spec }

  /// Ordered properties: `name`, `generic`, `block`, `block_shape`, `values_per_block`, `scale_rule`,
  /// `scale_rounding`, `tensor_scale`, `tensor_scale_bits`, `element_bits`, `scale_bits`,
  /// `bits_per_value`, `bits_per_value_formula`.
  public var blockProperties: [(key: String, value: FloatFormat.PropertyValue)] {
    [
      ("name", .string(name)),
      ("generic", genericSpec.map { .string($0) } ?? .none),
      ("block", .string(block.description)),
      ("block_shape", blockShape.map { .ints($0) } ?? .none),
      ("values_per_block", valuesPerBlock.map { .int($0) } ?? .none),
      ("scale_rule", .string(rule.rawValue)),
      ("scale_rounding", .string(scaleRounding.description)),
      ("tensor_scale", .bool(tensorScale)),
      ("tensor_scale_bits", .int(tensorScale ? Self.tensorScaleBits : 0)),
      ("element_bits", .int(element.bitCount)),
      ("scale_bits", .int(scale.bitCount)),
      ("bits_per_value", bitsPerValueWithoutTensorScale.map { .double($0) } ?? .none),
      ("bits_per_value_formula", .string(bitsPerValueFormula)),
    ]
  }
}
