/// `BlockRun` for blocks down columns: each column of a tile of `rows` rows is its own block. Value
/// (r, c) is tile[r * cols + c] (rows of the row-major matrix itself); when the tile is `out`, it is
/// rounded in place.
struct ColumnRun: KernelVisitor {
  let k: KernelConstants, rng: CounterRNG
  let tile: UnsafePointer<Float>, rows: Int, cols: Int
  let out: UnsafeMutablePointer<Float>
  let down: UnsafePointer<Float>, up: UnsafePointer<Float>
  let limit: UInt32, first: UInt64, laneStride: UInt32
  var saturated: UInt32 = 0, flushed: UInt32 = 0

  mutating func visit<R: Kernel>(_ rule: R) {
    precondition(
      UInt64(cols) * UInt64(laneStride) <= (1 << 32) - (first & 0xFFFF_FFFF), "block tensors are limited to 2^32 values")
    if tile == UnsafePointer<Float>(out) { inPlace(rule) } else { rowMajor(rule) }
  }

  /// The tile is a row-major matrix (not the output): each row is one loop over its columns, each
  /// column with its own factors, counted in the same loop, which LLVM vectorizes with the counts in
  /// registers and one overlap check per row. (Taken 16 columns at a time, as an earlier version did,
  /// the loop's control and its overlap check per 16 values took about as long as the rounding, and the
  /// counts a second pass. The same loop in place, with `InPlace` as `BlockRun` reads, stayed scalar
  /// and took 15 times as long as `inPlace`.)
  mutating func rowMajor<R: Kernel>(_ rule: R) {
    // Locals, not properties (see `BlockRun.run`).
    let k = KernelConstants.freshCopy(k), rng = rng, limit = limit, stride = laneStride
    let rows = rows, cols = cols, down = down, up = up
    let src = UnsafeRawPointer(tile).assumingMemoryBound(to: UInt32.self)
    let dst = UnsafeMutableRawPointer(out).assumingMemoryBound(to: UInt32.self)
    let high = rng.highKey(first), low0 = UInt32(truncatingIfNeeded: first)
    var sat: UInt32 = 0, flush: UInt32 = 0
    for r in 0..<rows {
      let x = src + r * cols, o = dst + r * cols
      let low = low0 &+ UInt32(truncatingIfNeeded: r)
      for c in 0..<cols {
        let random = R.usesRandom ? rng.bits32(low: low &+ UInt32(truncatingIfNeeded: c) &* stride, high: high) : 0
        let (value, s, f, _) = BlockRun.one(x[c], down[c], up[c], rule, k, random, limit)
        o[c] = value
        sat &+= s
        flush &+= f
      }
    }
    saturated = sat
    flushed = flush
  }

  /// The tile is the output (rows x cols, row-major), rounded where it lies: each 16 values are read
  /// as one vector for the counts before they are overwritten, and read and written through the one
  /// pointer, which LLVM then vectorizes without an overlap check (see `InPlace`).
  mutating func inPlace<R: Kernel>(_ rule: R) {
    let k = KernelConstants.freshCopy(k), rng = rng, limit = limit, stride = laneStride
    let rows = rows, cols = cols, down = down, up = up
    let dst = UnsafeMutableRawPointer(out).assumingMemoryBound(to: UInt32.self)
    let high = rng.highKey(first), low0 = UInt32(truncatingIfNeeded: first)
    var events = EventLanes(limit: limit)
    for r in 0..<rows {
      let o = dst + r * cols
      for c0 in Swift.stride(from: 0, to: cols, by: 16) {
        let x = UnsafeRawPointer(o + c0).loadUnaligned(as: SIMD16<UInt32>.self)
        let d = down + c0, u = up + c0
        let low = low0 &+ UInt32(truncatingIfNeeded: c0) &* stride &+ UInt32(truncatingIfNeeded: r)
        for j in 0..<16 {
          let c = low &+ UInt32(truncatingIfNeeded: j) &* stride
          let random = R.usesRandom ? rng.bits32(low: c, high: high) : 0
          o[c0 + j] = BlockRun.one(o[c0 + j], d[j], u[j], rule, k, random, limit).0
        }
        events.add(
          input: x, down: UnsafeRawPointer(d).loadUnaligned(as: SIMD16<Float>.self),
          output: UnsafeRawPointer(o + c0).loadUnaligned(as: SIMD16<UInt32>.self))
      }
    }
    saturated = events.saturatedCount
    flushed = events.flushedCount
  }
}
