import Foundation
import Testing

/// Hostile input through the command line: every input exits 0 or 2, and 2 comes with exactly one
/// line `fpsim: error: ...` naming the problem (issue 14, items 3 and 5).
@Suite(.serialized) struct InputRobustnessTests {
  static func expectOneLineError(_ r: CLIResult, _ context: String, file: String = #filePath, line: Int = #line) {
    let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
    #expect(r.status == 2, "\(context): exit \(r.status): \(r.stderr.prefix(300))")
    #expect(lines.count == 1 && r.stderr.hasPrefix("fpsim: error: "), "\(context): \(r.stderr.prefix(300))")
  }

  /// Inputs that trapped (exit 132 and a backtrace) before issue 14, and inputs accepted that should not be.
  @Test(arguments: [
    (["quantize", "--format", "e2m1/ue8m0/16:"], "1 2", "empty option"),
    (["quantize", "--format", "e2m1/ue8m0/9223372036854775807"], "1 2", "at most 16777216"),
    (["quantize", "--format", "e2m1/ue8m0/16x16", "--shape", "4294967296x4294967296"], "1 2 3 4", "--shape"),
    (["quantize", "--format", "e4m3fn"], "5\u{0}abc", "malformed number '5\\0abc'"),
    (["quantize", "--format", "nvfp4@"], "1", "nvfp4@"),
    (["recipes", "fp32:format="], "", "no format given"),
    (["recipes", "fp32:keep-format="], "", "no format given"),
    (["recipes", "fp32:master-weights="], "", "no format given"),
    (["recipes", "fp32:optimizer-states="], "", "no format given"),
    (["recipes", "fp4:block=9223372036854775807"], "", "block size"),
    (["recipes", "fp32:format=bf16,format=e4m3fn"], "", "given twice"),
    (["recipes", "nvfp4@"], "", "nvfp4@"),
    (["quantize", "--format", "int1"], "1", "too few bits"),
    (["error", "--formats", "e4m3fn", "--dist", "bogus"], "", "unknown distribution 'bogus': use gaussian"),
    (["train", "--lr", "-1e-3", "--out", "/nonexistent/x.h5"], "", "learning rate must be a positive number"),
    (["train", "--seed", "-1", "--out", "/nonexistent/x.h5"], "", "seeds are integers from 0"),
    (["train", "--steps", "-5", "--out", "/nonexistent/x.h5"], "", "--steps must be a positive"),
    (["train", "--weight-decay", "nan", "--out", "/nonexistent/x.h5"], "", "--weight-decay must be a finite"),
    (["sharpness", "/nonexistent/x.h5", "--rho", "inf"], "", "--rho must be a positive finite"),
    (["sharpness", "/nonexistent/x.h5", "--rho", "-1"], "", "--rho must be a positive finite"),
    (["sharpness", "/nonexistent/x.h5", "--steps", "20,20"], "", "given twice"),
  ] as [([String], String, String)])
  func refusedWithOneLine(arguments: [String], stdin: String, message: String) throws {
    let r = try CLI.run(arguments, stdin: stdin)
    Self.expectOneLineError(r, arguments.joined(separator: " "))
    #expect(r.stderr.contains(message), "\(arguments): \(r.stderr)")
    #expect(!r.stderr.contains("invalid format: unknown distribution"))
  }

  /// A token echoed in an error is cut to 40 characters and its control characters escaped.
  @Test func echoedTokensAreShortAndEscaped() throws {
    let garbage = String(repeating: "z", count: 5000) + "\u{1b}[31m"
    let r = try CLI.run(["quantize", "--format", "e4m3fn"], stdin: garbage)
    Self.expectOneLineError(r, "garbage number")
    #expect(r.stderr.count < 300, "\(r.stderr.prefix(400))")
    #expect(r.stderr.contains(String(repeating: "z", count: 40) + "...(4965 more characters)"))
    let recipe = try CLI.run(["recipes", "fp32:format=e4m3fn\u{7}" + String(repeating: "q", count: 100)])
    Self.expectOneLineError(recipe, "bell in a recipe")
    #expect(!recipe.stderr.contains("\u{7}") && recipe.stderr.contains("\\u{7}"), "\(recipe.stderr)")
  }

  /// keep=layer:NAME must name a layer of the model; the message lists them.
  @Test func keepingAnUnknownLayerIsRefusedWithTheLayerNames() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("r.h5").path
    let r = try CLI.run(["train", "--model", "mlp", "--recipe", "bf16:keep=layer:bogus", "--steps", "2", "--data", dataDirectory, "--out", out])
    Self.expectOneLineError(r, "keep=layer:bogus")
    #expect(r.stderr.contains("'bogus'") && r.stderr.contains("use one of"), "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: out) && !FileManager.default.fileExists(atPath: out + ".partial"))
  }

  /// An unwritable folder: the file and the reason, no Foundation error text.
  @Test func anUnwritableFolderSaysSo() throws {
    for args in [["train", "--model", "linreg", "--steps", "2", "--data", dataDirectory, "--out", "/proc/fpsim-no/r.h5"],
                 ["grid", "--model", "linreg", "--formats", "bf16", "--lrs", "0.1", "--seeds", "0", "--steps", "2",
                  "--data", dataDirectory, "--out", "/proc/fpsim-no/g.h5"]] {
      let r = try CLI.run(args)
      Self.expectOneLineError(r, args[0])
      #expect(!r.stderr.contains("NSCocoaErrorDomain") && !r.stderr.contains("Code="), "\(r.stderr)")
      #expect(r.stderr.contains("/proc/fpsim-no"), "\(r.stderr)")
    }
  }

  static let cliSeeds: [[String]] = [
    ["quantize", "--format", "e2m1/ue5m3/16:tensor-scale"], ["quantize", "--format", "nvfp4"],
    ["quantize", "--format", "e4m3fn", "--rounding", "stochastic:8"], ["recipes", "fp4:scale=ue8m0,block=32"],
    ["recipes", "nvfp4:keep=head+last-blocks:2,master-weights=bf16:stochastic"], ["recipes", "uniform:e8m3:rtz"],
    ["error", "--formats", "mxfp4_e2m1,e4m3fn", "--dist", "student-t:3", "--n", "64"],
    ["quantize", "--format", "e2m1/ue8m0/2x2", "--shape", "2x2"],
  ]
  static let tokens = [":", "/", "=", ",", "@", "x", "+", "-", "0", "16", "-1", "9223372036854775807", "4294967296", "nan",
                       "inf", " ", "\t", "é", "'", "#", "\u{1b}", "rule=", "keep=", "layer:", "block="]

  /// A few hundred seeded mutations of valid command lines and numbers: exit 0, or 2 with one line.
  @Test func mutatedCommandLinesExitZeroOrTwoWithOneLine() throws {
    var rng = SeededRandom(seed: 2026)
    var errors = 0
    for i in 0..<300 {
      var args = Self.cliSeeds[Int(rng.next() % UInt64(Self.cliSeeds.count))]
      let k = 1 + Int(rng.next() % UInt64(args.count - 1))  // anything after the subcommand
      var chars = Array(args[k])
      for _ in 0...(rng.next() % 3) {
        let at = Int(rng.next() % UInt64(chars.count + 1))
        if rng.next() % 3 == 0, !chars.isEmpty { chars.remove(at: min(at, chars.count - 1)) } else {
          chars.insert(contentsOf: Self.tokens[Int(rng.next() % UInt64(Self.tokens.count))], at: at)
        }
      }
      args[k] = String(chars)
      var input = "1 2 3 4"
      if i % 5 == 0 {
        // Number input too: tokens glued to numbers.
        input = (0..<4).map { _ in ["1", "-2.5", "0x3f800000", "1e39", "nan"][Int(rng.next() % 5)] + (rng.next() % 2 == 0 ? Self.tokens[Int(rng.next() % UInt64(Self.tokens.count))] : "") }.joined(separator: " ")
      }
      let r = try CLI.run(args, stdin: input)
      #expect(r.status == 0 || r.status == 2, "\(args.debugDescription) <<< \(input.debugDescription): exit \(r.status)")
      if r.status != 0 {
        errors += 1
        Self.expectOneLineError(r, "\(args.debugDescription) <<< \(input.debugDescription)")
      }
    }
    #expect(errors > 20 && errors < 300, "the mutations should both pass and fail")
  }
}
