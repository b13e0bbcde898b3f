import CBF16GEMM
import FPFormats
import Foundation

/// The bfloat16 matrix product of the explicit `--gemm bf16` mode, with its plain reference beside it.
///
///     C(M,N) = alpha * (op(A)(M,K) * op(B)(K,N)) + beta * C(M,N),  beta 0 or 1, layouts as `GEMM.sgemm`
///
/// For operands whose float32 values are exactly bfloat16 (at most 8 significant bits: every operand a
/// recipe has rounded to a format of at most 7 mantissa bits with a power-of-two scale), on CPUs with
/// AVX512-BF16. It differs from `GEMM.sgemm` in two documented ways, never in its inputs:
/// - the order of the float32 sums: per output, over pairs p = 0, 1, ... of the reduction,
///   acc = fma(a[2p+1], b[2p+1], acc), then acc = fma(a[2p], b[2p], acc): each exact product added and
///   rounded once, to nearest even;
/// - subnormal inputs and sums are flushed to zero (the instruction ignores MXCSR); a product is never
///   flushed on its own (it is not rounded before the sum).
/// alpha (1 unless the operands left a float32 tensor scale out of their values: NVFP4 and
/// `tensor-scale` formats in this mode, `BlockQuantizer.tensorScaleApart`) multiplies each output's sum
/// once, rounded to nearest even and not flushed; with alpha = 1 the sum is unchanged.
/// A value that is not exactly bfloat16 is cut to its high 16 bits. Results do not depend on `threads`:
/// every output is the same sequence of sums whatever the row range it falls in.
public enum BF16GEMM {
  /// True when this CPU runs the kernel (AVX512-F, -BW and -BF16).
  public static let isAvailable: Bool = fpsim_bf16_gemm_available() != 0

  /// The two kernels, which give the same bits (bf16_gemm.h): `dpbf16`, AVX512-BF16's VDPBF16PS on
  /// bfloat16 pairs; `fma`, float32 fused multiply-adds in the same order with DAZ and FTZ (operands with
  /// Inf or NaN run on `dpbf16`).
  public enum Kernel: String, Sendable, CaseIterable {
    case dpbf16, fma
  }

  /// The kernel for this CPU: `fma` on Intel's (VDPBF16PS ran at half the FMA rate on the Xeons of
  /// docs/benchmarks.md), else `dpbf16`. `FPSIM_BF16_KERNEL=dpbf16|fma` overrides it (to compare them).
  public static let preferredKernel: Kernel = {
    if let k = KernelOverrides.bf16KernelChoice { return k }
    return fpsim_bf16_fma_preferred() != 0 ? .fma : .dpbf16
  }()

  /// Words of workspace `multiply` needs, for either kernel: op(A) and op(B) as bfloat16 pairs,
  /// ceil(K/2) x (M + N rounded up to 32), or as float32 values, K x (M + N rounded up to 16), and M x N
  /// partial sums.
  public static func workspaceCount(M: Int, N: Int, K: Int) -> Int {
    max((K + 1) / 2 * (M + (N + 31) / 32 * 32), K * (M + (N + 15) / 16 * 16) + M * N)
  }

  /// C = alpha op(A) op(B) + beta C on `threads` threads, through `workspace` (`workspaceCount` words;
  /// 64-byte aligned is fastest).
  public static func multiply(
    transA: Bool, transB: Bool, M: Int, N: Int, K: Int, alpha: Float = 1,
    A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int,
    beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int, workspace: UnsafeMutablePointer<UInt32>, threads: Int = 1,
    kernel: Kernel = preferredKernel
  ) {
    precondition(isAvailable, "BF16GEMM needs a CPU with AVX512-BF16")
    precondition(beta == 0 || beta == 1, "BF16GEMM takes beta 0 or 1")
    if M == 0 || N == 0 { return }
    if kernel == .fma && multiplyWithFMA(
      transA: transA, transB: transB, M: M, N: N, K: K, alpha: alpha, A: A, lda: lda, B: B, ldb: ldb, beta: beta, C: C,
      ldc: ldc, workspace: workspace, threads: threads)
    {
      return
    }
    let P = (K + 1) / 2, ldw = (N + 31) / 32 * 32
    // op(A) K-contiguous (A is M x K): row-major words, row i at i * P. Else (A stored K x M): pair-major
    // words, pair p at p * M, from 512-bit loads along M.
    nonisolated(unsafe) let aw = workspace, bw = workspace + P * M
    let (aPair, aRow) = transA ? (M, 1) : (1, P)
    let split = Split(M: M, N: N, K: K, threads: threads)
    nonisolated(unsafe) let A = A, B = B, C = C
    WorkerPool.perform(split.threads) { i in
      let m = split.operand(M, i), n = split.operand(N, i)
      if transA {
        fpsim_bf16_pack_pairs(A, lda, 0, K, m.lowerBound, m.upperBound, aw, M)
      } else {
        fpsim_bf16_pack_rows(A, lda, K, m.lowerBound, m.upperBound, aw, P)
      }
      fpsim_bf16_pack_pairs(B, ldb, transB ? 1 : 0, K, n.lowerBound, n.upperBound, bw, ldw)
    }
    WorkerPool.perform(split.threads) { i in
      let m = split.rows(i)
      guard !m.isEmpty else { return }
      fpsim_bf16_gemm_rows(aw, aPair, aRow, bw, ldw, P, m.lowerBound, m.upperBound, N, C, ldc, alpha, beta == 0 ? 0 : 1)
    }
  }

  /// How `multiply` shares a product among threads: at most one per 8 rows of C and per 2^20
  /// multiply-adds; the operands' packing or scan in ranges cut at multiples of 16 values (no two threads
  /// write one cache line); the rows of C in ranges of whole 8-row tiles.
  struct Split {
    let threads: Int, M: Int

    init(M: Int, N: Int, K: Int, threads: Int) {
      self.threads = max(1, min(threads, M / 8, (M * N * K) >> 20))
      self.M = M
    }

    /// Thread i's part of n operand rows or columns.
    func operand(_ n: Int, _ i: Int) -> Range<Int> {
      func cut(_ i: Int) -> Int { i == threads ? n : min(n, (n * i / threads) & ~15) }
      return cut(i)..<cut(i + 1)
    }

    /// Thread i's rows of C (empty for a thread beyond the last tile).
    func rows(_ i: Int) -> Range<Int> {
      let step = (M / threads + 7) & ~7, m0 = min(M, i * step)
      return m0..<(i == threads - 1 ? M : min(M, m0 + step))
    }
  }

  /// The `fma` kernel: scans the operands (a transposed B, a weight, is transposed into the workspace
  /// first), cuts to bfloat16 a copy of any that holds other values, computes C and returns true; returns
  /// false, with C as it was, when an operand holds Inf or NaN (whose NaN outputs could carry another NaN
  /// than VDPBF16PS's).
  static func multiplyWithFMA(
    transA: Bool, transB: Bool, M: Int, N: Int, K: Int, alpha: Float,
    A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int,
    beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int, workspace: UnsafeMutablePointer<UInt32>, threads: Int
  ) -> Bool {
    // Workspace: op(A) cut (M x K, or K x M when transposed), op(B) transposed or cut (K x ldw), partial sums.
    let ldw = (N + 15) / 16 * 16
    nonisolated(unsafe) let aCopy = UnsafeMutableRawPointer(workspace).bindMemory(
      to: Float.self, capacity: K * (M + ldw) + M * N)
    nonisolated(unsafe) let bCopy = aCopy + M * K, partial = bCopy + K * ldw
    let split = Split(M: M, N: N, K: K, threads: threads)
    nonisolated(unsafe) let A = A, B = B, C = C
    // Per thread, the scans' flags over its part of op(A)'s rows (columns when transposed) and op(B)'s columns.
    let flags = WorkerPool.map(split.threads) { i -> (a: Int32, b: Int32) in
      let m = split.operand(M, i), n = split.operand(N, i)
      let a = transA
        ? fpsim_bf16_fma_scan(A + m.lowerBound, lda, K, m.count)
        : fpsim_bf16_fma_scan(A + m.lowerBound * lda, lda, m.count, K)
      if transB {
        Transpose.apply(
          B + n.lowerBound * ldb, into: bCopy + n.lowerBound, rows: n.count, cols: K, ldIn: ldb, ldOut: ldw)
        return (a, fpsim_bf16_fma_scan(bCopy + n.lowerBound, ldw, K, n.count))
      }
      return (a, fpsim_bf16_fma_scan(B + n.lowerBound, ldb, K, n.count))
    }
    let flagsA = flags.reduce(0) { $0 | $1.a }, flagsB = flags.reduce(0) { $0 | $1.b }
    guard (flagsA | flagsB) & 2 == 0 else { return false }
    // Operands with values that are not bfloat16 (not the mode's, whose operands are) run from a cut copy.
    let cutA = flagsA & 1 != 0, cutB = flagsB & 1 != 0
    if cutA || cutB {
      WorkerPool.perform(split.threads) { i in
        let m = split.operand(M, i), n = split.operand(N, i)
        if cutA && transA { fpsim_bf16_fma_cut(A + m.lowerBound, lda, K, m.count, aCopy + m.lowerBound, M) }
        if cutA && !transA {
          fpsim_bf16_fma_cut(A + m.lowerBound * lda, lda, m.count, K, aCopy + m.lowerBound * K, K)
        }
        if cutB {
          let from = transB ? UnsafePointer(bCopy + n.lowerBound) : B + n.lowerBound
          fpsim_bf16_fma_cut(from, transB ? ldw : ldb, K, n.count, bCopy + n.lowerBound, ldw)
        }
      }
    }
    nonisolated(unsafe) let a = cutA ? UnsafePointer(aCopy) : A, b = cutB || transB ? UnsafePointer(bCopy) : B
    let ldA = cutA ? (transA ? M : K) : lda, ldB = cutB || transB ? ldw : ldb
    let (ars, aks) = transA ? (1, ldA) : (ldA, 1)
    WorkerPool.perform(split.threads) { i in
      let m = split.rows(i)
      guard !m.isEmpty else { return }
      fpsim_bf16_fma_rows(
        a, ars, aks, b, ldB, K, m.lowerBound, m.upperBound, N, C, ldc, alpha, beta == 0 ? 0 : 1, partial)
    }
    return true
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
          acc = flush(acc.addingProduct(a(2 * p + 1), b(2 * p + 1)))
          acc = flush(acc.addingProduct(a(2 * p), b(2 * p)))
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
