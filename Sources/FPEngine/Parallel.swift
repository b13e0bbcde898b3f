import FPFormats

/// Runs `body(lo, hi)` over 0..<count cut into at most `threads` contiguous chunks of at least
/// `grain` items (below that a thread costs more than it saves). For kernels whose results do not
/// depend on the split: elementwise work, independent rows, or sums that each chunk owns whole.
@inline(__always)
func parallelRanges(_ count: Int, _ threads: Int, grain: Int, _ body: @Sendable (Int, Int) -> Void) {
  let t = max(1, min(threads, count / max(1, grain)))
  if t == 1 {
    body(0, count)
    return
  }
  let per = (count + t - 1) / t
  WorkerPool.perform(t) { i in
    let lo = i * per, hi = min(count, lo + per)
    if lo < hi { body(lo, hi) }
  }
}

/// `parallelRanges` over elements, 32 Ki of them at least per chunk.
@inline(__always)
func parallelChunks(_ count: Int, _ threads: Int, _ body: @Sendable (Int, Int) -> Void) {
  parallelRanges(count, threads, grain: 32_768, body)
}

/// Columns of `height` values each (sums down columns, each chunk owning whole columns), at least 16
/// columns and 32 Ki values per chunk.
@inline(__always)
func parallelColumns(_ columns: Int, height: Int, _ threads: Int, _ body: @Sendable (Int, Int) -> Void) {
  parallelRanges(columns, threads, grain: max(16, 32_768 / max(1, height)), body)
}

/// Rows of `width` values each, at least 32 Ki values per chunk.
@inline(__always)
func parallelRows(_ rows: Int, width: Int, _ threads: Int, _ body: @Sendable (Int, Int) -> Void) {
  parallelRanges(rows, threads, grain: max(1, 32_768 / max(1, width)), body)
}
