import Foundation

/// The `fpsim/tensors` layout (schema_version 1): tensors run through a format, with what is
/// needed to check the rounding elsewhere (the input, the decoded values, the storage codes, the
/// block scales). Layout in docs/files.md "fpsim/tensors".
///
/// FPStore does not know formats: names and parameters are stored as given by the caller
/// (`FPFormats` names, e.g. `float8_e4m3fn`, `nvfp4`).
public struct TensorRecord: Sendable, Equatable {
  /// The group name under `/tensors` (one path component).
  public var name: String
  /// The logical shape, first axis slowest; every array below is stored with this shape, except
  /// the scales.
  public var shape: [Int]
  /// The element format name.
  public var format: String
  /// Rounding mode name (`rne`, `rtz`, `stochastic`, ...).
  public var rounding: String
  /// Overflow policy (`saturate` or `ieee`).
  public var overflow: String
  /// Seed of stochastic rounding (or of a Hadamard transform), when one was used.
  public var seed: Int?
  /// The quantized values decoded to float32 (exact: every simulated format embeds in float32).
  public var values: [Float]
  /// The values before quantization.
  public var input: [Float]?
  /// Storage codes, one per element (formats of at most 16 bits).
  public var codes: [UInt16]?
  /// Bits per storage code: codes are stored as uint8 when at most 8, else uint16.
  public var codeBits: Int?
  /// Block scales decoded to float32, one per block, in block order.
  public var scales: [Float]?
  /// Storage codes of the block scales (8-bit scale formats).
  public var scaleCodes: [UInt8]?
  /// Elements per block (1-D blocks) and the scale format's name.
  public var blockSize: Int?
  public var scaleFormat: String?
  /// The FP32 second-level (per-tensor) scale, where the format has one.
  public var tensorScale: Double?

  public init(
    name: String, shape: [Int], format: String, rounding: String = "rne", overflow: String = "saturate",
    seed: Int? = nil, values: [Float], input: [Float]? = nil, codes: [UInt16]? = nil, codeBits: Int? = nil,
    scales: [Float]? = nil, scaleCodes: [UInt8]? = nil, blockSize: Int? = nil, scaleFormat: String? = nil,
    tensorScale: Double? = nil
  ) {
    self.name = name
    self.shape = shape
    self.format = format
    self.rounding = rounding
    self.overflow = overflow
    self.seed = seed
    self.values = values
    self.input = input
    self.codes = codes
    self.codeBits = codeBits
    self.scales = scales
    self.scaleCodes = scaleCodes
    self.blockSize = blockSize
    self.scaleFormat = scaleFormat
    self.tensorScale = tensorScale
  }
}

public enum TensorsFile {
  /// Writes `records` as a new `fpsim/tensors` file, atomically.
  public static func write(
    _ records: [TensorRecord], to path: String, config: String = "{}", compression: Compression = .default,
    overwrite: Bool = false
  ) throws {
    try Store.writeAtomically(to: path, schema: .tensors, config: config, overwrite: overwrite) { file in
      let tensors = try file.root.createGroup("tensors")
      for record in records { try write(record, into: tensors, compression: compression) }
    }
  }

  static func write(_ r: TensorRecord, into tensors: H5Group, compression: Compression) throws {
    let count = r.shape.reduce(1, *)
    func check(_ field: String, _ n: Int?, _ expected: Int) throws {
      if let n, n != expected {
        throw StoreError(.invalidArgument, file: tensors.file.path, object: "/tensors/\(r.name)",
                         "\(field) has \(n) elements, the shape \(r.shape) needs \(expected)")
      }
    }
    try check("values", r.values.count, count)
    try check("input", r.input?.count, count)
    try check("codes", r.codes?.count, count)
    try check("scale_codes", r.scaleCodes?.count, r.scales?.count ?? 0)
    try ObjectPath.validateName(r.name, file: tensors.file.path, in: tensors.path)
    let g = try tensors.createGroup(r.name)
    let shape = r.shape
    try g.setAttribute("format", r.format)
    try g.setAttribute("rounding", r.rounding)
    try g.setAttribute("overflow", r.overflow)
    try g.setAttribute("shape", shape)
    if let seed = r.seed { try g.setAttribute("seed", seed) }
    try g.createDataset("values", values: r.values, shape: shape, compression: shape.isEmpty ? .none : compression)
    if let input = r.input {
      try g.createDataset("input", values: input, shape: shape, compression: shape.isEmpty ? .none : compression)
    }
    if let codes = r.codes {
      let bits = r.codeBits ?? 16
      let codec = shape.isEmpty ? Compression.none : compression
      let d = bits <= 8
        ? try g.createDataset("codes", values: codes.map { UInt8(truncatingIfNeeded: $0) }, shape: shape, compression: codec)
        : try g.createDataset("codes", values: codes, shape: shape, compression: codec)
      try d.setAttribute("bits", bits)
    }
    if let scales = r.scales {
      try g.createDataset("scales", values: scales, compression: scales.isEmpty ? .none : compression)
    }
    if let scaleCodes = r.scaleCodes {
      try g.createDataset("scale_codes", values: scaleCodes, compression: scaleCodes.isEmpty ? .none : compression)
    }
    if let blockSize = r.blockSize { try g.setAttribute("block_size", blockSize) }
    if let scaleFormat = r.scaleFormat { try g.setAttribute("scale_format", scaleFormat) }
    if let tensorScale = r.tensorScale { try g.setAttribute("tensor_scale", tensorScale) }
  }

  /// Reads every tensor of an `fpsim/tensors` file (schema and version checked), in name order.
  public static func read(_ path: String) throws -> [TensorRecord] {
    let (file, _) = try Store.open(path, expecting: .tensors)
    defer { try? file.close() }
    let tensors = try file.group("/tensors")
    return try tensors.children().filter { $0.kind == .group }.map { child in
      let g = try tensors.group(child.name)
      func string(_ name: String) throws -> String {
        guard let value = try g.requireAttribute(name).stringValue else {
          throw StoreError(.typeMismatch, file: path, object: g.path, "attribute \(name) is not a string")
        }
        return value
      }
      var record = TensorRecord(
        name: child.name, shape: try g.dataset("values").shape, format: try string("format"),
        rounding: try string("rounding"), overflow: try string("overflow"), seed: try g.attribute("seed")?.intValue,
        values: try g.dataset("values").read(as: Float.self))
      if try g.contains("input") { record.input = try g.dataset("input").read(as: Float.self) }
      if try g.contains("codes") {
        let codes = try g.dataset("codes")
        record.codes = try codes.read(as: UInt16.self)
        record.codeBits = try codes.attribute("bits")?.intValue
      }
      if try g.contains("scales") { record.scales = try g.dataset("scales").read(as: Float.self) }
      if try g.contains("scale_codes") { record.scaleCodes = try g.dataset("scale_codes").read(as: UInt8.self) }
      record.blockSize = try g.attribute("block_size")?.intValue
      record.scaleFormat = try g.attribute("scale_format")?.stringValue
      record.tensorScale = try g.attribute("tensor_scale")?.doubleValue
      return record
    }
  }
}
