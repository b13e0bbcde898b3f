import FPEngine
import FPFormats
import FPStudy
import Foundation
import Testing

/// Seeded fuzzing of the parsers that take user text, in-process (thousands of inputs a run): each
/// input must parse or throw one of the parsers' typed errors (the CLI tests check that the command
/// line prints it as one line, user text escaped); a trap (overflow, index out of range,
/// force unwrap) kills the test process, which fails the run. Inputs are valid examples, mutated
/// (characters inserted, deleted, repeated; numbers replaced by extremes; two examples spliced), plus
/// random strings over the grammars' alphabet. `regressions` keeps every input that ever trapped.
@Suite struct ParserFuzzTests {
  /// Every input that made a parser trap before it was fixed (issue 14), kept as regression cases.
  static let regressions = [
    "e2m1/ue8m0/16:", "e2m1/ue8m0/9223372036854775807", "e2m1/ue8m0/9223372036854775807x9223372036854775807",
    "e2m1/ue8m0/4294967296x4294967296", "fp32:format=", "fp32:keep-format=", "fp32:master-weights=",
    "fp32:optimizer-states=", "fp4:block=9223372036854775807", "nvfp4@", "nvfp4@9223372036854775807x2",
    "fp32:keep=", "fp32:keep=+", "fp32:hadamard=+:16", "e2m1/ue8m0/16::", "e2m1/ue8m0/16:=", "fp32:format=@",
    "fp32:format=nvfp4@4294967296x4294967296", "mxfp4:master-weights=:rne",
  ]

  static let formatSeeds = [
    "e4m3fn", "e5m2", "bf16", "fp32", "e8m3", "e5m3b13fn-nosub", "ue5m3ieee", "ue8m0", "int4", "int24",
    "float8_e4m3fnuz", "e2m1/ue8m0/32", "e2m1/ue5m3/16:tensor-scale", "e2m1/ue8m0/16x16:rule=ceil",
    "e4m3fn/bf16/row", "e2m1/e4m3fn/tensor:scale-rounding=stochastic", "nvfp4", "mxfp4_e2m1", "mxint8",
  ]
  static let recipeSeeds = [
    "fp32", "bf16", "uniform:e8m3:rtz", "mxfp8", "nvfp4", "fp4", "fp4:scale=ue8m0,block=32,tensor-scale=on",
    "mxfp4:backward-rounding=stochastic,hadamard=wgrad:16", "fp32:format=nvfp4@16x16", "bf16:keep=head+first-blocks:2",
    "fp32:master-weights=bf16:stochastic,optimizer-states=e5m10:rtz", "nvfp4:loss-scale=dynamic:1024:2",
    "fp32:forward.x.format=e4m3fn,dgrad.hadamard=16,estimator=clipped-ste", "uniform:e4m3fn:stochastic:8",
    "fp32:keep=layer:transformer.h.0,keep-format=bf16", "fp32:sr=on,loss-scale=1024",
  ]
  static let tokens = [
    ":", "/", "=", ",", "@", "x", "+", ".", "-", "_", "0", "1", "16", "32", "-1", "9223372036854775807",
    "9223372036854775808", "4294967296", "18446744073709551616", "1e308", "nan", "inf", " ", "\t", "\0", "\r\n",
    "\n", "é", "😀", "\u{1b}", "'", "\"", "[", "]", "{", "}", "#", "e", "m", "b", "u", "fn", "fnuz", "ieee",
    "-nosub", "-nozero", "tensor-scale", "rule=", "format=", "keep=", "layer:", "stochastic", "dynamic:",
  ]

  /// A seeded mutation of one of `seeds`.
  static func mutate(_ seeds: [String], _ rng: inout SeededRandom) -> String {
    var s = Array(seeds[Int(rng.next() % UInt64(seeds.count))])
    for _ in 0...(rng.next() % 4) {
      let at = s.isEmpty ? 0 : Int(rng.next() % UInt64(s.count + 1))
      switch rng.next() % 6 {
      case 0, 1: s.insert(contentsOf: tokens[Int(rng.next() % UInt64(tokens.count))], at: at)
      case 2: if !s.isEmpty { s.removeSubrange(min(at, s.count - 1)..<min(s.count, at + 1 + Int(rng.next() % 4))) }
      case 3: s.insert(contentsOf: String(s.prefix(8)), at: at)
      case 4:  // a number replaced by an extreme one
        if let i = s.indices.first(where: { s[$0].isNumber && $0 >= at }) {
          var j = i
          while j < s.count && s[j].isNumber { j += 1 }
          s.replaceSubrange(i..<j, with: ["0", "9223372036854775807", "4294967296", "65536", "-3"][Int(rng.next() % 5)])
        }
      default: s += Array(seeds[Int(rng.next() % UInt64(seeds.count))])  // splice
      }
    }
    return String(s)
  }

  /// A random string over the grammars' tokens.
  static func random(_ rng: inout SeededRandom) -> String {
    (0..<(1 + rng.next() % 8)).map { _ in tokens[Int(rng.next() % UInt64(tokens.count))] }.joined()
  }

  static func inputs(_ seeds: [String], count: Int, seed: UInt64) -> [String] {
    var rng = SeededRandom(seed: seed)
    return regressions + seeds + (0..<count).map { i in i % 4 == 3 ? random(&rng) : mutate(seeds, &rng) }
  }

  /// The parsers' own error types, whose descriptions say what to fix.
  static func typed(_ error: Error) -> Bool {
    (error is RecipeError || error is FormatError || error is DistributionError || error is SpecError) && !"\(error)".isEmpty
  }

  @Test func formatSpecsParseOrThrowOneLineErrors() {
    var parsed = 0
    for input in Self.inputs(Self.formatSeeds, count: 6000, seed: 14) {
      do {
        let f = try AnyFormat(parsing: input)
        parsed += 1
        if case .scaled(let s) = f { #expect(try AnyFormat(parsing: s.spec).description.isEmpty == false, "\(input)") }
      } catch {
        #expect(Self.typed(error), "\(input.debugDescription): \(error)")
      }
      do { _ = try RoundingMode(parsing: input) } catch { #expect(Self.typed(error)) }
      do { _ = try Distribution(parsing: input) } catch { #expect(Self.typed(error)) }
    }
    #expect(parsed > 100, "the mutations should keep some inputs valid")
  }

  @Test func inlineRecipesParseOrThrowOneLineErrors() {
    var parsed = 0
    for input in Self.inputs(Self.recipeSeeds + Self.formatSeeds.map { "fp32:format=" + $0 }, count: 6000, seed: 15) {
      // Inputs that name files are left to the file test.
      if input.contains(".json") || input.contains(".toml") || input.contains("/") && FileManager.default.fileExists(atPath: input) { continue }
      do {
        let r = try Recipe(parsing: input)
        parsed += 1
        // What a run stores must read back as the same recipe.
        #expect(try Recipe(parsing: r.description) == r, "\(input.debugDescription) -> \(r.description)")
      } catch {
        #expect(Self.typed(error), "\(input.debugDescription): \(error)")
      }
    }
    #expect(parsed > 100)
  }

  static let recipeFileSeeds = [
    "base = \"mxfp4\"\n[backward]\nrounding = \"stochastic\"\nhadamard = \"wgrad:16\"\n",
    "{\"base\": \"nvfp4\", \"keep\": \"head\", \"forward\": {\"format\": \"e4m3fn\"}}",
    "# a comment\nbase = 'fp32'\nformat = \"bf16\"\nsr = true\n",
    "{\"base\": \"fp4:scale=ue8m0\", \"master-weights\": \"bf16:stochastic\"}",
  ]
  static let specSeeds = [
    "model = \"gpt-micro\"\nformats = [\"e8m7\", \"e8m3\"]\nlrs = [1e-3, 3e-3]\nseeds = \"0..2\"\nsteps = 20\n[divergence]\nmargin = 1.0\n",
    "{\"model\": \"linreg\", \"recipes\": [\"fp32\", \"bf16\"], \"lrs\": [0.1], \"seeds\": [0, 1], \"steps\": 10}",
    "model = 'mlp'\nformats = [\n  \"e4m3fn\",\n  \"e5m2\",\n]\nsteps = 1_000\n",
  ]

  @Test func recipeFilesAndSpecDocumentsParseOrThrowOneLineErrors() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fpsim-fuzz-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    var rng = SeededRandom(seed: 16)
    for i in 0..<600 {
      let text = Self.mutate(Self.recipeFileSeeds, &rng)
      let path = dir.appendingPathComponent("r\(i)" + (text.hasPrefix("{") ? ".json" : ".toml")).path
      try text.write(toFile: path, atomically: false, encoding: .utf8)
      do { _ = try Recipe(file: path) } catch { #expect(Self.typed(error), "\(text.debugDescription): \(error)") }
    }
    for _ in 0..<3000 {
      let text = Self.mutate(Self.specSeeds, &rng)
      do { _ = try SpecDocument(text: text, file: "spec.toml") } catch {
        #expect(Self.typed(error), "\(text.debugDescription): \(error)")
      }
    }
  }

  /// CRLF line ends read as LF; keys given twice are refused in every file kind.
  @Test func crlfIsAcceptedAndDuplicateKeysAreRefused() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fpsim-files-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    func file(_ name: String, _ text: String) throws -> String {
      let p = dir.appendingPathComponent(name).path
      try text.write(toFile: p, atomically: false, encoding: .utf8)
      return p
    }
    let lf = try Recipe(file: try file("a.toml", "base = \"mxfp4\"\n[backward]\nrounding = \"stochastic\"\n"))
    let crlf = try Recipe(file: try file("b.toml", "base = \"mxfp4\"\r\n[backward]\r\nrounding = \"stochastic\"\r\n"))
    #expect(lf == crlf)
    #expect(try Recipe(file: try file("c.json", "{\"base\": \"mxfp4\",\r\n \"sr\": \"on\"}\r\n")) == (try Recipe(parsing: "mxfp4:sr=on")))
    let spec = try SpecDocument(text: "model = \"mlp\"\r\nsteps = 5\r\n[divergence]\r\nmargin = 2\r\n", file: "s.toml")
    #expect(spec.entries["divergence.margin"]?.value == .number(2))
    #expect(spec.entries["steps"]?.value == .number(5))

    for (name, text) in [("d.toml", "base = \"fp32\"\nformat = \"bf16\"\nformat = \"e4m3fn\"\n"),
                         ("e.json", "{\"base\": \"fp32\", \"format\": \"bf16\", \"format\": \"e4m3fn\"}"),
                         ("f.json", "{\"forward\": {\"format\": \"bf16\"}, \"forward.format\": \"e4m3fn\"}")] {
      #expect(throws: RecipeError.self) { try Recipe(file: try file(name, text)) }
    }
    #expect(throws: RecipeError.self) { try Recipe(parsing: "fp32:format=bf16,format=e4m3fn") }
    #expect(throws: RecipeError.self) { try Recipe(parsing: "fp32:master-weights=bf16,master_weights=fp32") }
    let json = "{\"model\": \"mlp\", \"steps\": 5, \"steps\": 6}"
    #expect(throws: SpecError.self) { try SpecDocument(text: json, file: "s.json") }
    #expect(JSONDuplicateKeys.first(in: Array("{\"a\": {\"b\": 1}, \"c\": {\"b\": 2}, \"d\": [\"a\", \"a\"]}".utf8)) == nil)
    #expect(JSONDuplicateKeys.first(in: Array("{\"a\": 1,\n \"a\": 2}".utf8))! == ("a", 2))
  }

  @Test func blockSizesAreBoundedSoTheirArithmeticCannotOverflow() throws {
    #expect(throws: FormatError.self) { try AnyFormat(parsing: "e2m1/ue8m0/16777217") }
    #expect(throws: FormatError.self) { try AnyFormat(parsing: "e2m1/ue8m0/4096x4097") }
    #expect(try AnyFormat(parsing: "e2m1/ue8m0/4096x4096").description == "e2m1/ue8m0/4096x4096")
    #expect(throws: RecipeError.self) { try Recipe(parsing: "fp4:block=16777217") }
    #expect(throws: RecipeError.self) { try Recipe(parsing: "fp32:format=nvfp4@65536x65536") }
  }
}

/// SplitMix64 (the same generator as the fpsim CLI tests'), so every fuzz input is reproducible.
struct SeededRandom: RandomNumberGenerator {
  private var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
