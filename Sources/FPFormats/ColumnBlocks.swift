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
/// transform the tiles are read where they lie; with one each tile is first transformed down its
/// columns into a buffer of the same layout, by fused multiply-adds with the operations of the row
/// transform (`transformTile`). The results are bit for bit those of the transposing path
/// (ColumnBlockTests checks this).
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
    // Tensor amax of A (R): over X itself, or over X transformed tile by tile into dst, where it is
    // parked: the quantization pass then reads it from there untransformed and rounds it in place.
    var tensorAmax: Float = 0
    var input = UnsafePointer(src), transform = matrix
    if needsTensorAmax {
      tensorAmax = parallelMax(split) { tile in
        let tileStart = tile * height * cols
        if let matrix { Self.transformTile(src + tileStart, cols: cols, height: height, into: dst + tileStart, matrix: matrix) }
        return BlockAmax.finiteAmax(matrix == nil ? src + tileStart : UnsafePointer(dst + tileStart), height * cols)
      }
      if matrix != nil { (input, transform) = (UnsafePointer(dst), nil) }
    }
    let a = tensorAmax, global = globalFactor(tensorAmax)
    nonisolated(unsafe) let source = input
    let sourceTransform = transform
    // Each tile's rows are read row by row: each block's column maxima, then its rounding. They are
    // X's rows where they lie, the transform parked in dst (then rounded in place, `ColumnRun.inPlace`),
    // or, with a transform to apply, the tile transformed into a buffer (row-major too, so that every
    // rounding is a loop along whole rows: through group-major tiles, as before, the rounding went 16
    // values at a time).
    let parts = split.map { w in
      var s = QuantizationStats()
      // The transformed tile (height x cols) when there is a transform to apply, then one factor pair
      // per column.
      let tileValues = sourceTransform == nil ? 0 : height * cols
      withAlignedTemporary(of: Float.self, capacity: tileValues + 2 * cols) { buffer in
        let down = buffer + tileValues, up = down + cols
        for tile in split.interleaved(w) {
          let r0 = tile * height
          var tileRows = source + r0 * cols
          if let sourceTransform {
            Self.transformTile(tileRows, cols: cols, height: height, into: buffer, matrix: sourceTransform)
            tileRows = UnsafePointer(buffer)
          }
          for b0 in stride(from: 0, to: height, by: block) {
            // Column c's block: rows b0 ..< b0 + block of the tile.
            let values = tileRows + b0 * cols
            Self.columnMaxRows(values, cols: cols, rows: block, into: down)
            s.amax = max(s.amax, BlockAmax.finiteAmax(down, cols))
            blockFactors(
              amaxToDown: down, up: up, count: cols, firstBlock: 0, tensorAmax: a, global: global,
              stored: nil, stats: &s)
            let (sat, flush) = element.quantizeColumnTile(
              values, rows: block, cols: cols, into: dst + (r0 + b0) * cols, down: down, up: up,
              saturationLimit: saturationLimit, firstIndex: r0 + b0, laneStride: rows)
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

  /// The threads of `quantizeColumns`: whole tiles of `height` rows dealt round, at least 32 Ki values
  /// per thread.
  public static func columnSplit(rows: Int, cols: Int, height: Int, threads: Int) -> WorkSplit {
    WorkSplit(count: rows / height, threads: threads, grain: 32_768, work: rows * cols)
  }

  /// `height` rows (a multiple of 16) of a row-major matrix with `cols` columns, from `src`, transformed
  /// down their columns by R (row-major, 16 x 16) into `out` (the same layout, not overlapping), in
  /// pieces of 16 rows: out row j = sum_k R[k][j] * in row k, as (s0 + s1) + (s2 + s3) with s_m the
  /// fused multiply-adds over k = m, m + 4, m + 8, m + 12 in turn, the operation order of the row
  /// transform `RandomHadamard.forward`. Each piece (16 whole rows, contiguous) is first copied into
  /// aligned scratch, then each 16-column group is read from there as 16 vectors, one per row. (Read
  /// from the matrix itself, 16 rows at a stride, the transform took half as long again.)
  @inline(__always)
  static func transformTile(
    _ src: UnsafePointer<Float>, cols: Int, height: Int, into out: UnsafeMutablePointer<Float>, matrix: [Float]
  ) {
    typealias V = SIMD16<Float>
    let input = UnsafeRawPointer(src), output = UnsafeMutableRawPointer(out), rowBytes = cols * 4
    matrix.withUnsafeBufferPointer { m in
      let R = m.baseAddress!
      withAlignedTemporary(of: Float.self, capacity: 16 * cols) { copy in
        let x0 = UnsafeRawPointer(copy)
        for piece in stride(from: 0, to: height * rowBytes, by: 16 * rowBytes) {
          UnsafeMutableRawPointer(copy).copyMemory(from: input + piece, byteCount: 16 * rowBytes)
          for group in stride(from: 0, to: rowBytes, by: 64) {
            // R[m + 4i][j] = d (-1)^popcount((m + 4i) & j) / 4 depends on j only through j / 4 and the
            // parity of popcount(m & j % 4): within each four rows 4q ..< 4q + 4 of the output, partial
            // sum 0 is one and the others two (one per sign), the very same operations. Seven partial
            // sums instead of sixteen per four rows: 112 multiply-adds per piece instead of 256.
            let x = x0 + group
            for q in stride(from: 0, to: 16, by: 4) {
              let s0 = partialSum(R, x, rowBytes, 0, q)
              let (s1, t1) = (partialSum(R, x, rowBytes, 1, q), partialSum(R, x, rowBytes, 1, q + 1))
              let (s2, t2) = (partialSum(R, x, rowBytes, 2, q), partialSum(R, x, rowBytes, 2, q + 2))
              let (s3, t3) = (partialSum(R, x, rowBytes, 3, q), partialSum(R, x, rowBytes, 3, q + 1))
              let at = piece + group + q * rowBytes
              output.storeBytes(of: (s0 + s1) + (s2 + s3), toByteOffset: at, as: V.self)
              output.storeBytes(of: (s0 + t1) + (s2 + t3), toByteOffset: at + rowBytes, as: V.self)
              output.storeBytes(of: (s0 + s1) + (t2 + t3), toByteOffset: at + 2 * rowBytes, as: V.self)
              output.storeBytes(of: (s0 + t1) + (t2 + s3), toByteOffset: at + 3 * rowBytes, as: V.self)
            }
          }
        }
      }
    }
  }

  /// Partial sum m of the transform's out row j: sum over i of R[m + 4i][j] * in row m + 4i (in row k
  /// at x + k * rowBytes), by fused multiply-adds from +0, i = 0 ..< 4 in turn (the row transform's
  /// partial sum m).
  @inline(__always)
  static func partialSum(
    _ R: UnsafePointer<Float>, _ x: UnsafeRawPointer, _ rowBytes: Int, _ m: Int, _ j: Int
  ) -> SIMD16<Float> {
    var a = SIMD16<Float>(repeating: 0)
    for i in 0..<4 {
      let k = m + 4 * i
      a = a.addingProduct(SIMD16(repeating: R[k * 16 + j]), x.loadUnaligned(fromByteOffset: k * rowBytes, as: SIMD16<Float>.self))
    }
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

  /// max over tiles of `body(tile)`, tiles dealt round as `split` says.
  private func parallelMax(_ split: WorkSplit, _ body: @Sendable (Int) -> Float) -> Float {
    split.map { w in split.interleaved(w).reduce(Float(0)) { max($0, body($1)) } }.max()!
  }
}
