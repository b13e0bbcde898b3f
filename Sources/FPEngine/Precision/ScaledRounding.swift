import FPFormats

/// Rounding to a block-scaled format with an FPFormats `BlockQuantizer`: vector blocks run along the
/// reduction dimension (the last axis of what `roundLastAxis` sees); 2-D tiles cover the matrix as
/// stored, so a weight W (OC, C) tiled 16 x 16 is the same quantized matrix whichever GEMM reads it.
/// Elements are rounded with `rounding`; the scale with the format's own scale rounding.
public struct ScaledRounding: OperandRounder, Hashable, Codable {
  public var format: ScaledFormat
  public var rounding: RoundingMode
  /// The bf16 GEMM mode's form of a tensor-scaled format (`BlockQuantizer.tensorScaleApart`): values
  /// come out as element x block scale, and the GEMM multiplies its outputs by the tensor scales
  /// (`tensorScale(amax:)`). Not part of a recipe: `PrecisionRuntime.useBF16GEMMs` sets it.
  public var tensorScaleApart = false

  private enum CodingKeys: String, CodingKey { case format, rounding }

  public init(format: ScaledFormat, rounding: RoundingMode = .rne) {
    self.format = format
    self.rounding = rounding
  }

  /// Its quantizer with counters (seed, stream).
  func quantizer(seed: UInt64, stream: UInt64) -> BlockQuantizer {
    var q = BlockQuantizer(format: format, rounding: rounding, seed: seed, stream: stream)
    q.tensorScaleApart = tensorScaleApart
    return q
  }

  /// The float32 scale left out of the values it rounded from a tensor whose finite max |x| is `amax`
  /// (`RoundingCounts.amax`): the tensor scale with `tensorScaleApart`, else 1.
  public func tensorScale(amax: Float) -> Float {
    guard tensorScaleApart else { return 1 }
    return BlockQuantizer(format: format).tensorScale(tensorAmax: amax) ?? 1
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
  /// A value is element x scale: significands of p and q bits multiply to at most p + q bits, and a
  /// power-of-two scale (q = 1, UE8M0) adds none. A float32 tensor scale (NVFP4's, `tensor-scale`) can
  /// add up to 24, so those formats qualify only with the tensor scale apart.
  public var outputsBFloat16: Bool { (!needsTensorAmax || tensorScaleApart) && elementTimesScaleIsBFloat16 }

  /// Element x block scale has at most 8 significant bits.
  public var elementTimesScaleIsBFloat16: Bool {
    let p = format.element.mantissaBits + 1, q = format.scale.mantissaBits + 1
    return (q == 1 ? p : p + q) <= 8
  }

  public func blocksAlong(_ n: Int) -> Int {
    switch format.block {
    case .vector(let b): return (n + b - 1) / b
    default: return 1
    }
  }

  public var roundsTiles: Bool {
    if case .tile = format.block { return true }
    return false
  }

  /// An operand that reduces along its rows, rounded in place of its columns without transposing
  /// (`BlockQuantizer.quantizeColumns`, the same bits as `roundByStrips`); nil where that path does
  /// not apply.
  public func roundColumns(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, layout: OperandLayout, context c: RoundingContext
  ) -> RoundingCounts? {
    let q = quantizer(seed: c.seed, stream: c.stream)
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
    let q = quantizer(seed: seed, stream: stream)
    let whole = UnsafeMutableBufferPointer(start: dst, count: n)
    var stats = QuantizationStats()
    let block: Int
    switch format.block {
    case .tile, .tensor:
      // One call over the whole matrix (tiles and a tensor scale do not split by rows).
      precondition(firstIndex == 0 && tensorAmax == nil, "tiled formats round whole matrices")
      dst.update(from: src, count: n)
      try! q.quantize(whole, rows: rows, cols: cols, axis: 1, stats: &stats)
      return RoundingCounts(stats)
    case .vector(let b): block = b
    case .row: block = cols
    }
    let blocksPerRow = (cols + block - 1) / block
    // Rows cut into at most `threads` chunks of >= 16 Ki values; chunk [r0, r1) passes its first
    // element and block index (random counters) and the whole tensor's amax (NVFP4 and tensor scaling),
    // so the result is that of one call over the whole matrix.
    let split = Self.rowSplit(rows: rows, cols: cols, threads: threads)
    // That amax is a pass over the tensor before any block. Where the rows are whole blocks of a
    // multiple of 16 values, it keeps each block's amax too (n / block floats), and the rounding does
    // not take them again.
    let keepBlockAmax = tensorAmax == nil && needsTensorAmax && BlockAmax.takes(block: block) && cols % block == 0
    return withUnsafeTemporaryAllocation(of: Float.self, capacity: keepBlockAmax ? rows * blocksPerRow : 0) { amaxes in
      nonisolated(unsafe) let src = src, dst = dst, blockAmax = keepBlockAmax ? amaxes.baseAddress : nil
      let a: Float? =
        if keepBlockAmax {
          split.map { i in
            let r = split.range(i)
            return r.isEmpty ? 0 : BlockAmax.blockAmaxes(
              src + r.lowerBound * cols, count: r.count * cols, block: block, into: blockAmax! + r.lowerBound * blocksPerRow)
          }.max()!
        } else {
          tensorAmax ?? (needsTensorAmax ? RoundingCounts.finiteAmax(src, n, threads: split.parts) : nil)
        }
      let parts = split.map { i in
        var s = QuantizationStats()
        let r0 = split.range(i).lowerBound, r1 = split.range(i).upperBound
        if r0 < r1 {
          try! q.quantizeLastAxis(
            UnsafeMutableBufferPointer(start: dst + r0 * cols, count: (r1 - r0) * cols), rows: r1 - r0, cols: cols,
            firstIndex: firstIndex + r0 * cols, firstBlock: firstBlock + r0 * blocksPerRow, tensorAmax: a,
            blockAmax: blockAmax.map { $0 + r0 * blocksPerRow }, source: src + r0 * cols, stats: &s)
        }
        return s
      }
      var total = QuantizationStats()
      for p in parts { total.add(p) }
      return RoundingCounts(total)
    }
  }
}

extension ScaledRounding {
  /// The threads of `roundLastAxis`: contiguous chunks of whole rows, at least 16 Ki values each.
  public static func rowSplit(rows: Int, cols: Int, threads: Int) -> WorkSplit {
    WorkSplit(count: rows, threads: threads, grain: WorkSplit.roundingGrain, work: rows * cols)
  }
}

// MARK: Saturation mask (clipped straight-through estimator)

extension ScaledRounding {
  /// Indices i of a row-major rows x cols tensor (blocks along the last axis, or tiles) whose value lies
  /// beyond the largest magnitude its block can represent: its element came out at the element format's
  /// max and |x_i| > |q_i|. The elements are recomputed with the same quantizer, counters and streams as
  /// `roundLastAxis`, so they are the ones the GEMM used. `scratch` and `elements` hold rows * cols values.
  public func saturatedIndices(
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
      // BlockQuantizer's tiles, each a single block of h * w values with its counters.
      var f = format
      f.block = .tensor
      let q = BlockQuantizer(format: f, rounding: rounding, seed: seed, stream: stream)
      BlockQuantizer.forEachTile(rows: rows, cols: cols, tr: tr, tc: tc) { t in
        let h = t.h, w = t.w
        for r in 0..<h { for c in 0..<w { scratch[r * w + c] = src[(t.r0 + r) * cols + t.c0 + c] } }
        try! q.quantizeLastAxis(
          UnsafeMutableBufferPointer(start: scratch, count: h * w), rows: 1, cols: h * w, firstIndex: t.first,
          firstBlock: t.block, tensorAmax: a, elements: elements, stats: &stats)
        for r in 0..<h {
          let i0 = (t.r0 + r) * cols + t.c0
          for c in 0..<w where abs(elements[r * w + c]) == maxElem && abs(src[i0 + c]) > abs(scratch[r * w + c]) {
            indices[k] = Int32(i0 + c)
            k += 1
          }
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
