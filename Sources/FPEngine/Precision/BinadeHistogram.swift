import Foundation  // log2, pow (the reference)
import CExponentCounts
import FPFormats

/// The exponent distribution of one GEMM operand as it enters rounding: for every binade
/// b = floor(log2 |x|) of float32 (b in -149...127, subnormals included), how many nonzero finite values
/// lie in [2^b, 2^(b+1)); and how many values were zero, not finite (Inf, NaN), flushed to zero by the
/// rounding and saturated by it (the last two are `RoundingCounts.flushed` / `saturated` of the same
/// rounding, so `flushed / total` is exactly the telemetry fraction `metrics/flushed`).
///
/// Counted at every training step for every rounded operand (see `LinearGEMMs`); cheap: one pass over
/// the float32 bit patterns, no logarithm (`count` below, checked against `referenceBinade`).
public struct BinadeHistogram: Hashable, Sendable {
  /// The binades of nonzero finite float32 values: 2^-149 (the smallest subnormal) ... 2^127.
  public static let binades = -149...127
  public static let binCount = 277

  /// `binCount` counts, index `b + 149` for binade b.
  public var counts: [Int32]
  public var zeros: Int32 = 0
  public var nonFinite: Int32 = 0
  public var flushed: Int32 = 0
  public var saturated: Int32 = 0

  public init() { counts = [Int32](repeating: 0, count: Self.binCount) }

  public init(counts: [Int32], zeros: Int32, nonFinite: Int32, flushed: Int32 = 0, saturated: Int32 = 0) {
    precondition(counts.count == Self.binCount, "a binade histogram has \(Self.binCount) bins, got \(counts.count)")
    self.counts = counts
    self.zeros = zeros
    self.nonFinite = nonFinite
    self.flushed = flushed
    self.saturated = saturated
  }

  /// Values counted (nonzero finite + zeros + non-finite): the operand's element count.
  public var total: Int { counts.reduce(0) { $0 + Int($1) } + Int(zeros) + Int(nonFinite) }

  /// floor(log2 |x|) of a nonzero finite x, by definition (the oracle of `count`); nil for zeros and
  /// non-finite values. Exact: |x| is a float32, so `Double` holds it and log2 of a power of two is exact;
  /// the correction steps guard the one-ulp error log2 may make just below a power of two.
  public static func referenceBinade(_ x: Float) -> Int? {
    guard x != 0, x.isFinite else { return nil }
    let a = Double(x.magnitude)
    var b = Int(log2(a).rounded(.down))
    while pow(2.0, Double(b)) > a { b -= 1 }
    while pow(2.0, Double(b + 1)) <= a { b += 1 }
    return b
  }

  /// The loops that count exponent fields, slowest first; all give the same counts.
  public enum CountPath: Int32, CaseIterable, Sendable {
    /// Eight interleaved scalar tables: any CPU, about 3 G values/s.
    case tables = 0
    /// 32 values a step against a window of 12 exponents (AVX2): 5.4-7.8 G values/s on tensors.
    case window = 1
    /// 64 values a step against a window of 16, one-hot bytes counted by bit transposes and byte
    /// popcounts (AVX-512 VBMI, BITALG, GFNI): 11.7-14.6 G values/s on tensors.
    case oneHot = 2

    /// The path `count` takes on this CPU when asked for this one.
    public var onThisCPU: CountPath { CountPath(rawValue: fpsim_exponent_count_path(rawValue))! }
  }

  /// Counts the n values at `x` into `h` (`binCount` counts, overwritten), returning (zeros, nonFinite).
  ///
  /// From the bit pattern: a biased exponent field e in 1...254 is binade e - 127 (index e + 22); e = 0
  /// with mantissa m != 0 is a subnormal m * 2^-149, binade (31 - lzcnt(m)) - 149 (index 31 - lzcnt(m));
  /// e = 0, m = 0 is a zero; e = 255 is Inf or NaN. The hot loop only counts e (`fpsim_count_exponents`,
  /// C, on `path` or the fastest below it that the CPU has). Only when some e was 0 does a second pass
  /// count the zeros (16 lanes at a time), and only when they are not all zeros a third one the subnormals.
  public static func count(
    _ x: UnsafePointer<Float>, _ n: Int, into h: UnsafeMutablePointer<Int32>, path: CountPath = .oneHot
  ) -> (zeros: Int32, nonFinite: Int32) {
    withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 256) { buffer in
      let t = buffer.baseAddress!
      t.initialize(repeating: 0, count: 256)
      return x.withMemoryRebound(to: UInt32.self, capacity: n) { bits -> (zeros: Int32, nonFinite: Int32) in
        fpsim_count_exponents(bits, n, t, path.rawValue)
        for k in 0..<23 { h[k] = 0 }
        var zeros = t[0]
        if t[0] > 0 {
          let z = countZeros(bits, n)
          zeros = z
          if z != t[0] {
            for j in 0..<n {
              let b = bits[j] & 0x7FFF_FFFF
              if b != 0 && b >> 23 == 0 { h[31 - b.leadingZeroBitCount] &+= 1 }
            }
          }
        }
        for e in 1...254 { h[e + 22] = Int32(truncatingIfNeeded: t[e]) }
        return (Int32(truncatingIfNeeded: zeros), Int32(truncatingIfNeeded: t[255]))
      }
    }
  }

  /// How many of the n patterns are +0 or -0 (x << 1 == 0), 16 lanes at a time (the plain loop's
  /// conditional add is not vectorized by the compiler, and ran at a thirteenth of this speed).
  static func countZeros(_ bits: UnsafePointer<UInt32>, _ n: Int) -> UInt32 {
    let one = SIMD16<UInt32>(repeating: 1), zero = SIMD16<UInt32>(repeating: 0)
    var lanes = zero
    var j = 0
    while j + 16 <= n {
      let v = UnsafeRawPointer(bits + j).loadUnaligned(as: SIMD16<UInt32>.self) &<< 1
      lanes &+= one.replacing(with: zero, where: v .!= zero)
      j += 16
    }
    var z = lanes.wrappedSum()
    while j < n {
      z &+= bits[j] << 1 == 0 ? 1 : 0
      j += 1
    }
    return z
  }

  /// `count` on `threads` threads: contiguous chunks of at least 64 Ki values, each counted into its own
  /// bins, then summed. Integer sums, so the result is the serial count's whatever the split.
  public static func count(
    _ x: UnsafePointer<Float>, _ n: Int, into h: UnsafeMutablePointer<Int32>, threads: Int
  ) -> (zeros: Int32, nonFinite: Int32) {
    let split = WorkSplit(count: n, threads: threads, grain: 65_536)
    if split.parts <= 1 { return count(x, n, into: h) }
    nonisolated(unsafe) let x = x
    let parts = split.map { i -> ([Int32], Int32, Int32) in
      let r = split.range(i)
      var bins = [Int32](repeating: 0, count: binCount)
      let (z, nf) = bins.withUnsafeMutableBufferPointer { count(x + r.lowerBound, r.count, into: $0.baseAddress!) }
      return (bins, z, nf)
    }
    var zeros: Int32 = 0, nonFinite: Int32 = 0
    for k in 0..<binCount { h[k] = 0 }
    for (bins, z, nf) in parts {
      for k in 0..<binCount { h[k] &+= bins[k] }
      zeros &+= z
      nonFinite &+= nf
    }
    return (zeros, nonFinite)
  }

  /// The histogram of n values (no rounding counts).
  public static func of(_ x: UnsafePointer<Float>, _ n: Int) -> BinadeHistogram {
    var h = BinadeHistogram()
    let (z, nf) = h.counts.withUnsafeMutableBufferPointer { count(x, n, into: $0.baseAddress!) }
    h.zeros = z
    h.nonFinite = nf
    return h
  }
}
