import Foundation
import Testing

@testable import FPStudy

/// The run statuses and the summary on hand-made cells, each number worked out by hand.
struct GridSummaryTests {
  /// Two formats x three learning rates x two seeds; cells given as (final eval, lowest eval, diverged).
  static func spec() throws -> GridSpec {
    try GridSpec(
      model: "gpt-micro", labels: ["a", "b"], recipes: ["fp32", "bf16"], labelKind: "format", lrs: [0.001, 0.01, 0.1],
      seeds: [0, 1], steps: 10)
  }

  static func cell(_ eval: Float, min: Float? = nil, diverged: Bool = false) -> GridResults.Cell {
    var c = GridResults.Cell()
    c.present = true
    c.finalEval = eval
    c.minEval = min ?? eval
    c.diverged = diverged
    return c
  }

  /// Cells in spec order: label, then lr, then seed.
  static func cells(_ rows: [[GridResults.Cell]]) -> [GridResults.Cell] { rows.flatMap { $0 } }

  @Test func everyRuleIsAppliedInItsOrder() throws {
    let spec = try Self.spec()
    let chance = 3.3
    let cells = Self.cells([
      // a (the baseline): lr 0.001 seeds 0/1, lr 0.01, lr 0.1
      [Self.cell(2.0), Self.cell(2.1), Self.cell(1.8), Self.cell(1.9), Self.cell(.nan, diverged: true), Self.cell(2.2)],
      // b
      [Self.cell(2.1), Self.cell(2.95, min: 2.6), Self.cell(2.5), Self.cell(1.95), Self.cell(3.25), Self.cell(4.0, min: 3.5)],
    ])
    let s = GridResults.statuses(spec: spec, cells: cells, chance: chance)
    // a: best per seed is 1.8 / 1.9 (lr 0.01); 2.0 and 2.1 are within 0.5; the NaN run diverged;
    // 2.2 is within 0.5 of 1.9.
    #expect(s[0..<6].map(\.name) == ["learned", "learned", "learned", "learned", "diverged", "learned"])
    // b seed 0: 2.1 learned (baseline 2.0, best 2.1); lr 0.01 2.5 > baseline 1.8 + 0.5; lr 0.1 3.25 is within 2% of chance 3.3 (above 3.234).
    // b seed 1: 2.95 rose 0.35 above its own lowest 2.6 (> 0.3): blew up; 1.95 learned; 4.0 rose 0.5
    // above 3.5: blew up comes before at chance.
    #expect(s[6..<12].map(\.name) == ["learned", "blew_up", "worse_than_baseline", "learned", "at_chance", "blew_up"])
  }

  @Test func withoutAChanceLevelTheBestLearningRateDecides() throws {
    let spec = try Self.spec()
    let cells = Self.cells([
      [Self.cell(2.0), Self.cell(2.0), Self.cell(2.9), Self.cell(2.4), Self.cell(2.0), Self.cell(2.0)],
      [Self.cell(2.0), Self.cell(2.0), Self.cell(2.0), Self.cell(2.0), Self.cell(2.0), Self.cell(2.0)],
    ])
    let s = GridResults.statuses(spec: spec, cells: cells, chance: nil)
    // a, lr 0.01, seed 0: 2.9 > 2.0 + 0.5 (its best lr's); seed 1: 2.4 is within.
    #expect(s[2] == .worseThanBestLR)
    #expect(s[3] == .learned)
    #expect(s.filter { $0 == .learned }.count == 11)
  }

  @Test func summaryFractionsBestLearningRateAndStableWindow() throws {
    let spec = try Self.spec()
    let cells = Self.cells([
      [Self.cell(2.0), Self.cell(2.2), Self.cell(1.8), Self.cell(1.9), Self.cell(.nan, diverged: true), Self.cell(2.2)],
      [Self.cell(3.5), Self.cell(3.6), Self.cell(3.4), Self.cell(3.5), Self.cell(3.45), Self.cell(3.4)],
    ])
    let status = GridResults.statuses(spec: spec, cells: cells, chance: 3.3)
    let rows = GridResults.rows(spec: spec, cells: cells, status: status)
    // a: the median over seeds is 2.1 at lr 0.001 and 1.85 at lr 0.01 (best); lr 0.1 has a diverged seed.
    #expect(rows[0].bestLR == 0.01)
    #expect(rows[0].medianEvalLoss == (Double(Float(1.8)) + Double(Float(1.9))) / 2)
    #expect(rows[0].minEvalLoss == Double(Float(1.8)) && rows[0].maxEvalLoss == Double(Float(1.9)))
    #expect(rows[0].stableLRs == [0.001, 0.01])
    #expect(rows[0].divergedFraction == 1.0 / 6)
    #expect(rows[0].failedToLearnFraction == 0)
    // b never goes below chance: never learned, never stable, even though its best lr exists.
    #expect(rows[1].statusFractions["at_chance"] == 1)
    #expect(rows[1].failedToLearnFraction == 1)
    #expect(rows[1].stableLRs.isEmpty)
    #expect(rows[1].bestLR == 0.1)  // medians 3.55, 3.45, 3.425
  }

  @Test func theSummaryJSONSpellsItsKeysAsDocumented() throws {
    let spec = try Self.spec()
    let cells = Self.cells([Array(repeating: Self.cell(2.0), count: 6), Array(repeating: Self.cell(2.0), count: 6)])
    let rows = GridResults.rows(spec: spec, cells: cells, status: GridResults.statuses(spec: spec, cells: cells, chance: 3))
    let json = try GridResults.summaryJSON(rows)
    for key in ["\"stable_lrs\":[0.001,0.01,0.1]", "\"best_lr\":0.001", "\"failed_to_learn_fraction\":0", "\"status_fractions\""] {
      #expect(json.contains(key), "\(json)")
    }
  }
}
