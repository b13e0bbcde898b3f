/// Blocks down the columns of a row-major matrix, without transposing it.
///
/// A GEMM that reduces along the rows of an operand X [rows, cols] (the weight-gradient GEMM's
/// dY and X, the data-gradient GEMM's W) needs blocks along X's columns: the result is defined as
/// quantizing A = X^T (or A R, R a random Hadamard transform along A's rows) along its rows and
/// transposing back, with A's element counters (element (r, c) of X draws counter c * rows + r).
/// Transposing out and back costs more than the quantization (the column strips are strided reads
/// that the prefetchers do not follow). Here X is read in tiles of T whole rows, row by row: each
/// column holds whole blocks of A's rows, so the block amaxes are vertical maxima over rows (no
/// horizontal reductions). The transform down the columns combines whole rows (out row j of each 16
/// is a sum of the 16 in rows), so it too runs on rows, 16 columns to a vector (`transformRows`), and
/// writes its result into dst, which is then rounded in place. The results are bit for bit those of
/// the transposing path (ColumnBlockTests checks this).
extension BlockQuantizer {
  /// Quantizes `src` [rows, cols] with blocks down its columns into `dst` (same layout, not
  /// overlapping), with an optional 16-point Hadamard transform down the columns first. Returns false,
  /// writing nothing, where this path does not apply: blocks other than vectors, a stochastic scale
  /// rounding (block counters would not be consecutive), a Hadamard size other than 16, rows not a
  /// multiple of the tile height max(block, 16), or cols not a multiple of 16.
  public func quantizeColumns(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
    hadamard: RandomHadamard?, threads: Int, stats: inout QuantizationStats
  ) -> Bool {
    guard columnsApply(rows: rows, cols: cols, hadamard: hadamard), case .vector(let block) = format.block else {
      return false
    }
    let height = max(block, 16)
    let needsTensorAmax = format.rule == .nvfp4 || format.tensorScale
    let split = Self.columnSplit(rows: rows, cols: cols, height: height, threads: threads)
    nonisolated(unsafe) let src = src, dst = dst
    let matrix = hadamard?.matrix
    // Tensor amax of A (R): over X itself, or over the transform, which this pass then writes into
    // dst (same positions) for the quantization pass to round there. This pass keeps each block's
    // column maxima too (rows / block x cols floats), from the tile while it is in cache, so that the
    // quantization pass does not read the tile once more for them. Without a tensor amax the
    // quantization pass transforms each tile itself, just before rounding it (still in cache).
    let blocksDown = rows / block
    return withUnsafeTemporaryAllocation(of: Float.self, capacity: needsTensorAmax ? blocksDown * cols : 0) { kept in
      nonisolated(unsafe) let blockAmax = needsTensorAmax ? kept.baseAddress : nil
      var tensorAmax: Float = 0
      if needsTensorAmax {
        tensorAmax = split.map { w in
          var m: Float = 0
          for tile in split.interleaved(w) {
            let r0 = tile * height
            if let matrix { Self.transformRows(src, into: dst, cols: cols, r0: r0, height: height, hadamard: matrix) }
            let from = matrix == nil ? src : UnsafePointer(dst)
            for b0 in stride(from: r0, to: r0 + height, by: block) {
              let maxima = blockAmax! + b0 / block * cols
              Self.columnMaxRows(from + b0 * cols, cols: cols, rows: block, into: maxima)
              m = max(m, BlockAmax.finiteAmax(maxima, cols))
            }
          }
          return m
        }.max()!
      }
      let a = tensorAmax, global = globalFactor(tensorAmax)
      let transformEachTile = matrix != nil && !needsTensorAmax
      // The rounding reads X where it lies, or the transform in dst, rounded in place
      // (`ColumnRun.inPlace`): each block's column maxima (kept, or taken here), then its rounding.
      nonisolated(unsafe) let source = matrix == nil ? src : UnsafePointer(dst)
      let parts = split.map { w in
        var s = QuantizationStats()
        withAlignedTemporary(of: Float.self, capacity: 2 * cols) { down in
          let up = down + cols
          for tile in split.interleaved(w) {
            let r0 = tile * height
            if transformEachTile {
              Self.transformRows(src, into: dst, cols: cols, r0: r0, height: height, hadamard: matrix!)
            }
            for b0 in stride(from: r0, to: r0 + height, by: block) {
              // Column c's block: rows b0 ..< b0 + block, value (r, c) of it at values[r * cols + c].
              let values = source + b0 * cols
              if needsTensorAmax {
                down.update(from: blockAmax! + b0 / block * cols, count: cols)
              } else {
                Self.columnMaxRows(values, cols: cols, rows: block, into: down)
              }
              s.amax = max(s.amax, BlockAmax.finiteAmax(down, cols))
              blockFactors(
                amaxToDown: down, up: up, count: cols, firstBlock: 0, tensorAmax: a, global: global,
                stored: nil, stats: &s)
              let (sat, flush) = element.quantizeColumnTile(
                values, rows: block, cols: cols, into: dst + b0 * cols, down: down, up: up,
                saturationLimit: saturationLimit, firstIndex: b0, laneStride: rows)
              s.saturated += sat
              s.flushedToZero += flush
            }
          }
        }
        return s
      }
      for p in parts { stats.add(p) }
      stats.blocks += blocksDown * cols
      stats.count += rows * cols
      return true
    }
  }

  /// Whether `quantizeColumns` takes these shapes (see there).
  public func columnsApply(rows: Int, cols: Int, hadamard: RandomHadamard?) -> Bool {
    guard case .vector(let block) = format.block, !format.scaleRounding.isStochastic,
      hadamard == nil || hadamard!.size == 16, block <= 256, 16 % block == 0 || block % 16 == 0,
      rows > 0, cols > 0, cols % 16 == 0
    else { return false }
    return rows % max(block, 16) == 0
  }

  /// The threads of `quantizeColumns`: whole tiles of `height` rows dealt round, at least 16 Ki values
  /// per thread.
  public static func columnSplit(rows: Int, cols: Int, height: Int, threads: Int) -> WorkSplit {
    WorkSplit(count: rows / height, threads: threads, grain: WorkSplit.roundingGrain, work: rows * cols)
  }

  /// Rows r0 ..< r0 + height of `src` [*, cols] transformed down their columns into the same rows of
  /// `dst`, 16 rows at a time, 16 columns to a vector. R is
  /// row-major 16 x 16: out row j = sum_k R[k][j] * in row k, in four partial sums over k mod 4 with
  /// fused multiply-adds, the operation order of the row transform `RandomHadamard.forward`. (Copied
  /// into group-major tiles first and transformed there, as before, the copies and their stores back
  /// took more time than the multiply-adds.)
  @inline(__always)
  static func transformRows(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, cols: Int, r0: Int, height: Int,
    hadamard matrix: [Float]
  ) {
    typealias V = SIMD16<Float>
    matrix.withUnsafeBufferPointer { m in
      let R = m.baseAddress!
      withUnsafeTemporaryAllocation(of: V.self, capacity: 16) { xs in
        let x = xs.baseAddress!
        for p in stride(from: r0, to: r0 + height, by: 16) {
          let from = UnsafeRawPointer(src + p * cols), to = UnsafeMutableRawPointer(dst + p * cols)
          let rowBytes = cols * 4
          func put(_ j: Int, _ v: V, _ g: Int) { to.storeBytes(of: v, toByteOffset: j * rowBytes + g, as: V.self) }
          for g in stride(from: 0, to: rowBytes, by: 64) {
            for k in 0..<16 { xs[k] = from.loadUnaligned(fromByteOffset: k * rowBytes + g, as: V.self) }
            // R[m + 4i][j] = d (-1)^popcount((m + 4i) & j) / 4 depends on j only through j / 4 and the
            // parity of popcount(m & j % 4): within each four rows 4q ..< 4q + 4 of the output, partial
            // sum 0 is one and the others two (one per sign), the very same operations. Seven partial
            // sums instead of sixteen per four rows: 112 multiply-adds per 16 x 16 values instead of
            // 256, same bits.
            for q in stride(from: 0, to: 16, by: 4) {
              let s0 = partialSum(R, x, 0, q)
              let (s1, t1) = (partialSum(R, x, 1, q), partialSum(R, x, 1, q + 1))
              let (s2, t2) = (partialSum(R, x, 2, q), partialSum(R, x, 2, q + 2))
              let (s3, t3) = (partialSum(R, x, 3, q), partialSum(R, x, 3, q + 1))
              put(q, (s0 + s1) + (s2 + s3), g)
              put(q + 1, (s0 + t1) + (s2 + t3), g)
              put(q + 2, (s0 + s1) + (t2 + t3), g)
              put(q + 3, (s0 + t1) + (t2 + s3), g)
            }
          }
        }
      }
    }
  }

  /// Partial sum m of the transform's out row j: sum over i of R[m + 4i][j] * in row m + 4i, by fused
  /// multiply-adds from +0, i = 0 ..< 4 in turn (the row transform's partial sum m).
  @inline(__always)
  static func partialSum(_ R: UnsafePointer<Float>, _ x: UnsafePointer<SIMD16<Float>>, _ m: Int, _ j: Int) -> SIMD16<Float> {
    var a = SIMD16<Float>(repeating: 0)
    for i in 0..<4 { a = a.addingProduct(SIMD16(repeating: R[(m + 4 * i) * 16 + j]), x[m + 4 * i]) }
    return a
  }

  /// Per column, the finite max |x| bits down `rows` rows of `src` [rows, cols] into max[0 ..< cols],
  /// read row by row (vertical maxima: no horizontal reductions).
  @inline(__always)
  static func columnMaxRows(_ src: UnsafePointer<Float>, cols: Int, rows: Int, into max: UnsafeMutablePointer<Float>) {
    let bits = UnsafeRawPointer(src).assumingMemoryBound(to: UInt32.self)
    let m = UnsafeMutableRawPointer(max).assumingMemoryBound(to: UInt32.self)
    for c in 0..<cols { m[c] = BlockAmax.finiteMagnitude(bits[c]) }
    for r in 1..<rows {
      let row = bits + r * cols
      for c in 0..<cols { m[c] = Swift.max(m[c], BlockAmax.finiteMagnitude(row[c])) }
    }
  }
}
