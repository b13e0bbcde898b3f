/// Blocks down the columns of a row-major matrix, without transposing it.
///
/// A GEMM that reduces along the rows of an operand X [rows, cols] (the weight-gradient GEMM's
/// dY and X, the data-gradient GEMM's W) needs blocks along X's columns: the result is defined as
/// quantizing A = X^T (or A R, R a random Hadamard transform along A's rows) along its rows and
/// transposing back, with A's element counters (element (r, c) of X draws counter c * rows + r).
/// Transposing out and back costs more than the quantization (the column strips are strided reads
/// that the prefetchers do not follow). Here X is read in tiles of T whole rows, row by row, 16 columns
/// to a vector: each column holds whole blocks of A's rows, so one 16-lane vector per row carries 16
/// blocks at once and the block amaxes are vertical maxima (no horizontal reductions). Without a
/// transform the tiles are read where they lie; with one they are kept as groups of 16 columns (T x 16
/// each), transformed by fused multiply-adds with the operations of the row transform (`loadTiles`).
/// The results are bit for bit those of the transposing path (ColumnBlockTests checks this).
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
    let groups = cols / 16
    let split = Self.columnSplit(rows: rows, cols: cols, height: height, threads: threads)
    nonisolated(unsafe) let src = src, dst = dst
    let matrix = hadamard?.matrix
    // Tensor amax of A (R): over X itself, or over the transformed tiles when there is a transform.
    // Those are parked in dst (same positions), and the quantization pass then reads them from there
    // untransformed.
    var tensorAmax: Float = 0
    var input = UnsafePointer(src), transform = matrix
    if needsTensorAmax {
      tensorAmax = parallelMax(split, scratch: matrix == nil ? 0 : height * cols) { tile, buffer in
        let r0 = tile * height
        guard matrix != nil else { return BlockAmax.finiteAmax(src + r0 * cols, height * cols) }
        Self.loadTiles(src, cols: cols, r0: r0, height: height, into: buffer, hadamard: matrix)
        Self.storeTiles(buffer, into: dst, cols: cols, r0: r0, height: height)
        return BlockAmax.finiteAmax(buffer, height * cols)
      }
      if matrix != nil { (input, transform) = (UnsafePointer(dst), nil) }
    }
    let a = tensorAmax, global = globalFactor(tensorAmax)
    nonisolated(unsafe) let source = input
    let sourceTransform = transform
    // Without a transform to apply the pass reads its input where it lies, row by row: each block's
    // column maxima, then its rounding (copied into group-major tiles first, as before, it spent a load
    // and a store per value). That input is X, or the transform parked in dst, which is then rounded
    // in place (`ColumnRun.inPlace`; copied back into tiles, as before, the copy took about a third of
    // this function's time). With a transform, it reads the tiles that `loadTiles` transformed.
    let direct = sourceTransform == nil
    let parts = split.map { w in
      var s = QuantizationStats()
      // The tile, group-major ([group][row][16]) when transformed, then one factor pair per column.
      let tileValues = direct ? 0 : height * cols
      withAlignedTemporary(of: Float.self, capacity: tileValues + 2 * cols) { buffer in
        let down = buffer + tileValues, up = down + cols
        for tile in split.interleaved(w) {
          let r0 = tile * height
          if !direct {
            Self.loadTiles(source, cols: cols, r0: r0, height: height, into: buffer, hadamard: sourceTransform)
          }
          for b0 in stride(from: 0, to: height, by: block) {
            // Column c's block: rows r0 + b0 ..< r0 + b0 + block; value (r, c) of it at
            // values[(c / 16) * groupStride + r * rowStride + c % 16].
            let (values, groupStride, rowStride) =
              direct ? (source + (r0 + b0) * cols, 16, cols) : (UnsafePointer(buffer) + b0 * 16, height * 16, 16)
            if direct {
              Self.columnMaxRows(values, cols: cols, rows: block, into: down)
            } else {
              for g in 0..<groups {
                let lanes = Self.columnMaxLanes(values + g * groupStride, rows: block)
                UnsafeMutableRawPointer(down + g * 16).storeBytes(of: lanes, as: SIMD16<UInt32>.self)
              }
            }
            s.amax = max(s.amax, BlockAmax.finiteAmax(down, cols))
            blockFactors(
              amaxToDown: down, up: up, count: cols, firstBlock: 0, tensorAmax: a, global: global,
              stored: nil, stats: &s)
            let (sat, flush) = element.quantizeColumnTile(
              values, groupStride: groupStride, rowStride: rowStride, rows: block, cols: cols,
              into: dst + (r0 + b0) * cols, down: down, up: up, saturationLimit: saturationLimit,
              firstIndex: r0 + b0, laneStride: rows)
            s.saturated += sat
            s.flushedToZero += flush
          }
        }
      }
      return s
    }
    for p in parts { stats.add(p) }
    stats.blocks += rows / block * cols
    stats.count += rows * cols
    return true
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

  /// Rows r0 ..< r0 + height of `src` [*, cols] into `buffer` group-major ([cols / 16][height][16]),
  /// read row by row: the hardware prefetchers follow rows, and 16-column strips read group by group
  /// missed the cache on most of their loads. With `hadamard` (R row-major, 16 x 16), each group's
  /// pieces of 16 rows are then transformed down their columns in place: out row j = sum_k R[k][j] *
  /// in row k, in four partial sums over k mod 4 with fused multiply-adds, the operation order of the
  /// row transform `RandomHadamard.forward`.
  @inline(__always)
  static func loadTiles(
    _ src: UnsafePointer<Float>, cols: Int, r0: Int, height: Int, into buffer: UnsafeMutablePointer<Float>,
    hadamard matrix: [Float]?
  ) {
    typealias V = SIMD16<Float>
    let raw = UnsafeMutableRawPointer(buffer), groups = cols / 16
    for r in 0..<height {
      let row = UnsafeRawPointer(src + (r0 + r) * cols)
      for g in 0..<groups {
        let v = row.loadUnaligned(fromByteOffset: g * 64, as: V.self)
        raw.storeBytes(of: v, toByteOffset: (g * height + r) * 64, as: V.self)
      }
    }
    guard let matrix else { return }
    matrix.withUnsafeBufferPointer { m in
      let R = m.baseAddress!
      withUnsafeTemporaryAllocation(of: V.self, capacity: 16) { xs in
        let x = xs.baseAddress!
        for piece in stride(from: 0, to: groups * height, by: 16) {
          for k in 0..<16 { xs[k] = raw.load(fromByteOffset: (piece + k) * 64, as: V.self) }
          // R[m + 4i][j] = d (-1)^popcount((m + 4i) & j) / 4 depends on j only through j / 4 and the
          // parity of popcount(m & j % 4): within each four rows 4q ..< 4q + 4 of the output, partial
          // sum 0 is one and the others two (one per sign), the very same operations. Seven partial
          // sums instead of sixteen per four rows: 112 multiply-adds per piece instead of 256, same bits.
          for q in stride(from: 0, to: 16, by: 4) {
            let s0 = partialSum(R, x, 0, q)
            let (s1, t1) = (partialSum(R, x, 1, q), partialSum(R, x, 1, q + 1))
            let (s2, t2) = (partialSum(R, x, 2, q), partialSum(R, x, 2, q + 2))
            let (s3, t3) = (partialSum(R, x, 3, q), partialSum(R, x, 3, q + 1))
            let rows = ((s0 + s1) + (s2 + s3), (s0 + t1) + (s2 + t3), (s0 + s1) + (t2 + t3), (s0 + t1) + (t2 + s3))
            raw.storeBytes(of: rows.0, toByteOffset: (piece + q) * 64, as: V.self)
            raw.storeBytes(of: rows.1, toByteOffset: (piece + q + 1) * 64, as: V.self)
            raw.storeBytes(of: rows.2, toByteOffset: (piece + q + 2) * 64, as: V.self)
            raw.storeBytes(of: rows.3, toByteOffset: (piece + q + 3) * 64, as: V.self)
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

  /// The inverse of `loadTiles` without a transform: the group-major tiles back to rows r0 ..< r0 +
  /// height of `dst`, row by row.
  @inline(__always)
  static func storeTiles(
    _ buffer: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, cols: Int, r0: Int, height: Int
  ) {
    let raw = UnsafeRawPointer(buffer)
    for r in 0..<height {
      let row = UnsafeMutableRawPointer(dst + (r0 + r) * cols)
      for g in 0..<cols / 16 {
        let v = raw.load(fromByteOffset: (g * height + r) * 64, as: SIMD16<Float>.self)
        row.storeBytes(of: v, toByteOffset: g * 64, as: SIMD16<Float>.self)
      }
    }
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

  /// Per lane, the finite max |x| bits down `rows` rows of a 16-wide tile.
  @inline(__always)
  static func columnMaxLanes(_ tile: UnsafePointer<Float>, rows: Int) -> SIMD16<UInt32> {
    BlockAmax.blockLanes(UnsafeRawPointer(tile), size: rows * 64)
  }

  /// max over tiles of `body(tile, scratch)` (`capacity` floats of scratch per thread), tiles dealt
  /// round as `split` says.
  private func parallelMax(
    _ split: WorkSplit, scratch capacity: Int, _ body: @Sendable (Int, UnsafeMutablePointer<Float>) -> Float
  ) -> Float {
    split.map { w in
      var m: Float = 0
      withAlignedTemporary(of: Float.self, capacity: capacity) { scratch in
        for tile in split.interleaved(w) { m = max(m, body(tile, scratch)) }
      }
      return m
    }.max()!
  }
}
