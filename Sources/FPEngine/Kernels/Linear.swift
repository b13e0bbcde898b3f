/// A fully connected layer, `Y = X W^T + b`, as its three GEMMs (nanoGPT/PyTorch weight layout:
/// W is (OC, C), out-features by in-features).
///
///     forward          out(N,OC)   = inp(N,C) . weight(OC,C)^T + bias(OC)
///     data gradient    dinp(N,C)  += dout(N,OC) . weight(OC,C)
///     weight gradient  dweight(OC,C) += dout(N,OC)^T . inp(N,C);  dbias(OC) += sum_n dout(n,:)
///
/// The backward halves are separate functions because the precision hook hands each GEMM its own
/// rounded operands (`LinearGEMMs`). Gradients accumulate (+=): a tied weight or a residual stream
/// collects from several users; the owner zeroes them.
///
/// Each GEMM takes an optional `bf16` workspace: given, it runs on `BF16GEMM` (operands that are exactly
/// bfloat16, the explicit `--gemm bf16` mode) instead of `GEMM.sgemm`, and an `alpha` that scales the
/// product (1: none; the tensor scales that mode leaves out of NVFP4 and `tensor-scale` operands).
public enum Linear {
  /// (M, N, K) of the forward, data-gradient and weight-gradient products, in that order.
  public static func productShapes(N: Int, C: Int, OC: Int) -> [(M: Int, N: Int, K: Int)] {
    [(N, OC, C), (N, C, OC), (OC, C, N)]
  }

  /// One of the three products, on sgemm or (with a workspace) on the bfloat16 kernel; sgemm adds
  /// `bias` to each row of C itself (`GEMM.sgemm`).
  @inline(__always)
  static func product(
    transA: Bool, transB: Bool, M: Int, N: Int, K: Int, A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>,
    ldb: Int, beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int, threads: Int, bf16: UnsafeMutablePointer<UInt32>?,
    alpha: Float, bias: UnsafePointer<Float>? = nil
  ) {
    if let bf16 {
      BF16GEMM.multiply(
        transA: transA, transB: transB, M: M, N: N, K: K, alpha: alpha, A: A, lda: lda, B: B, ldb: ldb, beta: beta,
        C: C, ldc: ldc, workspace: bf16, threads: threads)
    } else {
      GEMM.sgemm(
        transA: transA, transB: transB, M: M, N: N, K: K, alpha: alpha, A: A, lda: lda, B: B, ldb: ldb, beta: beta,
        C: C, ldc: ldc, bias: bias, threads: threads)
    }
  }

  public static func forward(
    out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, N: Int, C: Int, OC: Int, threads: Int = 1, bf16: UnsafeMutablePointer<UInt32>? = nil,
    alpha: Float = 1
  ) {
    product(
      transA: false, transB: true, M: N, N: OC, K: C, A: inp, lda: C, B: weight, ldb: C, beta: 0,
      C: out, ldc: OC, threads: threads, bf16: bf16, alpha: alpha, bias: bias)
    if let bias, bf16 != nil {
      nonisolated(unsafe) let out = out, bias = bias
      parallelRows(N, width: OC, threads) { lo, hi in GEMM.addBias(bias, toRows: lo..<hi, of: out, ldc: OC, N: OC) }
    }
  }

  /// dinp(N,C) += dout(N,OC) . weight(OC,C), or = when `overwrite` (no zeroing pass needed).
  public static func backwardData(
    dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    N: Int, C: Int, OC: Int, overwrite: Bool = false, threads: Int = 1, bf16: UnsafeMutablePointer<UInt32>? = nil,
    alpha: Float = 1
  ) {
    product(
      transA: false, transB: false, M: N, N: C, K: OC, A: dout, lda: OC, B: weight, ldb: C, beta: overwrite ? 0 : 1,
      C: dinp, ldc: C, threads: threads, bf16: bf16, alpha: alpha)
  }

  /// dweight(OC,C) += dout(N,OC)^T . inp(N,C)
  public static func backwardWeight(
    dweight: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
    N: Int, C: Int, OC: Int, threads: Int = 1, bf16: UnsafeMutablePointer<UInt32>? = nil, alpha: Float = 1
  ) {
    product(
      transA: true, transB: false, M: OC, N: C, K: N, A: dout, lda: OC, B: inp, ldb: C, beta: 1,
      C: dweight, ldc: C, threads: threads, bf16: bf16, alpha: alpha)
  }

  /// dbias(OC) += sum over the N rows of dout(N,OC), in row order; threads split the columns.
  public static func backwardBias(
    dbias: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, N: Int, OC: Int, threads: Int = 1
  ) {
    nonisolated(unsafe) let dbias = dbias, dout = dout
    parallelColumns(OC, height: N, threads) { lo, hi in
      addRows(dout + lo, count: N, stride: OC, width: hi - lo, into: dbias + lo)
    }
  }

  /// sums[c] += rows[r * stride + c] for c < width, r = 0 ..< count in turn: each column's chain in row
  /// order, so that rows added a block at a time, blocks in order, give `backwardBias`'s sums bit for bit.
  @inline(__always)
  public static func addRows(
    _ rows: UnsafePointer<Float>, count: Int, stride: Int, width: Int, into sums: UnsafeMutablePointer<Float>
  ) {
    for r in 0..<count {
      let row = rows + r * stride
      for c in 0..<width { sums[c] += row[c] }
    }
  }

  /// All three gradients with unrounded operands.
  public static func backward(
    dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>,
    dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, N: Int, C: Int, OC: Int
  ) {
    if let dinp { backwardData(dinp: dinp, dout: dout, weight: weight, N: N, C: C, OC: OC) }
    backwardWeight(dweight: dweight, dout: dout, inp: inp, N: N, C: C, OC: OC)
    if let dbias { backwardBias(dbias: dbias, dout: dout, N: N, OC: OC) }
  }
}
