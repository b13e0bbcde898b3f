import FPFormats
import Foundation

/// Character-level text (nanoGPT's shakespeare_char preparation): the vocabulary is the sorted set
/// of distinct bytes, a token is a byte's index in it; the first 90% of the file trains, the last 10%
/// validates.
///
/// Training batches are B windows of T+1 tokens (inputs, and targets shifted by one) starting at
/// uniformly drawn offsets in 0 ..< count - T, as nanoGPT's `get_batch`; window b of step s uses draw
/// s*B + b of a counter RNG, so a batch depends on (seed, step) only and a resumed run draws the same.
/// Validation uses `validationBatches` fixed batches drawn the same way from the validation split.
public final class CharDataset {
  public let vocabulary: [UInt8]
  public let train: [Int32]
  public let validation: [Int32]

  public init(text: [UInt8]) {
    vocabulary = Array(Set(text)).sorted()
    var index = [Int32](repeating: -1, count: 256)
    for (i, b) in vocabulary.enumerated() { index[Int(b)] = Int32(i) }
    let tokens = text.map { index[Int($0)] }
    let split = Int(Double(tokens.count) * 0.9)
    train = Array(tokens[..<split])
    validation = Array(tokens[split...])
  }

  public convenience init(contentsOf url: URL) throws {
    let data = try DataFiles.read(url)
    guard data.count > 1000 else { throw DataError.malformed(url.path, "only \(data.count) bytes of text") }
    self.init(text: [UInt8](data))
  }

  public var vocabularySize: Int { vocabulary.count }

  /// Entropy in nats of the training split's token frequencies: the loss of the best model that
  /// ignores context, the bar a language model must go below to have learned anything beyond it.
  public var unigramEntropy: Double {
    var counts = [Int](repeating: 0, count: vocabulary.count)
    for t in train { counts[Int(t)] += 1 }
    let n = Double(train.count)
    return counts.reduce(0.0) { h, c in c == 0 ? h : h - Double(c) / n * log(Double(c) / n) }
  }

  /// Fills tokens and targets (B,T) with training batch `step`.
  public func trainBatch(
    step: Int, seed: UInt64, B: Int, T: Int, tokens: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>
  ) {
    Self.windows(train, CounterRNG(seed: seed, stream: 0x7472_6169_6E), UInt64(step * B), B, T, tokens, targets)
  }

  /// Fills tokens and targets (B,T) with fixed validation batch `index`.
  public func validationBatch(
    index: Int, seed: UInt64, B: Int, T: Int, tokens: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>
  ) {
    Self.windows(validation, CounterRNG(seed: seed, stream: 0x7661_6C), UInt64(index * B), B, T, tokens, targets)
  }

  static func windows(
    _ data: [Int32], _ rng: CounterRNG, _ first: UInt64, _ B: Int, _ T: Int,
    _ x: UnsafeMutablePointer<Int32>, _ y: UnsafeMutablePointer<Int32>
  ) {
    let range = UInt64(data.count - T)
    precondition(range > 0, "text shorter than one window")
    data.withUnsafeBufferPointer { d in
      for b in 0..<B {
        // Multiply-shift maps 64 random bits to 0..<range (bias below 2^-40 for range < 2^24).
        let start = Int(rng.bits64(first + UInt64(b)).multipliedFullWidth(by: range).high)
        for t in 0..<T {
          x[b * T + t] = d[start + t]
          y[b * T + t] = d[start + t + 1]
        }
      }
    }
  }
}
