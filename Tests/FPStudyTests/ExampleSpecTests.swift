import FPStudy
import Foundation
import Testing

/// The example specs in experiments/ state their run counts in their first comment; the count must
/// be what the spec expands to.
@Suite struct ExampleSpecTests {
  static let experiments = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("experiments")

  @Test(arguments: ["fp8-and-back.toml", "quickstart.toml"])
  func statedRunCountIsTheExpandedOne(file: String) throws {
    let path = Self.experiments.appendingPathComponent(file).path
    let text = try String(contentsOfFile: path, encoding: .utf8)
    let spec = try GridSpec(file: path)
    // "F formats x L learning rates x S seeds = N runs"
    let pattern = try Regex(#"(\d+) formats x (\d+) learning rates x (\d+) seeds = (\d+) runs"#)
    let match = try #require(text.firstMatch(of: pattern), "\(file) states no run count")
    let numbers = (1...4).compactMap { match.output[$0].substring.flatMap { Int($0) } }
    #expect(numbers == [spec.labels.count, spec.lrs.count, spec.seeds.count, spec.runs.count], "\(file)")
  }
}
