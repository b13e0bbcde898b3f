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

/// The shape of a GEMM operand as stored (row-major `rows x cols`) and the direction its GEMM reduces
/// along. Element-wise rounding ignores it; block scaling (the next recipe issue) needs it, because
/// blocks run along the reduction dimension: along rows of X and W in the forward GEMM, down the
/// columns of W in the data gradient, down the columns of dY and X in the weight gradient.
public struct OperandLayout: Hashable, Sendable {
  public var rows: Int
  public var cols: Int
  /// True when the GEMM sums down each column (the reduction index is the row index).
  public var reducesAlongRows: Bool
  public var count: Int { rows * cols }

  public init(rows: Int, cols: Int, reducesAlongRows: Bool) {
    self.rows = rows
    self.cols = cols
    self.reducesAlongRows = reducesAlongRows
  }
}

/// How many values one rounding saturated and flushed to zero, out of how many.
public struct RoundingCounts: Hashable, Sendable {
  /// Values with |x| > the format's largest finite value before rounding (Inf included, NaN not).
  public var saturated: Int = 0
  /// Non-zero values that rounded to zero.
  public var flushed: Int = 0
  public var total: Int = 0
  public init(saturated: Int = 0, flushed: Int = 0, total: Int = 0) {
    self.saturated = saturated
    self.flushed = flushed
    self.total = total
  }
}

/// Something that rounds a GEMM operand into a scratch buffer. Implementations must be pure functions
/// of (input, layout, seed, stream): never of thread count or call order.
public protocol OperandRounder: Sendable, CustomStringConvertible {
  /// True when results depend on random numbers (then every operand draws from its own stream).
  var isStochastic: Bool { get }
  /// Rounds `src` (laid out as `layout`) into `dst`; with `countEvents` also counts saturations
  /// and flushes to zero (else returns zero counts and `total`).
  func round(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, layout: OperandLayout,
    seed: UInt64, stream: UInt64, threads: Int, countEvents: Bool
  ) -> RoundingCounts
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
  public var description: String { "\(format.name):\(rounding):\(overflow.rawValue)" }

  public func round(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, layout: OperandLayout,
    seed: UInt64, stream: UInt64, threads: Int, countEvents: Bool
  ) -> RoundingCounts {
    let n = layout.count
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
      }
      return c
    }
  }

  /// One vectorizable pass: integer sums of comparison results.
  @inline(__always)
  static func count(
    _ src: UnsafePointer<Float>, _ dst: UnsafePointer<Float>, _ n: Int, _ limit: Float
  ) -> RoundingCounts {
    var sat: Int32 = 0, flush: Int32 = 0
    var c = RoundingCounts(total: n)
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
      }
      c.saturated += Int(sat)
      c.flushed += Int(flush)
      sat = 0
      flush = 0
      i = end
    }
    return c
  }
}

/// For each of the six operands of one linear layer, how it is rounded (nil: left in float32).
/// `GEMMPrecision.fp32` rounds nothing and takes exactly the code path of a model without the hook.
public struct GEMMPrecision: Sendable {
  public var rounders: [(any OperandRounder)?]

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
}
