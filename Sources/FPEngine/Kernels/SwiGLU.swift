/// The SwiGLU gate of Llama's MLP (Shazeer 2020), `down(silu(gate(x)) * up(x))`'s middle part: from
/// the gate projection a and the up projection b (both (N,H), flat arrays of `count` values),
///
///     out = silu(a) * b,   silu(a) = a * sigmoid(a),   sigmoid(a) = 1 / (1 + e^-a)
///     da = dout * b * silu'(a),   silu'(a) = sigmoid(a) * (1 + a * (1 - sigmoid(a)))
///     db = dout * silu(a)
///
/// Elementwise: `threads` chunks, the bits do not depend on the split. Each chunk runs in blocks of
/// `block` values, and `afterBlock(lo, n)`, when given, is called once outputs lo ..< lo + n (`out`,
/// or `dgate` and `dup`) are written, while they are in L1: the next layer's rounding of its operand
/// (`ProducerRounding`).
public enum SwiGLU {
  @inline(__always)
  static func sigmoid(_ a: Float) -> Float { 1 / (1 + FastMath.exp(-a)) }

  /// Values per block handed to `afterBlock`.
  static let block = 1024

  public static func forward(
    out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int, threads: Int = 1,
    afterBlock: (@Sendable (Int, Int) -> Void)? = nil
  ) {
    nonisolated(unsafe) let out = out, gate = gate, up = up
    parallelChunks(count, threads) { lo, hi in
      inBlocks(lo, hi, block, afterBlock) { b0, b1 in
        for i in b0..<b1 {
          let a = gate[i]
          out[i] = a * sigmoid(a) * up[i]
        }
      }
    }
  }

  /// dgate and dup overwritten (their one caller has no other contribution to add).
  public static func backward(
    dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>,
    up: UnsafePointer<Float>, dout: UnsafePointer<Float>, count: Int, threads: Int = 1,
    afterBlock: (@Sendable (Int, Int) -> Void)? = nil
  ) {
    nonisolated(unsafe) let dgate = dgate, dup = dup, gate = gate, up = up, dout = dout
    parallelChunks(count, threads) { lo, hi in
      inBlocks(lo, hi, block, afterBlock) { b0, b1 in
        for i in b0..<b1 {
          let a = gate[i], s = sigmoid(a), d = dout[i]
          dgate[i] = d * up[i] * (s * (1 + a * (1 - s)))
          dup[i] = d * (a * s)
        }
      }
    }
  }
}
