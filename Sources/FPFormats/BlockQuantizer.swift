/// Counts gathered while quantizing with a block format (telemetry for training recipes and
/// `fpsim error`).
public struct QuantizationStats: Hashable, Codable, Sendable {
  /// Elements whose (scaled) magnitude reached the element format's overflow threshold, max plus half
  /// its top spacing: rounding alone would have taken them past max, so the clamp changed them.
  public var saturated = 0
  /// Non-zero inputs that came out as zero.
  public var flushedToZero = 0
  public var count = 0
  public var blocks = 0
  /// Blocks whose scale was clamped at the scale format's max / rounded to zero (or clamped at 2^-127).
  public var scaleSaturated = 0
  public var scaleUnderflow = 0
  /// Largest finite input magnitude.
  public var amax: Float = 0

  public init() {}

  public mutating func add(_ o: QuantizationStats) {
    saturated += o.saturated; flushedToZero += o.flushedToZero; count += o.count; blocks += o.blocks
    scaleSaturated += o.scaleSaturated; scaleUnderflow += o.scaleUnderflow; amax = max(amax, o.amax)
  }
}

/// Quantizes tensors to a `ScaledFormat`, exactly as the format's rule prescribes (float32 arithmetic,
/// `fl` = round to float32 to nearest even):
///
/// - `floor` / `ceil` (OCP MX, UE8M0 scales): per block, A_b = max|x|; the shared exponent is
///   e = floor(log2 A_b) - emax_elem (or ceil(log2(A_b / max_elem))), from the float's bits, clamped to
///   [-127, 127], -127 for an all-zero block; the result is Q(x * 2^-e) * 2^e, Q the element rounding
///   with saturation at +-max_elem. The scaling is exact except where x * 2^-e falls below float32's
///   normal range (2^126 below the block's max), where such values round to zero under nearest rounding.
/// - `amax` (UE4M3, UE5M3, BF16, FP32 scales, the FP4 design-space study): with tensor scaling,
///   g = fl(A / fl(max_elem * max_scale)) for the tensor's A = max|x| (1 when A = 0), else g = 1; per
///   block s = S(fl(fl(A_b / max_elem) / g)), S the scale rounding (nearest or stochastic, saturating);
///   d = fl(s * g); a block with d = 0 becomes zeros; else the result is fl(Q(fl(x * fl(1 / d))) * d).
/// - `nvfp4`: NVIDIA's reference order, documented step by step at the end of this type.
///
/// NaN inputs follow the element format (NaN where it has one, else a zero, as ml_dtypes does);
/// infinities saturate. Element `i` of the tensor (row-major) uses random counter
/// `firstIndex + i` for stochastic element rounding; block `b` uses counter `b` of stream `stream + 1`
/// for stochastic scale rounding, so results never depend on threads.
public struct BlockQuantizer: Sendable {
  public let format: ScaledFormat
  public let rounding: RoundingMode
  public let seed: UInt64
  public let stream: UInt64
  let element: Quantizer
  let scaleQuantizer: Quantizer
  // Derived properties used per block, computed once.
  let maxElem: Float
  let emaxElem: Int
  let scaleMax: Float
  let saturationLimit: Float  // the largest magnitude that is not counted as saturated
  /// Leave the float32 tensor scale (`tensorScale(tensorAmax:)`, of NVFP4 and `tensor-scale`) out of
  /// the results: each value comes out as element x block scale, fl(q * s), which is exact (at most
  /// the two significands' bits), and the caller applies the tensor scale once to whatever it computes
  /// from them (the bf16 GEMM mode, to each product's outputs). The elements, the block scales and
  /// every count are those of the default, where the value is q times the combined factor (rules
  /// `amax` and `nvfp4` above); a block whose combined factor is 0 or not finite (an underflow, or
  /// NVFP4's fl(s * A) past FLT_MAX when A nears it) keeps the default's values, zeros or NaN and
  /// infinities.
  public var tensorScaleApart = false

  public init(format: ScaledFormat, rounding: RoundingMode = .rne, seed: UInt64 = 0, stream: UInt64 = 0) {
    self.format = format
    self.rounding = rounding
    self.seed = seed
    self.stream = stream
    element = Quantizer(format: format.element, rounding: rounding, overflow: .saturate, seed: seed, stream: stream)
    scaleQuantizer = Quantizer(
      format: format.scale, rounding: format.scaleRounding, overflow: .saturate, seed: seed, stream: stream &+ 1)
    maxElem = format.elementMax
    emaxElem = format.elementEmax
    scaleMax = format.scale.maxFinite
    saturationLimit = format.element.overflowThreshold.nextDown
  }

  /// A 1-D tensor: consecutive values form the blocks; a short last block is its own block.
  public func quantize(_ values: [Float], stats: inout QuantizationStats) throws -> [Float] {
    var out = values
    try out.withUnsafeMutableBufferPointer { try quantize($0, rows: 1, cols: values.count, stats: &stats) }
    return out
  }

  public func quantize(_ values: [Float]) throws -> [Float] {
    var s = QuantizationStats()
    return try quantize(values, stats: &s)
  }

  /// In place, blocks along the last axis of a row-major [rows, cols] tensor (vector, `row` and
  /// `tensor` blocks), with everything needed to store the result as codes: each value's element (the
  /// rounded value before scaling back) into `elements`, each block's stored scale (a value of the
  /// scale format; 2^e for UE8M0) into `scales`, block order row-major. A tensor streamed in pieces
  /// passes each piece's first element and block index (random counters continue across pieces) and
  /// `tensorAmax`, the whole tensor's max |x|, which NVFP4 and tensor scaling need. With `source`, the
  /// input is read from there (rows x cols values, not overlapping x) instead of x's contents, and x
  /// is only written: one pass over memory fewer than copying the tensor first. `blockAmax`, when the
  /// caller has them: each block's finite max |x|, in block order (`BlockAmax.blockAmaxes` gives them
  /// with the tensor amax in one pass); the rounding then does not take them again.
  public func quantizeLastAxis(
    _ x: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, firstIndex: Int = 0, firstBlock: Int = 0,
    tensorAmax: Float? = nil, blockAmax: UnsafePointer<Float>? = nil, elements: UnsafeMutablePointer<Float>? = nil,
    scales: UnsafeMutablePointer<Float>? = nil, source: UnsafePointer<Float>? = nil, stats: inout QuantizationStats
  ) throws {
    guard rows * cols > 0, let base = x.baseAddress else { return }
    let block: Int
    switch format.block {
    case .vector(let n): block = n
    case .row: block = cols
    case .tensor: block = rows * cols
    case .tile:
      throw FormatError.invalid("2-D tiles are not blocks along the last axis: quantize the whole matrix")
    }
    let needsAmax = format.rule == .nvfp4 || format.tensorScale
    let a = tensorAmax ?? (needsAmax ? BlockAmax.finiteAmax(source ?? UnsafePointer(base), rows * cols) : 0)
    let (r, c) = format.block == .tensor ? (1, rows * cols) : (rows, cols)
    quantizeRows(
      base, rows: r, cols: c, block: block, tensorAmax: a, first: firstIndex, firstBlock: firstBlock,
      blockAmax: blockAmax, elements: elements, scales: scales, source: source, stats: &stats)
  }

  /// The second-level float32 scale stored with a tensor of max |x| `tensorAmax`: g of the amax rule,
  /// S_dec = 1 / S_enc of NVFP4; nil for formats without one.
  public func tensorScale(tensorAmax a: Float) -> Float? {
    switch format.rule {
    case .nvfp4: return 1 / (a == 0 ? 1 : min(2688 / a, .greatestFiniteMagnitude))
    case .amax where format.tensorScale: return globalFactor(a)
    default: return nil
    }
  }

  /// max |x| over the finite values of a tensor.
  public func amax(_ x: UnsafeBufferPointer<Float>) -> Float {
    guard let b = x.baseAddress else { return 0 }
    return BlockAmax.finiteAmax(b, x.count)
  }

  /// In place, a row-major matrix [rows, cols]. Vector blocks run along `axis` (1: along each row, the
  /// last axis; 0: down each column); tiles cover the matrix in RxC pieces (short at the edges).
  /// `tensorAmax`: the tensor's finite max |x| when the caller has it already (else it is computed).
  public func quantize(
    _ x: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, axis: Int = 1, firstIndex: Int = 0,
    tensorAmax knownAmax: Float? = nil, stats: inout QuantizationStats
  ) throws {
    precondition(x.count >= rows * cols)
    guard rows * cols > 0, let base = x.baseAddress else { return }
    // The tensor's amax is needed before any block only by NVFP4 and tensor scaling; otherwise the
    // telemetry takes it from the block maxima as they go.
    let needsTensorAmax = format.rule == .nvfp4 || format.tensorScale
    let tensorAmax = needsTensorAmax ? knownAmax ?? BlockAmax.finiteAmax(base, rows * cols) : 0
    switch format.block {
    case .vector(let n):
      if axis == 1 {
        quantizeRows(base, rows: rows, cols: cols, block: n, tensorAmax: tensorAmax, first: firstIndex, stats: &stats)
      } else {
        var t = [Float](repeating: 0, count: rows * cols)
        t.withUnsafeMutableBufferPointer { tp in
          let tb = tp.baseAddress!
          for r in 0..<rows { for c in 0..<cols { tb[c * rows + r] = base[r * cols + c] } }
          quantizeRows(tb, rows: cols, cols: rows, block: n, tensorAmax: tensorAmax, first: firstIndex, stats: &stats)
          for r in 0..<rows { for c in 0..<cols { base[r * cols + c] = tb[c * rows + r] } }
        }
      }
    case .row:
      quantizeRows(base, rows: rows, cols: cols, block: cols, tensorAmax: tensorAmax, first: firstIndex, stats: &stats)
    case .tensor:
      quantizeRows(base, rows: 1, cols: rows * cols, block: rows * cols, tensorAmax: tensorAmax, first: firstIndex, stats: &stats)
    case .tile(let tr, let tc) where rows % tr == 0 && cols % tc == 0:
      // Whole tiles: gathered tile after tile into one buffer, rounded as one row of blocks (the same
      // element and block counters as tile by tile below), scattered back.
      var tiles = [Float](repeating: 0, count: rows * cols)
      tiles.withUnsafeMutableBufferPointer { tp in
        let tb = tp.baseAddress!
        Self.moveTiles(base, tb, rows: rows, cols: cols, tr: tr, tc: tc, gather: true)
        quantizeRows(
          tb, rows: 1, cols: rows * cols, block: tr * tc, tensorAmax: tensorAmax, first: firstIndex,
          firstBlock: firstIndex / (tr * tc), stats: &stats)
        Self.moveTiles(base, tb, rows: rows, cols: cols, tr: tr, tc: tc, gather: false)
      }
    case .tile(let tr, let tc):
      // Short tiles at the edges: tile by tile, each one block; the block counter is the tile's
      // position in tile order, as for whole tiles.
      var tile = [Float](repeating: 0, count: tr * tc)
      Self.forEachTile(rows: rows, cols: cols, tr: tr, tc: tc, firstIndex: firstIndex) { t in
        tile.withUnsafeMutableBufferPointer { tp in
          let tb = tp.baseAddress!
          for r in 0..<t.h { for c in 0..<t.w { tb[r * t.w + c] = base[(t.r0 + r) * cols + t.c0 + c] } }
          quantizeRows(
            tb, rows: 1, cols: t.h * t.w, block: t.h * t.w, tensorAmax: tensorAmax, first: t.first,
            firstBlock: t.block, stats: &stats)
          for r in 0..<t.h { for c in 0..<t.w { base[(t.r0 + r) * cols + t.c0 + c] = tb[r * t.w + c] } }
        }
      }
    }
  }

  /// One tile of a matrix in tile order: rows r0 ..< r0 + h and columns c0 ..< c0 + w (h < tr and
  /// w < tc at the bottom and right edges), its first element counter `first` and its block (scale)
  /// counter `block`.
  public struct Tile {
    public let r0: Int, c0: Int, h: Int, w: Int, first: Int, block: Int
  }

  /// The tr x tc tiles of a row-major rows x cols matrix in tile order (rows of tiles top to bottom,
  /// each left to right), short edge tiles included, as tiled formats round them: each tile is one
  /// block whose element counters continue from the tiles before it (from `firstIndex`) and whose
  /// block counter is its position in that order (from firstIndex / (tr tc)).
  public static func forEachTile(
    rows: Int, cols: Int, tr: Int, tc: Int, firstIndex: Int = 0, _ body: (Tile) throws -> Void
  ) rethrows {
    var first = firstIndex, block = firstIndex / (tr * tc)
    for r0 in stride(from: 0, to: rows, by: tr) {
      for c0 in stride(from: 0, to: cols, by: tc) {
        let h = min(tr, rows - r0), w = min(tc, cols - c0)
        try body(Tile(r0: r0, c0: c0, h: h, w: w, first: first, block: block))
        first += h * w
        block += 1
      }
    }
  }

  /// Copies the whole tr x tc tiles of a row-major [rows, cols] matrix into a buffer tile after tile
  /// (each tile row-major), or back when not `gather`.
  private static func moveTiles(
    _ matrix: UnsafeMutablePointer<Float>, _ tiles: UnsafeMutablePointer<Float>, rows: Int, cols: Int, tr: Int,
    tc: Int, gather: Bool
  ) {
    var k = 0
    for r0 in stride(from: 0, to: rows, by: tr) {
      for c0 in stride(from: 0, to: cols, by: tc) {
        for r in 0..<tr {
          let m = matrix + (r0 + r) * cols + c0, t = tiles + k + r * tc
          if gather { t.update(from: m, count: tc) } else { m.update(from: t, count: tc) }
        }
        k += tr * tc
      }
    }
  }

  /// Blocks of `block` values along each row of a contiguous [rows, cols] buffer, a cache-sized segment
  /// of whole blocks at a time: scale each block, round the segment's elements in one vectorized call,
  /// scale back.
  private func quantizeRows(
    _ p: UnsafeMutablePointer<Float>, rows: Int, cols: Int, block: Int, tensorAmax: Float, first: Int,
    firstBlock: Int? = nil, blockAmax: UnsafePointer<Float>? = nil, elements: UnsafeMutablePointer<Float>? = nil,
    scales: UnsafeMutablePointer<Float>? = nil, source: UnsafePointer<Float>? = nil, stats: inout QuantizationStats
  ) {
    let blocksPerRow = (cols + block - 1) / block
    if rows > 1 && cols % block == 0 {
      // Rows made of whole blocks are one long row of the same blocks, with the same element and
      // block counters: one pass instead of a call per (often short) row.
      return quantizeRows(
        p, rows: 1, cols: rows * cols, block: block, tensorAmax: tensorAmax, first: first,
        firstBlock: firstBlock ?? first / max(cols, 1) * blocksPerRow, blockAmax: blockAmax, elements: elements,
        scales: scales, source: source, stats: &stats)
    }
    let segment = block * max(1, 8192 / block)
    let blocksPerSegment = segment / block
    // Scratch: per-block factors of one segment.
    let down = UnsafeMutablePointer<Float>.allocate(capacity: blocksPerSegment)
    let up = UnsafeMutablePointer<Float>.allocate(capacity: blocksPerSegment)
    defer { down.deallocate(); up.deallocate() }
    let g = globalFactor(tensorAmax)
    var saturated = 0, flushed = 0
    for r in 0..<rows {
      for s0 in stride(from: 0, to: cols, by: segment) {
        let seg = p + r * cols + s0
        let len = min(segment, cols - s0)
        // Values come from `source` when given (the pass writes `seg` without copying it first).
        let from = source.map { $0 + r * cols + s0 } ?? UnsafePointer(seg)
        let nb = (len + block - 1) / block
        let localBlock = r * blocksPerRow + s0 / block
        // The block amaxes, into `down` for now (given, or 16 blocks at a time when blocks are whole
        // vectors).
        var b0 = 0
        if let blockAmax {
          down.update(from: blockAmax + localBlock, count: nb)
          b0 = nb
        } else if BlockAmax.takes(block: block) {
          while b0 + 16 <= nb && (b0 + 16) * block <= len {
            BlockAmax.sixteenBlocks(from + b0 * block, block: block, into: down + b0)
            b0 += 16
          }
        }
        for b in b0..<nb {
          let lo = b * block
          down[b] = BlockAmax.finiteAmax(from + lo, min(len, lo + block) - lo)
        }
        // Non-negative floats order as their bits: an integer max, which vectorizes.
        stats.amax = max(stats.amax, BlockAmax.finiteAmax(down, nb))
        blockFactors(
          amaxToDown: down, up: up, count: nb, firstBlock: (firstBlock ?? first / max(cols, 1) * blocksPerRow) + localBlock,
          tensorAmax: tensorAmax, global: g, stored: scales.map { $0 + localBlock }, stats: &stats)
        // A zero scale (amax rule) has up = 0: q * 0 gives the block's zeros with their signs kept.
        let (s, f) = element.quantizeBlocks(
          seg, count: len, blockSize: block, down: down, up: up, saturationLimit: saturationLimit,
          firstIndex: first + r * cols + s0, elements: elements.map { $0 + r * cols + s0 },
          source: source == nil ? nil : from)
        saturated += s
        flushed += f
      }
    }
    stats.saturated += saturated
    stats.flushedToZero += flushed
    stats.blocks += rows * blocksPerRow
    stats.count += rows * cols
  }


  /// The tensor-level factor g of the `amax` rule (1 without tensor scaling or for an all-zero tensor).
  func globalFactor(_ a: Float) -> Float {
    guard format.tensorScale, format.rule == .amax, a > 0 else { return 1 }
    return a / (maxElem * scaleMax)
  }

  /// Per block of a segment, from its amax (read from `down`): the factor applied before element
  /// rounding (written to `down`) and the one applied after (`up`). Scales that are rounded to a format
  /// are rounded all at once, block b drawing counter `firstBlock + b` when stochastic.
  func blockFactors(
    amaxToDown down: UnsafeMutablePointer<Float>, up: UnsafeMutablePointer<Float>, count nb: Int,
    firstBlock: Int, tensorAmax a: Float, global g: Float, stored: UnsafeMutablePointer<Float>?,
    stats: inout QuantizationStats
  ) {
    switch format.rule {
    case .floor, .ceil:
      var b0 = 0
      if format.rule == .floor {
        while b0 + 16 <= nb, let counts = BlockAmax.floorFactors(
          down + b0, up: up + b0, stored: stored.map { $0 + b0 }, emaxElem: Int32(emaxElem))
        {
          stats.scaleSaturated += counts.saturated
          stats.scaleUnderflow += counts.underflow
          b0 += 16
        }
      }
      for b in b0..<nb {
        let amax = down[b]
        var e: Int
        if amax == 0 {
          e = -127
        } else if format.rule == .floor {
          e = Int(amax.exponent) - emaxElem
        } else {
          // Smallest e with max_elem * 2^e >= amax, decided exactly in Double.
          e = Int(amax.exponent) - Int(maxElem.exponent)
          while Double(maxElem) * exp2Int(e - 1) >= Double(amax) { e -= 1 }
          while Double(maxElem) * exp2Int(e) < Double(amax) { e += 1 }
        }
        if e < -127 { if amax > 0 { stats.scaleUnderflow += 1 }; e = -127 }
        if e > 127 { stats.scaleSaturated += 1; e = 127 }
        down[b] = pow2(-e)
        up[b] = pow2(e)
        stored?[b] = pow2(e)
      }
    case .amax:
      for b in 0..<nb { up[b] = (down[b] / maxElem) / g }  // the unrounded scale
      roundScales(up, count: nb, firstBlock: firstBlock, stats: &stats)
      for b in 0..<nb {
        let s = up[b]
        stored?[b] = s
        let d = s * g
        let usable = d != 0 && d.isFinite
        down[b] = usable ? 1 / d : 0
        up[b] = usable ? (tensorScaleApart ? s : d) : 0
      }
    case .nvfp4:
      // Steps 1-4 and the decode factor of step 6 (the NVFP4 comment below).
      let fltMax = Float.greatestFiniteMagnitude
      let sEnc: Float = a == 0 ? 1 : min(2688 / a, fltMax)
      let sDec: Float = 1 / sEnc
      let m: Float = sEnc * (1 / Float(6))
      for b in 0..<nb { up[b] = min(down[b] * m, fltMax) }
      roundScales(up, count: nb, firstBlock: firstBlock, stats: &stats)
      if let stored { stored.update(from: up, count: nb) }
      for b in 0..<nb {
        let s = up[b]
        down[b] = min(1 / (s * sDec), fltMax)
        let full = (s * a) * (1 / Float(2688))
        up[b] = tensorScaleApart && full != 0 && full.isFinite ? s : full
      }
    }
  }

  /// Rounds the unrounded scales in `scales` to the scale format in place (block b drawing counter
  /// firstBlock + b when stochastic), counting those above the format's max (saturated) and the
  /// positive ones that became zero (underflow). Counts are integer sums of comparisons, so the loops
  /// vectorize.
  private func roundScales(
    _ scales: UnsafeMutablePointer<Float>, count nb: Int, firstBlock: Int, stats: inout QuantizationStats
  ) {
    var saturated: Int32 = 0, underflow: Int32 = 0
    withUnsafeTemporaryAllocation(of: Float.self, capacity: nb) { raw in
      let r = raw.baseAddress!
      r.update(from: scales, count: nb)
      for b in 0..<nb { saturated &+= r[b] > scaleMax ? 1 : 0 }
      scaleQuantizer.quantize(UnsafeMutableBufferPointer(start: scales, count: nb), firstIndex: firstBlock)
      for b in 0..<nb { underflow &+= (r[b] > 0 ? 1 : 0) & (scales[b] == 0 ? 1 : 0) }
    }
    stats.scaleSaturated += Int(saturated)
    stats.scaleUnderflow += Int(underflow)
  }

  // NVFP4, as NVIDIA's reference implementation computes it, all in float32 (FLT_MAX the largest float):
  // 1. A = max|x| over the tensor; S_enc = min(fl(2688 / A), FLT_MAX), 1 when A = 0 (2688 = 6 * 448).
  // 2. S_dec = fl(1 / S_enc); M = fl(S_enc * fl(1/6)).
  // 3. Per block of 16 with b = max|x|: s = E4M3(min(fl(b * M), FLT_MAX)), nearest-even, saturating
  //    at 448, no lower clamp (s may be subnormal or 0).
  // 4. enc = min(fl(1 / fl(s * S_dec)), FLT_MAX).
  // 5. y = fl(x * enc) clamped to [-6, 6]; q = E2M1 nearest-even of y, sign kept.
  // 6. out = fl(q * fl(fl(s * A) * fl(1/2688))).
}

@inline(__always)
func exp2Int(_ k: Int) -> Double { Double(sign: .plus, exponent: k, significand: 1) }

/// The vectorized steps of the block loop for blocks that are whole 16-lane vectors: loops over lanes
/// with integer masks, which LLVM turns into 512-bit code, or SIMD16 values kept in registers.
public enum BlockAmax {
  /// |x| bits, 0 for Inf and NaN (the amax is over finite values). An arithmetic mask instead of `?:`:
  /// LLVM turns a select inside a reduction into a branch and then leaves the loop scalar.
  @inline(__always)
  static func finiteMagnitude(_ bits: UInt32) -> UInt32 {
    let a = bits & 0x7FFF_FFFF
    return a & (0 &- ((a &- 0x7F80_0000) &>> 31))
  }

  /// max |x| over the finite values of x[0 ..< n] (0 when there are none).
  public static func finiteAmax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    let bits = UnsafeRawPointer(x).assumingMemoryBound(to: UInt32.self)
    var m: UInt32 = 0
    for i in 0..<n { m = max(m, finiteMagnitude(bits[i])) }
    return Float(bitPattern: m)
  }

  /// `finiteMagnitude` of 16 values at once.
  @inline(__always)
  static func finiteMagnitudes(_ bits: SIMD16<UInt32>) -> SIMD16<UInt32> {
    let a = bits & 0x7FFF_FFFF
    return a & (0 &- ((a &- 0x7F80_0000) &>> 31))
  }

  /// Lane by lane max. (Written out: the standard library's `pointwiseMax` is a call that takes and
  /// returns its vectors in four 128-bit pieces; a comparison and `replacing`, inlined, is one
  /// compare and a masked max.)
  @inline(__always)
  static func lanesMax(_ a: SIMD16<UInt32>, _ b: SIMD16<UInt32>) -> SIMD16<UInt32> {
    a.replacing(with: b, where: a .< b)
  }

  /// dst[i] = max(src[2i], src[2i+1]) for i < n: halves the partial maxima of every block, block
  /// order kept.
  @inline(__always)
  static func pairMax(_ src: UnsafePointer<UInt32>, _ dst: UnsafeMutablePointer<UInt32>, _ n: Int) {
    for i in 0..<n { dst[i] = max(src[2 * i], src[2 * i + 1]) }
  }

  /// The finite amax of each of 16 consecutive blocks of `block` values (a multiple of 16) at `p`,
  /// into out[0..<16]: each block folded into 16 lane maxima, then four halving steps (256 -> 128 ->
  /// 64 -> 32 -> 16 values). Max is exact, so the result equals the per-block loop's. A block's lanes
  /// are folded in a register and stored once. (Folded in the scratch array, each max waited for the
  /// previous one's 64-byte store to be read back, a chain through memory; on Zen 4 those waits held
  /// 70% of the amax pass's samples, and the row quantizer ran at 1.6 G values/s instead of 2.4.)
  @inline(__always)
  static func sixteenBlocks(_ p: UnsafePointer<Float>, block: Int, into out: UnsafeMutablePointer<Float>) {
    let x = UnsafeRawPointer(p), size = block * 4
    withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 256) { tb in
      withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 128) { ub in
        let t = tb.baseAddress!, u = ub.baseAddress!
        for b in 0..<16 {
          UnsafeMutableRawPointer(t).storeBytes(
            of: blockLanes(x + b * size, size: size), toByteOffset: b * 64, as: SIMD16<UInt32>.self)
        }
        pairMax(t, u, 128)
        pairMax(u, t, 64)
        pairMax(t, u, 32)
        pairMax(u, UnsafeMutableRawPointer(out).assumingMemoryBound(to: UInt32.self), 16)
      }
    }
  }

  /// Whether `blockAmaxes` takes blocks of `block` values.
  public static func takes(block: Int) -> Bool { block % 16 == 0 && block <= 256 }

  /// The finite amax of each of the count / block blocks at x (count a multiple of `block`, which
  /// `takes`) into out, 16 blocks at a time; returns their max, x's finite amax. (The tensor amax that
  /// NVFP4 and tensor scaling need before any block, and the blocks' own, from one read of x.)
  public static func blockAmaxes(
    _ x: UnsafePointer<Float>, count: Int, block: Int, into out: UnsafeMutablePointer<Float>
  ) -> Float {
    precondition(takes(block: block) && count % block == 0)
    let nb = count / block
    var b = 0
    while b + 16 <= nb {
      sixteenBlocks(x + b * block, block: block, into: out + b)
      b += 16
    }
    for j in b..<nb { out[j] = finiteAmax(x + j * block, block) }
    return finiteAmax(out, nb)
  }

  /// One block of `size` bytes (a multiple of 64) at `x` folded to 16 lane maxima.
  @inline(__always)
  static func blockLanes(_ x: UnsafeRawPointer, size: Int) -> SIMD16<UInt32> {
    var m = finiteMagnitudes(x.loadUnaligned(as: SIMD16<UInt32>.self))
    var c = 64
    while c < size {  // (not `stride`: its iterator stayed a call per step here)
      m = lanesMax(m, finiteMagnitudes(x.loadUnaligned(fromByteOffset: c, as: SIMD16<UInt32>.self)))
      c += 64
    }
    return m
  }

  /// The `floor` rule for 16 blocks from their amaxes in `down`: e = floor(log2 amax) - emaxElem
  /// clamped to [-127, 127] (-127 for an all-zero block), down = 2^-e, up = stored = 2^e. Returns the
  /// clamp counts, or nil (nothing written) when an amax is a float32 subnormal, where the exponent
  /// field does not give floor(log2): the caller's scalar loop handles those blocks.
  @inline(__always)
  static func floorFactors(
    _ down: UnsafeMutablePointer<Float>, up: UnsafeMutablePointer<Float>, stored: UnsafeMutablePointer<Float>?,
    emaxElem: Int32
  ) -> (saturated: Int, underflow: Int)? {
    let a = UnsafeMutableRawPointer(down).assumingMemoryBound(to: UInt32.self)
    var subnormal: UInt32 = 0
    for j in 0..<16 { subnormal |= a[j] &- 1 < 0x7F_FFFF ? 1 : 0 }
    if subnormal != 0 { return nil }
    var saturated: Int32 = 0, underflow: Int32 = 0
    let u = UnsafeMutableRawPointer(up).assumingMemoryBound(to: UInt32.self)
    for j in 0..<16 {
      let bits = a[j]
      let e = Int32(bitPattern: bits &>> 23) &- (127 &+ emaxElem)
      saturated &+= e > 127 ? 1 : 0
      underflow &+= (e < -127 ? 1 : 0) & (bits != 0 ? 1 : 0)
      let c = bits == 0 ? -127 : min(max(e, -127), 127)
      a[j] = pow2Bits(0 &- c)
      u[j] = pow2Bits(c)
    }
    if let stored { stored.update(from: up, count: 16) }
    return (Int(saturated), Int(underflow))
  }

  /// The bits of 2^k for k in [-127, 127]: a normal float's exponent field, or 2^-127's subnormal bits.
  @inline(__always)
  static func pow2Bits(_ k: Int32) -> UInt32 {
    k == -127 ? 0x0040_0000 : UInt32(bitPattern: k &+ 127) &<< 23
  }
}
