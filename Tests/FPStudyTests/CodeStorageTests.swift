import FPFormats
import FPStore
import Foundation
import Testing

@testable import FPStudy

/// `CodeStorage`: the dataset type follows the format's width (uint8 to 8 bits, uint16 to 16, int64
/// above), and every code of the format, the largest included, reads back unchanged through HDF5's
/// own conversion to int64 (no truncation at the chosen width).
@Suite(.serialized) struct CodeStorageTests {
  @Test(arguments: [
    ("float4_e2m1fn", ElementType.uint8), ("ue8m0", .uint8), ("float8_e4m3fn", .uint8), ("e4m5", .uint16),
    ("bfloat16", .uint16), ("float16", .uint16), ("e8m10", .int64), ("float32", .int64),
  ])
  func theNarrowestTypeHoldsEveryCode(format: String, type: ElementType) throws {
    let f = try FloatFormat(parsing: format)
    let storage = CodeStorage(bits: f.bitCount)
    #expect(storage.elementType == type)
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let file = try H5File.create(dir.appendingPathComponent("codes.h5").path)
    defer { try? file.close() }
    // The lowest codes, the highest ones and a stride through the rest.
    let top = UInt64(1) << f.bitCount
    let codes = (Array(0..<min(top, 300)) + Array(Swift.stride(from: 0, to: top, by: Int(max(1, top / 1000)))) + Array((top > 300 ? top - 300 : 0)..<top)).map { UInt32($0) }
    let whole = try storage.createDataset(in: file.root, "whole", codes: codes)
    #expect(try whole.info().elementType == type)
    #expect(try whole.read(as: Int64.self) == codes.map(Int64.init))
    let rows = try storage.createDataset(in: file.root, "rows", shape: [codes.count], compression: .none)
    try storage.write(codes[..<10].lazy.map { $0 }, to: rows, rows: 0..<10)
    try storage.write(codes[10...].lazy.map { $0 }, to: rows, rows: 10..<codes.count)
    #expect(try rows.info().elementType == type)
    #expect(try rows.read(as: Int64.self) == codes.map(Int64.init))
  }
}
