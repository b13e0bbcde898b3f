import FPEngine
import FPFormats
import Foundation

/// `fpsim bench attention`: milliseconds of the causal attention kernels (`Attention.forward` and
/// `backward`, the blocked kernels training runs) at one shape, next to the plain-loop reference
/// kernels on the same inputs in the same run. Inputs are standard normal (`CounterRNG.normal`, seed
/// 12345); each time is the median of `repeats` timed calls after one untimed call.
///
/// GFLOP/s count the causal products' useful work: per (batch, head) pair, T (T + 1) / 2 dot products
/// of length hs for each of Q K^T and P V forward, and for each of dP, dV, dQ and dK backward, so
/// 2 T (T + 1) hs flops forward and 4 T (T + 1) hs backward (the softmax and its gradient not counted).
public struct AttentionBenchmark: Sendable {
  public var batch: Int
  public var context: Int
  public var width: Int
  public var heads: Int
  public var threads: Int
  public var repeats: Int

  public init(batch: Int, context: Int, width: Int, heads: Int, threads: Int, repeats: Int) {
    self.batch = batch
    self.context = context
    self.width = width
    self.heads = heads
    self.threads = threads
    self.repeats = repeats
  }

  public func run() throws -> AttentionBenchmarkResult {
    let settings = [
      ("batch", batch), ("context", context), ("width", width), ("heads", heads), ("threads", threads), ("repeats", repeats),
    ]
    for (name, value) in settings where value <= 0 { throw BenchmarkError("--\(name) must be positive, not \(value)") }
    guard width % heads == 0 else { throw BenchmarkError("--width \(width) must be a multiple of --heads \(heads)") }
    let (B, T, C, NH) = (batch, context, width, heads)
    let rng = CounterRNG(seed: 12345, stream: 2)
    let qkv = (0..<B * T * 3 * C).map { Float(rng.normal(pair: UInt64($0))) }
    let dout = (0..<B * T * C).map { Float(rng.normal(pair: UInt64(qkv.count + $0))) }
    var out = [Float](repeating: 0, count: B * T * C), att = [Float](repeating: 0, count: B * NH * T * T)
    var dqkv = [Float](repeating: 0, count: qkv.count)
    var scratch = [Float](repeating: 0, count: Attention.scratchCount(T: T, C: C, NH: NH, threads: threads))
    let threads = threads
    // Median milliseconds of `body` over the repeats, after one untimed call.
    func time(_ body: () -> Void) -> Double {
      body()
      return Median.of((0..<repeats).map { _ in QuantizeBenchmark.seconds(body) * 1e3 })
    }
    func forward(_ reference: Bool) -> Double {
      time {
        if reference {
          Attention.forwardReference(out: &out, att: &att, qkv: qkv, scratch: &scratch, B: B, T: T, C: C, NH: NH, threads: threads)
        } else {
          Attention.forward(out: &out, att: &att, qkv: qkv, scratch: &scratch, B: B, T: T, C: C, NH: NH, threads: threads)
        }
      }
    }
    // The backward overwrites dqkv.
    func backward(_ reference: Bool) -> Double {
      time {
        if reference {
          Attention.backwardReference(
            dqkv: &dqkv, dout: dout, qkv: qkv, att: att, scratch: &scratch, B: B, T: T, C: C, NH: NH, threads: threads)
        } else {
          Attention.backward(dqkv: &dqkv, dout: dout, qkv: qkv, att: att, scratch: &scratch, B: B, T: T, C: C, NH: NH, threads: threads)
        }
      }
    }
    let forwardMs = forward(false), backwardMs = backward(false)
    let referenceForwardMs = forward(true), referenceBackwardMs = backward(true)
    let pairFlops = Double(T) * Double(T + 1) * Double(C / NH) * Double(B * NH)
    return AttentionBenchmarkResult(
      batch: B, context: T, width: C, heads: NH, threads: threads, repeats: repeats, blocked: C / NH % 16 == 0,
      forwardMs: forwardMs, backwardMs: backwardMs, referenceForwardMs: referenceForwardMs,
      referenceBackwardMs: referenceBackwardMs, forwardGflop: 2 * pairFlops / 1e9, backwardGflop: 4 * pairFlops / 1e9)
  }
}

/// What `fpsim bench attention` measures; its JSON names are these in snake_case.
public struct AttentionBenchmarkResult: Codable, Sendable {
  public var batch: Int
  public var context: Int
  public var width: Int
  public var heads: Int
  public var threads: Int
  public var repeats: Int
  /// Whether the head size is a multiple of 16, where `Attention.forward` and `backward` run their
  /// blocked kernels (else they are the reference kernels themselves).
  public var blocked: Bool
  public var forwardMs: Double
  public var backwardMs: Double
  public var referenceForwardMs: Double
  public var referenceBackwardMs: Double
  /// The causal products' useful GFLOP of one call (see `AttentionBenchmark`).
  public var forwardGflop: Double
  public var backwardGflop: Double
}
