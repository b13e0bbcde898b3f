import FPFormats

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
  /// Values of at most 8 significant bits (7 mantissa bits) are bfloat16 values: bfloat16 has
  /// float32's exponent range.
  public var outputsBFloat16: Bool { format.mantissaBits <= 7 }
  public var description: String { "\(format.name):\(rounding):\(overflow.rawValue)" }

  /// The element quantizer drawing from (seed, stream).
  func quantizer(seed: UInt64, stream: UInt64) -> Quantizer {
    Quantizer(format: format, rounding: rounding, overflow: overflow, seed: seed, stream: stream)
  }

  /// |x| above this saturates (the telemetry's count): the format's largest finite value.
  var saturationLimit: Float { format.maxFinite }

  public func roundLastAxis(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
    firstIndex: Int, firstBlock: Int, tensorAmax: Float?,
    seed: UInt64, stream: UInt64, threads: Int, countEvents: Bool
  ) -> RoundingCounts {
    let n = rows * cols
    let q = quantizer(seed: seed, stream: stream), limit = saturationLimit
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

// MARK: Saturation mask (clipped straight-through estimator)

extension ElementRounding {
  /// Indices i of a tensor whose |x_i| exceeds the format's largest finite value (the clamp's flat part).
  public func saturatedIndices(
    _ src: UnsafePointer<Float>, rows: Int, cols: Int, seed: UInt64, stream: UInt64,
    scratch: UnsafeMutablePointer<Float>, elements: UnsafeMutablePointer<Float>, into indices: UnsafeMutablePointer<Int32>
  ) -> Int {
    saturatedIndices(src, count: rows * cols, into: indices)
  }

  /// The same, for n values in any layout (no rounding needs recomputing).
  func saturatedIndices(_ src: UnsafePointer<Float>, count n: Int, into indices: UnsafeMutablePointer<Int32>) -> Int {
    let limit = saturationLimit
    var k = 0
    for i in 0..<n where abs(src[i]) > limit {
      indices[k] = Int32(i)
      k += 1
    }
    return k
  }
}
