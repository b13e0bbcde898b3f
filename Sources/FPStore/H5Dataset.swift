import CHDF5

/// A dataset: an N-dimensional array of one element type, read and written by whole or by rows.
///
/// "Rows" are ranges of the first axis: a rank-1 dataset's row is one element, a `[steps, 128]`
/// dataset's row is 128 elements. Datasets created `growable` have an unlimited first axis and are
/// extended by ``append(_:)``, so a training run streams metrics and snapshots with bounded memory.
public final class H5Dataset: H5Object, @unchecked Sendable {

  /// Everything about a dataset's layout that does not need its data.
  public struct Info: Sendable, Equatable {
    /// Current extent, first axis first (`[]` for a scalar dataset).
    public let shape: [Int]
    /// Maximum extent per axis; nil means unlimited.
    public let maxShape: [Int?]
    /// Chunk shape, or nil for a contiguous or compact dataset.
    public let chunk: [Int]?
    /// The element type when it is one fpsim writes, else nil (see ``typeDescription``).
    public let elementType: ElementType?
    /// A short description of any HDF5 type (`float32`, `int8`, `string (variable, utf-8)`, ...).
    public let typeDescription: String
    /// The filter pipeline, in order.
    public let filters: [FilterInfo]
    /// Bytes the data occupies in the file (after compression).
    public let storageBytes: Int

    /// The compression the filters amount to, nil for a pipeline fpsim does not write.
    public var compression: Compression? { Compression(filters: filters) }
    public var count: Int { shape.reduce(1, *) }
  }

  // MARK: Creating

  /// Creates a dataset. Call with the lock held (``H5Group`` methods do).
  static func create(
    in group: H5Group, name: String, type: hid_t, shape: [Int], growable: Bool, chunk: [Int]?,
    compression: Compression, elementSize: Int
  ) throws -> H5Dataset {
    let file = group.file
    let target = ObjectPath.join(group.path, name)
    try file.requireOpen(object: target)
    for component in ObjectPath.components(name) {
      try ObjectPath.validateName(component, file: file.path, in: group.path)
    }
    func fail(_ message: String) -> StoreError {
      StoreError(.invalidArgument, file: file.path, object: target, "cannot create dataset: \(message)")
    }
    if shape.contains(where: { $0 < 0 }) { throw fail("negative extent in shape \(shape)") }
    if shape.isEmpty && (growable || compression != .none || chunk != nil) {
      throw fail("a scalar dataset (shape []) cannot be growable, chunked or compressed")
    }
    do { try compression.validate() } catch let e as StoreError { throw fail(e.message) }
    if try group.containsLocked(target) { throw fail("an object of that name exists") }

    let chunked = growable || compression != .none || chunk != nil
    var chunkShape: [Int] = []
    if chunked {
      chunkShape = chunk ?? Self.defaultChunk(shape: shape, elementSize: elementSize, growable: growable)
      guard chunkShape.count == shape.count, chunkShape.allSatisfy({ $0 > 0 }) else {
        throw fail("chunk \(chunkShape) does not fit shape \(shape) (same rank, every extent > 0)")
      }
      if !growable {
        for (c, s) in zip(chunkShape, shape) where c > max(s, 1) {
          throw fail("chunk \(chunkShape) is larger than the fixed shape \(shape)")
        }
      }
      if chunkShape.reduce(elementSize, *) >= 1 << 32 { throw fail("chunk \(chunkShape) is 4 GiB or more") }
    }

    let dims = shape.map { hsize_t($0) }
    var maxDims = dims
    if growable { maxDims[0] = fpsim_H5S_UNLIMITED() }
    let space = shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(shape.count), dims, maxDims)
    try h5check(space, "cannot create dataspace for \(shape)", file: file.path, object: target)
    defer { H5Sclose(space) }

    let dcpl = H5Pcreate(fpsim_H5P_DATASET_CREATE())
    defer { H5Pclose(dcpl) }
    if chunked {
      let chunkDims = chunkShape.map { hsize_t($0) }
      try h5check(H5Pset_chunk(dcpl, Int32(chunkDims.count), chunkDims), "cannot set chunk", file: file.path, object: target)
      try compression.apply(to: dcpl, file: file.path, object: target)
    }
    let lcpl = H5Pcreate(fpsim_H5P_LINK_CREATE())
    defer { H5Pclose(lcpl) }
    _ = H5Pset_create_intermediate_group(lcpl, 1)
    let did = H5Dcreate2(file.id, target, type, space, lcpl, dcpl, fpsim_H5P_DEFAULT())
    try h5check(did, "cannot create dataset", file: file.path, object: target)
    return H5Dataset(file: file, id: did, path: target)
  }

  /// About 1 MiB per chunk along the first axis: large enough that compression and per-chunk
  /// overhead are amortized, small enough that reading one row range touches little extra data.
  /// Inner axes are halved only when one row alone exceeds 4 MiB.
  static func defaultChunk(shape: [Int], elementSize: Int, growable: Bool) -> [Int] {
    guard !shape.isEmpty else { return [] }
    var chunk = shape.map { max($0, 1) }
    var rowBytes = chunk.dropFirst().reduce(elementSize, *)
    while rowBytes > 4 << 20, let axis = chunk.indices.dropFirst().max(by: { chunk[$0] < chunk[$1] }),
      chunk[axis] > 1
    {
      chunk[axis] = (chunk[axis] + 1) / 2
      rowBytes = chunk.dropFirst().reduce(elementSize, *)
    }
    let rows = max(1, (1 << 20) / max(rowBytes, 1))
    chunk[0] = growable ? rows : min(rows, max(shape[0], 1))
    return chunk
  }

  // MARK: Describing

  public func info() throws -> Info {
    try HDF5Library.locked {
      try file.requireOpen(object: path)
      let (shape, maxShape) = try extentLocked()
      let type = H5Dget_type(id)
      try check(type, "cannot read type")
      defer { H5Tclose(type) }
      let dcpl = H5Dget_create_plist(id)
      try check(dcpl, "cannot read creation properties")
      defer { H5Pclose(dcpl) }
      var chunk: [Int]? = nil
      if H5Pget_layout(dcpl) == H5D_CHUNKED {
        var dims = [hsize_t](repeating: 0, count: max(shape.count, 1))
        let rank = H5Pget_chunk(dcpl, Int32(dims.count), &dims)
        try check(rank, "cannot read chunk shape")
        chunk = dims.prefix(Int(rank)).map { Int($0) }
      }
      var filters: [FilterInfo] = []
      let n = H5Pget_nfilters(dcpl)
      for index in 0..<max(n, 0) {
        var flags: UInt32 = 0
        var count = 8
        var values = [UInt32](repeating: 0, count: count)
        var name = [CChar](repeating: 0, count: 256)
        var config: UInt32 = 0
        let fid = H5Pget_filter2(dcpl, UInt32(index), &flags, &count, &values, name.count, &name, &config)
        try check(fid, "cannot read filter \(index)")
        let nameText = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        filters.append(FilterInfo(id: Int(fid), name: nameText, parameters: Array(values.prefix(min(count, 8)))))
      }
      return Info(
        shape: shape, maxShape: maxShape, chunk: chunk, elementType: ElementType(hdf5: type),
        typeDescription: TypeDescription.describe(type), filters: filters,
        storageBytes: Int(H5Dget_storage_size(id)))
    }
  }

  /// The current extent (first axis first).
  public var shape: [Int] {
    get throws { try HDF5Library.locked { try file.requireOpen(object: path); return try extentLocked().0 } }
  }

  /// Current and maximum extent. Call with the lock held.
  func extentLocked() throws -> ([Int], [Int?]) {
    let space = H5Dget_space(id)
    try check(space, "cannot read dataspace")
    defer { H5Sclose(space) }
    let rank = H5Sget_simple_extent_ndims(space)
    try check(rank, "cannot read rank")
    var dims = [hsize_t](repeating: 0, count: Int(rank))
    var maxDims = [hsize_t](repeating: 0, count: Int(rank))
    try check(H5Sget_simple_extent_dims(space, &dims, &maxDims), "cannot read extent")
    let unlimited = fpsim_H5S_UNLIMITED()
    return (dims.map { Int($0) }, maxDims.map { $0 == unlimited ? nil : Int($0) })
  }

  // MARK: Reading

  /// Reads the whole dataset, converted to `T` (row-major, first axis slowest).
  public func read<T: StoreElement>(as: T.Type = T.self) throws -> [T] {
    try HDF5Library.locked {
      try file.requireOpen(object: path)
      let (shape, _) = try extentLocked()
      let count = shape.reduce(1, *)
      var values = [T](repeating: T(), count: count)
      if count > 0 {
        try values.withUnsafeMutableBytes { raw in
          _ = try check(
            H5Dread(id, T.elementType.memoryType, fpsim_H5S_ALL(), fpsim_H5S_ALL(), fpsim_H5P_DEFAULT(), raw.baseAddress),
            "cannot read dataset")
        }
      }
      return values
    }
  }

  /// Reads the rows `rows` of the first axis (memory bounded by the range, not the dataset).
  public func read<T: StoreElement>(as: T.Type = T.self, rows: Range<Int>) throws -> [T] {
    try HDF5Library.locked {
      let rowCount = try rowElementsLocked()
      var values = [T](repeating: T(), count: rows.count * rowCount)
      try values.withUnsafeMutableBufferPointer { try read(rows: rows, into: $0) }
      return values
    }
  }

  /// Reads the rows `rows` into a caller's buffer of exactly `rows.count × row size` elements.
  public func read<T: StoreElement>(rows: Range<Int>, into buffer: UnsafeMutableBufferPointer<T>) throws {
    try HDF5Library.locked {
      try withRowSelection(rows, count: buffer.count, reading: true) { memSpace, fileSpace in
        try check(
          H5Dread(id, T.elementType.memoryType, memSpace, fileSpace, fpsim_H5P_DEFAULT(), buffer.baseAddress),
          "cannot read rows \(rows)")
      }
    }
  }

  /// Reads the box `box` (one range per axis, row-major, first axis slowest): memory bounded by the
  /// box, as for a report that wants one label, one lr and every seed of `[label, lr, seed, step, ...]`.
  public func read<T: StoreElement>(as: T.Type = T.self, box: [Range<Int>]) throws -> [T] {
    try HDF5Library.locked {
      var values = [T](repeating: T(), count: box.reduce(1) { $0 * $1.count })
      try values.withUnsafeMutableBufferPointer { buffer in
        try withBoxSelection(box, count: buffer.count) { memSpace, fileSpace in
          try check(
            H5Dread(id, T.elementType.memoryType, memSpace, fileSpace, fpsim_H5P_DEFAULT(), buffer.baseAddress),
            "cannot read \(box.map { "\($0.lowerBound)..<\($0.upperBound)" }.joined(separator: ", "))")
        }
      }
      return values
    }
  }

  /// Reads a dataset of strings (variable- or fixed-length), e.g. the labels of a dimension scale.
  public func readStrings() throws -> [String] {
    try HDF5Library.locked {
      try file.requireOpen(object: path)
      let type = H5Dget_type(id)
      try check(type, "cannot read type")
      defer { H5Tclose(type) }
      guard H5Tget_class(type) == H5T_STRING else {
        throw error(.typeMismatch, "holds \(TypeDescription.describe(type)), not strings")
      }
      let space = H5Dget_space(id)
      try check(space, "cannot read dataspace")
      defer { H5Sclose(space) }
      return try StringIO.read(type: type, space: space, location: self) { memType, buffer in
        H5Dread(id, memType, fpsim_H5S_ALL(), fpsim_H5S_ALL(), fpsim_H5P_DEFAULT(), buffer)
      }
    }
  }

  // MARK: Writing

  /// Writes the whole dataset; `values.count` must equal the element count of its shape.
  public func write<T: StoreElement>(_ values: [T]) throws {
    try HDF5Library.locked {
      try requireWritable()
      let (shape, _) = try extentLocked()
      let count = shape.reduce(1, *)
      guard values.count == count else {
        throw error(.invalidArgument, "cannot write \(values.count) values into shape \(shape) (\(count) elements)")
      }
      guard count > 0 else { return }
      try values.withUnsafeBufferPointer { buffer in
        try withStorableBuffer(buffer) { memoryType, pointer in
          _ = try check(
            H5Dwrite(id, memoryType, fpsim_H5S_ALL(), fpsim_H5S_ALL(), fpsim_H5P_DEFAULT(), pointer),
            "cannot write dataset")
        }
      }
    }
  }

  /// Overwrites rows `rows` (within the current extent) from `values` (`rows.count × row size` elements).
  public func write<T: StoreElement>(_ values: UnsafeBufferPointer<T>, rows: Range<Int>) throws {
    try HDF5Library.locked {
      try requireWritable()
      try withRowSelection(rows, count: values.count, reading: false) { memSpace, fileSpace in
        try withStorableBuffer(values) { memoryType, pointer in
          _ = try check(
            H5Dwrite(id, memoryType, memSpace, fileSpace, fpsim_H5P_DEFAULT(), pointer),
            "cannot write rows \(rows)")
        }
      }
    }
  }

  public func write<T: StoreElement>(_ values: [T], rows: Range<Int>) throws {
    try values.withUnsafeBufferPointer { try write($0, rows: rows) }
  }

  /// Extends the first axis by `values.count / row size` rows and writes them there.
  /// Only for datasets created `growable`.
  public func append<T: StoreElement>(_ values: UnsafeBufferPointer<T>) throws {
    try HDF5Library.locked {
      try requireWritable()
      let rowCount = try rowElementsLocked()
      guard rowCount > 0, values.count % rowCount == 0 else {
        throw error(.invalidArgument, "cannot append \(values.count) values: not a whole number of rows of \(rowCount)")
      }
      let start = try extentLocked().0[0]
      let rows = start..<(start + values.count / rowCount)
      try resizeLocked(rows: rows.upperBound)
      try write(values, rows: rows)
    }
  }

  public func append<T: StoreElement>(_ values: [T]) throws {
    try values.withUnsafeBufferPointer { try append($0) }
  }

  /// Sets the first axis' extent (growable datasets; shrinking drops the rows past the new end).
  public func resize(rows: Int) throws {
    try HDF5Library.locked {
      try requireWritable()
      try resizeLocked(rows: rows)
    }
  }

  // MARK: Lock-held helpers

  /// Hands HDF5 the values with a memory type, converting `Float` and `Double` to binary16 in Swift
  /// first when the dataset stores float16: HDF5's own float-to-half conversion rounds ties away
  /// from zero, while numpy, ml_dtypes and IEEE 754 round ties to even (1 + 2^-11 must store as 1).
  private func withStorableBuffer<T: StoreElement>(
    _ values: UnsafeBufferPointer<T>, _ body: (hid_t, UnsafeRawPointer?) throws -> Void
  ) throws {
    if T.elementType == .float32 || T.elementType == .float64 {
      let type = H5Dget_type(id)
      try check(type, "cannot read type")
      let stored = ElementType(hdf5: type)
      H5Tclose(type)
      if stored == .float16 {
        let halves: [Float16] =
          T.elementType == .float32
          ? values.withMemoryRebound(to: Float.self) { $0.map { Float16($0) } }
          : values.withMemoryRebound(to: Double.self) { $0.map { Float16($0) } }
        try halves.withUnsafeBytes { try body(ElementType.float16.memoryType, $0.baseAddress) }
        return
      }
    }
    try body(T.elementType.memoryType, UnsafeRawPointer(values.baseAddress))
  }

  private func resizeLocked(rows: Int) throws {
    let (shape, maxShape) = try extentLocked()
    guard !shape.isEmpty, rows >= 0 else { throw error(.invalidArgument, "cannot resize a scalar dataset") }
    if let limit = maxShape[0], rows > limit {
      throw error(.invalidArgument, "cannot grow to \(rows) rows: the first axis is fixed at \(limit) (create it growable)")
    }
    var dims = shape.map { hsize_t($0) }
    dims[0] = hsize_t(rows)
    try check(H5Dset_extent(id, dims), "cannot resize to \(rows) rows")
  }

  private func requireWritable() throws {
    try file.requireOpen(object: path)
    if file.mode == .readOnly { throw error(.invalidArgument, "cannot write: the file is open read-only") }
  }

  /// Elements per row (product of the axes after the first; 1 for rank 0 and 1).
  private func rowElementsLocked() throws -> Int {
    try file.requireOpen(object: path)
    return try extentLocked().0.dropFirst().reduce(1, *)
  }

  /// Selects rows `rows` in the file and a memory space of the same shape (`count` elements).
  private func withRowSelection(
    _ rows: Range<Int>, count: Int, reading: Bool, _ body: (hid_t, hid_t) throws -> Void
  ) throws {
    try file.requireOpen(object: path)
    let (shape, _) = try extentLocked()
    guard !shape.isEmpty else { throw error(.invalidArgument, "a scalar dataset has no rows") }
    let rowCount = shape.dropFirst().reduce(1, *)
    guard rows.lowerBound >= 0, rows.upperBound <= shape[0] else {
      throw error(.invalidArgument, "rows \(rows) are outside the first axis 0..<\(shape[0])")
    }
    guard count == rows.count * rowCount else {
      throw error(.invalidArgument, "buffer of \(count) elements for \(rows.count) rows of \(rowCount)")
    }
    try withBoxSelection([rows] + shape.dropFirst().map { 0..<$0 }, count: count, body)
  }

  /// Selects the box `box` (one range per axis, inside the extent) in the file and a memory space of
  /// the same shape (`count` elements). Call with the lock held.
  private func withBoxSelection(_ box: [Range<Int>], count: Int, _ body: (hid_t, hid_t) throws -> Void) throws {
    try file.requireOpen(object: path)
    let (shape, _) = try extentLocked()
    guard box.count == shape.count, zip(box, shape).allSatisfy({ $0.lowerBound >= 0 && $0.upperBound <= $1 }) else {
      throw error(.invalidArgument, "box \(box.map { "\($0.lowerBound)..<\($0.upperBound)" }) is not inside the shape \(shape)")
    }
    guard count == box.reduce(1, { $0 * $1.count }) else {
      throw error(.invalidArgument, "buffer of \(count) elements for a box of \(box.reduce(1) { $0 * $1.count })")
    }
    guard count > 0 else { return }
    let fileSpace = H5Dget_space(id)
    try check(fileSpace, "cannot read dataspace")
    defer { H5Sclose(fileSpace) }
    let start = box.map { hsize_t($0.lowerBound) }, extent = box.map { hsize_t($0.count) }
    try check(H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, start, nil, extent, nil), "cannot select \(box)")
    // The memory space has the selection's own shape: HDF5 then sees "same shape" selections and
    // moves whole chunks at once; a flat 1-D memory space made it map element runs, ~10x slower.
    let memSpace = H5Screate_simple(Int32(extent.count), extent, nil)
    try check(memSpace, "cannot create memory space")
    defer { H5Sclose(memSpace) }
    try body(memSpace, fileSpace)
  }
}
