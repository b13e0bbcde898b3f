import FPFormats
import Foundation
import Testing

/// One row of a `<format>.roundtrip.csv` file in Resources/vectors (generated with ml_dtypes 0.6.0).
struct VectorRow: Sendable {
  let input: UInt32, output: UInt32, code: UInt32, kind: String
}

enum Vectors {
  static let directory = Bundle.module.url(forResource: "vectors", withExtension: nil)!
  static let formats = ["bfloat16", "float16", "float4_e2m1fn", "float8_e4m3fn", "float8_e5m2", "float8_e8m0fnu"]
  static let valueFormats = ["float4_e2m1fn", "float8_e4m3fn", "float8_e5m2", "float8_e8m0fnu"]

  static func lines(_ file: String) throws -> [[Substring]] {
    let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
    return text.split(separator: "\n").dropFirst().map { $0.split(separator: ",") }
  }

  static func hex(_ s: Substring) -> UInt32 { UInt32(s.dropFirst(2), radix: 16)! }

  static func roundtrip(_ format: String) throws -> [VectorRow] {
    try lines("\(format).roundtrip.csv").map {
      VectorRow(input: hex($0[0]), output: hex($0[1]), code: hex($0[2]), kind: String($0[3]))
    }
  }

  /// The vectors' README: everything is round-to-nearest-even without saturation, except E8M0,
  /// whose ties go away from zero.
  static func quantizer(_ format: String) throws -> Quantizer {
    let f = try FloatFormat(parsing: format)
    return Quantizer(format: f, rounding: format == "float8_e8m0fnu" ? .rna : .rne, overflow: .ieee)
  }
}

/// Equal bit patterns, or both NaN (the vectors' README: NaN payloads are not compared).
func sameFloat(_ a: UInt32, _ b: UInt32) -> Bool {
  a == b || (Float(bitPattern: a).isNaN && Float(bitPattern: b).isNaN)
}

@Suite struct VectorTests {
  @Test(arguments: Vectors.formats)
  func fastKernelReproducesEveryMLDtypesRow(format: String) throws {
    let q = try Vectors.quantizer(format)
    let rows = try Vectors.roundtrip(format)
    #expect(rows.count > 1000)
    let outputs = q.quantize(rows.map { Float(bitPattern: $0.input) })
    var mismatches: [String] = []
    for (row, out) in zip(rows, outputs) where !sameFloat(out.bitPattern, row.output) {
      mismatches.append("\(row.kind) in 0x\(String(row.input, radix: 16)) -> 0x\(String(out.bitPattern, radix: 16))")
    }
    #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(5))")
  }

  @Test(arguments: Vectors.formats)
  func referenceReproducesEveryMLDtypesRow(format: String) throws {
    let q = try Vectors.quantizer(format)
    let r = ReferenceQuantizer(format: q.format, rounding: q.rounding, overflow: q.overflow)
    var mismatches = 0
    for row in try Vectors.roundtrip(format) {
      if !sameFloat(r.quantize(Float(bitPattern: row.input)).bitPattern, row.output) { mismatches += 1 }
    }
    #expect(mismatches == 0)
  }

  @Test(arguments: Vectors.formats)
  func encodeGivesTheMLDtypesCode(format: String) throws {
    let q = try Vectors.quantizer(format)
    let f = q.format
    var mismatches: [String] = []
    for row in try Vectors.roundtrip(format) {
      let code = f.encode(Float(bitPattern: row.input), with: q)
      let ok = code == row.code || (f.decode(code).isNaN && f.decode(row.code).isNaN)
      if !ok { mismatches.append("\(row.kind) 0x\(String(row.input, radix: 16)): 0x\(String(code, radix: 16)) != \(row.code)") }
    }
    #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
  }

  @Test(arguments: Vectors.valueFormats)
  func everyCodeDecodesToTheListedValue(format: String) throws {
    let f = try FloatFormat(parsing: format)
    let rows = try Vectors.lines("\(format).values.csv")
    #expect(rows.count == f.codeCount)
    for row in rows {
      let code = Vectors.hex(row[0]), expected = Vectors.hex(row[1])
      let got = f.decode(code).bitPattern
      #expect(sameFloat(got, expected), "code \(row[0]): 0x\(String(got, radix: 16)) != \(row[1])")
      #expect(f.codeClass(code) == String(row[3]), "class of \(row[0])")
    }
  }
}
