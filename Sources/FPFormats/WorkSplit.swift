/// How a loop over `count` items is cut for threads: `parts` contiguous ranges of `per` items (the
/// last ones shorter or empty), part i covering items i * per ..< min(count, (i + 1) * per), or (for
/// `interleaved`) the items i, i + parts, i + 2 parts, ...
///
/// parts = max(1, min(threads, work / grain, count, maxParts)): no more parts than threads or items,
/// and at least `grain` units of work per part (below that a thread costs more than it saves); `work`
/// is the loop's total work in the unit of `grain` (by default `count`, one unit per item).
///
/// Kernels whose results must not depend on the thread count split at these fixed boundaries and give
/// each part its own counters and sums; the tests read `parts` to check that a case meant to exercise
/// several threads really is cut into that many parts.
public struct WorkSplit: Sendable, Equatable {
  public let count: Int
  public let parts: Int

  /// The least work per part of the operand rounding passes (rows, column tiles, strips, element
  /// formats), in values: 16 Ki, so that gpt-tiny's weights (16-64 Ki values) round on two threads.
  public static let roundingGrain = 16_384

  public init(count: Int, threads: Int, grain: Int, work: Int? = nil, maxParts: Int = .max) {
    self.count = count
    parts = max(1, min(threads, (work ?? count) / max(1, grain), count, maxParts))
  }

  /// Items per part.
  public var per: Int { (count + parts - 1) / parts }

  /// Part i's items (empty for the parts past the end).
  public func range(_ i: Int) -> Range<Int> {
    let lo = min(count, i * per)
    return lo..<min(count, lo + per)
  }

  /// Part i's items when parts take every `parts`-th item instead (whole tiles or strips dealt round).
  public func interleaved(_ i: Int) -> StrideTo<Int> { stride(from: i, to: count, by: parts) }

  /// body(range, part) for every non-empty part, on the calling thread alone when there is one part.
  @inline(__always)
  public func forEach(_ body: @Sendable (Range<Int>, Int) -> Void) {
    if parts == 1 {
      body(0..<count, 0)
      return
    }
    WorkerPool.perform(parts) { i in
      let r = range(i)
      if !r.isEmpty { body(r, i) }
    }
  }

  /// body(part) for every part (empty ones included), results in part order.
  @inline(__always)
  public func map<T>(_ body: @Sendable (Int) -> T) -> [T] {
    parts == 1 ? [body(0)] : WorkerPool.map(parts, body)
  }
}
