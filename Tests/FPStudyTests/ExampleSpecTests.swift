import FPStudy
import Foundation
import Testing

/// The example specs in experiments/ state their run counts in their first comment; the count must
/// be what the spec expands to.
@Suite struct ExampleSpecTests {
  static let experiments = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("experiments")

  /// Every grid spec under experiments/ (recipe files aside).
  static var specs: [String] {
    let walk = FileManager.default.enumerator(atPath: experiments.path)
    return (walk?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".toml") && !$0.hasPrefix("recipes/") }.sorted()
  }

  @Test func theStudiesAreFound() {
    #expect(Self.specs.contains("quickstart.toml") && Self.specs.contains("fp8-and-back/mantissa.toml"), "\(Self.specs)")
  }

  /// "A x B x ... = N runs": the factors multiply to N, and N is what the spec expands to.
  @Test(arguments: specs)
  func statedRunCountIsTheExpandedOne(file: String) throws {
    let path = Self.experiments.appendingPathComponent(file).path
    let text = try String(contentsOfFile: path, encoding: .utf8)
    let spec = try GridSpec(file: path)
    let pattern = try Regex(#"((?:\d+ [a-z ]+ x )+\d+ [a-z ]+) = (\d+) runs"#)
    let match = try #require(text.firstMatch(of: pattern), "\(file) states no run count")
    let factors = match.output[1].substring!.split(separator: " x ").compactMap { Int($0.split(separator: " ")[0]) }
    let stated = Int(match.output[2].substring!)!
    #expect(factors.reduce(1, *) == stated, "\(file): \(factors)")
    #expect(stated == spec.runs.count, "\(file)")
  }
}
