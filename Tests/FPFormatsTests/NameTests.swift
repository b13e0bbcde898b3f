import FPFormats
import Testing

@Suite struct NameTests {
  @Test func mlDtypesNamesKeepTheirMeaning() throws {
    let fn = try FloatFormat(parsing: "float8_e4m3fn")
    #expect(fn.policy == .fn && fn.bias == 7)
    let fnuz = try FloatFormat(parsing: "float8_e4m3fnuz")
    #expect(fnuz.policy == .fnuz && fnuz.bias == 8 && !fnuz.hasNegativeZero)
    #expect(try FloatFormat(parsing: "float8_e4m3b11fnuz").bias == 11)
    #expect(try FloatFormat(parsing: "float6_e2m3fn").policy == .finite)
    #expect(try FloatFormat(parsing: "E4M3FN") == fn)
  }

  @Test func genericGrammarCoversPoliciesBiasAndOptions() throws {
    let f = try FloatFormat(parsing: "e5m3b13fn-nosub")
    #expect(f.exponentBits == 5 && f.mantissaBits == 3 && f.bias == 13 && f.policy == .fn && !f.subnormals)
    #expect(try FloatFormat(parsing: "ue5m3ieee").signed == false)
    #expect(try FloatFormat(parsing: "e8m3").genericName == "e8m3")
    #expect(try FloatFormat(parsing: f.genericName) == f)
    #expect(try FloatFormat(parsing: "e4m3fnuz").bias == 8)
  }

  @Test func formatsWiderThanFloat32AreRefusedWithTheReason() {
    #expect(throws: FormatError.self) { try FloatFormat(parsing: "e9m3") }
    #expect(throws: FormatError.self) { try FloatFormat(parsing: "e8m24") }
    #expect(throws: FormatError.self) { try FloatFormat(parsing: "e8m3b150") }  // spacing 2^-152 < 2^-149
    #expect(throws: FormatError.self) { try FloatFormat(parsing: "e8m3b100") }  // binade 2^154 > 2^127
    do {
      _ = try FloatFormat(parsing: "e9m3")
    } catch {
      #expect("\(error)".contains("at most 8"))
    }
  }

  @Test func unknownNamesSuggestTheClosestValidNames() {
    do {
      _ = try FloatFormat(parsing: "e4m3fm")
      Issue.record("e4m3fm was accepted")
    } catch let FormatError.unknownName(_, suggestions) {
      #expect(suggestions.first == "e4m3fn")
    } catch {
      Issue.record("wrong error \(error)")
    }
  }

  @Test func roundingNamesParse() throws {
    #expect(try RoundingMode(parsing: "stochastic:8") == .stochastic(bits: 8))
    #expect(try RoundingMode(parsing: "stochastic") == .stochastic(bits: 24))
    #expect(throws: FormatError.self) { try RoundingMode(parsing: "stochastic:0") }
    #expect(throws: FormatError.self) { try RoundingMode(parsing: "nearest-ish") }
  }
}
