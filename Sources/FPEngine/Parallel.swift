import FPFormats

/// Runs `body(lo, hi)` over 0..<count cut into at most `threads` contiguous chunks of at least
/// `grain` items (below that a thread costs more than it saves). For kernels whose results do not
/// depend on the split: elementwise work, independent rows, or sums that each chunk owns whole.
@inline(__always)
func parallelRanges(_ count: Int, _ threads: Int, grain: Int, _ body: @Sendable (Int, Int) -> Void) {
  WorkSplit(count: count, threads: threads, grain: grain).forEach { r, _ in body(r.lowerBound, r.upperBound) }
}

/// `parallelRanges` over elements, 32 Ki of them at least per chunk.
@inline(__always)
func parallelChunks(_ count: Int, _ threads: Int, _ body: @Sendable (Int, Int) -> Void) {
  parallelRanges(count, threads, grain: 32_768, body)
}

/// lo ..< hi in blocks of `size` values: `body(b0, b1)` for each block [b0, b1), then
/// `afterBlock(b0, b1 - b0)` while its outputs are in L1 (a consumer's rounding, `ProducerRounding`).
@inline(__always)
func inBlocks(_ lo: Int, _ hi: Int, _ size: Int, _ afterBlock: ((Int, Int) -> Void)?, _ body: (Int, Int) -> Void) {
  var b0 = lo
  while b0 < hi {
    let b1 = min(hi, b0 + size)
    body(b0, b1)
    afterBlock?(b0, b1 - b0)
    b0 = b1
  }
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
