/// Root-mean-square normalization over the last dimension (Llama's `LlamaRMSNorm`, eps 1e-5): no mean
/// subtraction, no offset,
///
///     rstd = 1 / sqrt(sum_i x_i^2 / C + eps),   out_i = x_i * rstd * weight_i
///
/// inp and out are (N,C) with N = B*T rows; rstd (N) is saved for the backward pass. `threads` split
/// the rows (and, for the gain gradient, the columns): every output is the same sum in the same order
/// whatever the split.
public enum RMSNorm {
  public static let eps: Float = 1e-5

  public static func forward(
    out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, N: Int, C: Int, threads: Int = 1
  ) {
    let invC = 1 / Float(C)
    nonisolated(unsafe) let out = out, rstd = rstd, inp = inp, weight = weight
    parallelRows(N, width: C, threads) { lo, hi in
      for n in lo..<hi {
        let x = inp + n * C, y = out + n * C
        let r = 1 / (Reduce.dot(x, x, C) * invC + eps).squareRoot()
        for i in 0..<C { y[i] = x[i] * r * weight[i] }
        rstd[n] = r
      }
    }
  }

  /// With xhat = x * rstd and g = dout * weight (per row), since d rstd / d x_j = -rstd^3 x_j / C:
  ///
  ///     dinp    += rstd * (g - xhat * mean(g * xhat))
  ///     dweight += sum_n dout * xhat
  public static func backward(
    dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
    inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>, N: Int, C: Int,
    threads: Int = 1
  ) {
    let invC = 1 / Float(C)
    nonisolated(unsafe) let dinp = dinp, dweight = dweight, dout = dout, inp = inp, weight = weight, rstd = rstd
    // dinp: rows are independent.
    parallelRows(N, width: C, threads) { lo, hi in
      for n in lo..<hi {
        let x = inp + n * C, dy = dout + n * C, dx = dinp + n * C
        let r = rstd[n]
        // mean(g * xhat) = rstd * sum_i dy_i w_i x_i / C, with 16 partial sums (see `Reduce`).
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= C {
          acc += Reduce.load16(dy, i) * Reduce.load16(weight, i) * Reduce.load16(x, i)
          i += 16
        }
        var s = acc.sum()
        while i < C {
          s += dy[i] * weight[i] * x[i]
          i += 1
        }
        let gxMean = s * r * invC
        for i in 0..<C { dx[i] += r * (dy[i] * weight[i] - x[i] * r * gxMean) }
      }
    }
    // dweight: each column summed over the rows in order, columns split between threads.
    parallelColumns(C, height: N, threads) { lo, hi in
      for n in 0..<N {
        let x = inp + n * C, dy = dout + n * C
        let r = rstd[n]
        for i in lo..<hi { dweight[i] += dy[i] * (x[i] * r) }
      }
    }
  }
}
