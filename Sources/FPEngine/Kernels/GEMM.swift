import CBLAS

/// Matrix products, row-major, through CBLAS (OpenBLAS here), with a naive reference beside it.
///
///     C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C(M,N)
///
/// op(A) is A (stored M x K, leading dimension lda >= K) or A^T (A stored K x M, lda >= M); likewise B.
/// Accumulation is float32 (OpenBLAS's own blocking order: results are deterministic for a fixed
/// thread count, not bit-equal to the naive loop).
public enum GEMM {
  @inline(__always)
  public static func sgemm(
    transA: Bool, transB: Bool, M: Int, N: Int, K: Int, alpha: Float = 1,
    A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int,
    beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    if M == 0 || N == 0 { return }
    cblas_sgemm(
      CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
      Int32(M), Int32(N), Int32(K), alpha, A, Int32(lda), B, Int32(ldb), beta, C, Int32(ldc))
  }

  /// The definition, one dot product per output in float32 (beta == 0 overwrites C, NaN included,
  /// as BLAS does).
  public static func sgemmNaive(
    transA: Bool, transB: Bool, M: Int, N: Int, K: Int, alpha: Float = 1,
    A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int,
    beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    for i in 0..<M {
      for j in 0..<N {
        var s: Float = 0
        for k in 0..<K {
          let a = transA ? A[k * lda + i] : A[i * lda + k]
          let b = transB ? B[j * ldb + k] : B[k * ldb + j]
          s += a * b
        }
        let c = C + i * ldc + j
        c.pointee = beta == 0 ? alpha * s : alpha * s + beta * c.pointee
      }
    }
  }
}
