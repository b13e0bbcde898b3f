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
  public var gemm: GEMMKind {
    switch self {
    case .forwardX, .forwardW: return .forward
    case .dataGradDY, .dataGradW: return .dataGrad
    case .weightGradDY, .weightGradX: return .weightGrad
    }
  }
}

/// The three GEMMs of a linear layer (see `GEMMOperand`); names as recipes spell them.
public enum GEMMKind: Int, CaseIterable, Codable, Sendable, CustomStringConvertible {
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
  /// True when the rounding of any part needs the whole tensor's max |x| (NVFP4, tensor scaling).
  var needsTensorAmax: Bool { get }
  /// Rounds `src` (row-major rows x cols, blocks along the last axis) into `dst` (not overlapping).
  /// The rows may be a piece of a larger tensor of the same row length: the piece's element i is the
  /// tensor's element `firstIndex + i` (random counter), its block b the tensor's block
  /// `firstBlock + b`, and `tensorAmax` the tensor's max |x| (nil: this piece is the whole tensor).
  /// With `countEvents` also counts saturations and flushes (else only `total` and what is free).
  func roundLastAxis(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
    firstIndex: Int, firstBlock: Int, tensorAmax: Float?,
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
        src, into: dst, rows: layout.rows, cols: layout.cols, firstIndex: 0, firstBlock: 0, tensorAmax: nil,
        seed: c.seed, stream: c.stream, threads: c.threads, countEvents: c.countEvents)
    }
    guard let (a, b) = c.scratch else { preconditionFailure("operand transform without scratch buffers") }
    if transpose && !isAxisFree {
      if let s = self as? ScaledRounding, let counts = s.roundColumns(src, into: dst, layout: layout, context: c) {
        return counts
      }
      return roundByStrips(src, into: dst, layout: layout, context: c, scratch: (a, b))
    }
    let (r, k) = transpose ? (layout.cols, layout.rows) : (layout.rows, layout.cols)
    if transpose {
      Transpose.apply(src, into: a, rows: layout.rows, cols: layout.cols)
    } else {
      a.update(from: src, count: layout.count)
    }
    var amax: Float? = nil
    if let h = c.hadamard {
      // The caller checks that the reduction length is a multiple of the size.
      amax = try! h.forward(UnsafeMutableBufferPointer(start: a, count: layout.count), rows: r, cols: k)
    }
    let counts = roundLastAxis(
      a, into: transpose ? b : dst, rows: r, cols: k, firstIndex: 0, firstBlock: 0,
      tensorAmax: needsTensorAmax ? amax : nil,
      seed: c.seed, stream: c.stream, threads: c.threads, countEvents: c.countEvents)
    if transpose { Transpose.apply(b, into: dst, rows: r, cols: k) }
    return counts
  }

  /// The transposed path in strips that stay in cache: strip j holds original columns
  /// [j S, (j+1) S), i.e. rows of A = src^T; it is transposed into scratch, transformed, rounded as
  /// rows j S ..< (j+1) S of A (element and block counters continue across strips) and transposed back
  /// into its columns of `dst`. Threads take whole strips, so the result is that of one pass over A.
  /// A tensor amax, where the format needs one, is taken first (over A R when there is a Hadamard
  /// transform, a strip at a time).
  func roundByStrips(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, layout: OperandLayout,
    context c: RoundingContext, scratch: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)
  ) -> RoundingCounts {
    let rows = layout.rows, cols = layout.cols
    let S = OperandLayout.stripWidth(cols: cols)
    let split = layout.stripSplit(threads: c.threads)
    let blocksPerRow = blocksAlong(rows)
    nonisolated(unsafe) let src = src, dst = dst, a = scratch.0, b = scratch.1
    let hadamard = c.hadamard, seed = c.seed, stream = c.stream, countEvents = c.countEvents
    /// Transposed (and transformed) columns j0 ..< j1 into `p` as (j1 - j0) rows of length `rows`.
    let load: @Sendable (Int, Int, UnsafeMutablePointer<Float>) -> Void = { j0, j1, p in
      Transpose.apply(src + j0, into: p, rows: rows, cols: j1 - j0, ldIn: cols)
      if let h = hadamard { try! h.forward(UnsafeMutableBufferPointer(start: p, count: (j1 - j0) * rows), rows: j1 - j0, cols: rows) }
    }
    // Strip j lives at a + j0 * rows (A = src^T R in place, so a strip loaded for the amax is not
    // loaded again); its rounded copy goes to the thread's part of B.
    let preload = needsTensorAmax && hadamard != nil
    var amax: Float? = needsTensorAmax && hadamard == nil ? BlockAmax.finiteAmax(src, layout.count) : nil
    if preload {
      amax = split.map { i in
        var m: Float = 0
        for j in split.interleaved(i) {
          let j0 = j * S, j1 = min(cols, j0 + S)
          load(j0, j1, a + j0 * rows)
          m = max(m, BlockAmax.finiteAmax(a + j0 * rows, (j1 - j0) * rows))
        }
        return m
      }.max()!
    }
    let tensorAmax = amax
    let parts = split.map { i in
      let pb = b + i * S * rows
      var total = RoundingCounts()
      for j in split.interleaved(i) {
        let j0 = j * S, j1 = min(cols, j0 + S)
        let pa = a + j0 * rows
        if !preload { load(j0, j1, pa) }
        total.add(
          roundLastAxis(
            pa, into: pb, rows: j1 - j0, cols: rows, firstIndex: j0 * rows, firstBlock: j0 * blocksPerRow,
            tensorAmax: tensorAmax, seed: seed, stream: stream, threads: 1, countEvents: countEvents))
        Transpose.apply(pb, into: dst + j0, rows: j1 - j0, cols: rows, ldOut: cols)
      }
      return total
    }
    var total = RoundingCounts()
    for p in parts { total.add(p) }
    return total
  }

  /// Blocks per row of length `n` (for counters of pieces); 1 for formats without blocks.
  func blocksAlong(_ n: Int) -> Int {
    guard let s = self as? ScaledRounding else { return 1 }
    switch s.format.block {
    case .vector(let b): return (n + b - 1) / b
    default: return 1
    }
  }

  /// The pre-context spelling (no Hadamard, no scratch: the layout must not need a transposition).
  public func round(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, layout: OperandLayout,
    seed: UInt64, stream: UInt64, threads: Int, countEvents: Bool
  ) -> RoundingCounts {
    round(src, into: dst, layout: layout, context: RoundingContext(seed: seed, stream: stream, threads: threads, countEvents: countEvents))
  }
}

extension RoundingCounts {
  /// `BlockAmax.finiteAmax` on up to `threads` contiguous chunks (a max does not depend on the split).
  static func finiteAmax(_ x: UnsafePointer<Float>, _ n: Int, threads: Int) -> Float {
    let split = WorkSplit(count: n, threads: threads, grain: 65_536)
    nonisolated(unsafe) let x = x
    return split.map { i in
      let r = split.range(i)
      return r.isEmpty ? 0 : BlockAmax.finiteAmax(x + r.lowerBound, r.count)
    }.max()!
  }
}

/// out (cols, rows) = inp (rows, cols)^T, in 8 x 8 tiles held in eight 8-lane vectors. Small tiles
/// matter: with power-of-two row lengths (2048 tokens) the 8 output rows of a tile lie 8 KB apart and
/// share one L1 set; 8 of them fit in its ways, 32 (a 32 x 32 tile) thrash it.
///
/// An 8 x 8 tile read as 64 values in row-major order has index bits (r2 r1 r0 c2 c1 c0); its transpose
/// has (c2 c1 c0 r2 r1 r0), a rotation by three bits. One perfect unshuffle (all even-indexed values,
/// then all odd ones) rotates the index right by one bit, so three unshuffles transpose the tile; each
/// is eight even/odd halves of vector pairs, which compile to two-source permutes. Edges are scalar.
/// `ldIn` / `ldOut` are the row strides of `inp` / `out` when they are pieces of wider matrices.
enum Transpose {
  static func apply(
    _ inp: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
    ldIn: Int? = nil, ldOut: Int? = nil
  ) {
    let li = ldIn ?? cols, lo = ldOut ?? rows
    let r8 = rows & ~7, c8 = cols & ~7
    let src = UnsafeRawPointer(inp), dst = UnsafeMutableRawPointer(out)
    typealias V = SIMD8<Float>
    for r0 in stride(from: 0, to: r8, by: 8) {
      for c0 in stride(from: 0, to: c8, by: 8) {
        @inline(__always) func load(_ i: Int) -> V { src.loadUnaligned(fromByteOffset: ((r0 + i) * li + c0) * 4, as: V.self) }
        var t0 = load(0), t1 = load(1), t2 = load(2), t3 = load(3), t4 = load(4), t5 = load(5), t6 = load(6), t7 = load(7)
        for _ in 0..<3 {
          let p0 = SIMD16(lowHalf: t0, highHalf: t1), p1 = SIMD16(lowHalf: t2, highHalf: t3)
          let p2 = SIMD16(lowHalf: t4, highHalf: t5), p3 = SIMD16(lowHalf: t6, highHalf: t7)
          t0 = p0.evenHalf; t1 = p1.evenHalf; t2 = p2.evenHalf; t3 = p3.evenHalf
          t4 = p0.oddHalf; t5 = p1.oddHalf; t6 = p2.oddHalf; t7 = p3.oddHalf
        }
        @inline(__always) func store(_ i: Int, _ t: V) { dst.storeBytes(of: t, toByteOffset: ((c0 + i) * lo + r0) * 4, as: V.self) }
        store(0, t0); store(1, t1); store(2, t2); store(3, t3); store(4, t4); store(5, t5); store(6, t6); store(7, t7)
      }
    }
    // Edges: the last cols % 8 columns of every row, and the last rows % 8 rows.
    for r in 0..<rows {
      let cStart = r < r8 ? c8 : 0
      for c in cStart..<cols { out[c * lo + r] = inp[r * li + c] }
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
  public var needsTensorAmax: Bool { false }
  public var description: String { "\(format.name):\(rounding):\(overflow.rawValue)" }

  public func roundLastAxis(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
    firstIndex: Int, firstBlock: Int, tensorAmax: Float?,
    seed: UInt64, stream: UInt64, threads: Int, countEvents: Bool
  ) -> RoundingCounts {
    let n = rows * cols
    let q = Quantizer(format: format, rounding: rounding, overflow: overflow, seed: seed, stream: stream)
    let limit = format.maxFinite
    // Chunks of at least 64 Ki values per thread (below that a thread costs more than it saves).
    // Chunk i quantizes elements lo..<hi as elements lo..<hi of the tensor (`firstIndex`), so the
    // result is independent of the split.
    let split = Quantizer.split(count: n, threads: threads)
    if split.parts == 1 { return Self.round(q, src, dst, n, firstIndex, limit, countEvents) }
    nonisolated(unsafe) let src = src, dst = dst
    let parts = split.map { i in
      let r = split.range(i), lo = r.lowerBound
      return r.isEmpty ? RoundingCounts() : Self.round(q, src + lo, dst + lo, r.count, firstIndex + lo, limit, countEvents)
    }
    var c = RoundingCounts()
    for p in parts { c.add(p) }
    return c
  }

  /// n values (tensor elements firstIndex ..< firstIndex + n), with the telemetry counts taken in the
  /// rounding pass itself when `countEvents` (n stays far below the kernel's 2^32 limit per call here).
  static func round(
    _ q: Quantizer, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int, _ firstIndex: Int,
    _ limit: Float, _ countEvents: Bool
  ) -> RoundingCounts {
    let input = UnsafeBufferPointer(start: src, count: n), output = UnsafeMutableBufferPointer(start: dst, count: n)
    guard countEvents else {
      q.quantize(input, into: output, firstIndex: firstIndex)
      return RoundingCounts(total: n)
    }
    let c = q.quantizeCounting(input, into: output, firstIndex: firstIndex, limit: limit)
    var counts = RoundingCounts(total: n)
    counts.saturated = c.saturated
    counts.flushed = c.flushed
    counts.amax = c.amax
    return counts
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
  public var needsTensorAmax: Bool { format.rule == .nvfp4 || format.tensorScale }

  /// An operand that reduces along its rows, rounded in place of its columns without transposing
  /// (`BlockQuantizer.quantizeColumns`, the same bits as `roundByStrips`); nil where that path does
  /// not apply.
  func roundColumns(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, layout: OperandLayout, context c: RoundingContext
  ) -> RoundingCounts? {
    let q = BlockQuantizer(format: format, rounding: rounding, seed: c.seed, stream: c.stream)
    var stats = QuantizationStats()
    guard q.quantizeColumns(
      src, into: dst, rows: layout.rows, cols: layout.cols, hadamard: c.hadamard, threads: c.threads, stats: &stats)
    else { return nil }
    return RoundingCounts(stats)
  }

  public func roundLastAxis(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
    firstIndex: Int, firstBlock: Int, tensorAmax: Float?,
    seed: UInt64, stream: UInt64, threads: Int, countEvents: Bool
  ) -> RoundingCounts {
    let n = rows * cols
    guard n > 0 else { return RoundingCounts() }
    let q = BlockQuantizer(format: format, rounding: rounding, seed: seed, stream: stream)
    let whole = UnsafeMutableBufferPointer(start: dst, count: n)
    var stats = QuantizationStats()
    let blocksPerRow: Int
    switch format.block {
    case .tile, .tensor:
      // One call over the whole matrix (tiles and a tensor scale do not split by rows).
      precondition(firstIndex == 0 && tensorAmax == nil, "tiled formats round whole matrices")
      dst.update(from: src, count: n)
      try! q.quantize(whole, rows: rows, cols: cols, axis: 1, stats: &stats)
      return RoundingCounts(stats)
    case .vector(let b): blocksPerRow = (cols + b - 1) / b
    case .row: blocksPerRow = 1
    }
    // Rows cut into at most `threads` chunks of >= 64 Ki values; chunk [r0, r1) passes its first
    // element and block index (random counters) and the whole tensor's amax (NVFP4 and tensor scaling),
    // so the result is that of one call over the whole matrix.
    let split = Self.rowSplit(rows: rows, cols: cols, threads: threads)
    let a: Float? = tensorAmax ?? (needsTensorAmax ? RoundingCounts.finiteAmax(src, n, threads: split.parts) : nil)
    if split.parts == 1 {
      try! q.quantizeLastAxis(
        whole, rows: rows, cols: cols, firstIndex: firstIndex, firstBlock: firstBlock, tensorAmax: a, source: src,
        stats: &stats)
      return RoundingCounts(stats)
    }
    nonisolated(unsafe) let src = src, dst = dst
    let parts = split.map { i in
      var s = QuantizationStats()
      let r0 = split.range(i).lowerBound, r1 = split.range(i).upperBound
      if r0 < r1 {
        try! q.quantizeLastAxis(
          UnsafeMutableBufferPointer(start: dst + r0 * cols, count: (r1 - r0) * cols), rows: r1 - r0, cols: cols,
          firstIndex: firstIndex + r0 * cols, firstBlock: firstBlock + r0 * blocksPerRow, tensorAmax: a,
          source: src + r0 * cols, stats: &s)
      }
      return s
    }
    var total = QuantizationStats()
    for p in parts { total.add(p) }
    return RoundingCounts(total)
  }
}

extension ScaledRounding {
  /// The threads of `roundLastAxis`: contiguous chunks of whole rows, at least 64 Ki values each.
  public static func rowSplit(rows: Int, cols: Int, threads: Int) -> WorkSplit {
    WorkSplit(count: rows, threads: threads, grain: 65_536, work: rows * cols)
  }
}

extension OperandLayout {
  /// The strips of `roundByStrips`: `stripWidth` original columns each.
  static func stripWidth(cols: Int) -> Int { min(cols, 32) }

  /// The threads of `roundByStrips`: whole strips dealt round, at least 32 Ki values per thread, and no
  /// more threads than cols / width (each thread owns width * rows values of the scratch buffer).
  public func stripSplit(threads: Int) -> WorkSplit {
    let S = Self.stripWidth(cols: cols)
    return WorkSplit(count: (cols + S - 1) / S, threads: threads, grain: 32_768, work: count, maxParts: cols / S)
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
  public static func hadamardStream(layer: Int, gemm: GEMMKind) -> UInt64 {
    CounterRNG.mix(0x4841_4441_4D41_5244 ^ (UInt64(layer) &<< 8 | UInt64(gemm.rawValue)))
  }
}

// MARK: Saturation masks (clipped straight-through estimator)

extension ElementRounding {
  /// Indices i of a tensor whose |x_i| exceeds the format's largest finite value (the clamp's flat part).
  func saturatedIndices(_ src: UnsafePointer<Float>, count n: Int, into indices: UnsafeMutablePointer<Int32>) -> Int {
    let limit = format.maxFinite
    var k = 0
    for i in 0..<n where abs(src[i]) > limit {
      indices[k] = Int32(i)
      k += 1
    }
    return k
  }
}

extension ScaledRounding {
  /// Indices i of a row-major rows x cols tensor (blocks along the last axis, or tiles) whose value lies
  /// beyond the largest magnitude its block can represent: its element came out at the element format's
  /// max and |x_i| > |q_i|. The elements are recomputed with the same quantizer, counters and streams as
  /// `roundLastAxis`, so they are the ones the GEMM used. `scratch` and `elements` hold rows * cols values.
  func saturatedIndices(
    _ src: UnsafePointer<Float>, rows: Int, cols: Int, seed: UInt64, stream: UInt64,
    scratch: UnsafeMutablePointer<Float>, elements: UnsafeMutablePointer<Float>, into indices: UnsafeMutablePointer<Int32>
  ) -> Int {
    let n = rows * cols
    let maxElem = format.elementMax
    var stats = QuantizationStats()
    scratch.update(from: src, count: n)
    let a: Float? = needsTensorAmax ? BlockAmax.finiteAmax(src, n) : nil
    var k = 0
    switch format.block {
    case .tile(let tr, let tc):
      // BlockQuantizer's tile order: tile by tile, each a single block of h * w values whose random
      // counters continue from the previous tiles (block index = first counter / (h * w)).
      var f = format
      f.block = .tensor
      let q = BlockQuantizer(format: f, rounding: rounding, seed: seed, stream: stream)
      var index = 0
      for r0 in stride(from: 0, to: rows, by: tr) {
        for c0 in stride(from: 0, to: cols, by: tc) {
          let h = min(tr, rows - r0), w = min(tc, cols - c0)
          for r in 0..<h { for c in 0..<w { scratch[r * w + c] = src[(r0 + r) * cols + c0 + c] } }
          try! q.quantizeLastAxis(
            UnsafeMutableBufferPointer(start: scratch, count: h * w), rows: 1, cols: h * w, firstIndex: index,
            firstBlock: index / (h * w), tensorAmax: a, elements: elements, stats: &stats)
          for r in 0..<h {
            for c in 0..<w where abs(elements[r * w + c]) == maxElem && abs(src[(r0 + r) * cols + c0 + c]) > abs(scratch[r * w + c]) {
              indices[k] = Int32((r0 + r) * cols + c0 + c)
              k += 1
            }
          }
          index += h * w
        }
      }
      return k
    default:
      let q = BlockQuantizer(format: format, rounding: rounding, seed: seed, stream: stream)
      try! q.quantizeLastAxis(
        UnsafeMutableBufferPointer(start: scratch, count: n), rows: rows, cols: cols, tensorAmax: a, elements: elements,
        stats: &stats)
      for i in 0..<n where abs(elements[i]) == maxElem && abs(src[i]) > abs(scratch[i]) {
        indices[k] = Int32(i)
        k += 1
      }
      return k
    }
  }
}
