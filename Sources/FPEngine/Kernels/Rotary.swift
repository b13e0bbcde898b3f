import Foundation  // cos, sin, pow for the angle table

/// Rotary position embedding (RoPE, Su et al. 2021) of queries or keys, in the GPT-NeoX / Hugging Face
/// Llama convention ("rotate_half"): within each head of size hs (even), dimension i is paired with
/// dimension i + hs/2 (the two halves of the head, not interleaved neighbours), and the pair at
/// position t is rotated by the angle t * theta_i, theta_i = base^(-2i/hs), i < hs/2:
///
///     out[i]        = x[i] cos(t theta_i) - x[i + hs/2] sin(t theta_i)
///     out[i + hs/2] = x[i + hs/2] cos(t theta_i) + x[i] sin(t theta_i)
///
/// Rows are (B*T) positions of C = NH * hs values each (heads side by side, as the attention kernel
/// reads them); row n is position t = n mod T. Input and output have their own row strides, so a
/// projection's (N,C) output can be rotated straight into its third of the packed (N,3C) `qkv` that
/// `Attention` reads. The backward is the inverse rotation (a rotation's transpose):
///
///     dx[i] = dy[i] cos + dy[i + hs/2] sin,    dx[i + hs/2] = dy[i + hs/2] cos - dy[i] sin
///
/// Rows are independent, so the bits do not depend on `threads`.
public enum Rotary {
  /// Hugging Face's default `rope_theta`.
  public static let defaultBase = 10_000.0

  /// cos and sin of t theta_i, (T, hs/2) row-major each, computed in double and rounded once to float32.
  public static func table(T: Int, headSize hs: Int, base: Double = defaultBase) -> (cos: [Float], sin: [Float]) {
    precondition(hs % 2 == 0, "rotary needs an even head size")
    let half = hs / 2
    var c = [Float](repeating: 0, count: T * half), s = c
    for t in 0..<T {
      for i in 0..<half {
        let angle = Double(t) * Foundation.pow(base, -Double(2 * i) / Double(hs))
        c[t * half + i] = Float(Foundation.cos(angle))
        s[t * half + i] = Float(Foundation.sin(angle))
      }
    }
    return (c, s)
  }

  /// out (row stride ldo) = rotary(inp (row stride ldi)); N rows of C = NH * hs values; cos, sin (T, hs/2).
  public static func forward(
    out: UnsafeMutablePointer<Float>, ldo: Int, inp: UnsafePointer<Float>, ldi: Int,
    cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, N: Int, T: Int, C: Int, NH: Int, threads: Int = 1
  ) {
    rotate(out: out, ldo: ldo, inp: inp, ldi: ldi, cos: cos, sin: sin, sign: 1, N: N, T: T, C: C, NH: NH, threads: threads)
  }

  /// dinp (row stride lddi) = the inverse rotation of dout (row stride lddo); overwrites dinp.
  public static func backward(
    dinp: UnsafeMutablePointer<Float>, lddi: Int, dout: UnsafePointer<Float>, lddo: Int,
    cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, N: Int, T: Int, C: Int, NH: Int, threads: Int = 1
  ) {
    rotate(out: dinp, ldo: lddi, inp: dout, ldi: lddo, cos: cos, sin: sin, sign: -1, N: N, T: T, C: C, NH: NH, threads: threads)
  }

  /// Rotation of each pair (x1[i], x2[i]) of every head by the angle of (cos, sign * sin):
  /// y1 = x1 c - x2 s, y2 = x2 c + x1 s. sign -1 is the inverse (the transpose); negating s is exact,
  /// so both directions give the bits of their own formulas.
  static func rotate(
    out: UnsafeMutablePointer<Float>, ldo: Int, inp: UnsafePointer<Float>, ldi: Int,
    cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, sign: Float, N: Int, T: Int, C: Int, NH: Int, threads: Int
  ) {
    precondition(C % NH == 0 && (C / NH) % 2 == 0, "rotary needs an even head size")
    let hs = C / NH, half = hs / 2
    nonisolated(unsafe) let out = out, inp = inp, cos = cos, sin = sin
    parallelRows(N, width: C, threads) { lo, hi in
      for n in lo..<hi {
        let x = inp + n * ldi, y = out + n * ldo
        let c = cos + (n % T) * half, s = sin + (n % T) * half
        for h in 0..<NH {
          let x1 = x + h * hs, x2 = x1 + half, y1 = y + h * hs, y2 = y1 + half
          for i in 0..<half {
            let a = x1[i], b = x2[i], si = sign * s[i]
            y1[i] = a * c[i] - b * si
            y2[i] = b * c[i] + a * si
          }
        }
      }
    }
  }
}
