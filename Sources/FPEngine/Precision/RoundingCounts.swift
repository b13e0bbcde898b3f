import FPFormats

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
