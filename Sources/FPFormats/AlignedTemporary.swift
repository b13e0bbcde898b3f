/// `withUnsafeTemporaryAllocation` with the buffer starting on a 64-byte (cache-line) boundary.
///
/// Why: the vector loops keep 16-lane partial results (counts, maxima) in small scratch arrays that
/// they store and load again a few instructions later. On the AMD Zen 4 cores of these machines, a
/// 64-byte vector that straddles two cache lines is not forwarded from its store to the next load, which
/// then waits for the store to leave the core. Where `withUnsafeTemporaryAllocation` places an array
/// depends on the stack's position, which depends on the size of the environment: the same binary
/// rounded MXFP4 down columns at 1.4 or 2.2 G values/s depending only on an environment variable's
/// length (`setarch -R` with a padding variable; docs/benchmarks.md). Aligned scratch makes the fast
/// case the only case there. Used by the column path; the row path
/// (`BlockRun`, `BlockAmax.sixteenBlocks`) keeps plain temporaries, as aligning its scratch was
/// measured slower at every stack position. `T`'s stride must divide 64.
@inline(__always)
func withAlignedTemporary<T, Result>(
  of type: T.Type, capacity: Int, _ body: (UnsafeMutablePointer<T>) throws -> Result
) rethrows -> Result {
  let stride = MemoryLayout<T>.stride
  return try withUnsafeTemporaryAllocation(of: T.self, capacity: capacity + 64 / stride) { buffer in
    let base = buffer.baseAddress!
    return try body(base + ((64 - Int(bitPattern: base) & 63) & 63) / stride)
  }
}
