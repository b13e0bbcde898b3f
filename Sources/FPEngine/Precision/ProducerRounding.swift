import FPFormats
import Synchronization

/// A linear layer's forward X or data-gradient dY rounded by the kernel that writes it, block by block,
/// instead of in a pass of its own afterwards: each block is rounded while it is still in L1, where the
/// pass would read the whole input once more from memory. For element formats only: they round value i
/// with counter i alone, and their counts are sums and a max, so the bits and counts are those of one
/// pass, however the producer cuts its work. (On an Intel Xeon an element rounding pass costs the same
/// whatever it computes: docs/benchmarks.md, "Intel Xeon: element rounding costs one pass over memory".)
public final class ProducerRounding: Sendable {
  let quantizer: Quantizer
  let limit: Float
  let countEvents: Bool
  /// The rounding stream (of this operand, step and pass), for the snapshot that records it.
  let stream: UInt64
  /// The producer's output, and where its rounded values go: the operand's buffer
  /// (`LinearGEMMs.producedDestination`), or the output itself (`inPlace`).
  nonisolated(unsafe) let source: UnsafeMutablePointer<Float>
  nonisolated(unsafe) let destination: UnsafeMutablePointer<Float>
  private let total = Mutex(RoundingCounts())

  init(
    rounder r: ElementRounding, seed: UInt64, stream: UInt64, source: UnsafeMutablePointer<Float>,
    into destination: UnsafeMutablePointer<Float>, countEvents: Bool
  ) {
    quantizer = r.quantizer(seed: seed, stream: stream)
    limit = r.saturationLimit
    self.stream = stream
    self.countEvents = countEvents
    self.source = source
    self.destination = destination
  }

  /// The rounded values replace the producer's output where it lies. Rounding a block where it is,
  /// in L1, writes no second buffer: a separate destination's lines come in from memory before they are
  /// written (docs/benchmarks.md, "Intel Xeon: rounding where the producer wrote").
  var inPlace: Bool { destination == source }

  /// Rounds the output's values lo ..< lo + n, which the producer has just written. Safe from several
  /// threads at once on separate ranges.
  public func round(from lo: Int, count n: Int) {
    let c = ElementRounding.round(quantizer, source + lo, destination + lo, n, lo, limit, countEvents)
    total.withLock { $0.add(c) }
  }

  /// `round` as the producer's per-block callback.
  public var afterBlock: @Sendable (Int, Int) -> Void { { lo, n in self.round(from: lo, count: n) } }

  /// The counts of every range rounded so far.
  var counts: RoundingCounts { total.withLock { $0 } }
}
