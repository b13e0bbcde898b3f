import Dispatch

/// Rounds float32 values to a `FloatFormat` and back to float32, fast: a branch-free kernel over the
/// float32 bit pattern that LLVM vectorizes, specialised per rounding mode.
///
/// Semantics are those of `ReferenceQuantizer` (an independent, plainly written implementation in
/// Double arithmetic); the tests check that the two agree bit for bit. Element `i` of a buffer is
/// element `firstIndex + i` of the tensor, so stochastic rounding draws the same random number for it
/// however the work is split across threads.
public struct Quantizer: Sendable {
  public let format: FloatFormat
  public let rounding: RoundingMode
  public let overflow: Overflow
  public let rng: CounterRNG

  public init(
    format: FloatFormat, rounding: RoundingMode = .rne, overflow: Overflow = .saturate,
    seed: UInt64 = 0, stream: UInt64 = 0
  ) {
    self.format = format
    self.rounding = rounding
    self.overflow = overflow
    self.rng = CounterRNG(seed: seed, stream: stream)
    self.constants = KernelConstants(format, rounding, overflow)
  }

  /// Precomputed once: single values (block scales) are quantized in tight loops too.
  let constants: KernelConstants

  /// One value; `index` is its position in its tensor (it matters only for stochastic rounding).
  public func quantize(_ x: Float, index: Int = 0) -> Float {
    var v = x
    withUnsafeMutablePointer(to: &v) { p in
      let b = UnsafeMutableBufferPointer(start: p, count: 1)
      quantize(UnsafeBufferPointer(b), into: b, firstIndex: index, threads: 1)
    }
    return v
  }

  public func quantize(_ values: [Float], firstIndex: Int = 0) -> [Float] {
    var out = values
    out.withUnsafeMutableBufferPointer { quantize($0, firstIndex: firstIndex) }
    return out
  }

  /// In place.
  public func quantize(_ buffer: UnsafeMutableBufferPointer<Float>, firstIndex: Int = 0, threads: Int = 1) {
    quantize(UnsafeBufferPointer(buffer), into: buffer, firstIndex: firstIndex, threads: threads)
  }

  /// Out of place (`output` may be `input`). With `threads > 1` the buffer is cut into that many
  /// contiguous ranges run concurrently; results do not depend on the thread count.
  public func quantize(
    _ input: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>,
    firstIndex: Int = 0, threads: Int = 1
  ) {
    precondition(output.count >= input.count, "output shorter than input")
    let n = input.count
    guard n > 0, let src = input.baseAddress, let dst = output.baseAddress else { return }
    let k = constants
    let t = max(1, min(threads, n / 65_536))
    if t == 1 {
      dispatch(k, src, dst, n, UInt64(firstIndex))
      return
    }
    nonisolated(unsafe) let s = src, d = dst
    let per = (n + t - 1) / t
    DispatchQueue.concurrentPerform(iterations: t) { i in
      let lo = i * per, hi = min(n, lo + per)
      if lo < hi { dispatch(k, s + lo, d + lo, hi - lo, UInt64(firstIndex + lo)) }
    }
  }

  private func dispatch(
    _ k: KernelConstants, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int,
    _ first: UInt64
  ) {
    if k.fastPath {
      switch rounding {
      case .rne: return Self.run(FastNearestEven(), k, rng, src, dst, n, first)
      case .rtz: return Self.run(FastTowardZero(), k, rng, src, dst, n, first)
      case .up: return Self.run(FastDirected(towardPositive: true), k, rng, src, dst, n, first)
      case .down: return Self.run(FastDirected(towardPositive: false), k, rng, src, dst, n, first)
      case .rna: return Self.run(FastNearestAway(), k, rng, src, dst, n, first)
      case .stochastic(let bits) where bits <= 24:
        return Self.run(FastStochastic(bits: bits), k, rng, src, dst, n, first)
      default: break
      }
    }
    switch rounding {
    case .rne: Self.run(NearestEven(), k, rng, src, dst, n, first)
    case .rna: Self.run(NearestAway(), k, rng, src, dst, n, first)
    case .rtz: Self.run(TowardZero(), k, rng, src, dst, n, first)
    case .up: Self.run(Directed(towardPositive: true), k, rng, src, dst, n, first)
    case .down: Self.run(Directed(towardPositive: false), k, rng, src, dst, n, first)
    case .odd: Self.run(ToOdd(), k, rng, src, dst, n, first)
    case .stochastic(let bits): Self.run(Stochastic(bits: UInt64(bits)), k, rng, src, dst, n, first)
    }
  }

  /// The hot loop, specialised per rule. Reads and writes through raw bit patterns.
  @inline(__always)
  private static func run<R: Kernel>(
    _ rule: R, _ k: KernelConstants, _ rng: CounterRNG, _ src: UnsafePointer<Float>,
    _ dst: UnsafeMutablePointer<Float>, _ n: Int, _ first: UInt64
  ) {
    let s = UnsafeRawPointer(src).assumingMemoryBound(to: UInt32.self)
    let d = UnsafeMutableRawPointer(dst).assumingMemoryBound(to: UInt32.self)
    // A fresh local copy of the constants: LLVM cannot prove that loads through the parameter's
    // address do not alias `d`, and then vectorizes them as gathers inside the loop (10x slower).
    let k = KernelConstants.freshCopy(k), rule = rule, rng = rng
    if R.usesRandom {
      // Random numbers on 32-bit lanes: split where the counter's high half changes (every 2^32).
      var start = 0
      while start < n {
        let counter = first &+ UInt64(start)
        let end = min(n, start + Int((1 << 32) - (counter & 0xFFFF_FFFF)))
        let high = rng.highKey(counter), low0 = UInt32(truncatingIfNeeded: counter)
        let s = s + start, d = d + start, m = end - start
        if s == UnsafePointer(d) {
          for i in 0..<m { d[i] = rule.apply(d[i], k, rng.bits32(low: low0 &+ UInt32(truncatingIfNeeded: i), high: high)) }
        } else {
          for i in 0..<m { d[i] = rule.apply(s[i], k, rng.bits32(low: low0 &+ UInt32(truncatingIfNeeded: i), high: high)) }
        }
        start = end
      }
      return
    }
    // In place, one pointer (here and above): with two equal pointers LLVM's runtime overlap check
    // would send every call to the scalar loop.
    if UnsafeMutablePointer(mutating: src) == dst {
      for i in 0..<n { d[i] = rule.apply(d[i], k, 0) }
    } else {
      for i in 0..<n { d[i] = rule.apply(s[i], k, 0) }
    }
  }
}
