import Foundation
import Testing

@testable import FPStore

/// Values written through FPStore read back identical, for every element type, rank, layout and
/// attribute kind.
@Suite(.serialized)
struct RoundTripTests {
  /// Deterministic test values of any element type: i ↦ (i·7 mod 251) − 100 for signed and float
  /// types, i·7 mod 251 for unsigned ones, so every value is exactly representable in every type.
  static func values<T: StoreElement>(_ count: Int, as: T.Type) -> [T] {
    (0..<count).map { i in
      let v = (i * 7) % 251
      switch T.elementType {
      case .float16: return Float16(Float(v - 100) / 4) as! T
      case .float32: return Float(v - 100) / 4 as! T
      case .float64: return Double(v - 100) / 4 as! T
      case .uint8: return UInt8(v) as! T
      case .uint16: return UInt16(v * 200) as! T
      case .int32: return Int32(v - 100) * 1_000_000 as! T
      case .int64: return Int64(v - 100) * 1_000_000_000_000 as! T
      }
    }
  }

  static let shapes: [[Int]] = [[], [0], [17], [5, 3], [4, 3, 2], [2, 3, 2, 2]]

  func roundTrip<T: StoreElement & Equatable>(_ type: T.Type, compression: Compression) throws {
    let dir = TemporaryDirectory()
    let path = dir.file("types.h5")
    let file = try H5File.create(path)
    for (index, shape) in Self.shapes.enumerated() {
      let values = Self.values(shape.reduce(1, *), as: T.self)
      try file.root.createDataset("d\(index)", values: values, shape: shape,
                                  compression: shape.isEmpty ? .none : compression)
    }
    try file.close()
    let reopened = try H5File.open(path)
    for (index, shape) in Self.shapes.enumerated() {
      let dataset = try reopened.dataset("/d\(index)")
      let info = try dataset.info()
      #expect(info.shape == shape)
      #expect(info.elementType == T.elementType, "d\(index) stored as \(info.typeDescription)")
      #expect(try dataset.read(as: T.self) == Self.values(shape.reduce(1, *), as: T.self), "\(T.self) \(shape)")
    }
  }

  @Test(arguments: [Compression.none, .default, .zstd()])
  func everyElementTypeRoundTripsAtEveryRank(compression: Compression) throws {
    try roundTrip(Float.self, compression: compression)
    try roundTrip(Double.self, compression: compression)
    try roundTrip(Float16.self, compression: compression)
    try roundTrip(UInt8.self, compression: compression)
    try roundTrip(UInt16.self, compression: compression)
    try roundTrip(Int32.self, compression: compression)
    try roundTrip(Int64.self, compression: compression)
  }

  @Test func float16DatasetReadsAsFloatExactlyAndWritesFromFloatRounded() throws {
    let dir = TemporaryDirectory()
    let file = try H5File.create(dir.file("half.h5"))
    // Every finite binary16 bit pattern, as Float: reading must reproduce each exactly.
    let all: [Float16] = (0...UInt16.max).map { Float16(bitPattern: $0) }.filter(\.isFinite)
    try file.root.createDataset("all", values: all)
    #expect(try file.dataset("/all").read(as: Float.self) == all.map(Float.init))
    // Float values stored into a float16 dataset round to nearest binary16 (1 + 2^-11 is a tie
    // that rounds to even, 1; 1 + 3·2^-11 rounds up to 1 + 2^-9).
    let floats: [Float] = [1, 1 + 0x1p-11, 1 + 3 * 0x1p-11, 65504, -0.5]
    let d = try file.root.createDataset("fromFloat", values: floats, type: .float16)
    #expect(try d.info().elementType == .float16)
    let stored = try d.read(as: Float.self)
    #expect(stored == [1, 1, 1 + 0x1p-9, 65504, -0.5])
  }

  @Test func growableDatasetStreamsAppendsAndRowRangesWithBoundedBuffers() throws {
    let dir = TemporaryDirectory()
    let file = try H5File.create(dir.file("stream.h5"))
    let width = 96
    let d = try file.root.createDataset("x", type: .float32, shape: [0, width], growable: true, chunk: [10, width])
    var expected: [Float] = []
    for block in 0..<7 {
      let rows = block + 1  // uneven blocks cross chunk boundaries
      let values = (0..<(rows * width)).map { Float(expected.count + $0) }
      try d.append(values)
      expected += values
    }
    let info = try d.info()
    #expect(info.shape == [28, width])
    #expect(info.maxShape == [nil, width])
    #expect(info.chunk == [10, width])
    // Read back in windows of 3 rows into one reused buffer.
    var buffer = [Float](repeating: -1, count: 3 * width)
    var start = 0
    while start < 28 {
      let rows = start..<min(start + 3, 28)
      try buffer.withUnsafeMutableBufferPointer { try d.read(rows: rows, into: UnsafeMutableBufferPointer(rebasing: $0[0..<(rows.count * width)])) }
      #expect(Array(buffer[0..<(rows.count * width)]) == Array(expected[(start * width)..<(rows.upperBound * width)]))
      start += 3
    }
    // Overwrite a middle range and shrink.
    try d.write([Float](repeating: 7, count: 2 * width), rows: 4..<6)
    #expect(try d.read(as: Float.self, rows: 3..<7) == Array(expected[(3 * width)..<(4 * width)]) + [Float](repeating: 7, count: 2 * width) + Array(expected[(6 * width)..<(7 * width)]))
    try d.resize(rows: 5)
    #expect(try d.shape == [5, width])
  }

  /// A box (one range per axis) of a chunked, deflated 4-D dataset reads as the same box cut out of
  /// the whole dataset by index arithmetic here; a box outside the shape, or of the wrong rank, is refused.
  @Test func aBoxReadsAsTheSameBoxOfTheWholeDataset() throws {
    let dir = TemporaryDirectory()
    let file = try H5File.create(dir.file("box.h5"))
    let shape = [3, 4, 5, 6]
    let all = Self.values(shape.reduce(1, *), as: Int64.self)
    let d = try file.root.createDataset("x", values: all, shape: shape, chunk: [1, 2, 5, 4], compression: .deflate(level: 4))
    for box in [[1..<2, 2..<3, 0..<5, 0..<6], [0..<3, 1..<3, 2..<4, 3..<6], [2..<3, 0..<4, 4..<5, 5..<6], [0..<3, 0..<4, 0..<5, 0..<6], [1..<1, 0..<4, 0..<5, 0..<6]] {
      var expected: [Int64] = []
      for a in box[0] { for b in box[1] { for c in box[2] { for e in box[3] { expected.append(all[((a * 4 + b) * 5 + c) * 6 + e]) } } } }
      #expect(try d.read(as: Int64.self, box: box) == expected, "\(box)")
    }
    #expect(throws: StoreError.self) { try d.read(as: Int64.self, box: [0..<3, 0..<4, 0..<5, 0..<7]) }
    #expect(throws: StoreError.self) { try d.read(as: Int64.self, box: [0..<3, 0..<4, 0..<5]) }
  }

  @Test func appendingToAFixedSizeDatasetIsAnError() throws {
    let dir = TemporaryDirectory()
    let file = try H5File.create(dir.file("fixed.h5"))
    let d = try file.root.createDataset("x", values: [Float](repeating: 1, count: 4))
    #expect(throws: StoreError.self) { try d.append([Float(2)]) }
    #expect(throws: StoreError.self) { try d.write([Float(1), 2]) }  // count mismatch
    #expect(throws: StoreError.self) { try d.read(as: Float.self, rows: 3..<5) }  // out of range
  }

  @Test func attributesOfEveryKindRoundTrip() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("attrs.h5")
    let cases: [(String, AttributeValue)] = [
      ("int", .int(-42)), ("bigint", .int(Int.max)), ("double", .double(0.1)), ("inf", .double(.infinity)),
      ("string", .string("E4M3 → ±448, naïve")), ("empty_string", .string("")),
      ("ints", .ints([1, -2, 3])), ("no_ints", .ints([])), ("doubles", .doubles([0.5, -1e-300, 1e300])),
      ("strings", .strings(["a", "bé", ""])), ("no_strings", .strings([])), ("no_doubles", .doubles([])), ("json", .string("{\"lr\": 0.001, \"format\": \"e4m3\"}")),
    ]
    let file = try H5File.create(path)
    let group = try file.root.createGroup("g")
    let dataset = try group.createDataset("d", values: [Int32(1)])
    for (name, value) in cases {
      try group.setAttribute(name, value)
      try dataset.setAttribute(name, value)
    }
    try group.setAttribute("int", 43)  // replacing keeps one attribute
    try file.close()
    let reopened = try H5File.open(path)
    for object in [try reopened.group("/g") as H5Object, try reopened.dataset("/g/d")] {
      for (name, value) in cases where name != "int" {
        #expect(try object.attribute(name) == value, "\(object.path)@\(name)")
      }
      #expect(try object.attributeNames() == cases.map(\.0).sorted())
      #expect(try object.attribute("missing") == nil)
      #expect(throws: StoreError.self) { try object.requireAttribute("missing") }
    }
    #expect(try reopened.group("/g").attribute("int") == .int(43))
    #expect(try reopened.dataset("/g/d").attribute("int") == .int(-42))
  }

  @Test func compressionIsRecordedAsTheDocumentedFilterPipeline() throws {
    let dir = TemporaryDirectory()
    let file = try H5File.create(dir.file("filters.h5"))
    let values = (0..<10_000).map { Float(sin(Double($0) / 100)) }
    let expectations: [(Compression, [Int], [UInt32])] = [
      (.none, [], []), (.default, [2, 1], [4]), (.deflate(level: 9, shuffle: false), [1], [9]),
      (.zstd(), [2, 32015], [3]), (.zstd(level: 12, shuffle: false), [32015], [12]),
    ]
    for (index, (compression, ids, parameters)) in expectations.enumerated() {
      let d = try file.root.createDataset("d\(index)", values: values, chunk: [1000], compression: compression)
      let info = try d.info()
      #expect(info.filters.map(\.id) == ids, "\(compression)")
      #expect(info.filters.last?.parameters ?? [] == parameters, "\(compression)")
      #expect(info.compression == compression)
      #expect(try d.read(as: Float.self) == values)
      if compression != .none { #expect(info.storageBytes < values.count * 4, "\(compression) did not compress") }
    }
  }

  @Test func defaultLayoutIsContiguousWhenUncompressedAndChunkedAroundOneMebibyteOtherwise() throws {
    let dir = TemporaryDirectory()
    let file = try H5File.create(dir.file("layout.h5"))
    #expect(try file.root.createDataset("plain", type: .float32, shape: [10, 10], compression: .none).info().chunk == nil)
    #expect(try file.root.createDataset("small", type: .float32, shape: [10, 10]).info().chunk == [10, 10])
    #expect(try file.root.createDataset("big", type: .float32, shape: [100_000, 1024]).info().chunk == [256, 1024])
    #expect(try file.root.createDataset("grow", type: .float64, shape: [0], growable: true).info().chunk == [131_072])
  }

  @Test func stringDatasetsAndGroupsRoundTrip() throws {
    let dir = TemporaryDirectory()
    let file = try H5File.create(dir.file("strings.h5"))
    try file.root.createDataset("labels", strings: ["e4m3fn", "bfloat16", "ünïcode", ""])
    try file.root.createGroup("a/b/c")
    #expect(try file.dataset("/labels").readStrings() == ["e4m3fn", "bfloat16", "ünïcode", ""])
    #expect(try file.root.children() == [.init(name: "a", kind: .group), .init(name: "labels", kind: .dataset)])
    #expect(try file.contains("/a/b/c"))
    #expect(try !file.contains("/a/x/c"))
    #expect(try file.group("/a").requireGroup("b").path == "/a/b")
    #expect(throws: StoreError.self) { try file.root.createGroup("a") }
    #expect(throws: StoreError.self) { try file.root.createGroup("x/../y") }
  }

  @Test func readOnlyFilesRefuseWrites() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("ro.h5")
    try H5File.create(path).root.createDataset("d", values: [Float(1)])
    let file = try H5File.open(path)
    let error = #expect(throws: StoreError.self) { try file.dataset("/d").write([Float(2)]) }
    #expect(error?.description.contains("read-only") == true)
    #expect(throws: StoreError.self) { try file.root.setAttribute("x", 1) }
  }
}
