import Dispatch

/// `DispatchQueue.concurrentPerform` under a name the kernels share.
enum DispatchQueueShim {
  @inline(__always)
  static func concurrentPerform(_ iterations: Int, _ body: @Sendable (Int) -> Void) {
    DispatchQueue.concurrentPerform(iterations: iterations, execute: body)
  }
}

/// Runs `body(lo, hi)` over 0..<count cut into at most `threads` contiguous chunks of at least
/// 32 Ki elements (below that a thread costs more than it saves). For elementwise kernels, whose
/// results cannot depend on the split.
@inline(__always)
func parallelChunks(_ count: Int, _ threads: Int, _ body: @Sendable (Int, Int) -> Void) {
  let t = max(1, min(threads, count / 32_768))
  if t == 1 {
    body(0, count)
    return
  }
  let per = (count + t - 1) / t
  DispatchQueue.concurrentPerform(iterations: t) { i in
    let lo = i * per, hi = min(count, lo + per)
    if lo < hi { body(lo, hi) }
  }
}
