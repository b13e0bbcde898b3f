/// Rounds a tensor to any format a user can name: an element format (`Quantizer`) or a block-scaled
/// one (`BlockQuantizer`), behind one call.
public enum AnyQuantizer: Sendable {
  case element(Quantizer)
  case scaled(BlockQuantizer)

  /// Element rounding `rounding`; `overflow` applies to element formats (block formats saturate);
  /// `seed` drives stochastic rounding of elements and of scales.
  public init(format: AnyFormat, rounding: RoundingMode = .rne, overflow: Overflow = .saturate, seed: UInt64 = 0) {
    switch format {
    case .element(let f): self = .element(Quantizer(format: f, rounding: rounding, overflow: overflow, seed: seed))
    case .scaled(let s): self = .scaled(BlockQuantizer(format: s, rounding: rounding, seed: seed))
    }
  }

  /// In place, a row-major [rows, cols] tensor; block formats block along `axis` (1 = last).
  /// `tensorAmax`: the tensor's finite max |x| when known (`RandomHadamard.forward` returns it), which
  /// spares NVFP4 and tensor-scaled formats a pass.
  public func quantize(
    _ x: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, axis: Int = 1, firstIndex: Int = 0,
    threads: Int = 1, tensorAmax: Float? = nil, stats: inout QuantizationStats
  ) throws {
    switch self {
    case .element(let q):
      // Saturated: finite inputs at or beyond the overflow threshold. Flushed: non-zero inputs that
      // come out as zero.
      let threshold = q.format.overflowThreshold
      let input = Array(x)
      q.quantize(x, firstIndex: firstIndex, threads: threads)
      for (v, out) in zip(input, x) {
        if v.isFinite && v.magnitude >= threshold { stats.saturated += 1 }
        if v != 0 && !v.isNaN && out == 0 { stats.flushedToZero += 1 }
        if v.isFinite { stats.amax = max(stats.amax, v.magnitude) }
      }
      stats.count += x.count
    case .scaled(let b):
      try b.quantize(x, rows: rows, cols: cols, axis: axis, firstIndex: firstIndex, tensorAmax: tensorAmax, stats: &stats)
    }
  }

  /// Without telemetry: element formats go straight to the vectorized kernel.
  public func quantize(
    _ x: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, axis: Int = 1, firstIndex: Int = 0, threads: Int = 1,
    tensorAmax: Float? = nil
  ) throws {
    switch self {
    case .element(let q): q.quantize(x, firstIndex: firstIndex, threads: threads)
    case .scaled(let b):
      var stats = QuantizationStats()
      try b.quantize(x, rows: rows, cols: cols, axis: axis, firstIndex: firstIndex, tensorAmax: tensorAmax, stats: &stats)
    }
  }

  public func quantize(_ values: [Float], rows: Int = 1, axis: Int = 1) throws -> [Float] {
    var out = values
    var stats = QuantizationStats()
    try out.withUnsafeMutableBufferPointer {
      try quantize($0, rows: rows, cols: values.count / max(rows, 1), axis: axis, stats: &stats)
    }
    return out
  }
}
