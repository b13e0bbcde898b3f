/// The fused block loop: scale, round, scale back, and count, with arithmetic masks only (for
/// magnitudes a, b below 2^31, (a - b) >> 31 is 1 exactly when a < b) so that it vectorizes.
struct BlockRun: KernelVisitor {
  let k: KernelConstants, rng: CounterRNG
  let x: UnsafeMutablePointer<Float>, source: UnsafePointer<Float>?, n: Int, block: Int
  let down: UnsafePointer<Float>, up: UnsafePointer<Float>
  let limit: UInt32, first: UInt64
  let elements: UnsafeMutablePointer<Float>?
  var saturated: UInt32 = 0, flushed: UInt32 = 0

  /// One value: (result bits, 1 if the scaled value passed `limit`, 1 if a non-zero input became 0).
  @inline(__always)
  static func one<R: Kernel>(
    _ xin: UInt32, _ d: Float, _ u: Float, _ rule: R, _ k: KernelConstants, _ random: UInt32, _ limit: UInt32
  ) -> (UInt32, UInt32, UInt32, UInt32) {
    let y = (Float(bitPattern: xin) * d).bitPattern
    let q = rule.apply(y, k, random)
    let out = (Float(bitPattern: q) * u).bitPattern
    let ay = y & 0x7FFF_FFFF, ax = xin & 0x7FFF_FFFF, ao = out & 0x7FFF_FFFF
    // Range checks as one unsigned comparison each: limit < ay <= Inf's bits (a finite or infinite
    // value past the limit), and 0 < ax <= Inf's bits (a non-zero, non-NaN input) with ao = 0.
    let s: UInt32 = ay &- (limit &+ 1) < 0x7F80_0000 &- limit ? 1 : 0
    let f: UInt32 = (ax &- 1 < 0x7F80_0000 ? 1 : 0) & (ao == 0 ? 1 : 0)
    return (out, s, f, q)
  }

  mutating func visit<R: Kernel>(_ rule: R) {
    // Separate specialisations, so the common cases have no store (and no branch) for the elements,
    // and in place reads through the pointer it writes (two equal pointers would fail LLVM's
    // overlap check and send the loop to its scalar version).
    let bits = UnsafeMutableRawPointer(x).assumingMemoryBound(to: UInt32.self)
    if let e = elements {
      run(rule, ElementSink(p: UnsafeMutableRawPointer(e).assumingMemoryBound(to: UInt32.self)), InPlace(p: bits))
    } else if let source {
      run(rule, NoElementSink(), Separate(p: UnsafeRawPointer(source).assumingMemoryBound(to: UInt32.self)))
    } else {
      run(rule, NoElementSink(), InPlace(p: bits))
    }
  }

  @inline(__always)
  mutating func run<R: Kernel, S: ElementStore, V: ValueSource>(_ rule: R, _ sink: S, _ values: V) {
    // Locals, not properties: `self` is inout here, and loads through it inside the loop would have to
    // be repeated after every store.
    let k = KernelConstants.freshCopy(k), rng = rng, limit = limit
    let n = n, block = block, down = down, up = up
    let bits = UnsafeMutableRawPointer(x).assumingMemoryBound(to: UInt32.self)
    let high = rng.highKey(first), low0 = UInt32(truncatingIfNeeded: first)
    precondition(UInt64(n) <= (1 << 32) - (first & 0xFFFF_FFFF), "block tensors are limited to 2^32 values per call")
    var sat: UInt32 = 0, flush: UInt32 = 0
    var lo = 0
    if block % 16 == 0 {
      // Whole 16-value chunks share one block's factors: a fixed-length inner loop is one 512-bit
      // step with no remainder code, and the counts stay in 16 lanes until the end instead of being
      // reduced across lanes once per block.
      withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 32) { buffer in
        let lanes = buffer.baseAddress!
        lanes.initialize(repeating: 0, count: 32)
        let chunksPerBlock = block / 16
        var b = 0, chunk = 0
        while lo + 16 <= n {
          let d = down[b], u = up[b]
          for j in 0..<16 {
            let i = lo + j
            let r = R.usesRandom ? rng.bits32(low: low0 &+ UInt32(truncatingIfNeeded: i), high: high) : 0
            let (out, s, f, q) = BlockRun.one(values[i], d, u, rule, k, r, limit)
            bits[i] = out
            sink.store(i, q)
            lanes[j] &+= s
            lanes[16 + j] &+= f
          }
          lo += 16
          chunk += 1
          if chunk == chunksPerBlock { chunk = 0; b += 1 }
        }
        for j in 0..<16 { sat &+= lanes[j]; flush &+= lanes[16 + j] }
      }
    }
    while lo < n {
      let b = lo / block
      let hi = min(n, (b + 1) * block)
      let d = down[b], u = up[b]
      for i in lo..<hi {
        let r = R.usesRandom ? rng.bits32(low: low0 &+ UInt32(truncatingIfNeeded: i), high: high) : 0
        let (out, s, f, q) = BlockRun.one(values[i], d, u, rule, k, r, limit)
        bits[i] = out
        sink.store(i, q)
        sat &+= s
        flush &+= f
      }
      lo = hi
    }
    saturated = sat
    flushed = flush
  }
}

/// Where `BlockRun` reads its values: the buffer it writes, or a separate one.
protocol ValueSource {
  subscript(_ i: Int) -> UInt32 { get }
}

struct InPlace: ValueSource {
  let p: UnsafeMutablePointer<UInt32>
  @inline(__always) subscript(_ i: Int) -> UInt32 { p[i] }
}

struct Separate: ValueSource {
  let p: UnsafePointer<UInt32>
  @inline(__always) subscript(_ i: Int) -> UInt32 { p[i] }
}

/// Where `BlockRun` puts each value's element (bits), if anywhere.
protocol ElementStore {
  func store(_ i: Int, _ bits: UInt32)
}

struct NoElementSink: ElementStore {
  @inline(__always) func store(_ i: Int, _ bits: UInt32) {}
}

struct ElementSink: ElementStore {
  let p: UnsafeMutablePointer<UInt32>
  @inline(__always) func store(_ i: Int, _ bits: UInt32) { p[i] = bits }
}
