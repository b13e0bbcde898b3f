@testable import FPEngine
import FPFormats
import Foundation
import Testing

/// A producer's block-by-block rounding (`ProducerRounding`) against one rounding pass over the whole
/// tensor (`ElementRounding.round`, as a layer rounds its operand itself): the same bits and counts
/// whatever the blocks and their order. The end-to-end check, through gpt-micro's GELU and the
/// snapshots of the layers it feeds, is `OperandSnapshotTests`.
@Suite struct ProducerRoundingTests {
  /// In a separate buffer and in place (the producer's output overwritten).
  @Test(arguments: ["e4m3fn", "e2m1", "e8m3"], [RoundingMode.rne, .stochastic])
  func blocksInAnyOrderEqualOnePass(format: String, rounding: RoundingMode) throws {
    for inPlace in [false, true] { try blocksInAnyOrderEqualOnePass(format: format, rounding: rounding, inPlace: inPlace) }
  }

  func blocksInAnyOrderEqualOnePass(format: String, rounding: RoundingMode, inPlace: Bool) throws {
    let r = ElementRounding(format: try FloatFormat(parsing: format), rounding: rounding)
    let n = 5_007
    // Values across the format's range and beyond (saturations and flushes), and specials.
    var src = [Float](repeating: 0, count: n)
    for i in 0..<n {
      let magnitude = exp2(Double(i % 40) - 20)
      src[i] = Float(sin(Double(i) * 0.37) * magnitude)
    }
    for (i, v) in [Float.nan, .infinity, -.infinity, 0, -0.0, 1e-30, 1e30, .leastNonzeroMagnitude].enumerated() { src[i * 700 + 3] = v }
    var whole = [Float](repeating: 0, count: n)
    let layout = OperandLayout(rows: 1, cols: n, reducesAlongRows: false)
    let expected = r.round(src, into: &whole, layout: layout, seed: 3, stream: 9, threads: 1, countEvents: true)
    #expect(expected.flushed > 0 && expected.saturated > 0, "the counts are exercised: \(expected)")
    var produced = src, blocked = [Float](repeating: 0, count: n)
    let counts = produced.withUnsafeMutableBufferPointer { output in
      blocked.withUnsafeMutableBufferPointer { separate in
        let p = ProducerRounding(
          rounder: r, seed: 3, stream: 9, source: output.baseAddress!,
          into: inPlace ? output.baseAddress! : separate.baseAddress!, countEvents: true)
        #expect(p.inPlace == inPlace)
        for (lo, count) in [(4_000, 1_007), (0, 1_000), (2_500, 1_500), (1_000, 1_500)] { p.round(from: lo, count: count) }
        return p.counts
      }
    }
    if inPlace { blocked = produced }
    let differing = zip(whole, blocked).filter { $0.bitPattern != $1.bitPattern }.count
    #expect(differing == 0, "\(format) \(rounding) in place \(inPlace): \(differing) values differ")
    #expect(counts == expected)
  }
}
