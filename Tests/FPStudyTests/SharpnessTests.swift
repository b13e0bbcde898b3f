import FPStudy
import Foundation
import Testing

@Suite struct KeskarTests {
  /// The cross-entropy is convex in the logits, so its maximum over the box is at a vertex: the
  /// brute-force maximum over all 2^V vertices is the oracle. Tolerance 1e-9 (Double arithmetic).
  @Test func keskarAscentReachesTheBruteForceMaximum() {
    var rng = SplitMix64(seed: 0x5EED)
    for trial in 0..<20 {
      let V = 5
      let z = (0..<V).map { _ in Double.random(in: -4...4, using: &rng) }
      let target = trial % V
      let epsilon = [1e-3, 1e-2, 0.1, 0.5][trial % 4]
      let w = z.map { epsilon * (abs($0) + 1) }
      var best = -Double.infinity
      for mask in 0..<(1 << V) {
        let y = (0..<V).map { mask >> $0 & 1 == 1 ? w[$0] : -w[$0] }
        best = max(best, Sharpness.crossEntropy(zip(z, y).map { $0 + $1 }, target))
      }
      let base = Sharpness.crossEntropy(z, target)
      let expected = 100 * (best - base) / (1 + base)
      let phi = Sharpness.keskarPhi(z: z, target: target, epsilon: epsilon, steps: 20)
      #expect(abs(phi - expected) <= 1e-9 * max(1, abs(expected)), "trial \(trial): \(phi) vs \(expected)")
    }
  }

  @Test func keskarIsZeroWithoutABoxAndGrowsWithIt() {
    let z = [1.0, -0.5, 2.0, 0.3], target = 1
    #expect(Sharpness.keskarPhi(z: z, target: target, epsilon: 0, steps: 20) == 0)
    var last = 0.0
    for e in [1e-4, 1e-3, 1e-2, 1e-1] {
      let phi = Sharpness.keskarPhi(z: z, target: target, epsilon: e, steps: 20)
      #expect(phi > last)
      last = phi
    }
  }
}

/// A seeded generator (SplitMix64, Steele et al. 2014), so every run of the test draws the same logits.
struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
