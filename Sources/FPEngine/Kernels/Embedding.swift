/// Token plus learned position embedding (GPT-2 / nanoGPT):
///
///     out(b,t,:) = wte(tokens(b,t), :) + wpe(t, :)
///
/// tokens (B,T) in 0..<V, wte (V,C), wpe (maxT,C) with T <= maxT, out (B,T,C).
/// Backward scatters: dwte(tokens(b,t), :) += dout(b,t,:), dwpe(t,:) += dout(b,t,:).
public enum Embedding {
  public static func forward(
    out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>, wte: UnsafePointer<Float>,
    wpe: UnsafePointer<Float>, B: Int, T: Int, C: Int
  ) {
    for b in 0..<B {
      for t in 0..<T {
        let o = out + (b * T + t) * C
        let e = wte + Int(tokens[b * T + t]) * C, p = wpe + t * C
        for i in 0..<C { o[i] = e[i] + p[i] }
      }
    }
  }

  public static func backward(
    dwte: UnsafeMutablePointer<Float>, dwpe: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
    tokens: UnsafePointer<Int32>, B: Int, T: Int, C: Int
  ) {
    for b in 0..<B {
      for t in 0..<T {
        let d = dout + (b * T + t) * C
        let e = dwte + Int(tokens[b * T + t]) * C, p = dwpe + t * C
        for i in 0..<C {
          e[i] += d[i]
          p[i] += d[i]
        }
      }
    }
  }
}
