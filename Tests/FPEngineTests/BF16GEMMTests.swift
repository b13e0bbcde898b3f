import Testing

import FPEngine

/// The bfloat16 kernel against its plain reference (bit for bit) across thread counts, and both against
/// exact integer arithmetic (an independent oracle) and hand cases of the documented differences from
/// sgemm. On a CPU without AVX512-BF16 the kernel's tests are skipped, and reported so; the reference's
/// run everywhere.
struct BF16GEMMTests {
  /// Who computes the product: the AVX512-BF16 kernel (where the CPU has it) or the plain reference.
  enum Implementation: String, CustomTestStringConvertible {
    case kernel, reference
    var testDescription: String { rawValue }
  }
  static let implementations: [Implementation] = BF16GEMM.isAvailable ? [.kernel, .reference] : [.reference]

  /// Random bfloat16 values over many binades (so that the order of the sums shows), signs mixed.
  static func values(_ n: Int, _ rng: inout TestRNG, binades: Int = 40) -> [Float] {
    (0..<n).map { _ in
      let r = rng.next()
      let significand = UInt32(r & 0x7F) << 16, exponent = UInt32(127 - binades / 2 + Int(r >> 8) % binades) << 23
      return Float(bitPattern: UInt32(r >> 63) << 31 | exponent | significand)
    }
  }

  static func run(
    _ ta: Bool, _ tb: Bool, _ M: Int, _ N: Int, _ K: Int, a: [Float], b: [Float], c: [Float], beta: Float,
    alpha: Float = 1, threads: Int, using implementation: Implementation = .kernel
  ) -> [Float] {
    let lda = ta ? M : K, ldb = tb ? K : N
    var out = c
    if implementation == .reference {
      BF16GEMM.reference(
        transA: ta, transB: tb, M: M, N: N, K: K, alpha: alpha, A: a, lda: lda, B: b, ldb: ldb, beta: beta, C: &out,
        ldc: N)
      return out
    }
    var work = [UInt32](repeating: 0xFFFF_FFFF, count: BF16GEMM.workspaceCount(M: M, N: N, K: K))
    BF16GEMM.multiply(
      transA: ta, transB: tb, M: M, N: N, K: K, alpha: alpha, A: a, lda: lda, B: b, ldb: ldb, beta: beta, C: &out,
      ldc: N, workspace: &work, threads: threads)
    return out
  }

  @Test(.enabled(if: BF16GEMM.isAvailable, "this CPU lacks AVX512-BF16"),
    arguments: [(false, false), (false, true), (true, false), (true, true)])
  func kernelHasTheReferenceBits(trans: (Bool, Bool)) {
    var rng = TestRNG(31)
    let (ta, tb) = trans
    // Whole tiles, row and column tails, odd K, one column, and gpt-tiny's weight-gradient shape.
    for (M, N, K) in [(16, 32, 8), (19, 33, 7), (8, 1, 1), (3, 17, 64), (13, 76, 129), (128, 384, 2048)] {
      let a = Self.values(M * K, &rng), b = Self.values(K * N, &rng), c0 = rng.floats(M * N)
      // alpha 1, and a tensor-scale product that is not a power of two.
      for beta: Float in [0, 1] {
        for alpha: Float in [1, 0.3] {
          var ref = c0
          BF16GEMM.reference(
            transA: ta, transB: tb, M: M, N: N, K: K, alpha: alpha, A: a, lda: ta ? M : K, B: b, ldb: tb ? K : N,
            beta: beta, C: &ref, ldc: N)
          for threads in [1, 2, 3] {
            let out = Self.run(ta, tb, M, N, K, a: a, b: b, c: c0, beta: beta, alpha: alpha, threads: threads)
            let bad = zip(out, ref).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(bad == 0, "\(M)x\(N)x\(K) trans \(trans) beta \(beta) alpha \(alpha) threads \(threads): \(bad) differ")
          }
        }
      }
    }
  }

  /// Small integers: every product and partial sum is an exact float32 integer, so the result is the
  /// exact product whatever the order of the sums, computed here in Int.
  @Test(arguments: implementations)
  func integerProductsAreExact(_ implementation: Implementation) {
    var rng = TestRNG(32)
    let M = 24, N = 40, K = 301
    let a = (0..<M * K).map { _ in Float(Int(rng.next() % 31) - 15) }
    let b = (0..<K * N).map { _ in Float(Int(rng.next() % 31) - 15) }
    // alpha = 1/4 scales exactly.
    let out = Self.run(
      false, true, M, N, K, a: a, b: b, c: [Float](repeating: 0, count: M * N), beta: 0, alpha: 0.25, threads: 2,
      using: implementation)
    for i in 0..<M {
      for j in 0..<N {
        let exact = (0..<K).reduce(0) { $0 + Int(a[i * K + $1]) * Int(b[j * K + $1]) }
        #expect(out[i * N + j] == Float(exact) / 4, "(\(i), \(j))")
      }
    }
  }

  /// Documented differences from sgemm: subnormal inputs and products are flushed to zero, values
  /// that are not bfloat16 are cut to their high 16 bits, and the odd half of each pair is added first.
  @Test(arguments: implementations)
  func flushesSubnormalsCutsToBFloat16AndAddsTheOddHalfFirst(_ implementation: Implementation) {
    func one(_ a: [Float], _ b: [Float]) -> Float {
      Self.run(false, true, 1, 1, a.count, a: a, b: b, c: [0], beta: 0, threads: 1, using: implementation)[0]
    }
    #expect(one([0x1p-130, 1], [1, 0]) == 0)  // a subnormal input
    #expect(one([0x1p-70, 0], [0x1p-60, 0]) == 0)  // a product below float32's normal range
    #expect(one([1 + 0x1p-20], [1]) == 1)  // cut to bfloat16
    // After the first pair acc = 2^30. Odd half first: (2^30 - 2^30) + 1 = 1 and (2^30 + 1) - 2^30 = 0;
    // the even half first would give 0 and 1.
    #expect(one([0x1p30, 0, 1, -0x1p30], [1, 1, 1, 1]) == 1)
    #expect(one([0x1p30, 0, -0x1p30, 1], [1, 1, 1, 1]) == 0)
  }

  /// alpha multiplies each output's whole sum once, rounded to nearest even and not flushed, and then
  /// C is added. 2^-24 + 1 rounds to 1 (a tie, to even), so 1.5 x that sum is 1.5, where 1.5 x each
  /// product summed would give 1.5 + 2^-23; 2^-140 stays subnormal; with beta 1, C + alpha acc.
  @Test(arguments: implementations)
  func alphaScalesEachSumOnceWithoutFlushing(_ implementation: Implementation) {
    func one(_ a: [Float], _ b: [Float], alpha: Float, c: Float = 0, beta: Float = 0) -> Float {
      Self.run(false, true, 1, 1, a.count, a: a, b: b, c: [c], beta: beta, alpha: alpha, threads: 1, using: implementation)[0]
    }
    #expect(one([1, 1], [1, 0x1p-24], alpha: 1.5) == 1.5)
    #expect(Float(1.5) + Float(1.5) * 0x1p-24 == 1.5 + 0x1p-23)
    #expect(one([1], [1], alpha: 0x1p-140) == 0x1p-140)
    #expect(one([2], [3], alpha: 0.25, c: 10, beta: 1) == 11.5)
    #expect(one([0x1p100], [0x1p27], alpha: 0x1p-120) == 0x1p7)
  }
}
