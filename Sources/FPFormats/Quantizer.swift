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
    nonisolated(unsafe) let s = src, d = dst
    Self.split(count: n, threads: threads).forEach { r, _ in
      dispatch(k, s + r.lowerBound, d + r.lowerBound, r.count, UInt64(firstIndex + r.lowerBound))
    }
  }

  /// The threads of `quantize`: contiguous chunks of at least 64 Ki values.
  public static func split(count: Int, threads: Int) -> WorkSplit {
    WorkSplit(count: count, threads: threads, grain: 65_536)
  }

  /// Out of place into a separate `output` (not overlapping), counting in the same pass what
  /// telemetry reports: inputs with |x| > `limit` (infinities included, NaN not), non-zero inputs (NaN
  /// included) that came out as +-0, and the inputs' finite max |x|. One thread; at most 2^32 values.
  public func quantizeCounting(
    _ input: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>, firstIndex: Int = 0,
    limit: Float
  ) -> (saturated: Int, flushed: Int, amax: Float) {
    precondition(output.count >= input.count, "output shorter than input")
    guard input.count > 0, let src = input.baseAddress, let dst = output.baseAddress else { return (0, 0, 0) }
    var run = CountingRun(
      k: constants, rng: rng, src: src, dst: dst, n: input.count, first: UInt64(firstIndex), limit: limit.magnitude.bitPattern)
    withKernel(constants, &run)
    return (Int(run.saturated), Int(run.flushed), Float(bitPattern: run.amax))
  }

  private func dispatch(
    _ k: KernelConstants, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int,
    _ first: UInt64
  ) {
    var run = ElementwiseRun(k: k, rng: rng, src: src, dst: dst, n: n, first: first)
    withKernel(k, &run)
  }

  /// Calls `visitor` with the kernel specialised for this rounding: the float kernel where it applies
  /// (see `FastRule`), with the short endings for saturating signed formats in the common roundings,
  /// else the integer one.
  func withKernel<V: KernelVisitor>(_ k: KernelConstants, _ visitor: inout V) {
    if k.fastPath {
      let done = k.spacingMap ? withFastKernel(k, SpacingMap.self, &visitor) : withFastKernel(k, BinadeMap.self, &visitor)
      if done { return }
    }
    switch rounding {
    case .rne: visitor.visit(NearestEven())
    case .rna: visitor.visit(NearestAway())
    case .rtz: visitor.visit(TowardZero())
    case .up: visitor.visit(Directed(towardPositive: true))
    case .down: visitor.visit(Directed(towardPositive: false))
    case .odd: visitor.visit(ToOdd())
    case .stochastic(let bits): visitor.visit(Stochastic(bits: UInt64(bits)))
    }
  }

  /// The float kernels with magnitude map `M`; false where the rounding has none.
  private func withFastKernel<V: KernelVisitor, M: MagnitudeMap>(
    _ k: KernelConstants, _ map: M.Type, _ visitor: inout V
  ) -> Bool {
    if k.saturatingSigned {
      func visit<R: FastRule>(_ rule: R) {
        if k.signXorEnding { visitor.visit(SignedSaturatingFinish<R, M>(rule: rule)) } else { visitor.visit(SaturatingFinish<R, M>(rule: rule)) }
      }
      switch rounding {
      case .rne: visit(FastNearestEven()); return true
      case .rtz: visit(FastTowardZero()); return true
      case .stochastic(let bits) where bits <= 24: visit(FastStochastic(bits: bits)); return true
      default: break
      }
    }
    switch rounding {
    case .rne: visitor.visit(FastKernel<FastNearestEven, M>(rule: FastNearestEven()))
    case .rtz: visitor.visit(FastKernel<FastTowardZero, M>(rule: FastTowardZero()))
    case .up: visitor.visit(FastKernel<FastDirected, M>(rule: FastDirected(towardPositive: true)))
    case .down: visitor.visit(FastKernel<FastDirected, M>(rule: FastDirected(towardPositive: false)))
    case .rna: visitor.visit(FastKernel<FastNearestAway, M>(rule: FastNearestAway()))
    case .stochastic(let bits) where bits <= 24: visitor.visit(FastKernel<FastStochastic, M>(rule: FastStochastic(bits: bits)))
    default: return false
    }
    return true
  }

  /// In place, for block formats: x[i] <- Q(x[i] * down[b]) * up[b] for the values i of block b
  /// (blocks of `blockSize` values, the last one possibly short), in one fused, vectorized pass.
  /// Returns how many scaled values were above `saturationLimit` and how many non-zero, non-NaN
  /// inputs came out as zero.
  /// With `elements`, also stores each value's element (the rounded value before scaling back). With
  /// `source` (not overlapping `x`), reads the values from there instead of from `x`.
  public func quantizeBlocks(
    _ x: UnsafeMutablePointer<Float>, count: Int, blockSize: Int, down: UnsafePointer<Float>,
    up: UnsafePointer<Float>, saturationLimit: Float, firstIndex: Int = 0,
    elements: UnsafeMutablePointer<Float>? = nil, source: UnsafePointer<Float>? = nil
  ) -> (saturated: Int, flushed: Int) {
    var source = source
    if let s = source, elements != nil {
      // The rare case (codes wanted) runs in place after a copy: one specialisation fewer.
      x.update(from: s, count: count)
      source = nil
    }
    var run = BlockRun(
      k: constants, rng: rng, x: x, source: source, n: count, block: blockSize, down: down, up: up,
      limit: saturationLimit.bitPattern, first: UInt64(firstIndex), elements: elements)
    withKernel(constants, &run)
    return (Int(run.saturated), Int(run.flushed))
  }

  /// Blocks down columns (`BlockQuantizer.quantizeColumns`) for `rows` rows of a tile stored group by
  /// group: value (r, c) is tile[(c / 16) * groupStride + r * 16 + c % 16], its result goes to
  /// out[r * cols + c] as Q(value * down[c]) * up[c], drawing random counter
  /// firstIndex + c * laneStride + r. Returns the saturated and flushed counts as `quantizeBlocks`.
  func quantizeColumnTile(
    _ tile: UnsafePointer<Float>, groupStride: Int, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>,
    down: UnsafePointer<Float>, up: UnsafePointer<Float>, saturationLimit: Float, firstIndex: Int, laneStride: Int
  ) -> (saturated: Int, flushed: Int) {
    var run = ColumnRun(
      k: constants, rng: rng, tile: tile, groupStride: groupStride, rows: rows, cols: cols, out: out,
      down: down, up: up, limit: saturationLimit.bitPattern, first: UInt64(firstIndex), laneStride: UInt32(laneStride))
    withKernel(constants, &run)
    return (Int(run.saturated), Int(run.flushed))
  }

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

protocol KernelVisitor {
  mutating func visit<R: Kernel>(_ rule: R)
}

struct ElementwiseRun: KernelVisitor {
  let k: KernelConstants, rng: CounterRNG
  let src: UnsafePointer<Float>, dst: UnsafeMutablePointer<Float>, n: Int, first: UInt64
  func visit<R: Kernel>(_ rule: R) { Quantizer.run(rule, k, rng, src, dst, n, first) }
}

/// `ElementwiseRun` with the telemetry counts of `quantizeCounting` in the same loop (integer masks,
/// as in `BlockRun`, so that it vectorizes).
struct CountingRun: KernelVisitor {
  let k: KernelConstants, rng: CounterRNG
  let src: UnsafePointer<Float>, dst: UnsafeMutablePointer<Float>, n: Int, first: UInt64, limit: UInt32
  var saturated: UInt32 = 0, flushed: UInt32 = 0, amax: UInt32 = 0

  mutating func visit<R: Kernel>(_ rule: R) {
    let k = KernelConstants.freshCopy(k), rng = rng, limit = limit
    let s = UnsafeRawPointer(src).assumingMemoryBound(to: UInt32.self)
    let d = UnsafeMutableRawPointer(dst).assumingMemoryBound(to: UInt32.self)
    let high = rng.highKey(first), low0 = UInt32(truncatingIfNeeded: first)
    precondition(UInt64(n) <= (1 << 32) - (first & 0xFFFF_FFFF), "at most 2^32 values per call")
    var sat: UInt32 = 0, flush: UInt32 = 0, m: UInt32 = 0
    for i in 0..<n {
      let a = s[i]
      let r = R.usesRandom ? rng.bits32(low: low0 &+ UInt32(truncatingIfNeeded: i), high: high) : 0
      let o = rule.apply(a, k, r)
      d[i] = o
      let ax = a & 0x7FFF_FFFF
      sat &+= ax &- (limit &+ 1) < 0x7F80_0000 &- limit ? 1 : 0
      flush &+= (ax != 0 ? 1 : 0) & (o & 0x7FFF_FFFF == 0 ? 1 : 0)
      m = max(m, ax)
    }
    saturated = sat
    flushed = flush
    // The max over all magnitudes is the finite amax unless the input holds Inf or NaN: only then a
    // second pass, so that the common case pays one operation per vector for it.
    if m >= 0x7F80_0000 { m = BlockAmax.finiteAmax(src, n).bitPattern }
    amax = m
  }
}

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

/// `BlockRun` for blocks down columns: 16 lanes of one column group, each lane its own block.
struct ColumnRun: KernelVisitor {
  let k: KernelConstants, rng: CounterRNG
  let tile: UnsafePointer<Float>, groupStride: Int, rows: Int, cols: Int
  let out: UnsafeMutablePointer<Float>
  let down: UnsafePointer<Float>, up: UnsafePointer<Float>
  let limit: UInt32, first: UInt64, laneStride: UInt32
  var saturated: UInt32 = 0, flushed: UInt32 = 0

  mutating func visit<R: Kernel>(_ rule: R) {
    // Locals, not properties (see `BlockRun.run`).
    let k = KernelConstants.freshCopy(k), rng = rng, limit = limit, stride = laneStride
    let rows = rows, cols = cols, groupStride = groupStride, down = down, up = up
    let src = UnsafeRawPointer(tile).assumingMemoryBound(to: UInt32.self)
    let dst = UnsafeMutableRawPointer(out).assumingMemoryBound(to: UInt32.self)
    let high = rng.highKey(first), low0 = UInt32(truncatingIfNeeded: first)
    precondition(
      UInt64(cols) * UInt64(stride) <= (1 << 32) - (first & 0xFFFF_FFFF), "block tensors are limited to 2^32 values")
    var sat: UInt32 = 0, flush: UInt32 = 0
    withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 32) { buffer in
      let lanes = buffer.baseAddress!
      lanes.initialize(repeating: 0, count: 32)
      for c0 in Swift.stride(from: 0, to: cols, by: 16) {
        let group = src + (c0 / 16) * groupStride, d = down + c0, u = up + c0
        let low = low0 &+ UInt32(truncatingIfNeeded: c0) &* stride
        for r in 0..<rows {
          let o = dst + r * cols + c0, x = group + r * 16
          for j in 0..<16 {
            let c = low &+ UInt32(truncatingIfNeeded: j) &* stride &+ UInt32(truncatingIfNeeded: r)
            let random = R.usesRandom ? rng.bits32(low: c, high: high) : 0
            let (value, s, f, _) = BlockRun.one(x[j], d[j], u[j], rule, k, random, limit)
            o[j] = value
            lanes[j] &+= s
            lanes[16 + j] &+= f
          }
        }
      }
      for j in 0..<16 { sat &+= lanes[j]; flush &+= lanes[16 + j] }
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
