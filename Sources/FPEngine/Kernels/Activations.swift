/// GELU, exact form (PyTorch `nn.GELU()` default, which nanoGPT uses): gelu(x) = x * Phi(x), Phi the
/// standard normal CDF = (1 + erf(x / sqrt 2)) / 2.  gelu'(x) = Phi(x) + x * phi(x).
/// inp, out, dinp, dout are flat arrays of `count` values.
public enum GELU {
  /// `threads` contiguous chunks run concurrently (elementwise: the result does not depend on it).
  /// With `cdf`, Phi(x) is also kept there for `backward`, which then skips computing it again (the
  /// CDF is the costlier half of the derivative: a division, an exponential and a degree-9 polynomial).
  ///
  /// Two passes over each block of `block` values: the first computes `FastMath.normalCDFHead` (the
  /// division and the polynomial) into a scratch block, the second the exponential and the rest. The
  /// operations are those of `x * FastMath.normalCDF(x)`, so the bits are too; in one loop the two
  /// halves ran at 3.1 ns a value on AMD Zen 2, split at 1.9.
  ///
  /// `afterBlock(lo, n)` is called (on the thread that computed them) once outputs lo ..< lo + n are
  /// written, while they are in L1: the next layer's rounding of its input (`ProducerRounding`).
  public static func forward(
    out: UnsafeMutablePointer<Float>, cdf: UnsafeMutablePointer<Float>? = nil, inp: UnsafePointer<Float>, count: Int,
    threads: Int = 1, afterBlock: (@Sendable (Int, Int) -> Void)? = nil
  ) {
    nonisolated(unsafe) let out = out, inp = inp, cdf = cdf
    parallelChunks(count, threads) { lo, hi in
      withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * block) { scratch in
        let t = scratch.baseAddress!, exponent = t + block
        inBlocks(lo, hi, block, afterBlock) { b0, b1 in
          let n = b1 - b0
          let x = inp + b0, o = out + b0
          for i in 0..<n { (t[i], exponent[i]) = FastMath.normalCDFHead(x[i]) }
          if let cdf {
            let c = cdf + b0
            for i in 0..<n {
              let phi = FastMath.normalCDFTail(x[i], t: t[i], exp: FastMath.exp(exponent[i]))
              c[i] = phi
              o[i] = x[i] * phi
            }
          } else {
            for i in 0..<n { o[i] = x[i] * FastMath.normalCDFTail(x[i], t: t[i], exp: FastMath.exp(exponent[i])) }
          }
        }
      }
    }
  }

  /// Values per block of `forward`'s two passes: its two scratch rows (8 KiB) stay in L1.
  static let block = 1024

  /// dinp = dout * gelu'(inp) (overwritten: its one caller has no other contribution to add), with
  /// Phi(inp) read from `cdf` when the forward pass kept it (the same bits as computing it here).
  /// `afterBlock` as in `forward`, for blocks of `dinp`.
  ///
  /// With `bias` (and `cdf`, on one thread), dinp is (count / columns, columns), and the next layer's
  /// bias gradient dbias(columns) += the column sums of dinp is taken too, each block's (whole rows)
  /// before `afterBlock` may round it in place: the sums of `Linear.backwardBias`, each column's in row
  /// order, bit for bit. (Each column's sum is one chain down all rows: threads would have to split the
  /// columns, and with half of every row each, GELU's backward ran slower than the pass it saves.)
  public static func backward(
    dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, cdf: UnsafePointer<Float>? = nil,
    dout: UnsafePointer<Float>, count: Int, threads: Int = 1, afterBlock: (@Sendable (Int, Int) -> Void)? = nil,
    bias: (dbias: UnsafeMutablePointer<Float>, columns: Int)? = nil
  ) {
    nonisolated(unsafe) let dinp = dinp, inp = inp, dout = dout
    if let cdf, let (dbias, C) = bias {
      precondition(threads == 1 && count % C == 0, "one thread, and dinp whole rows of the bias's columns")
      inBlocks(0, count / C, max(1, block / C), { r0, rows in afterBlock?(r0 * C, rows * C) }) { r0, r1 in
        for r in r0..<r1 {
          // Two loops over the row: with the bias sums in the first, it did not vectorize (nor the
          // second one, indexed dinp[r * C + c] with its overflow checks, instead of through a row
          // pointer as `Linear.addRows` reads).
          for i in r * C..<(r + 1) * C {
            let x = inp[i]
            dinp[i] = dout[i] * (cdf[i] + x * FastMath.normalPDF(x))
          }
          Linear.addRows(dinp + r * C, count: 1, stride: C, width: C, into: dbias)
        }
      }
      return
    }
    precondition(bias == nil, "the bias gradient is taken here only when the forward pass kept Phi")
    if let cdf {
      nonisolated(unsafe) let cdf = cdf
      parallelChunks(count, threads) { lo, hi in
        inBlocks(lo, hi, block, afterBlock) { b0, b1 in
          for i in b0..<b1 {
            let x = inp[i]
            dinp[i] = dout[i] * (cdf[i] + x * FastMath.normalPDF(x))
          }
        }
      }
      return
    }
    precondition(afterBlock == nil, "blocks are handed on only when the forward pass kept Phi")
    parallelChunks(count, threads) { lo, hi in
      for i in lo..<hi {
        let x = inp[i]
        dinp[i] = dout[i] * (FastMath.normalCDF(x) + x * FastMath.normalPDF(x))
      }
    }
  }
}

/// ReLU: out = max(x, 0); the derivative is 1 for x > 0 and 0 otherwise (0 at x = 0, as PyTorch).
public enum ReLU {
  public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { out[i] = inp[i] > 0 ? inp[i] : 0 }
  }

  /// dinp += dout * [inp > 0]
  public static func backward(
    dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, dout: UnsafePointer<Float>, count: Int
  ) {
    for i in 0..<count { dinp[i] += inp[i] > 0 ? dout[i] : 0 }
  }
}

/// The residual connection out = a + b, whose backward passes dout unchanged to both inputs.
public enum Residual {
  public static func forward(
    out: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, count: Int, threads: Int = 1
  ) {
    nonisolated(unsafe) let out = out, a = a, b = b
    parallelChunks(count, threads) { lo, hi in
      for i in lo..<hi { out[i] = a[i] + b[i] }
    }
  }
}
