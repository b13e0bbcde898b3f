import Foundation
import Testing

/// Numbers in `fpsim formats --json` hold exact values (checked by Python's float parser against
/// closed forms and ml_dtypes), and block specs are described with their bits per value.
@Suite struct FormatsJSONTests {
  /// Every catalog format: `max`, `min_normal`, `min_subnormal` and `epsilon` parse (Python `float`)
  /// to exactly the closed-form powers of two, and to ml_dtypes' / numpy's finfo where the name is
  /// shared.
  @Test func catalogNumbersParseToTheirExactValues() throws {
    let r = try CLI.run(["formats", "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("fpsim-formats-\(UUID().uuidString).json")
    try r.stdout.write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    let out = try python("""
      import json, math, numpy as np, ml_dtypes
      formats = json.load(open('\(file.path)'))
      bad, checked, shared = [], 0, 0
      def same(f, key, want):
          global checked
          got = f[key]
          checked += 1
          if got is None or want is None:
              if got is not want: bad.append((f['name'], key, got, want))
          elif float(got) != want: bad.append((f['name'], key, got, want))
      for f in formats:
          E, M, bias, policy = f['exponent_bits'], f['mantissa_bits'], f['bias'], f['policy']
          nozero = 'nozero' in f['generic']
          if E == 0:  # integers: sign-magnitude, max 2^M - 1, step 1
              same(f, 'max', 2.0**M - 1); same(f, 'min_subnormal', 1.0); same(f, 'min_normal', None)
          else:
              top = 2**E - 1 - bias                                  # exponent of the top binade
              if policy == 'ieee': mx = (2 - 2.0**-M) * 2.0**(top - 1)
              elif policy == 'fn' and M == 0: mx = 2.0**(top - 1)     # all ones is NaN: the binade below
              elif policy == 'fn': mx = (2 - 2 * 2.0**-M) * 2.0**top  # all ones is NaN
              else: mx = (2 - 2.0**-M) * 2.0**top                     # fnuz, finite
              same(f, 'max', mx)
              same(f, 'min_normal', 2.0**(-bias if nozero else 1 - bias))
              same(f, 'min_subnormal', 2.0**(1 - bias - M) if f['subnormals'] and M > 0 else None)
          same(f, 'epsilon', 2.0**-M)
          assert abs(f['dynamic_range_binades'] - math.log2(f['max'] / (f['min_subnormal'] or f['min_normal']))) < 1e-12, f
          dtype = {'float32': np.float32, 'float16': np.float16}.get(f['name']) or getattr(ml_dtypes, f['name'], None)
          if dtype is not None and E > 0:
              shared += 1
              fi = ml_dtypes.finfo(dtype)
              same(f, 'max', float(fi.max)); same(f, 'min_normal', float(fi.smallest_normal)); same(f, 'epsilon', float(fi.eps))
              if f['min_subnormal'] is not None: same(f, 'min_subnormal', float(fi.smallest_subnormal))
      print(len(formats), shared, checked, bad)
      """)
    let fields = out.split(separator: " ", maxSplits: 3).map(String.init)
    #expect(fields.count == 4 && Int(fields[0])! >= 19 && Int(fields[1])! >= 13, "\(out)")
    #expect(fields.last == "[]\n", "numbers that do not parse to their exact value: \(out)")
  }

  /// The example, spelled out: e5m2's min_normal is 2^-14 exactly.
  @Test func e5m2MinNormalIsExactlyTwoToTheMinus14() throws {
    let r = try CLI.run(["formats", "e5m2", "--json"])
    let check = try python("""
      import json
      f = json.loads('''\(r.stdout)''')[0]
      print(float(f['min_normal']) == 2**-14, float(f['min_subnormal']) == 2**-16, float(f['max']) == 57344)
      """)
    #expect(check == "True True True\n")
  }

  /// `--values --json`: every code's value equals ml_dtypes' decoding of the code, as a float64.
  @Test(arguments: ["float8_e5m2", "float8_e4m3fn", "float8_e4m3fnuz", "float6_e3m2fn", "float4_e2m1fn", "float8_e8m0fnu"])
  func codeValuesAreExact(format: String) throws {
    let r = try CLI.run(["formats", format, "--values", "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("fpsim-values-\(UUID().uuidString).json")
    try r.stdout.write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    let check = try python("""
      import json, math, numpy as np, ml_dtypes
      rows = json.load(open('\(file.path)'))['\(format)']
      dt = getattr(ml_dtypes, '\(format)')
      want = np.arange(len(rows), dtype=np.uint8).view(dt).astype(np.float64)
      bad = [(r['code'], r['value'], w) for r, w in zip(rows, want)
             if not (isinstance(r['value'], str) and math.isnan(w)) and float(r['value']) != w]
      print(len(rows), bad)
      """)
    #expect(check.hasSuffix(" []\n"), "\(check)")
  }

  @Test func blockSpecTableShowsElementScaleBlockAndBits() throws {
    let r = try CLI.run(["formats", "e2m1/ue5m3/16", "nvfp4"])
    #expect(r.status == 0, "\(r.stderr)")
    let lines = r.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
    #expect(lines[0] == ["name", "element", "scale", "block", "tensor", "scale", "scale", "rule", "bits/value", "counted", "as"])
    #expect(lines[1] == ["e2m1/ue5m3/16", "float4_e2m1fn", "ue5m3", "16", "-", "amax", "4.5", "4", "+", "8/16"])
    #expect(lines[2] == ["nvfp4", "float4_e2m1fn", "float8_e4m3fn", "16", "float32", "nvfp4", "4.5", "+", "32/N", "4", "+", "8/16", "+", "32/N"])
    // Then the element and scale formats' own properties, each once.
    for name in ["float4_e2m1fn", "ue5m3", "float8_e4m3fn"] {
      #expect(lines.filter { $0.first == name }.count == 1, "\(name)")
    }
  }

  @Test func blockSpecJSONCountsBitsPerValue() throws {
    let r = try CLI.run(["formats", "mxfp4_e2m1", "nvfp4", "e2m1/ue5m3/16", "e2m1/ue8m0/16x16", "e4m3fn", "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    let list = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
    #expect(list.count == 5)
    let mx = list[0], nv = list[1], ue5 = list[2], tile = list[3]
    #expect(mx["bits_per_value"] as? Double == 4.25 && mx["bits_per_value_formula"] as? String == "4 + 8/32")
    #expect(nv["bits_per_value"] as? Double == 4.5 && nv["tensor_scale_bits"] as? Int == 32)
    #expect(nv["bits_per_value_formula"] as? String == "4 + 8/16 + 32/N")
    #expect(nv["tensor_scale"] as? Bool == true && mx["tensor_scale"] as? Bool == false)
    #expect(nv["scale_rule"] as? String == "nvfp4" && nv["generic"] is NSNull, "nvfp4's rule has no generic spelling")
    #expect(ue5["scale_rule"] as? String == "amax" && ue5["bits_per_value"] as? Double == 4.5)
    #expect(tile["block_shape"] as? [Int] == [16, 16] && tile["values_per_block"] as? Int == 256)
    #expect(tile["bits_per_value"] as? Double == 4 + 8.0 / 256)
    let element = try #require(nv["element"] as? [String: Any]), scale = try #require(nv["scale"] as? [String: Any])
    #expect(element["name"] as? String == "float4_e2m1fn" && element["max"] as? Double == 6)
    #expect(scale["name"] as? String == "float8_e4m3fn" && scale["max"] as? Double == 448)
    #expect((mx["scale"] as? [String: Any])?["name"] as? String == "float8_e8m0fnu")
    #expect(list[4]["name"] as? String == "float8_e4m3fn" && list[4]["block"] == nil, "element formats as before")
    // The generic spelling parses back to the same format.
    let generic = try #require(mx["generic"] as? String)
    let again = try CLI.run(["formats", generic, "--json"])
    let back = try #require(try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [[String: Any]])
    #expect(back[0]["bits_per_value"] as? Double == 4.25 && back[0]["scale_rule"] as? String == "floor")
  }

  @Test func valuesOfABlockFormatPointToItsElementAndScale() throws {
    let r = try CLI.run(["formats", "nvfp4", "--values"])
    #expect(r.status == 2 && r.stdout.isEmpty)
    #expect(r.stderr.hasPrefix("fpsim: error: ") && r.stderr.contains("fpsim formats float4_e2m1fn float8_e4m3fn --values"), "\(r.stderr)")
  }
}
