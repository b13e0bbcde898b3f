import Foundation
import Synchronization

/// The threads every parallel kernel runs on: the calling thread plus one persistent worker per
/// further core, which spin for a short while after each parallel region before they sleep.
///
/// Why not `DispatchQueue.concurrentPerform`: its workers park between regions and waking one costs
/// tens of microseconds on these machines, while a training step of gpt-tiny runs a region per kernel
/// call (GEMM panels, LayerNorm, GELU, attention, rounding), many of them well under a millisecond. A
/// worker that is still spinning starts within a microsecond.
///
/// Work is claimed index by index from a shared counter, so callers that want results independent of
/// the thread count must make each index's work independent of which thread runs it (all kernels do:
/// they split at fixed boundaries). A region started while another is running (a nested call, or two
/// threads of a test runner at once) runs on its calling thread alone.
public final class WorkerPool: @unchecked Sendable {
  /// Runs `body(i)` for every i in 0..<iterations, on the calling thread and the pool's workers, and
  /// returns when all have finished.
  public static func perform(_ iterations: Int, _ body: @Sendable (Int) -> Void) {
    if iterations <= 1 {
      if iterations == 1 { body(0) }
      return
    }
    shared.run(iterations, body)
  }

  /// `perform`, keeping each index's result: body(i) for i in 0..<iterations, in index order (the
  /// per-thread partial counts or maxima of a parallel region, merged by the caller in a fixed order).
  public static func map<T>(_ iterations: Int, _ body: @Sendable (Int) -> T) -> [T] {
    var results = [T?](repeating: nil, count: iterations)
    results.withUnsafeMutableBufferPointer { r in
      nonisolated(unsafe) let r = r
      perform(iterations) { i in r[i] = body(i) }
    }
    return results.map { $0! }
  }

  /// One worker per core beyond the caller's, created on first use.
  static let shared = WorkerPool(workers: max(0, ProcessInfo.processInfo.activeProcessorCount - 1))

  /// One parallel region. Workers hold a reference to the job they drain: a worker that arrives after
  /// the region ended finds its counter exhausted and never touches `body`, which lives on the
  /// caller's stack only while `run` is on it.
  final class Job: @unchecked Sendable {
    let count: Int
    let body: UnsafePointer<@Sendable (Int) -> Void>
    let next = Atomic<Int>(0)
    let pending: Atomic<Int>

    init(count: Int, body: UnsafePointer<@Sendable (Int) -> Void>) {
      self.count = count
      self.body = body
      pending = Atomic(count)
    }

    func drain() {
      while true {
        let i = next.add(1, ordering: .relaxed).oldValue
        if i >= count { return }
        body.pointee(i)
        pending.subtract(1, ordering: .releasing)
      }
    }
  }

  let workers: Int
  /// Bumped once per region; workers wait for it to change.
  private let generation = Atomic<Int>(0)
  private let current = Mutex<Job?>(nil)
  /// Set while a region runs (regions do not nest or overlap: see the type's comment).
  private let busy = Atomic<Bool>(false)
  /// Workers asleep on `condition`; the caller signals only when there are some.
  private let sleepers = Atomic<Int>(0)
  private let condition = NSCondition()
  /// How long a worker spins for the next region before it sleeps: longer than the serial gaps
  /// between the regions of a training step, short enough not to burn a core when idle.
  private static let spinNanoseconds: UInt64 = 200_000

  private init(workers: Int) {
    self.workers = workers
    for _ in 0..<workers {
      let thread = Thread { [self] in workerLoop() }
      thread.stackSize = 8 << 20
      thread.start()
    }
  }

  private func run(_ iterations: Int, _ body: @Sendable (Int) -> Void) {
    guard workers > 0, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
      for i in 0..<iterations { body(i) }
      return
    }
    defer { busy.store(false, ordering: .releasing) }
    withoutActuallyEscaping(body) { escapable in
      withUnsafePointer(to: escapable) { pointer in
        let job = Job(count: iterations, body: pointer)
        current.withLock { $0 = job }
        generation.add(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
          condition.lock()
          condition.broadcast()
          condition.unlock()
        }
        job.drain()
        // The last claimed indices finish on the workers; yield the core if one was descheduled.
        var spins = 0
        while job.pending.load(ordering: .acquiring) > 0 {
          spins += 1
          if spins > 4096 { sched_yield() }
        }
      }
    }
  }

  private func workerLoop() {
    var seen = generation.load(ordering: .acquiring)
    while true {
      seen = waitForRegion(after: seen)
      if let job = current.withLock({ $0 }) { job.drain() }
    }
  }

  /// Spins until `generation` moves past `seen`, then sleeps on `condition`; returns the new value.
  private func waitForRegion(after seen: Int) -> Int {
    let start = DispatchTime.now().uptimeNanoseconds
    var spins = 0
    while true {
      let g = generation.load(ordering: .acquiring)
      if g != seen { return g }
      spins += 1
      if spins & 255 == 0 && DispatchTime.now().uptimeNanoseconds - start > Self.spinNanoseconds { break }
    }
    condition.lock()
    sleepers.add(1, ordering: .sequentiallyConsistent)
    var g = generation.load(ordering: .sequentiallyConsistent)
    while g == seen {
      condition.wait()
      g = generation.load(ordering: .sequentiallyConsistent)
    }
    sleepers.subtract(1, ordering: .sequentiallyConsistent)
    condition.unlock()
    return g
  }
}
