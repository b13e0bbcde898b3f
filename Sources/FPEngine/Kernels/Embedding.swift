/// Token plus learned position embedding (GPT-2 / nanoGPT):
///
///     out(b,t,:) = wte(tokens(b,t), :) + wpe(t, :)
///
/// tokens (B,T) in 0..<V, wte (V,C), wpe (maxT,C) with T <= maxT, out (B,T,C).
/// Backward scatters: dwte(tokens(b,t), :) += dout(b,t,:), dwpe(t,:) += dout(b,t,:).
/// Without `wpe` (nil: a model whose positions enter elsewhere, as Llama's rotary embedding) it is the
/// token lookup alone, and the backward scatters into dwte only.
public enum Embedding {
  public static func forward(
    out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>, wte: UnsafePointer<Float>,
    wpe: UnsafePointer<Float>?, B: Int, T: Int, C: Int
  ) {
    for b in 0..<B {
      for t in 0..<T {
        let o = out + (b * T + t) * C
        let e = wte + Int(tokens[b * T + t]) * C
        if let wpe {
          let p = wpe + t * C
          for i in 0..<C { o[i] = e[i] + p[i] }
        } else {
          o.update(from: e, count: C)
        }
      }
    }
  }

  public static func backward(
    dwte: UnsafeMutablePointer<Float>, dwpe: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
    tokens: UnsafePointer<Int32>, B: Int, T: Int, C: Int
  ) {
    for b in 0..<B {
      for t in 0..<T {
        let d = dout + (b * T + t) * C
        let e = dwte + Int(tokens[b * T + t]) * C
        if let dwpe {
          let p = dwpe + t * C
          for i in 0..<C {
            e[i] += d[i]
            p[i] += d[i]
          }
        } else {
          for i in 0..<C { e[i] += d[i] }
        }
      }
    }
  }
}
