import FPFormats
import Foundation
import Testing

/// Properties on many float32 inputs per format and rounding mode. The default run uses 3 * 2^16
/// inputs per (format, mode, overflow), the least that `Quantizer` cuts into three threads' chunks;
/// set FPSIM_PROPERTY_N (for example 10000000) for a longer run.
enum PropertyInputs {
  static let count = ProcessInfo.processInfo.environment["FPSIM_PROPERTY_N"].flatMap { Int($0) } ?? 3 * 65_536

  static let formats = [
    "float32", "tf32", "bf16", "fp16", "e5m2", "e4m3fn", "e4m3", "e3m4", "e4m3fnuz", "e5m2fnuz",
    "e4m3b11fnuz", "ue8m0", "e2m3", "e3m2", "e2m1", "ue4m3", "ue5m3", "ue5m3ieee", "int8", "int4",
    "e8m3", "e8m5", "e8m1", "e7m7", "e5m3b13fn-nosub", "e4m3-nosub", "e5m0", "e3m2ieee", "e8m2b129",
  ]

  // stochastic (24 bits) and 3 bits take the float kernel where it applies; 32 bits the integer one.
  static let modes: [RoundingMode] = [.rne, .rna, .rtz, .up, .down, .odd, .stochastic, .stochastic(bits: 3), .stochastic(bits: 32)]

  /// A third uniform random bit patterns, a third log-uniform over the format's range and beyond, a
  /// third exact ties and their float32 neighbours (the hard cases); then every special value.
  static func make(_ f: FloatFormat, seed: UInt64) -> [Float] {
    let rng = CounterRNG(seed: seed, stream: 99)
    let lo = Double(f.minPositive.exponent) - 3, hi = Double(f.maxFinite.exponent) + 3
    var xs: [Float] = []
    xs.reserveCapacity(count + 64)
    for i in 0..<count {
      let r = rng.bits64(UInt64(i))
      let sign: UInt32 = r & 1 == 0 ? 0 : 0x8000_0000
      switch i % 3 {
      case 0:
        xs.append(Float(bitPattern: UInt32(truncatingIfNeeded: r >> 32)))
      case 1:
        let u = Double(r >> 11) / 9_007_199_254_740_992
        xs.append(Float(bitPattern: Float(exp2(lo + (hi - lo) * u)).bitPattern | sign))
      default:
        // A representable value's midpoint with its upper neighbour, possibly nudged by one float32 ulp.
        let v = Float(exp2(lo + (hi - lo) * Double(r >> 11) / 9_007_199_254_740_992))
        let e = max(v.exponent, f.emin)
        let spacing = Double(sign: .plus, exponent: Int(e) - (e >= f.emin ? f.mantissaBits : 0), significand: 1)
        let base = (Double(v) / spacing).rounded(.down) * spacing
        var t = Float(base + spacing / 2)
        switch (r >> 8) % 3 {
        case 0: t = t.nextUp
        case 1: t = t.nextDown
        default: break
        }
        xs.append(Float(bitPattern: t.bitPattern | sign))
      }
    }
    let specials: [Float] = [0, -0.0, .infinity, -.infinity, .nan, -.nan, Float(bitPattern: 0x7F80_0001),
      .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude,
      -.greatestFiniteMagnitude, f.maxFinite, f.maxFinite.nextUp, -f.maxFinite.nextUp, f.minPositive,
      f.minPositive / 2, f.minPositive.nextDown, f.minPositive * 1.5, 1, -1, 0.5]
    return xs + specials
  }
}

/// The format's spacing at |x| (2^Q), computed from the definitions in Double.
func spacing(_ f: FloatFormat, at x: Float) -> Double {
  let e = Int(x.magnitude.exponent)
  if e >= f.emin && f.exponentBits > 0 { return Double(sign: .plus, exponent: e - f.mantissaBits, significand: 1) }
  return Double(sign: .plus, exponent: f.subnormals ? f.emin - f.mantissaBits : f.emin, significand: 1)
}

@Suite struct PropertyTests {
  @Test(arguments: PropertyInputs.formats)
  func fastKernelEqualsScalarReferenceBitForBit(name: String) throws {
    let f = try FloatFormat(parsing: name)
    let xs = PropertyInputs.make(f, seed: 1)
    for mode in PropertyInputs.modes {
      for overflow in Overflow.allCases {
        let fast = Quantizer(format: f, rounding: mode, overflow: overflow, seed: 7)
        let ref = ReferenceQuantizer(format: f, rounding: mode, overflow: overflow, seed: 7)
        // Three threads, to show the split does not change a bit.
        #expect(Quantizer.split(count: xs.count, threads: 3).parts == 3, "\(xs.count) inputs are not cut into 3 parts")
        let out = xs.withUnsafeBufferPointer { src in
          [Float](unsafeUninitializedCapacity: src.count) { buf, n in
            fast.quantize(src, into: buf, threads: 3)
            n = src.count
          }
        }
        var bad = 0, first = ""
        for i in xs.indices {
          let r = ref.quantize(xs[i], index: i).bitPattern
          if out[i].bitPattern != r && !(out[i].isNaN && Float(bitPattern: r).isNaN) {
            if bad == 0 { first = "x=0x\(String(xs[i].bitPattern, radix: 16)) fast=\(out[i]) ref=\(Float(bitPattern: r))" }
            bad += 1
          }
        }
        #expect(bad == 0, "\(name) \(mode) \(overflow): \(bad) differ, first \(first)")
      }
    }
  }

  /// `quantizeCounting` (the training telemetry's pass) gives `quantize`'s bits, and counts what its
  /// inputs and outputs show, recounted here one value at a time: |x| > limit (Inf included, NaN not),
  /// x non-zero or NaN with output +-0, and the finite amax. The specials come first too, so that they
  /// fall in the 16-value chunks as well as in the tail (the count is not a multiple of 16). In place
  /// (output the input's own buffer), the same bits and counts.
  @Test(arguments: PropertyInputs.formats)
  func countingPassCountsWhatItsOutputShows(name: String) throws {
    let f = try FloatFormat(parsing: name)
    let made = PropertyInputs.make(f, seed: 4)
    let xs = Array(made.suffix(22)) + made
    #expect(xs.count % 16 != 0)
    let limit = f.maxFinite
    for mode: RoundingMode in [.rne, .rtz, .stochastic] {
      for overflow in Overflow.allCases {
        let q = Quantizer(format: f, rounding: mode, overflow: overflow, seed: 5)
        var out = [Float](repeating: 0, count: xs.count)
        let c = xs.withUnsafeBufferPointer { src in
          out.withUnsafeMutableBufferPointer { q.quantizeCounting(src, into: $0, firstIndex: 3, limit: limit) }
        }
        let plain = q.quantize(xs, firstIndex: 3)
        let differing = zip(out, plain).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(differing == 0, "\(name) \(mode) \(overflow): \(differing) outputs differ from quantize's")
        var saturated = 0, flushed = 0, amax: Float = 0
        for (x, o) in zip(xs, out) {
          if !x.isNaN && x.magnitude > limit { saturated += 1 }
          if x != 0 && o == 0 { flushed += 1 }
          if x.isFinite { amax = max(amax, x.magnitude) }
        }
        #expect(c.saturated == saturated && c.flushed == flushed, "\(name) \(mode) \(overflow): \(c) against \(saturated), \(flushed)")
        #expect(c.amax.bitPattern == amax.bitPattern)
        var inPlace = xs
        let d = inPlace.withUnsafeMutableBufferPointer { b in
          q.quantizeCounting(UnsafeBufferPointer(b), into: b, firstIndex: 3, limit: limit)
        }
        let differingInPlace = zip(inPlace, plain).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(differingInPlace == 0, "\(name) \(mode) \(overflow): \(differingInPlace) outputs in place differ")
        #expect(d.saturated == c.saturated && d.flushed == c.flushed && d.amax.bitPattern == c.amax.bitPattern)
      }
    }
  }

  @Test(arguments: PropertyInputs.formats)
  func roundingModesKeepTheirDefiningProperties(name: String) throws {
    let f = try FloatFormat(parsing: name)
    let xs = PropertyInputs.make(f, seed: 2)
    let max = f.maxFinite
    func run(_ m: RoundingMode, _ o: Overflow = .saturate) -> [Float] {
      Quantizer(format: f, rounding: m, overflow: o, seed: 3).quantize(xs)
    }
    let rne = run(.rne), rtz = run(.rtz), up = run(.up), down = run(.down), sat = run(.stochastic)
    for i in xs.indices where xs[i].isFinite {
      let x = xs[i]
      let inRange = x.magnitude <= max && (f.signed || x >= 0)
      // Every result is representable: it is a fixed point of the code round trip.
      for r in [rne[i], rtz[i], up[i], down[i], sat[i]] {
        #expect(r.isNaN || f.decode(f.code(ofRepresentable: r)).bitPattern == r.bitPattern, "\(name): \(r) not representable")
        // saturate never exceeds max
        #expect(r.isNaN || r.magnitude <= max)
      }
      // Formats without zero (E8M0) send everything below their smallest value up to it.
      guard inRange, f.hasZero || x.magnitude >= f.minPositive else { continue }
      let s = spacing(f, at: x)
      // rne is never farther than half a spacing (none of these inputs overflow).
      #expect((Double(rne[i]) - Double(x)).magnitude <= s / 2, "\(name) rne \(x) -> \(rne[i])")
      // up and down bracket the input, one spacing apart at most.
      if f.hasZero || x.magnitude >= f.minPositive {
        #expect(down[i] <= x && x <= up[i], "\(name) \(x): [\(down[i]), \(up[i])]")
        #expect(Double(up[i]) - Double(down[i]) <= s)
      }
      // rtz in the normal range clears the dropped mantissa bits.
      if f.exponentBits > 0, let minNormal = f.minNormal, x.magnitude >= minNormal, x.isNormal {
        let mask = UInt32((1 << (23 - f.mantissaBits)) - 1)
        #expect(rtz[i].bitPattern == x.bitPattern & ~mask, "\(name) rtz \(x)")
      }
    }
  }

  /// For x strictly between neighbours lo < x < hi, stochastic rounding is a Bernoulli trial with
  /// p = (x - lo) / (hi - lo); the mean of N draws has standard deviation at most (hi - lo) / (2 sqrt N).
  /// We require the mean within 5 such deviations (a false alarm about once in 1.7 million runs) plus
  /// the 2^-R truncation bias of R-bit stochastic rounding.
  @Test(arguments: ["e4m3fn", "e2m1", "bf16", "e8m3", "ue5m3", "int4"])
  func stochasticRoundingIsUnbiasedAndReproducible(name: String) throws {
    let f = try FloatFormat(parsing: name)
    let n = 40_000
    for x0 in [Float(1.3), 0.7123, 2.9, -1.0625, 0.01] where f.signed || x0 > 0 {
      let x = x0 * (f.isInteger ? 2 : 1)
      let q = Quantizer(format: f, rounding: .stochastic, seed: 11)
      let out = q.quantize([Float](repeating: x, count: n))
      let mean = out.reduce(0.0) { $0 + Double($1) } / Double(n)
      let s = spacing(f, at: x)
      let bound = 5 * s / (2 * Double(n).squareRoot()) + s * 0x1p-32
      #expect((mean - Double(x)).magnitude <= bound, "\(name) \(x): mean \(mean)")
      let distinct = Set(out).count
      #expect(distinct == 2 || x == out[0], "\(name) \(x): \(distinct) distinct results, not its two neighbours")
      let again = q.quantize([Float](repeating: x, count: n))
      #expect(again == out, "same seed, same bits")
      if distinct == 2 {
        let other = Quantizer(format: f, rounding: .stochastic, seed: 12).quantize([Float](repeating: x, count: n))
        #expect(other != out, "another seed draws other numbers")
      }
    }
  }

  @Test func counterRandomBitsAreUniform() {
    // Each of the 32 bits of 2^16 draws is set about half the time: |count - N/2| <= 5 sqrt(N)/2.
    let rng = CounterRNG(seed: 5, stream: 2)
    let n = 1 << 16
    var ones = [Int](repeating: 0, count: 32)
    for i in 0..<n {
      let b = rng.bits32(UInt64(i))
      for k in 0..<32 where b >> UInt32(k) & 1 == 1 { ones[k] += 1 }
    }
    let bound = 5 * Double(n).squareRoot() / 2
    for k in 0..<32 { #expect(Double(ones[k] - n / 2).magnitude <= bound, "bit \(k): \(ones[k])") }
  }
}

@Suite struct WorkerPoolTests {
  /// Every index runs exactly once, whatever the iteration count, including regions started from
  /// several threads at once and from inside a region (those run on their calling thread).
  @Test func everyIndexRunsExactlyOnce() {
    for n in [1, 2, 3, 7, 64, 1000] {
      nonisolated(unsafe) let counts = UnsafeMutablePointer<Int>.allocate(capacity: n)
      defer { counts.deallocate() }
      counts.initialize(repeating: 0, count: n)
      WorkerPool.perform(n) { i in counts[i] += 1 }
      #expect(Array(UnsafeBufferPointer(start: counts, count: n)) == [Int](repeating: 1, count: n), "n = \(n)")
    }
    nonisolated(unsafe) let runs = UnsafeMutablePointer<Int>.allocate(capacity: 200)
    defer { runs.deallocate() }
    runs.initialize(repeating: 0, count: 200)
    DispatchQueue.concurrentPerform(iterations: 4) { caller in
      for r in 0..<50 {
        WorkerPool.perform(3) { i in
          WorkerPool.perform(2) { _ in }  // nested: runs inline
          if i == 0 { runs[caller * 50 + r] += 1 }
        }
      }
    }
    #expect(Array(UnsafeBufferPointer(start: runs, count: 200)) == [Int](repeating: 1, count: 200))
  }
}
