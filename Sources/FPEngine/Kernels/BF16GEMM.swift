import CBF16GEMM
import FPFormats

/// The bfloat16 matrix product of the explicit `--gemm bf16` mode, with its plain reference beside it.
///
///     C(M,N) = alpha * (op(A)(M,K) * op(B)(K,N)) + beta * C(M,N),  beta 0 or 1, layouts as `GEMM.sgemm`
///
/// For operands whose float32 values are exactly bfloat16 (at most 8 significant bits: every operand a
/// recipe has rounded to a format of at most 7 mantissa bits with a power-of-two scale), on CPUs with
/// AVX512-BF16. It differs from `GEMM.sgemm` in two documented ways, never in its inputs:
/// - the order of the float32 sums: per output, over pairs p = 0, 1, ... of the reduction,
///   acc = (acc + a[2p+1] b[2p+1]) + a[2p] b[2p], each sum rounded to nearest even (the products are exact);
/// - subnormal inputs, products and sums are flushed to zero (the instruction ignores MXCSR).
/// alpha (1 unless the operands left a float32 tensor scale out of their values: NVFP4 and
/// `tensor-scale` formats in this mode, `BlockQuantizer.tensorScaleApart`) multiplies each output's sum
/// once, rounded to nearest even and not flushed; with alpha = 1 the sum is unchanged.
/// A value that is not exactly bfloat16 is cut to its high 16 bits. Results do not depend on `threads`:
/// every output is the same sequence of sums whatever the row range it falls in.
public enum BF16GEMM {
  /// True when this CPU runs the kernel (AVX512-F, -BW and -BF16).
  public static let isAvailable: Bool = fpsim_bf16_gemm_available() != 0

  /// Words of workspace `multiply` needs: op(A) and op(B) as bfloat16 pairs, ceil(K/2) x (M + N rounded
  /// up to 32).
  public static func workspaceCount(M: Int, N: Int, K: Int) -> Int {
    (K + 1) / 2 * (M + (N + 31) / 32 * 32)
  }

  /// C = alpha op(A) op(B) + beta C on `threads` threads, through `workspace` (`workspaceCount` words;
  /// 64-byte aligned is fastest).
  public static func multiply(
    transA: Bool, transB: Bool, M: Int, N: Int, K: Int, alpha: Float = 1,
    A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int,
    beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int, workspace: UnsafeMutablePointer<UInt32>, threads: Int = 1
  ) {
    precondition(isAvailable, "BF16GEMM needs a CPU with AVX512-BF16")
    precondition(beta == 0 || beta == 1, "BF16GEMM takes beta 0 or 1")
    if M == 0 || N == 0 { return }
    let P = (K + 1) / 2, ldw = (N + 31) / 32 * 32
    // op(A) K-contiguous (A is M x K): row-major words, row i at i * P. Else (A stored K x M): pair-major
    // words, pair p at p * M, from 512-bit loads along M.
    nonisolated(unsafe) let aw = workspace, bw = workspace + P * M
    let (aPair, aRow) = transA ? (M, 1) : (1, P)
    let t = max(1, min(threads, M / 8, (M * N * K) >> 20))
    nonisolated(unsafe) let A = A, B = B, C = C
    // Packing ranges cut at multiples of 16 words, so that no two threads write one cache line.
    @Sendable func cut(_ n: Int, _ i: Int) -> Int { i == t ? n : min(n, (n * i / t) & ~15) }
    WorkerPool.perform(t) { i in
      let m0 = cut(M, i), m1 = cut(M, i + 1), n0 = cut(N, i), n1 = cut(N, i + 1)
      if transA {
        fpsim_bf16_pack_pairs(A, lda, 0, K, m0, m1, aw, M)
      } else {
        fpsim_bf16_pack_rows(A, lda, K, m0, m1, aw, P)
      }
      fpsim_bf16_pack_pairs(B, ldb, transB ? 1 : 0, K, n0, n1, bw, ldw)
    }
    // Row ranges of whole 8-row tiles.
    let rows = (M / t + 7) & ~7
    WorkerPool.perform(t) { i in
      let m0 = min(M, i * rows), m1 = i == t - 1 ? M : min(M, m0 + rows)
      guard m1 > m0 else { return }
      fpsim_bf16_gemm_rows(aw, aPair, aRow, bw, ldw, P, m0, m1, N, C, ldc, alpha, beta == 0 ? 0 : 1)
    }
  }

  /// The definition, one output at a time in plain Swift: the same sums, roundings and flushes as the
  /// kernel (see the type's comment).
  public static func reference(
    transA: Bool, transB: Bool, M: Int, N: Int, K: Int, alpha: Float = 1,
    A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int,
    beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    // A value cut to bfloat16, subnormals flushed to a zero of their sign.
    func bf16(_ x: Float) -> Float { flush(Float(bitPattern: x.bitPattern & 0xFFFF_0000)) }
    func flush(_ x: Float) -> Float { x.isSubnormal ? Float(sign: x.sign, exponent: 0, significand: 0) : x }
    for i in 0..<M {
      for j in 0..<N {
        func a(_ k: Int) -> Float { k >= K ? 0 : bf16(transA ? A[k * lda + i] : A[i * lda + k]) }
        func b(_ k: Int) -> Float { k >= K ? 0 : bf16(transB ? B[j * ldb + k] : B[k * ldb + j]) }
        var acc: Float = 0
        for p in 0..<(K + 1) / 2 {
          acc = flush(acc + flush(a(2 * p + 1) * b(2 * p + 1)))
          acc = flush(acc + flush(a(2 * p) * b(2 * p)))
        }
        let c = C + i * ldc + j
        c.pointee = beta == 0 ? alpha * acc : c.pointee + alpha * acc
      }
    }
  }
}

extension FloatBuffer {
  /// The buffer as `BF16GEMM.multiply`'s workspace, `count` words with its 64-byte alignment (nil when
  /// empty).
  public var bf16Words: UnsafeMutablePointer<UInt32>? {
    count > 0 ? UnsafeMutableRawPointer(pointer).bindMemory(to: UInt32.self, capacity: count) : nil
  }
}
