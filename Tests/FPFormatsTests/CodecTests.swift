import FPFormats
import Testing

/// Formats whose every code is checked: the catalog and generic spellings with every policy/option.
let codecFormats = FloatFormat.catalogNames.filter { !["float32", "fp32", "f32", "tf32"].contains($0) } + [
  "e8m3", "e8m5", "e5m3b13fn-nosub", "ue5m3ieee", "e3m2ieee", "e4m3-nosub", "e2m1ieee", "ue4m0", "e5m0",
  "ue8m0fn-nozero", "e6m1fnuz", "int2", "int12", "e8m7", "e5m10", "ue5m3fn-nosub", "e4m3b3",
]

@Suite struct CodecTests {
  @Test(arguments: codecFormats)
  func everyCanonicalCodeSurvivesDecodeThenEncode(name: String) throws {
    let f = try FloatFormat(parsing: name)
    var failures: [UInt32] = []
    for c in 0..<UInt32(f.codeCount) where f.isCanonicalNumber(c) {
      if f.code(ofRepresentable: f.decode(c)) != c { failures.append(c) }
    }
    #expect(failures.isEmpty, "\(name): codes \(failures.prefix(8).map { String($0, radix: 16) })")
  }

  @Test(arguments: codecFormats)
  func decodedValuesAreFixedPointsOfQuantization(name: String) throws {
    let f = try FloatFormat(parsing: name)
    for overflow in Overflow.allCases {
      let q = Quantizer(format: f, rounding: .rne, overflow: overflow)
      for c in 0..<UInt32(f.codeCount) where f.isCanonicalNumber(c) {
        let v = f.decode(c)
        if v.isInfinite && overflow == .saturate { continue }  // saturate clamps infinities to max
        #expect(q.quantize(v).bitPattern == v.bitPattern, "\(name) code \(c) value \(v)")
      }
    }
  }

  @Test func integerFormatsAreSymmetricSignMagnitude() throws {
    let int8 = try FloatFormat(parsing: "int8")
    #expect(int8.maxFinite == 127)
    #expect(int8.decode(0x81) == -1)
    #expect(int8.decode(0xFF) == -127)
    let q = Quantizer(format: int8)
    #expect(q.quantize([2.5, 3.5, -2.5, 200, -128.4, 0.49]) == [2, 4, -2, 127, -127, 0])
  }

  /// Hand-derived properties from the definitions (bias, fields) and the published maxima.
  @Test func derivedPropertiesMatchThePublishedValues() throws {
    func f(_ s: String) throws -> FloatFormat { try FloatFormat(parsing: s) }
    #expect(try f("e4m3fn").maxFinite == 448)
    #expect(try f("float8_e4m3").maxFinite == 240)
    #expect(try f("e5m2").maxFinite == 57344)
    #expect(try f("e4m3fnuz").maxFinite == 240)
    #expect(try f("e5m2fnuz").maxFinite == 57344)
    #expect(try f("e4m3b11fnuz").maxFinite == 30)
    #expect(try f("e3m4").maxFinite == 15.5)
    #expect(try f("e2m3").maxFinite == 7.5)
    #expect(try f("e3m2").maxFinite == 28)
    #expect(try f("e2m1").maxFinite == 6)
    #expect(try f("ue5m3").maxFinite == 114_688)
    #expect(try f("ue5m3ieee").maxFinite == 61_440)
    #expect(try f("ue4m3").maxFinite == 448)
    #expect(try f("ue8m0").maxFinite == 0x1p127)
    #expect(try f("ue8m0").minPositive == 0x1p-127)
    #expect(try f("fp16").maxFinite == 65504)
    #expect(try f("e5m10") == (try f("float16")))
    #expect(try f("e8m7") == (try f("bfloat16")))
    #expect(try f("bf16").maxFinite == Float(bitPattern: 0x7F7F_0000))
    #expect(try f("e8m23").maxFinite == .greatestFiniteMagnitude)
    #expect(try f("e8m23").minSubnormal == .leastNonzeroMagnitude)
    #expect(try f("e4m3fn").minSubnormal == 0x1p-9)
    #expect(try f("e4m3fn").epsilon == 0.125)
    #expect(try f("e4m3fn").codeCount == 256)
    // log2(57344 / 2^-16) = 16 + log2(57344) = 31.80735492205760...
    #expect(abs(try f("e5m2").dynamicRangeBinades - 31.807354922057604) < 1e-12)
    #expect(try f("e4m3-nosub").minSubnormal == nil)
    #expect(try f("e4m3fn").hasNaN && !(try f("e4m3fn").hasInfinity))
    #expect(!(try f("e2m1").hasNaN))
  }
}
