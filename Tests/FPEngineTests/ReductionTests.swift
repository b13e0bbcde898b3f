@testable import FPEngine
import Testing

@Suite struct ReductionTests {
  /// `Reduce.max` against the definition in Double (the largest non-NaN value, -Inf when none), on
  /// lengths around the vector width, with NaNs of both signs, infinities, zeros of both signs and
  /// subnormals mixed in; and, as the attention softmax uses it, `row - max` has the bits of the
  /// scalar loop's `row - m` (the two may differ only in a zero maximum's sign, which no difference
  /// x - m with x != ±0 sees, and which x = ±0 turns into a zero whose exponential is 1 either way).
  @Test func maxIsTheLargestNonNaNValue() {
    var rng = TestRNG(21)
    let specials: [Float] = [.nan, -.nan, .infinity, -.infinity, 0, -0, .leastNonzeroMagnitude, -.leastNonzeroMagnitude]
    for n in [0, 1, 2, 15, 16, 17, 33, 100, 128] {
      for trial in 0..<40 {
        var x = rng.floats(n, scale: 8)
        for i in 0..<n where rng.next() % 4 == 0 { x[i] = specials[Int(rng.next() % UInt64(specials.count))] }
        if trial % 5 == 0 { for i in 0..<n { x[i] = -abs(x[i]) } }  // all negative
        let expected = x.filter { !$0.isNaN }.map(Double.init).max() ?? -.infinity
        let m = x.withUnsafeBufferPointer { Reduce.max($0.baseAddress ?? UnsafePointer(bitPattern: 64)!, n) }
        #expect(Double(m) == expected, "n \(n) trial \(trial)")
        var scalar = -Float.infinity
        for v in x { scalar = Swift.max(scalar, v) }
        for v in x where v != 0 { #expect((v - m).bitPattern == (v - scalar).bitPattern || (v - m).isNaN) }
      }
    }
  }
}
