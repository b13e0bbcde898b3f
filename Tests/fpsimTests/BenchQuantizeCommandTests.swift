import Foundation
import Testing

/// `fpsim bench quantize` through the built binary, on small buffers (the rates themselves are not
/// checked: no wall-clock assertions).
@Suite struct BenchQuantizeCommandTests {
  /// Both passes report what they timed: `counting` says which one, and every rate is a positive rate.
  @Test(arguments: [[], ["--counting"]])
  func reportsThePassItTimedBesideTheCopy(extra: [String]) throws {
    let r = try CLI.run(
      ["bench", "quantize", "--format", "e4m3fn", "--n", "70000", "--threads", "2", "--repeats", "2", "--json"] + extra)
    #expect(r.status == 0, "\(r.stderr)")
    let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    #expect(json["counting"] as? Bool == !extra.isEmpty)
    #expect(json["n"] as? Int == 70000 && json["threads"] as? Int == 2 && json["repeats"] as? Int == 2)
    for key in ["elements_per_second", "copy_elements_per_second", "fraction_of_copy"] {
      #expect((json[key] as? Double ?? 0) > 0, "\(key)")
    }
    let text = try CLI.run(["bench", "quantize", "--format", "e4m3fn", "--n", "4096", "--repeats", "1"] + extra)
    #expect(text.stdout.contains(extra.isEmpty ? "fpsim quantize (in place): " : "fpsim counting pass (out of place, as training): "))
  }

  /// Training counts only element formats' passes this way: a block format or a transform is refused.
  @Test(arguments: [
    (["--format", "mxfp4_e2m1"], "'mxfp4_e2m1' is a block format: drop --counting"),
    (["--format", "e4m3fn", "--hadamard", "16"], "no transform: drop --hadamard or --counting"),
  ])
  func countingRefusesWhatTrainingDoesNotCount(options: [String], fix: String) throws {
    let r = try CLI.run(["bench", "quantize", "--n", "4096", "--counting"] + options)
    #expect(r.status == 2)
    #expect(r.stdout.isEmpty)
    #expect(r.stderr.hasPrefix("fpsim: error: --counting times element formats' rounding pass"), "\(r.stderr)")
    #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.hasSuffix(fix + "\n"), "\(r.stderr)")
  }
}
