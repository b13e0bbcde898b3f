import FPFormats

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
  /// True when every value it outputs is exactly a bfloat16 value (at most 8 significant bits), so that
  /// `--gemm bf16` may multiply it on `BF16GEMM` unchanged (default false).
  var outputsBFloat16: Bool { get }
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
  /// Blocks per row of length `n` (the block counters of pieces of a tensor); 1 for formats without
  /// blocks along rows (the default).
  func blocksAlong(_ n: Int) -> Int
  /// True when the rounding covers 2-D tiles of the matrix as stored, so that a tiled weight is the
  /// same quantized matrix whichever GEMM reads it, even when stochastic (default false).
  var roundsTiles: Bool { get }
  /// An operand whose GEMM reduces along its rows, rounded without transposing it, bit for bit what
  /// `round` gives by transposition; nil where the rounder has no such path for this layout and
  /// context (the default).
  func roundColumns(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, layout: OperandLayout, context c: RoundingContext
  ) -> RoundingCounts?
  /// For the clipped straight-through estimator: writes the indices i of a row-major rows x cols
  /// forward operand (reducing along its last axis) whose value the rounding clamped, as this rounder
  /// rounds it with (seed, stream), into `indices`, and returns how many. `scratch` and `elements` hold
  /// rows * cols values for rounders that recompute the rounding. The default finds none.
  func saturatedIndices(
    _ src: UnsafePointer<Float>, rows: Int, cols: Int, seed: UInt64, stream: UInt64,
    scratch: UnsafeMutablePointer<Float>, elements: UnsafeMutablePointer<Float>, into indices: UnsafeMutablePointer<Int32>
  ) -> Int
}

/// The defaults of the optional requirements: a rounder without bfloat16 outputs, blocks, tiles, a
/// column path or saturation.
extension OperandRounder {
  public var outputsBFloat16: Bool { false }
  public func blocksAlong(_ n: Int) -> Int { 1 }
  public var roundsTiles: Bool { false }
  public func roundColumns(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, layout: OperandLayout, context c: RoundingContext
  ) -> RoundingCounts? { nil }
  public func saturatedIndices(
    _ src: UnsafePointer<Float>, rows: Int, cols: Int, seed: UInt64, stream: UInt64,
    scratch: UnsafeMutablePointer<Float>, elements: UnsafeMutablePointer<Float>, into indices: UnsafeMutablePointer<Int32>
  ) -> Int { 0 }
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
      if let counts = roundColumns(src, into: dst, layout: layout, context: c) {
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

  /// The pre-context spelling (no Hadamard, no scratch: the layout must not need a transposition).
  public func round(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, layout: OperandLayout,
    seed: UInt64, stream: UInt64, threads: Int, countEvents: Bool
  ) -> RoundingCounts {
    round(src, into: dst, layout: layout, context: RoundingContext(seed: seed, stream: stream, threads: threads, countEvents: countEvents))
  }
}

extension OperandLayout {
  /// The strips of `roundByStrips`: `stripWidth` original columns each.
  static func stripWidth(cols: Int) -> Int { min(cols, 32) }

  /// The threads of `roundByStrips`: whole strips dealt round, at least 16 Ki values per thread, and no
  /// more threads than cols / width (each thread owns width * rows values of the scratch buffer).
  public func stripSplit(threads: Int) -> WorkSplit {
    let S = Self.stripWidth(cols: cols)
    return WorkSplit(
      count: (cols + S - 1) / S, threads: threads, grain: WorkSplit.roundingGrain, work: count, maxParts: cols / S)
  }
}
