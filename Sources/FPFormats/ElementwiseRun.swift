/// The element-wise hot loops: `Quantizer.quantize` (`ElementwiseRun`) and `quantizeCounting`
/// (`CountingRun`), each a `KernelVisitor` specialised per rounding rule.
struct ElementwiseRun: KernelVisitor {
  let k: KernelConstants, rng: CounterRNG
  let src: UnsafePointer<Float>, dst: UnsafeMutablePointer<Float>, n: Int, first: UInt64
  func visit<R: Kernel>(_ rule: R) { Self.run(rule, k, rng, src, dst, n, first) }

  /// The hot loop, specialised per rule. Reads and writes through raw bit patterns.
  @inline(__always)
  static func run<R: Kernel>(
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

/// `ElementwiseRun` with the telemetry counts of `quantizeCounting` in the same loop (integer masks,
/// as in `BlockRun`, so that it vectorizes).
struct CountingRun: KernelVisitor {
  let k: KernelConstants, rng: CounterRNG
  let src: UnsafePointer<Float>, dst: UnsafeMutablePointer<Float>, n: Int, first: UInt64, limit: UInt32
  var saturated: UInt32 = 0, flushed: UInt32 = 0, amax: UInt32 = 0

  mutating func visit<R: Kernel>(_ rule: R) {
    // In place, its own specialisation reading through the pointer it writes: with two equal pointers
    // LLVM's runtime overlap check would send every call to the scalar loop.
    if UnsafeMutablePointer(mutating: src) == dst {
      run(rule, InPlace())
    } else {
      run(rule, Separate(p: UnsafeRawPointer(src).assumingMemoryBound(to: UInt32.self)))
    }
  }

  @inline(__always)
  mutating func run<R: Kernel, V: ValueSource>(_ rule: R, _ values: V) {
    let k = KernelConstants.freshCopy(k), rng = rng, limit = limit
    let d = UnsafeMutableRawPointer(dst).assumingMemoryBound(to: UInt32.self)
    let high = rng.highKey(first), low0 = UInt32(truncatingIfNeeded: first)
    precondition(UInt64(n) <= (1 << 32) - (first & 0xFFFF_FFFF), "at most 2^32 values per call")
    // In place the input is gone after the loop, so the loop itself keeps the max finite magnitude, as
    // the signed max of ax + 2^23: finite magnitudes stay in order below 2^31, Inf and NaN wrap to
    // negative numbers. (A select of 0 for them kept LLVM from vectorizing the loop.)
    let inPlace = V.self == InPlace.self
    var sat: UInt32 = 0, flush: UInt32 = 0, m: UInt32 = 0, shiftedFinite: Int32 = 0x0080_0000
    for i in 0..<n {
      let a = values.value(i, d)
      let r = R.usesRandom ? rng.bits32(low: low0 &+ UInt32(truncatingIfNeeded: i), high: high) : 0
      let o = rule.apply(a, k, r)
      d[i] = o
      let ax = a & 0x7FFF_FFFF
      // Saturated: |x| > limit, infinities included, NaN not. As two compares, not the one unsigned range
      // compare ax - (limit + 1) < 0x7F80_0000 - limit they amount to, LLVM keeps them in mask registers:
      // 22 vector operations per 16 values against 28 for e4m3fn (docs/benchmarks.md).
      sat &+= ax > limit && ax <= 0x7F80_0000 ? 1 : 0
      flush &+= (ax != 0 ? 1 : 0) & (o & 0x7FFF_FFFF == 0 ? 1 : 0)
      if inPlace {
        shiftedFinite = max(shiftedFinite, Int32(bitPattern: ax &+ 0x0080_0000))
      } else {
        m = max(m, ax)
      }
    }
    if inPlace { m = UInt32(bitPattern: shiftedFinite) &- 0x0080_0000 }
    saturated = sat
    flushed = flush
    // Out of place, the max over all magnitudes is the finite amax unless the input holds Inf or NaN:
    // only then a second pass, so that the common case pays one operation per vector for it.
    if m >= 0x7F80_0000 { m = BlockAmax.finiteAmax(src, n).bitPattern }
    amax = m
  }
}
