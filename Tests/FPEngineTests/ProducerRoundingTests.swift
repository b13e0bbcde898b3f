@testable import FPEngine
import FPFormats
import Foundation
import Testing

/// A producer's block-by-block rounding (`ProducerRounding`) against one rounding pass over the whole
/// tensor (`ElementRounding.round`, as a layer rounds its operand itself): the same bits and counts
/// whatever the blocks and their order. The end-to-end check, through gpt-micro's GELU and the
/// snapshots of the layers it feeds, is `OperandSnapshotTests`.
@Suite struct ProducerRoundingTests {
  @Test(arguments: ["e4m3fn", "e2m1", "e8m3"], [RoundingMode.rne, .stochastic])
  func blocksInAnyOrderEqualOnePass(format: String, rounding: RoundingMode) throws {
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
    var blocked = [Float](repeating: 0, count: n)
    let counts = blocked.withUnsafeMutableBufferPointer { out in
      let p = ProducerRounding(rounder: r, seed: 3, stream: 9, into: out.baseAddress!, countEvents: true)
      src.withUnsafeBufferPointer { s in
        for (lo, count) in [(4_000, 1_007), (0, 1_000), (2_500, 1_500), (1_000, 1_500)] {
          p.round(s.baseAddress!, from: lo, count: count)
        }
      }
      return p.counts
    }
    let differing = zip(whole, blocked).filter { $0.bitPattern != $1.bitPattern }.count
    #expect(differing == 0, "\(format) \(rounding): \(differing) values differ")
    #expect(counts == expected)
  }
}
