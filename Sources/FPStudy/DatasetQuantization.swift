import FPFormats
import FPStore
import Foundation

/// A `FILE:PATH` pair naming an HDF5 object, as the command line writes it (`weights.h5:/layer0/w`).
public struct HDF5Location: Sendable, CustomStringConvertible {
  public var file: String
  public var path: String

  public init(file: String, path: String) {
    self.file = file
    self.path = path.hasPrefix("/") ? path : "/" + path
  }

  /// Splits at the last `:` (file names may contain colons, object paths rarely do).
  public init(parsing text: String) throws {
    guard let colon = text.lastIndex(of: ":"), colon != text.startIndex, text.index(after: colon) != text.endIndex
    else {
      throw StoreError(.invalidArgument, file: text, "expected FILE:DATASET, as weights.h5:/layer0/w")
    }
    self.init(file: String(text[..<colon]), path: String(text[text.index(after: colon)...]))
  }

  public var description: String { "\(file):\(path)" }
}

/// Quantizes an HDF5 float dataset (float16, float32 or float64, any shape) into an `fpsim/tensors`
/// unit, streaming about a million values at a time so memory stays bounded whatever the size.
///
/// The unit is a group at the output path holding `values` (float32, the input's shape), `codes`
/// (uint8 or uint16 storage codes of the elements, for formats of at most 16 bits), and for block
/// formats `scales` (float32, the stored value of each block's scale, shape [..., blocks per line])
/// and `scale_codes` (uint8, for scale formats of at most 8 bits), with attributes naming the format,
/// rounding, overflow, seed and source (docs/files.md "fpsim/tensors"). Block formats block along
/// the last axis; `axis: 0` (matrices) and 2-D tiles quantize the whole matrix in memory and store
/// `values` only. Results equal `fpsim quantize` on the same values in row-major order.
public struct DatasetQuantization: Sendable {
  public var input: HDF5Location
  public var output: HDF5Location
  public var format: AnyFormat
  public var rounding: RoundingMode
  public var overflow: Overflow
  public var seed: UInt64
  public var compression: Compression
  /// The blocking axis for block formats: nil is the last one; 0 is allowed for matrices.
  public var axis: Int?
  /// Values per streamed piece (rounded to whole lines and blocks).
  public var pieceValues = 1 << 20

  public init(
    input: HDF5Location, output: HDF5Location, format: AnyFormat, rounding: RoundingMode = .rne,
    overflow: Overflow = .saturate, seed: UInt64 = 0, compression: Compression = .default, axis: Int? = nil
  ) {
    self.input = input
    self.output = output
    self.format = format
    self.rounding = rounding
    self.overflow = overflow
    self.seed = seed
    self.compression = compression
    self.axis = axis
  }

  /// What one quantization did.
  public struct Summary: Sendable {
    public var shape: [Int]
    public var stats: QuantizationStats
  }

  public func run() throws -> Summary {
    let source = try H5File.open(input.file, mode: .readOnly)
    defer { try? source.close() }
    let dataset = try source.dataset(input.path)
    let info = try dataset.info()
    guard [.float16, .float32, .float64].contains(info.elementType) else {
      throw StoreError(
        .typeMismatch, file: input.file, object: input.path,
        "holds \(info.typeDescription): fpsim quantizes float16, float32 and float64 datasets")
    }
    let shape = info.shape
    // An empty dataset (a 0 in its shape) has nothing to quantize, and its lines and blocks no size.
    guard !shape.contains(0) else {
      throw StoreError(.invalidArgument, file: input.file, object: input.path, "has no values (shape \(shape)): nothing to quantize")
    }
    let config = """
      {"command": "quantize", "input": "\(input)", "format": "\(format)", "rounding": "\(rounding)", \
      "overflow": "\(overflow.rawValue)", "seed": \(seed), "axis": \(axis.map(String.init) ?? "null")}
      """
    var summary = Summary(shape: shape, stats: QuantizationStats())
    let parentPath = (output.path as NSString).deletingLastPathComponent
    let unitName = (output.path as NSString).lastPathComponent
    let write = { (file: H5File) throws in
      let parent = parentPath == "/" ? try file.root : try file.root.createGroup(parentPath)
      try parent.publishUnit(unitName) { unit in summary.stats = try self.fill(unit, from: dataset, shape: shape) }
    }
    if FileManager.default.fileExists(atPath: output.file) {
      let (file, _) = try Store.open(output.file, expecting: .tensors, mode: .readWrite)
      defer { try? file.close() }
      if try file.root.contains(output.path) {
        throw StoreError(.invalidArgument, file: output.file, object: output.path,
                         "already exists: choose another --out path (or another file)")
      }
      try write(file)
    } else {
      try Store.writeAtomically(to: output.file, schema: .tensors, config: config) { try write($0) }
    }
    return summary
  }

  /// Streams the input through the quantizer into the unit's datasets.
  private func fill(_ unit: H5Group, from dataset: H5Dataset, shape: [Int]) throws -> QuantizationStats {
    let count = shape.reduce(1, *)
    let lineLength = shape.last ?? 1
    let elementFormat = format.elementFormat
    let codeBits = elementFormat.bitCount
    try setAttributes(unit, shape: shape)
    let storedShape = shape.isEmpty ? [1] : shape
    let values = try unit.createDataset("values", type: .float32, shape: storedShape, compression: compression)
    var stats = QuantizationStats()

    // Block formats off the last axis: the whole matrix in memory, values only.
    if case .scaled(let s) = format, axis == 0 || s.block.isTile {
      guard shape.count == 2 else {
        throw FormatError.invalid("axis 0 and 2-D tiles need a matrix (rank 2), not shape \(shape)")
      }
      var x = try dataset.read(as: Float.self)
      try x.withUnsafeMutableBufferPointer {
        try BlockQuantizer(format: s, rounding: rounding, seed: seed).quantize(
          $0, rows: shape[0], cols: shape[1], axis: axis ?? 1, stats: &stats)
      }
      try values.write(x)
      try unit.setAttribute("codes_omitted", "axis 0 and tiles store values only")
      return stats
    }

    // Codes of element formats of at most 16 bits (wider ones: the values are as exact as their codes).
    let codeStorage = CodeStorage(bits: codeBits)
    let codes = codeBits <= 16 ? try codeStorage.createDataset(in: unit, "codes", shape: storedShape, compression: compression) : nil
    try codes?.setAttribute("bits", codeBits)

    // Blocking lines: the last axis, or the whole tensor for a vector or a tensor-wide block. Pieces
    // are whole rows of the first axis (whole lines, so whole blocks), or whole blocks of a line.
    let rowValues = shape.count <= 1 ? 1 : count / shape[0]
    var block = 1
    var flat = shape.count <= 1  // one line: the tensor itself
    var scalesData: H5Dataset? = nil, scaleCodes: H5Dataset? = nil
    var scaleCodeStorage = CodeStorage.uint8
    var quantizer: BlockQuantizer? = nil
    var tensorAmax: Float? = nil
    if case .scaled(let s) = format {
      let q = BlockQuantizer(format: s, rounding: rounding, seed: seed)
      quantizer = q
      switch s.block {
      case .vector(let n): block = n
      case .row: block = flat ? count : lineLength
      case .tensor: block = count; flat = true
      case .tile: block = 1  // handled above
      }
      let line = flat ? count : lineLength
      let blocksPerLine = (line + block - 1) / block
      let scaleShape = flat ? [blocksPerLine] : Array(storedShape.dropLast()) + [blocksPerLine]
      scalesData = try unit.createDataset("scales", type: .float32, shape: scaleShape, compression: compression)
      if s.scale.bitCount <= 8 {
        scaleCodeStorage = CodeStorage(bits: s.scale.bitCount)
        scaleCodes = try scaleCodeStorage.createDataset(in: unit, "scale_codes", shape: scaleShape, compression: compression)
      }
      try unit.setAttribute("block_size", block)
      try unit.setAttribute("scale_format", s.scale.name)
      try unit.setAttribute("scale_rule", s.rule.rawValue)  // how values follow from codes and scales
      if s.rule == .nvfp4 || s.tensorScale {
        let a = try streamAmax(dataset, count: count, rowValues: rowValues)
        tensorAmax = a
        if let t = q.tensorScale(tensorAmax: a) { try unit.setAttribute("tensor_scale", Double(t)) }
        try unit.setAttribute("tensor_amax", Double(a))
      }
    }
    let unitValues = flat ? block : rowValues
    let piece = max(unitValues, pieceValues / unitValues * unitValues)
    let elementQuantizer = Quantizer(format: elementFormat, rounding: rounding, overflow: overflow, seed: seed)
    var x = [Float](repeating: 0, count: piece)
    var elements = [Float](repeating: 0, count: quantizer == nil ? 0 : piece)
    var start = 0
    while start < count {
      let n = min(piece, count - start)
      // Rows of the first axis this piece covers (for a vector, its elements).
      let rows = shape.count <= 1 ? start..<(start + n) : (start / rowValues)..<((start + n) / rowValues)
      try x.withUnsafeMutableBufferPointer {
        try dataset.read(rows: rows, into: UnsafeMutableBufferPointer(rebasing: $0[0..<n]))
      }
      if let q = quantizer {
        let cols = flat ? n : lineLength
        let blocksPerLine = (cols + block - 1) / block
        var scales = [Float](repeating: 0, count: n / cols * blocksPerLine)
        let firstBlock = flat ? start / block : start / lineLength * blocksPerLine
        try x.withUnsafeMutableBufferPointer { xb in
          try elements.withUnsafeMutableBufferPointer { eb in
            try scales.withUnsafeMutableBufferPointer { sb in
              try q.quantizeLastAxis(
                UnsafeMutableBufferPointer(rebasing: xb[0..<n]), rows: n / cols, cols: cols, firstIndex: start,
                firstBlock: firstBlock, tensorAmax: tensorAmax, elements: eb.baseAddress, scales: sb.baseAddress,
                stats: &stats)
            }
          }
        }
        let scaleRows = flat ? firstBlock..<(firstBlock + scales.count) : rows
        try scalesData!.write(scales, rows: scaleRows)
        if let sc = scaleCodes {
          try scaleCodeStorage.write(scales.lazy.map { q.format.scale.code(ofRepresentable: $0) }, to: sc, rows: scaleRows)
        }
      } else {
        try x.withUnsafeMutableBufferPointer { xb in
          try AnyQuantizer.element(elementQuantizer).quantize(
            UnsafeMutableBufferPointer(rebasing: xb[0..<n]), rows: 1, cols: n, firstIndex: start, stats: &stats)
        }
      }
      try x.withUnsafeBufferPointer { try values.write(UnsafeBufferPointer(rebasing: $0[0..<n]), rows: rows) }
      if let codes {
        let source = quantizer == nil ? x : elements
        try codeStorage.write(source[0..<n].lazy.map { elementFormat.code(ofRepresentable: $0) }, to: codes, rows: rows)
      }
      start += n
    }
    try unit.setAttribute("saturated", stats.saturated)
    try unit.setAttribute("flushed_to_zero", stats.flushedToZero)
    return stats
  }

  private func streamAmax(_ dataset: H5Dataset, count: Int, rowValues: Int) throws -> Float {
    let rowsPerPiece = max(1, pieceValues / rowValues)
    let totalRows = count / rowValues
    var amax: Float = 0
    var row = 0
    while row < totalRows {
      let r = row..<min(totalRows, row + rowsPerPiece)
      for v in try dataset.read(as: Float.self, rows: r) where v.isFinite { amax = max(amax, v.magnitude) }
      row = r.upperBound
    }
    return amax
  }

  private func setAttributes(_ unit: H5Group, shape: [Int]) throws {
    try unit.setAttribute("format", format.description)
    try unit.setAttribute("element_format", format.elementFormat.name)
    try unit.setAttribute("rounding", rounding.description)
    try unit.setAttribute("overflow", overflow.rawValue)
    try unit.setAttribute("seed", Int(bitPattern: UInt(seed)))
    try unit.setAttribute("shape", shape)
    try unit.setAttribute("source", input.description)
    if let axis { try unit.setAttribute("axis", axis) }
  }
}

extension ScaledFormat.Block {
  var isTile: Bool { if case .tile = self { return true } else { return false } }
}
