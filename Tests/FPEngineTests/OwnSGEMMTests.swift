import CSGEMM
import Testing

@testable import FPEngine

/// fpsim's float32 GEMM kernel (`CSGEMM`, used by `GEMM.sgemm` in place of OpenBLAS's AVX-512 kernels)
/// against two oracles: the arithmetic its header states, as plain loops (`chain`), and the OpenBLAS
/// call it replaces, whose bits it must keep.
@Suite struct OwnSGEMMTests {
  static let available = fpsim_sgemm_available() != 0
  /// The loaded OpenBLAS kernel's K blocking, when `CSGEMM` knows it (Cooperlake here).
  static let blocking = GEMM.ownKernel

  /// The header's arithmetic: K cut into OpenBLAS's blocks; per block one fused multiply-add chain from
  /// +0 in k order, added to C (to +0 when not accumulating); then the bias, if any. op(A) is M x K (A^T
  /// when `transA`), B K x N.
  static func chain(
    transA: Bool, M: Int, N: Int, K: Int, a: [Float], lda: Int, b: [Float], ldb: Int, c: inout [Float], ldc: Int,
    accumulate: Bool, bias: [Float]?, q: Int, u: Int
  ) {
    for i in 0..<M {
      for j in 0..<N {
        var sum: Float = accumulate ? c[i * ldc + j] : 0
        var k0 = 0
        while k0 < K {
          var block = K - k0
          if block >= 2 * q { block = q } else if block > q { block = (block / 2 + u - 1) / u * u }
          var acc: Float = 0
          for k in k0..<(k0 + block) {
            acc = acc.addingProduct(transA ? a[k * lda + i] : a[i * lda + k], b[k * ldb + j])
          }
          sum = sum + acc
          k0 += block
        }
        if let bias { sum = sum + bias[j] }
        c[i * ldc + j] = sum
      }
    }
  }

  /// How many elements differ in their bits (a count, so that a failure prints one number).
  static func differing(_ x: [Float], _ y: [Float]) -> Int {
    zip(x, y).filter { $0.bitPattern != $1.bitPattern }.count
  }

  static func values(_ n: Int, seed: UInt64) -> [Float] {
    var rng = TestRNG(seed)
    return rng.floats(n)
  }

  /// Every tile shape (rows 1-14 and beyond, widths below, at and past 16 and 32, masked remainders),
  /// K within one block, in two near-halves, and in whole blocks plus halves, both layouts of A, both
  /// betas, with and without a bias, and leading dimensions wider than the matrices: the kernel gives
  /// the chain's bits.
  @Test(.enabled(if: available), arguments: [(q: 320, u: 16), (q: 448, u: 16), (q: 8, u: 4)])
  func kernelEqualsTheChainDefinition(blocking: (q: Int, u: Int)) {
    var seed: UInt64 = 1
    for (M, N, K) in [(1, 1, 1), (5, 15, 7), (12, 16, 33), (13, 17, 321), (25, 32, 500), (30, 33, 641), (7, 76, 1000)] {
      for transA in [false, true] {
        for (accumulate, withBias) in [(false, false), (true, false), (false, true), (true, true)] {
          seed += 1
          let lda = (transA ? M : K) + 3, ldb = N + 5, ldc = N + 2
          let a = Self.values((transA ? K : M) * lda, seed: seed), b = Self.values(K * ldb, seed: seed + 100)
          let c0 = Self.values(M * ldc, seed: seed + 200), bias = withBias ? Self.values(N, seed: seed + 300) : nil
          var want = c0, got = c0
          Self.chain(
            transA: transA, M: M, N: N, K: K, a: a, lda: lda, b: b, ldb: ldb, c: &want, ldc: ldc,
            accumulate: accumulate, bias: bias, q: blocking.q, u: blocking.u)
          got.withUnsafeMutableBufferPointer { g in
            fpsim_sgemm_rows(
              transA ? 1 : 0, 0, M, N, K, a, lda, b, ldb, g.baseAddress, ldc, accumulate ? 1 : 0, bias, blocking.q,
              blocking.u)
          }
          #expect(
            Self.differing(got, want) == 0,
            "M \(M) N \(N) K \(K) transA \(transA) accumulate \(accumulate) bias \(withBias) q \(blocking.q)")
        }
      }
    }
  }

  /// The products `GEMM.sgemm` gives the kernel (gpt-tiny's and llama-tiny's linear layers, forward
  /// with its bias, data and weight gradient, and uneven shapes), on one to three threads, against one
  /// OpenBLAS call with the same arguments (and the bias added after it): the same bits. Runs where
  /// the test process's OpenBLAS is one `CSGEMM` reproduces (the fpsim binary's, which may differ, is
  /// checked through the binary in `ThreadCountCommandTests`).
  @Test(.enabled(if: available && blocking != nil))
  func sgemmKeepsTheBitsOfOpenBLAS() {
    let layers = [(2048, 128, 384), (2048, 128, 128), (2048, 128, 512), (2048, 512, 128), (2048, 128, 76),
                  (2048, 128, 344), (2048, 344, 128), (1000, 130, 700)]
    var seed: UInt64 = 50
    for (rows, C, OC) in layers {
      for (M, N, K, transA, transB, beta) in [
        (rows, OC, C, false, true, Float(0)), (rows, C, OC, false, false, 0), (rows, C, OC, false, false, 1),
        (OC, C, rows, true, false, 1),
      ] {
        seed += 1
        let a = Self.values(M * K, seed: seed), b = Self.values(K * N, seed: seed + 1)
        let c0 = Self.values(M * N, seed: seed + 2)
        let lda = transA ? M : K, ldb = transB ? K : N
        let bias = transB ? Self.values(N, seed: seed + 3) : nil
        #expect(GEMM.ownKernelTakes(M: M, N: N, K: K, panels: 1, step: GEMM.rowStep, alpha: 1, beta: beta))
        var want = c0
        want.withUnsafeMutableBufferPointer { w in
          GEMM.blas(transA, transB, M, N, K, 1, a, lda, b, ldb, beta, w.baseAddress!, N)
        }
        if let bias { for i in 0..<M { for j in 0..<N { want[i * N + j] += bias[j] } } }
        for threads in 1...3 {
          var got = c0
          got.withUnsafeMutableBufferPointer { g in
            GEMM.sgemm(
              transA: transA, transB: transB, M: M, N: N, K: K, A: a, lda: lda, B: b, ldb: ldb, beta: beta,
              C: g.baseAddress!, ldc: N, bias: bias, threads: threads)
          }
          #expect(
            Self.differing(got, want) == 0,
            "M \(M) N \(N) K \(K) transA \(transA) transB \(transB) beta \(beta) threads \(threads)")
        }
      }
    }
  }

  /// The oracle can tell blockings apart: with another kernel's Q the sums of K = 2048 differ from
  /// OpenBLAS's, so the test above would fail on a wrong table entry.
  @Test(.enabled(if: available && blocking != nil))
  func aWrongBlockingChangesTheBits() {
    let (M, N, K) = (64, 64, 2048)
    let a = Self.values(M * K, seed: 7), b = Self.values(K * N, seed: 8)
    var want = [Float](repeating: 0, count: M * N), got = want
    want.withUnsafeMutableBufferPointer { GEMM.blas(false, false, M, N, K, 1, a, K, b, N, 0, $0.baseAddress!, N) }
    let wrong = Self.blocking!.q == 320 ? 448 : 320
    got.withUnsafeMutableBufferPointer {
      fpsim_sgemm_rows(0, 0, M, N, K, a, K, b, N, $0.baseAddress, N, 0, nil, wrong, 16)
    }
    #expect(Self.differing(got, want) > 0)
  }

  /// The table: OpenBLAS 0.3.21's GEMM_Q and GEMM_UNROLL_M for its AVX-512 kernels, measured against
  /// it; every other kernel and every other version stays with OpenBLAS.
  @Test func blockingFollowsTheKernelAndVersion() {
    let config = "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64"
    #expect(GEMM.ownKernelBlocking(kernel: "Cooperlake", config: config)! == (320, 16))
    #expect(GEMM.ownKernelBlocking(kernel: "SkylakeX", config: config)! == (448, 16))
    for other in ["Zen", "Haswell", "Prescott", "SapphireRapids", "", nil] as [String?] {
      #expect(GEMM.ownKernelBlocking(kernel: other, config: config) == nil)
    }
    for version in ["OpenBLAS 0.3.26 DYNAMIC_ARCH Cooperlake", "OpenBLAS 0.3.2 Cooperlake", "", nil] as [String?] {
      #expect(GEMM.ownKernelBlocking(kernel: "Cooperlake", config: version) == nil)
    }
    if !Self.available { #expect(GEMM.ownKernel == nil) }
  }
}
