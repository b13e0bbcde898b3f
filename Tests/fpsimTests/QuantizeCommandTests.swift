import FPFormats
import Foundation
import Testing

@Suite struct QuantizeCommandTests {
  static let vectorFormats = ["bfloat16", "float16", "float4_e2m1fn", "float8_e4m3fn", "float8_e5m2", "float8_e8m0fnu"]

  /// The ml_dtypes vectors (the FPFormats test resources) through the command line:
  /// `--overflow ieee --from bits --to bits` must print every row's output bit pattern.
  @Test(arguments: vectorFormats)
  func commandLineReproducesTheMLDtypesVectors(format: String) throws {
    let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("FPFormatsTests/Resources/vectors/\(format).roundtrip.csv")
    let rows = try String(contentsOf: file, encoding: .utf8).split(separator: "\n").dropFirst()
      .map { $0.split(separator: ",") }
    let rounding = format == "float8_e8m0fnu" ? "rna" : "rne"
    let r = try CLI.run(
      ["quantize", "--format", format, "--rounding", rounding, "--overflow", "ieee", "--from", "bits", "--to", "bits"],
      stdin: rows.map { String($0[0]) }.joined(separator: "\n"))
    #expect(r.status == 0, "\(r.stderr)")
    let lines = r.stdout.split(separator: "\n")
    #expect(lines.count == rows.count)
    var mismatches = 0
    for (line, row) in zip(lines, rows) {
      let got = UInt32(line.dropFirst(2), radix: 16)!, want = UInt32(row[1].dropFirst(2), radix: 16)!
      let bothNaN = Float(bitPattern: got).isNaN && Float(bitPattern: want).isNaN
      if got != want && !bothNaN { mismatches += 1 }
      #expect(line.count == 10 && line.hasPrefix("0x"), "bit patterns print as 0x + 8 hex digits")
    }
    #expect(mismatches == 0)
  }

  @Test func issueExampleRoundsToE4M3FN() throws {
    let r = try CLI.run(["quantize", "--format", "e4m3fn"], stdin: "1.0625 464 1e-3\n")
    // 1.0625 ties between 1 and 1.125 -> even mantissa 1.0; 464 ties between 448 and 480 (the NaN
    // code) -> 448; 1e-3 is above half the smallest subnormal 2^-9 -> 2^-9.
    #expect(r.stdout == "1.0\n448.0\n0.001953125\n")
    #expect(r.status == 0)
  }

  @Test func codesPrintInTheFormatsWidth() throws {
    let r = try CLI.run(["quantize", "--format", "e2m1", "--to", "code"], stdin: "-6 0.5 1e9")
    #expect(r.stdout == "0xf\n0x1\n0x7\n")
    let e = try CLI.run(["quantize", "--format", "bf16", "--to", "code"], stdin: "1 -2")
    #expect(e.stdout == "0x3f80\n0xc000\n")
  }

  @Test func truncationClearsMantissaBitsAsInToFP8AndBack() throws {
    // e8m5 keeps 5 of float32's 23 mantissa bits: rtz clears the other 18.
    let r = try CLI.run(["quantize", "--format", "e8m5", "--rounding", "rtz", "--from", "bits", "--to", "bits"],
                        stdin: "0x3fffffff 0xbf87ffff 0x00000001")
    #expect(r.stdout == "0x3ffc0000\n0xbf840000\n0x00000000\n")
  }

  @Test func stochasticRoundingIsSeededAndReproducible() throws {
    let input = String(repeating: "1.3 ", count: 200)
    let a = try CLI.run(["quantize", "--format", "e4m3fn", "--rounding", "stochastic", "--seed", "3"], stdin: input)
    let b = try CLI.run(["quantize", "--format", "e4m3fn", "--rounding", "stochastic", "--seed", "3"], stdin: input)
    let c = try CLI.run(["quantize", "--format", "e4m3fn", "--rounding", "stochastic", "--seed", "4"], stdin: input)
    #expect(a.stdout == b.stdout)
    #expect(a.stdout != c.stdout)
    #expect(Set(a.stdout.split(separator: "\n")) == ["1.25", "1.375"])
  }

  @Test(arguments: [
    (["quantize", "--format", "e4m3fnn"], "1", "unknown format 'e4m3fnn'; did you mean e4m3fn"),
    (["quantize", "--format", "e9m2"], "1", "at most 8"),
    (["quantize", "--format", "e4m3"], "1 2 x3 4", "malformed number 'x3' at position 3 (line 1)"),
    (["quantize", "--format", "e4m3", "--from", "bits"], "0x3f800000 1.0", "malformed number '1.0' at position 2"),
    (["quantize", "--format", "e4m3"], "  \n", "no numbers on standard input"),
    (["quantize", "--format", "e4m3", "--rounding", "nearest-ish"], "1", "unknown rounding"),
    (["quantize", "--format", "e4m3", "--overflow", "wrap"], "1", "wrap"),
    (["formats", "e4m3fm"], "", "did you mean e4m3fn"),
    (["formats", "bf16", "--values"], "", "at most 8 bits"),
  ])
  func badInputGivesOneLineErrorAndExitCode2(arguments: [String], stdin: String, message: String) throws {
    let r = try CLI.run(arguments, stdin: stdin)
    #expect(r.status == 2)
    #expect(r.stdout.isEmpty)
    #expect(r.stderr.hasPrefix("fpsim: error: "))
    #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
    #expect(r.stderr.contains(message), "\(r.stderr)")
  }
}

@Suite struct FormatsCommandTests {
  @Test func jsonCarriesTheDocumentedFields() throws {
    let r = try CLI.run(["formats", "e4m3fn", "e8m3", "ue5m3", "--json"])
    #expect(r.status == 0)
    let list = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]
    #expect(list.count == 3)
    for key in ["name", "bits", "exponent_bits", "mantissa_bits", "bias", "signed", "max", "min_normal",
                "min_subnormal", "epsilon", "has_inf", "has_nan", "dynamic_range_binades"] {
      #expect(list.allSatisfy { $0[key] != nil }, "field \(key)")
    }
    #expect(list[0]["max"] as? Double == 448)
    #expect(list[2]["max"] as? Double == 114_688)
    #expect(list[2]["signed"] as? Bool == false)
    #expect(list[1]["exponent_bits"] as? Int == 8 && list[1]["mantissa_bits"] as? Int == 3)
  }

  @Test func valuesListEveryCodeOfFloat4() throws {
    let r = try CLI.run(["formats", "float4_e2m1fn", "--values"])
    let rows = r.stdout.split(separator: "\n").dropFirst(2)
    #expect(rows.count == 16)
    #expect(rows.first?.split(separator: " ", omittingEmptySubsequences: true).map(String.init) == ["0x0", "0x00000000", "0.0", "zero"])
    #expect(rows.last?.split(separator: " ", omittingEmptySubsequences: true).map(String.init) == ["0xf", "0xc0c00000", "-6.0", "normal"])
  }

  @Test func tableListsTheCatalog() throws {
    let r = try CLI.run(["formats"])
    #expect(r.status == 0)
    for name in ["float8_e4m3fn", "float8_e8m0fnu", "ue5m3", "bfloat16", "int4"] { #expect(r.stdout.contains(name)) }
  }
}

@Suite struct ScaledCommandTests {
  @Test func mxfp4OnSixtyFourValuesMakesTwoBlocks() throws {
    let r = try CLI.run(["quantize", "--format", "mxfp4_e2m1"], stdin: (1...64).map { "\($0)" }.joined(separator: "\n"))
    let v = r.stdout.split(separator: "\n").map { Float($0)! }
    #expect(v.count == 64)
    #expect(v[19] == 16 && v[31] == 32)  // block 1, scale 8
    #expect(v[39] == 32 && v[55] == 64 && v[63] == 64)  // block 2, scale 16: 40/16 = 2.5 -> 2, 56/16 = 3.5 -> 4
  }

  @Test func errorCommandPrintsJSONForEachFormatAndDistribution() throws {
    let r = try CLI.run(["error", "--formats", "mxfp4_e2m1,nvfp4,e4m3fn", "--dist", "gaussian,student-t:3", "--hadamard", "16", "--n", "8192", "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    let list = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]
    #expect(list.count == 6)
    for key in ["mse", "sqnr_db", "saturated_fraction", "flushed_fraction", "bits_per_value"] {
      #expect(list.allSatisfy { $0[key] != nil }, "field \(key)")
    }
  }

  @Test(arguments: [
    (["quantize", "--format", "e2m1/ue8m0/0"], "at least 1"),
    (["quantize", "--format", "e2m1/zz/16"], "unknown format 'zz'"),
    (["error", "--formats", "e4m3fn", "--hadamard", "12"], "power of two"),
    (["error", "--formats", "e4m3fn", "--dist", "cauchy"], "unknown distribution"),
    (["quantize", "--format", "e4m3fn", "--tensor-scale"], "apply to block formats"),
  ])
  func badBlockSpecsGiveOneLineErrorAndExit2(arguments: [String], message: String) throws {
    let r = try CLI.run(arguments, stdin: "1 2 3")
    #expect(r.status == 2)
    #expect(r.stderr.split(separator: "\n").count == 1)
    #expect(r.stderr.contains(message), "\(r.stderr)")
  }
}
