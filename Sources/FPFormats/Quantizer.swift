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

  /// The threads of `quantize`: contiguous chunks of at least 16 Ki values (the weights of gpt-tiny,
  /// 16-64 Ki values, are cut for two threads).
  public static func split(count: Int, threads: Int) -> WorkSplit {
    WorkSplit(count: count, threads: threads, grain: WorkSplit.roundingGrain)
  }

  /// Into `output` (a separate buffer, or `input` itself: not overlapping it otherwise), counting in
  /// the same pass what telemetry reports: inputs with |x| > `limit` (infinities included, NaN not),
  /// non-zero inputs (NaN included) that came out as +-0, and the inputs' finite max |x|. One thread;
  /// at most 2^32 values.
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

  /// Blocks down columns (`BlockQuantizer.quantizeColumns`) for `rows` rows of a row-major tile
  /// [rows, cols]: value (r, c) is tile[r * cols + c], its result goes to out[r * cols + c] as
  /// Q(value * down[c]) * up[c], drawing random counter firstIndex + c * laneStride + r; a tile that is
  /// `out` itself is rounded in place. Returns the saturated and flushed counts as `quantizeBlocks`.
  func quantizeColumnTile(
    _ tile: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>,
    down: UnsafePointer<Float>, up: UnsafePointer<Float>, saturationLimit: Float, firstIndex: Int, laneStride: Int
  ) -> (saturated: Int, flushed: Int) {
    var run = ColumnRun(
      k: constants, rng: rng, tile: tile, rows: rows, cols: cols, out: out, down: down, up: up,
      limit: saturationLimit.bitPattern, first: UInt64(firstIndex), laneStride: UInt32(laneStride))
    withKernel(constants, &run)
    return (Int(run.saturated), Int(run.flushed))
  }
}

protocol KernelVisitor {
  mutating func visit<R: Kernel>(_ rule: R)
}
