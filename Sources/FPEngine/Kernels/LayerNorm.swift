/// Layer normalization over the last dimension (PyTorch `nn.LayerNorm(C)`, eps 1e-5, biased variance):
///
///     mean = sum_i x_i / C,  var = sum_i (x_i - mean)^2 / C,  rstd = 1 / sqrt(var + eps)
///     out_i = (x_i - mean) * rstd * weight_i + bias_i
///
/// inp and out are (N,C) with N = B*T rows; mean and rstd (N) are saved for the backward pass.
/// `threads` split the rows (and, for the parameter gradients, the columns): every output is the same
/// sum in the same order whatever the split.
public enum LayerNorm {
  public static let eps: Float = 1e-5

  public static func forward(
    out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
    inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, N: Int, C: Int,
    threads: Int = 1
  ) {
    let invC = 1 / Float(C)
    nonisolated(unsafe) let out = out, mean = mean, rstd = rstd, inp = inp, weight = weight, bias = bias
    parallelRows(N, width: C, threads) { lo, hi in
      for n in lo..<hi {
        let x = inp + n * C, y = out + n * C
        let m = Reduce.sum(x, C) * invC
        let v = Reduce.squaredDeviation(x, m, C)
        let r = 1 / (v * invC + eps).squareRoot()
        for i in 0..<C { y[i] = (x[i] - m) * r * weight[i] + bias[i] }
        mean[n] = m
        rstd[n] = r
      }
    }
  }

  /// With xhat = (x - mean) * rstd and g = dout * weight (per row):
  ///
  ///     dinp  += rstd * (g - mean(g) - xhat * mean(g * xhat))
  ///     dweight += sum_n dout * xhat,   dbias += sum_n dout
  public static func backward(
    dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, N: Int, C: Int, threads: Int = 1
  ) {
    let invC = 1 / Float(C)
    nonisolated(unsafe) let dinp = dinp, dweight = dweight, dbias = dbias, dout = dout, inp = inp
    nonisolated(unsafe) let weight = weight, mean = mean, rstd = rstd
    // dinp: rows are independent.
    parallelRows(N, width: C, threads) { lo, hi in
      for n in lo..<hi {
        let x = inp + n * C, dy = dout + n * C, dx = dinp + n * C
        let m = mean[n], r = rstd[n]
        // mean(g) and mean(g * xhat), with 16 partial sums (see `Reduce`).
        var ga = SIMD16<Float>(), gxa = SIMD16<Float>()
        let mv = SIMD16<Float>(repeating: m), rv = SIMD16<Float>(repeating: r)
        var i = 0
        while i + 16 <= C {
          let g = Reduce.load16(dy, i) * Reduce.load16(weight, i)
          ga += g
          gxa += g * ((Reduce.load16(x, i) - mv) * rv)
          i += 16
        }
        var gMean = ga.sum(), gxMean = gxa.sum()
        while i < C {
          let g = dy[i] * weight[i]
          gMean += g
          gxMean += g * ((x[i] - m) * r)
          i += 1
        }
        gMean *= invC
        gxMean *= invC
        for i in 0..<C {
          let xhat = (x[i] - m) * r
          dx[i] += r * (dy[i] * weight[i] - gMean - xhat * gxMean)
        }
      }
    }
    // dweight and dbias: each column summed over the rows in order, columns split between threads.
    parallelColumns(C, height: N, threads) { lo, hi in
      for n in 0..<N {
        let x = inp + n * C, dy = dout + n * C
        let m = mean[n], r = rstd[n]
        for i in lo..<hi {
          dbias[i] += dy[i]
          dweight[i] += dy[i] * ((x[i] - m) * r)
        }
      }
    }
  }
}
