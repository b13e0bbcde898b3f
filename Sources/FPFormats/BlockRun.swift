import CMaskCount

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
    // and in place reads through the pointer it writes (see `ValueSource`).
    if let e = elements {
      run(rule, ElementSink(p: UnsafeMutableRawPointer(e).assumingMemoryBound(to: UInt32.self)), InPlace())
    } else if let source {
      run(rule, NoElementSink(), Separate(p: UnsafeRawPointer(source).assumingMemoryBound(to: UInt32.self)))
    } else {
      run(rule, NoElementSink(), InPlace())
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
      // step with no remainder code. The counts are taken after it, from the chunk's inputs and
      // outputs as vectors, into 16 lanes of two registers until the end. (Counted inside the loop
      // into lanes in memory, as before, they were reloaded after every store to `bits`, which might
      // alias them; most of the loop's profile samples sat on that reload, and without it the loop
      // takes about 6% less time in gpt-tiny mxfp4 training.)
      var events = EventLanes(limit: limit)
      let chunksPerBlock = block / 16
      var b = 0, chunk = 0
      // Each chunk is rounded from a copy on the stack: the compiler then knows that the loop's stores
      // cannot touch what it reads, vectorizes it without an overlap check, and gives the counts the
      // outputs from registers (and removes the copy). (Read from a separate source, the counts read
      // the outputs back from memory after a loop with two versions, and waited on its stores: a third
      // of this loop's time in gpt-tiny mxfp4 training. In place it makes no difference.)
      var staging = SIMD16<UInt32>()
      withUnsafeMutableBytes(of: &staging) { stage in
        let staged = stage.baseAddress!.assumingMemoryBound(to: UInt32.self)
        while lo + 16 <= n {
          let d = down[b], u = up[b]
          let x = values.vector(lo, bits)
          stage.storeBytes(of: x, as: SIMD16<UInt32>.self)
          for j in 0..<16 {
            let i = lo + j
            let r = R.usesRandom ? rng.bits32(low: low0 &+ UInt32(truncatingIfNeeded: i), high: high) : 0
            let (out, _, _, q) = BlockRun.one(staged[j], d, u, rule, k, r, limit)
            bits[i] = out
            sink.store(i, q)
          }
          events.add(input: x, down: SIMD16(repeating: d), output: UnsafeRawPointer(bits + lo).loadUnaligned(as: SIMD16<UInt32>.self))
          lo += 16
          chunk += 1
          if chunk == chunksPerBlock { chunk = 0; b += 1 }
        }
      }
      sat = events.saturatedCount
      flush = events.flushedCount
    }
    while lo < n {
      let b = lo / block
      let hi = min(n, (b + 1) * block)
      let d = down[b], u = up[b]
      for i in lo..<hi {
        let r = R.usesRandom ? rng.bits32(low: low0 &+ UInt32(truncatingIfNeeded: i), high: high) : 0
        let (out, s, f, q) = BlockRun.one(values.value(i, bits), d, u, rule, k, r, limit)
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

/// `BlockRun.one`'s two counts for 16 values at a time: the scaled value input * down past the limit,
/// and a non-zero, non-NaN input whose output is zero. The row kernel counts this way after each
/// 16-value step, the column kernel (`ColumnRun`) in a second pass over each column group: counted
/// inside their element loops into lanes kept in memory, the lanes were reloaded after every store to
/// the output (which the compiler cannot tell apart from them).
///
/// AVX-512 builds count with a comparison into a mask register and a `popcnt` of it (CMaskCount) into
/// two integers; AVX2 builds count into 16 lanes of two registers with sign masks.
struct EventLanes {
  let limit: SIMD16<Int32>
  /// AVX-512: the counts so far.
  var saturatedTotal: UInt32 = 0, flushedTotal: UInt32 = 0
  /// AVX2: the counts so far, lane by lane.
  var saturated = SIMD16<Int32>(), flushed = SIMD16<Int32>()

  init(limit: UInt32) { self.limit = SIMD16(repeating: Int32(bitPattern: limit)) }

  var saturatedCount: UInt32 { saturatedTotal &+ UInt32(bitPattern: saturated.wrappedSum()) }
  var flushedCount: UInt32 { flushedTotal &+ UInt32(bitPattern: flushed.wrappedSum()) }

  @inline(__always)
  mutating func add(input x: SIMD16<UInt32>, down d: SIMD16<Float>, output o: SIMD16<UInt32>) {
    if BuiltFor.avx512 {
      // Float comparisons, each one instruction into a mask register, counted by `popcnt` on the
      // integer ports: |y| > limit (ordered, so false for NaN; the limit is a non-negative float's
      // bits, or Inf's or a NaN's, which nothing passes), x != 0 and x == x (non-zero, not NaN: one
      // ordered not-equal), output == +-0. Three vector operations per 16 values, and LLVM reuses the
      // rounding's |y|. (Counted in lanes, a widening of each mask and an add took four more, on the
      // vector ports that the rounding keeps busy: `fpsim bench quantize` ran 13-21% slower.) Float
      // comparisons see subnormals as they are: no flush-to-zero mode is set anywhere, and the
      // rounding's own arithmetic assumes as much.
      let xf = unsafeBitCast(x, to: SIMD16<Float>.self), of = unsafeBitCast(o, to: SIMD16<Float>.self)
      let ay = unsafeBitCast(unsafeBitCast(xf * d, to: SIMD16<UInt32>.self) & 0x7FFF_FFFF, to: SIMD16<Float>.self)
      saturatedTotal &+= fpsim_count_greater(ay, unsafeBitCast(limit, to: SIMD16<Float>.self))
      flushedTotal &+= fpsim_count_zeroed(xf, of)
      return
    }
    // Sign masks, not comparisons: every operand is a magnitude's bits (below 2^31) or a difference of
    // two, so each test a < b is the sign of a - b, and (p & q) >> 31 (arithmetic) is -1 where both p
    // and q are negative, else 0; the lanes count by subtracting it. (With `.<` and `replacing`, the
    // comparison masks were packed to bytes and widened back on AVX2, a quarter of the block loops.)
    // Constants as literals: `static let`s are read through a lazy initializer's check, which made the
    // kernels ten times slower.
    let magnitude = SIMD16<Int32>(repeating: 0x7FFF_FFFF), aboveInfinity = SIMD16<Int32>(repeating: 0x7F80_0001)
    let zero = SIMD16<Int32>(), one = SIMD16<Int32>(repeating: 1)
    let ax = unsafeBitCast(x, to: SIMD16<Int32>.self) & magnitude
    let ao = unsafeBitCast(o, to: SIMD16<Int32>.self) & magnitude
    let ay = unsafeBitCast(unsafeBitCast(x, to: SIMD16<Float>.self) * d, to: SIMD16<Int32>.self) & magnitude
    // limit < ay <= Inf's bits: past the limit (finite or infinite), not NaN.
    saturated &-= ((limit &- ay) & (ay &- aboveInfinity)) &>> 31
    // 0 < ax <= Inf's bits (non-zero, not NaN) and ao == 0 (ao - 1 < 0).
    flushed &-= ((zero &- ax) & (ax &- aboveInfinity) & (ao &- one)) &>> 31
  }
}

/// Where `BlockRun` reads its values: the buffer it writes (`out`), or a separate one.
///
/// In place reads through the very pointer the loop stores to, so that LLVM sees one pointer and
/// vectorizes without a check. (With its own copy of that pointer, as before, the in-place loop
/// compiled to the same code as `Separate`, LLVM merged the two, and the merged loop's overlap check
/// sent every in-place call to its scalar version: 0.15 G values/s for MXFP4 instead of about 2.)
protocol ValueSource {
  func value(_ i: Int, _ out: UnsafeMutablePointer<UInt32>) -> UInt32
  /// Values i ..< i + 16.
  func vector(_ i: Int, _ out: UnsafeMutablePointer<UInt32>) -> SIMD16<UInt32>
}

struct InPlace: ValueSource {
  @inline(__always) func value(_ i: Int, _ out: UnsafeMutablePointer<UInt32>) -> UInt32 { out[i] }
  @inline(__always) func vector(_ i: Int, _ out: UnsafeMutablePointer<UInt32>) -> SIMD16<UInt32> {
    UnsafeRawPointer(out + i).loadUnaligned(as: SIMD16<UInt32>.self)
  }
}

struct Separate: ValueSource {
  let p: UnsafePointer<UInt32>
  @inline(__always) func value(_ i: Int, _ out: UnsafeMutablePointer<UInt32>) -> UInt32 { p[i] }
  @inline(__always) func vector(_ i: Int, _ out: UnsafeMutablePointer<UInt32>) -> SIMD16<UInt32> {
    UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<UInt32>.self)
  }
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
