import FPFormats

/// The three GEMMs of a linear layer `Y = X W^T` and their two operands each:
///
///     forward          Y  = X  W^T    operands X (N,C),   W (OC,C)
///     data gradient    dX = dY W      operands dY (N,OC), W (OC,C)
///     weight gradient  dW = dY^T X    operands dY (N,OC), X (N,C)
///
/// Each of the six may be rounded independently (straight-through: the gradient passes the rounding
/// as if it were the identity; accumulation stays float32).
public enum GEMMOperand: Int, CaseIterable, Codable, Sendable, CustomStringConvertible {
  case forwardX, forwardW, dataGradDY, dataGradW, weightGradDY, weightGradX

  /// Short label used in telemetry names (`<layer>.<label>`).
  public var description: String {
    switch self {
    case .forwardX: return "fwd_x"
    case .forwardW: return "fwd_w"
    case .dataGradDY: return "dgrad_dy"
    case .dataGradW: return "dgrad_w"
    case .weightGradDY: return "wgrad_dy"
    case .weightGradX: return "wgrad_x"
    }
  }
}

extension GEMMOperand {
  /// The GEMM this operand belongs to.
  public var gemm: GEMM {
    switch self {
    case .forwardX, .forwardW: return .forward
    case .dataGradDY, .dataGradW: return .dataGrad
    case .weightGradDY, .weightGradX: return .weightGrad
    }
  }
}

/// The three GEMMs of a linear layer (see `GEMMOperand`); names as recipes spell them.
public enum GEMM: Int, CaseIterable, Codable, Sendable, CustomStringConvertible {
  case forward, dataGrad, weightGrad

  public var description: String {
    switch self {
    case .forward: return "forward"
    case .dataGrad: return "dgrad"
    case .weightGrad: return "wgrad"
    }
  }

  public var operands: (GEMMOperand, GEMMOperand) {
    switch self {
    case .forward: return (.forwardX, .forwardW)
    case .dataGrad: return (.dataGradDY, .dataGradW)
    case .weightGrad: return (.weightGradDY, .weightGradX)
    }
  }
}

/// The shape of a GEMM operand as stored (row-major `rows x cols`) and the direction its GEMM reduces
/// along. Blocks of a scaled format and Hadamard groups run along the reduction dimension: along rows
/// of X and W in the forward GEMM (the last axis), down the columns of W in the data gradient, down the
/// columns of dY and X in the weight gradient (`reducesAlongRows`: the reduction index is the row index).
public struct OperandLayout: Hashable, Sendable {
  public var rows: Int
  public var cols: Int
  /// True when the GEMM sums down each column (the reduction index is the row index).
  public var reducesAlongRows: Bool
  public var count: Int { rows * cols }
  /// Length of the reduction dimension.
  public var reductionLength: Int { reducesAlongRows ? rows : cols }

  public init(rows: Int, cols: Int, reducesAlongRows: Bool) {
    self.rows = rows
    self.cols = cols
    self.reducesAlongRows = reducesAlongRows
  }
}

/// What one rounding of an operand did (telemetry cheap enough to leave on).
public struct RoundingCounts: Hashable, Sendable {
  /// Values that saturated: for element formats |x| > max finite before rounding (Inf included, NaN
  /// not); for scaled formats, scaled values at or beyond the element format's overflow threshold
  /// (`QuantizationStats.saturated`).
  public var saturated: Int = 0
  /// Non-zero values that rounded to zero.
  public var flushed: Int = 0
  public var total: Int = 0
  /// Largest finite |x| of the tensor that was rounded (after the Hadamard transform, if any).
  public var amax: Float = 0
  /// Scale blocks (0 for element formats), and how many of them had their scale clamped at the scale
  /// format's max or rounded to zero.
  public var blocks: Int = 0
  public var scaleSaturated: Int = 0
  public var scaleUnderflow: Int = 0

  public init(
    saturated: Int = 0, flushed: Int = 0, total: Int = 0, amax: Float = 0, blocks: Int = 0,
    scaleSaturated: Int = 0, scaleUnderflow: Int = 0
  ) {
    self.saturated = saturated
    self.flushed = flushed
    self.total = total
    self.amax = amax
    self.blocks = blocks
    self.scaleSaturated = scaleSaturated
    self.scaleUnderflow = scaleUnderflow
  }

  public init(_ s: QuantizationStats) {
    self.init(
      saturated: s.saturated, flushed: s.flushedToZero, total: s.count, amax: s.amax, blocks: s.blocks,
      scaleSaturated: s.scaleSaturated, scaleUnderflow: s.scaleUnderflow)
  }

  public mutating func add(_ o: RoundingCounts) {
    saturated += o.saturated; flushed += o.flushed; total += o.total; amax = max(amax, o.amax)
    blocks += o.blocks; scaleSaturated += o.scaleSaturated; scaleUnderflow += o.scaleUnderflow
  }
}

/// Everything a rounding call needs besides the tensor: random-number coordinates, threads, whether to
/// count events, the GEMM's Hadamard transform (nil: none) and two scratch buffers of at least
/// `layout.count` values for the transposed / transformed copies (nil when neither is needed).
public struct RoundingContext {
  public var seed: UInt64
  public var stream: UInt64
  public var threads: Int
  public var countEvents: Bool
  public var hadamard: RandomHadamard?
  public var scratch: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)?

  public init(
    seed: UInt64, stream: UInt64, threads: Int = 1, countEvents: Bool = true, hadamard: RandomHadamard? = nil,
    scratch: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)? = nil
  ) {
    self.seed = seed
    self.stream = stream
    self.threads = threads
    self.countEvents = countEvents
    self.hadamard = hadamard
    self.scratch = scratch
  }
}

/// Something that rounds a GEMM operand into a scratch buffer. Implementations must be pure functions
/// of (input, layout, seed, stream): never of thread count or call order.
///
/// A rounder implements one primitive, `roundLastAxis` (a row-major matrix whose GEMM reduces along its
/// last axis); `round` builds every layout from it (see the extension): when the GEMM reduces along
/// rows it transposes first, and with a Hadamard transform it applies R along the reduction axis before
/// rounding, so both operands of a GEMM see the same R and the product is unchanged in exact arithmetic:
/// (A R)(B R)^T = A B^T.
public protocol OperandRounder: Sendable, CustomStringConvertible {
  /// True when results depend on random numbers (then every operand draws from its own stream).
  var isStochastic: Bool { get }
  /// True when the result does not depend on the reduction axis (element formats, 2-D tiles, one scale
  /// per tensor): such an operand needs no transposition, and forward and backward can share it.
  var isAxisFree: Bool { get }
  /// Rounds `src` (row-major rows x cols, blocks along the last axis) into `dst` (not overlapping);
  /// element i draws random counter i. With `countEvents` also counts saturations and flushes (else
  /// only `total` and whatever is free).
  func roundLastAxis(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
    seed: UInt64, stream: UInt64, threads: Int, countEvents: Bool
  ) -> RoundingCounts
}

extension OperandRounder {
  /// Rounds operand `src` laid out as `layout` into `dst`:
  /// - no Hadamard, and the reduction along the last axis or a rounder that ignores the axis: directly;
  /// - else, with A = src (or src^T when the GEMM reduces along rows, so that the reduction axis is
  ///   last): A' = A R (when a Hadamard transform is given, groups of n along the last axis), rounded,
  ///   and transposed back. Stochastic counters then index A's layout.
  public func round(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, layout: OperandLayout,
    context c: RoundingContext
  ) -> RoundingCounts {
    let transpose = layout.reducesAlongRows && !(isAxisFree && c.hadamard == nil)
    guard transpose || c.hadamard != nil else {
      return roundLastAxis(
        src, into: dst, rows: layout.rows, cols: layout.cols, seed: c.seed, stream: c.stream, threads: c.threads,
        countEvents: c.countEvents)
    }
    guard let (a, b) = c.scratch else { preconditionFailure("operand transform without scratch buffers") }
    let (r, k) = transpose ? (layout.cols, layout.rows) : (layout.rows, layout.cols)
    if transpose {
      Transpose.apply(src, into: a, rows: layout.rows, cols: layout.cols)
    } else {
      a.update(from: src, count: layout.count)
    }
    if let h = c.hadamard {
      // The caller checks that the reduction length is a multiple of the size.
      try! h.forward(UnsafeMutableBufferPointer(start: a, count: layout.count), rows: r, cols: k)
    }
    let counts = roundLastAxis(
      a, into: transpose ? b : dst, rows: r, cols: k, seed: c.seed, stream: c.stream, threads: c.threads,
      countEvents: c.countEvents)
    if transpose { Transpose.apply(b, into: dst, rows: r, cols: k) }
    return counts
  }

  /// The pre-context spelling (no Hadamard, no scratch: the layout must not need a transposition).
  public func round(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, layout: OperandLayout,
    seed: UInt64, stream: UInt64, threads: Int, countEvents: Bool
  ) -> RoundingCounts {
    round(src, into: dst, layout: layout, context: RoundingContext(seed: seed, stream: stream, threads: threads, countEvents: countEvents))
  }
}

/// out (cols, rows) = inp (rows, cols)^T, in 32 x 32 tiles (both sides stay in cache).
enum Transpose {
  static func apply(_ inp: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    let t = 32
    for r0 in stride(from: 0, to: rows, by: t) {
      let r1 = min(rows, r0 + t)
      for c0 in stride(from: 0, to: cols, by: t) {
        let c1 = min(cols, c0 + t)
        for r in r0..<r1 {
          for c in c0..<c1 { out[c * rows + r] = inp[r * cols + c] }
        }
      }
    }
  }
}

/// Element-wise rounding to one `FloatFormat` with an FPFormats `Quantizer` (no scaling): the setting
/// of "To FP8 and Back" when the format is `e8mY` and the rounding `rtz`.
public struct ElementRounding: OperandRounder, Hashable, Codable {
  public var format: FloatFormat
  public var rounding: RoundingMode
  public var overflow: Overflow

  public init(format: FloatFormat, rounding: RoundingMode = .rne, overflow: Overflow = .saturate) {
    self.format = format
    self.rounding = rounding
    self.overflow = overflow
  }

  public var isStochastic: Bool { rounding.isStochastic }
  public var isAxisFree: Bool { true }
  public var description: String { "\(format.name):\(rounding):\(overflow.rawValue)" }

  public func roundLastAxis(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
    seed: UInt64, stream: UInt64, threads: Int, countEvents: Bool
  ) -> RoundingCounts {
    let n = rows * cols
    let q = Quantizer(format: format, rounding: rounding, overflow: overflow, seed: seed, stream: stream)
    let limit = format.maxFinite
    // Chunks of at least 64 Ki values per thread (below that a thread costs more than it saves).
    // Chunk i quantizes elements lo..<hi as elements lo..<hi of the tensor (`firstIndex`), so the
    // result is independent of the split.
    let t = max(1, min(threads, n / 65_536))
    if t == 1 {
      q.quantize(UnsafeBufferPointer(start: src, count: n), into: UnsafeMutableBufferPointer(start: dst, count: n))
      return countEvents ? Self.count(src, dst, n, limit) : RoundingCounts(total: n)
    }
    let per = (n + t - 1) / t
    return withUnsafeTemporaryAllocation(of: RoundingCounts.self, capacity: t) { parts in
      nonisolated(unsafe) let src = src, dst = dst, parts = parts
      parts.initialize(repeating: RoundingCounts())
      DispatchQueueShim.concurrentPerform(t) { i in
        let lo = i * per, hi = min(n, lo + per)
        guard lo < hi else { return }
        q.quantize(
          UnsafeBufferPointer(start: src + lo, count: hi - lo),
          into: UnsafeMutableBufferPointer(start: dst + lo, count: hi - lo), firstIndex: lo)
        if countEvents { parts[i] = Self.count(src + lo, dst + lo, hi - lo, limit) }
      }
      var c = RoundingCounts(total: n)
      for p in parts {
        c.saturated += p.saturated
        c.flushed += p.flushed
        c.amax = max(c.amax, p.amax)
      }
      return c
    }
  }

  /// One vectorizable pass: integer sums of comparison results, and the finite amax on bit patterns.
  @inline(__always)
  static func count(
    _ src: UnsafePointer<Float>, _ dst: UnsafePointer<Float>, _ n: Int, _ limit: Float
  ) -> RoundingCounts {
    var sat: Int32 = 0, flush: Int32 = 0
    var c = RoundingCounts(total: n)
    let bits = UnsafeRawPointer(src).assumingMemoryBound(to: UInt32.self)
    var m: UInt32 = 0
    var i = 0
    // Int32 lanes (twice the width of Int64 ones), emptied every 2^30 values so they cannot overflow.
    while i < n {
      let end = min(n, i + (1 << 30))
      for j in i..<end {
        let a = src[j]
        // Branch-free (a `&&` would branch and keep the loop scalar).
        let nonzero: Int32 = a != 0 ? 1 : 0, zero: Int32 = dst[j] == 0 ? 1 : 0
        sat &+= abs(a) > limit ? 1 : 0
        flush &+= nonzero & zero
        let mag = bits[j] & 0x7FFF_FFFF
        let finite = 0 &- ((mag &- 0x7F80_0000) &>> 31)  // all ones when mag < Inf's bits
        m = max(m, mag & finite)
      }
      c.saturated += Int(sat)
      c.flushed += Int(flush)
      sat = 0
      flush = 0
      i = end
    }
    c.amax = Float(bitPattern: m)
    return c
  }
}

/// Rounding to a block-scaled format with an FPFormats `BlockQuantizer`: vector blocks run along the
/// reduction dimension (the last axis of what `roundLastAxis` sees); 2-D tiles cover the matrix as
/// stored, so a weight W (OC, C) tiled 16 x 16 is the same quantized matrix whichever GEMM reads it.
/// Elements are rounded with `rounding`; the scale with the format's own scale rounding.
public struct ScaledRounding: OperandRounder, Hashable, Codable {
  public var format: ScaledFormat
  public var rounding: RoundingMode

  public init(format: ScaledFormat, rounding: RoundingMode = .rne) {
    self.format = format
    self.rounding = rounding
  }

  public var isStochastic: Bool { rounding.isStochastic || format.scaleRounding.isStochastic }
  public var isAxisFree: Bool {
    switch format.block {
    case .tile, .tensor: return true
    case .vector, .row: return false
    }
  }
  public var description: String { "\(format.name):\(rounding)" }

  public func roundLastAxis(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
    seed: UInt64, stream: UInt64, threads: Int, countEvents: Bool
  ) -> RoundingCounts {
    let n = rows * cols
    guard n > 0 else { return RoundingCounts() }
    dst.update(from: src, count: n)
    let q = BlockQuantizer(format: format, rounding: rounding, seed: seed, stream: stream)
    let whole = UnsafeMutableBufferPointer(start: dst, count: n)
    var stats = QuantizationStats()
    let blocksPerRow: Int
    switch format.block {
    case .tile, .tensor:
      // One call over the whole matrix (tiles and a tensor scale do not split by rows).
      try! q.quantize(whole, rows: rows, cols: cols, axis: 1, stats: &stats)
      return RoundingCounts(stats)
    case .vector(let b): blocksPerRow = (cols + b - 1) / b
    case .row: blocksPerRow = 1
    }
    // Rows cut into at most `threads` chunks of >= 64 Ki values; chunk [r0, r1) passes its first
    // element and block index (random counters) and the whole tensor's amax (NVFP4 and tensor scaling),
    // so the result is that of one call over the whole matrix.
    let t = max(1, min(threads, n / 65_536, rows))
    let needsAmax = format.rule == .nvfp4 || format.tensorScale
    let a: Float? = needsAmax ? q.amax(UnsafeBufferPointer(whole)) : nil
    if t == 1 {
      try! q.quantizeLastAxis(whole, rows: rows, cols: cols, tensorAmax: a, stats: &stats)
      return RoundingCounts(stats)
    }
    let per = (rows + t - 1) / t
    return withUnsafeTemporaryAllocation(of: QuantizationStats.self, capacity: t) { parts in
      nonisolated(unsafe) let dst = dst, parts = parts
      parts.initialize(repeating: QuantizationStats())
      DispatchQueueShim.concurrentPerform(t) { i in
        let r0 = i * per, r1 = min(rows, r0 + per)
        guard r0 < r1 else { return }
        var s = QuantizationStats()
        try! q.quantizeLastAxis(
          UnsafeMutableBufferPointer(start: dst + r0 * cols, count: (r1 - r0) * cols), rows: r1 - r0, cols: cols,
          firstIndex: r0 * cols, firstBlock: r0 * blocksPerRow, tensorAmax: a, stats: &s)
        parts[i] = s
      }
      var total = QuantizationStats()
      for p in parts { total.add(p) }
      return RoundingCounts(total)
    }
  }
}

/// For each of the six operands of one linear layer, how it is rounded (nil: left in float32), and
/// for each of its three GEMMs the size of the random Hadamard transform applied to both operands along
/// the reduction dimension (nil: none). `GEMMPrecision.fp32` rounds nothing and takes exactly the code
/// path of a model without the hook.
public struct GEMMPrecision: Sendable {
  public var rounders: [(any OperandRounder)?]
  /// Indexed by `GEMM.rawValue`. Applied only where both operands are rounded and the reduction length
  /// is a multiple of the size (else that GEMM runs without it).
  public var hadamard: [Int?] = [nil, nil, nil]
  /// Clipped straight-through estimator: the gradient of a forward operand value that saturated is zero.
  public var clipSaturated = false

  public init(_ rounders: [GEMMOperand: any OperandRounder] = [:]) {
    self.rounders = GEMMOperand.allCases.map { rounders[$0] }
  }

  public static let fp32 = GEMMPrecision()

  /// Every operand of every GEMM rounded the same way.
  public static func uniform(_ r: any OperandRounder) -> GEMMPrecision {
    GEMMPrecision(Dictionary(uniqueKeysWithValues: GEMMOperand.allCases.map { ($0, r) }))
  }

  public subscript(_ operand: GEMMOperand) -> (any OperandRounder)? {
    get { rounders[operand.rawValue] }
    set { rounders[operand.rawValue] = newValue }
  }

  public var roundsNothing: Bool { rounders.allSatisfy { $0 == nil } }
}

/// Stochastic-rounding streams: the operand `operand` of linear layer `layer` at step `step` draws
/// from stream hash(step, pass, layer, operand) of the run's seed, so every rounded tensor of a run
/// has its own random numbers and a rerun (or a resumed run) draws the same ones.
public enum RoundingStreams {
  /// Passes: training forward/backward, and evaluation forwards (which must not reuse training draws).
  public enum Pass: UInt64, Sendable { case train = 0, eval = 1 }

  public static func stream(step: Int, pass: Pass, layer: Int, operand: GEMMOperand) -> UInt64 {
    var h = CounterRNG.mix(UInt64(bitPattern: Int64(step)) &+ 0x6A09_E667_F3BC_C909)
    h = CounterRNG.mix(h ^ (pass.rawValue &<< 32 | UInt64(layer)))
    return CounterRNG.mix(h ^ UInt64(operand.rawValue))
  }

  /// The Hadamard signs of GEMM `gemm` of linear layer `layer`: fixed for the whole run (one random
  /// sign vector per layer and GEMM, as the NVFP4 recipe's fixed random Hadamard), drawn from the run's
  /// seed through the counter-based generator.
  public static func hadamardStream(layer: Int, gemm: GEMM) -> UInt64 {
    CounterRNG.mix(0x4841_4441_4D41_5244 ^ (UInt64(layer) &<< 8 | UInt64(gemm.rawValue)))
  }
}
