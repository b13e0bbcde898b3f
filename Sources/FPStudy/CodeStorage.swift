import FPStore

/// Storage codes (a format's `sign | exponent field | mantissa` in the low bits of a UInt32, as
/// `FloatFormat.code(ofRepresentable:)` gives them) stored at the narrowest dataset type that holds
/// every code of the format: uint8 up to 8 bits, uint16 up to 16, int64 above (FPStore has no uint32,
/// and int64 holds every 32-bit code). One rule for every file that stores codes: `fpsim quantize --out`
/// (`codes`, `scale_codes`) and the operand snapshots of a run (`scale_codes`).
enum CodeStorage: Equatable {
  case uint8, uint16, int64

  /// The narrowest type for codes of a format of `bits` bits (sign + exponent + mantissa).
  init(bits: Int) {
    self = bits <= 8 ? .uint8 : bits <= 16 ? .uint16 : .int64
  }

  var elementType: ElementType {
    switch self {
    case .uint8: .uint8
    case .uint16: .uint16
    case .int64: .int64
    }
  }

  /// An empty dataset `name` of `shape` for codes, to be filled with `write(_:to:rows:)`.
  func createDataset(in g: H5Group, _ name: String, shape: [Int], compression: Compression = .default) throws -> H5Dataset {
    try g.createDataset(name, type: elementType, shape: shape, compression: compression)
  }

  /// A dataset `name` holding `codes` (shape `[codes.count]` unless given).
  @discardableResult
  func createDataset(in g: H5Group, _ name: String, codes: [UInt32], shape: [Int]? = nil) throws -> H5Dataset {
    switch self {
    case .uint8: try g.createDataset(name, values: codes.map { UInt8(truncatingIfNeeded: $0) }, shape: shape)
    case .uint16: try g.createDataset(name, values: codes.map { UInt16(truncatingIfNeeded: $0) }, shape: shape)
    case .int64: try g.createDataset(name, values: codes.map { Int64($0) }, shape: shape)
    }
  }

  /// Writes `codes` (a lazy map of values to codes is converted in one pass) into rows `rows` of a
  /// dataset made by `createDataset(in:_:shape:)`.
  func write(_ codes: some Sequence<UInt32>, to d: H5Dataset, rows: Range<Int>) throws {
    switch self {
    case .uint8: try d.write(codes.map { UInt8(truncatingIfNeeded: $0) }, rows: rows)
    case .uint16: try d.write(codes.map { UInt16(truncatingIfNeeded: $0) }, rows: rows)
    case .int64: try d.write(codes.map { Int64($0) }, rows: rows)
    }
  }
}
