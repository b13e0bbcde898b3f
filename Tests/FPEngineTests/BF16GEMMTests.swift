import Testing

@testable import FPEngine

/// The bfloat16 kernels (VDPBF16PS and FMA) against their plain reference (bit for bit) across thread
/// counts, and all against exact integer arithmetic (an independent oracle) and hand cases of the
/// documented differences from sgemm. On a CPU without AVX512-BF16 the kernels' tests are skipped, and
/// reported so; the reference's run everywhere.
struct BF16GEMMTests {
  /// Who computes the product: one of the kernels (where the CPU has AVX512-BF16) or the plain reference.
  enum Implementation: String, CustomTestStringConvertible {
    case dpbf16, fma, reference
    var testDescription: String { rawValue }
    var kernel: BF16GEMM.Kernel? { BF16GEMM.Kernel(rawValue: rawValue) }
  }
  static let kernels: [Implementation] = BF16GEMM.isAvailable ? [.dpbf16, .fma] : []
  static let implementations: [Implementation] = kernels + [.reference]

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
    alpha: Float = 1, threads: Int, using implementation: Implementation
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
      ldc: N, workspace: &work, threads: threads, kernel: implementation.kernel!)
    return out
  }

  @Test(.enabled(if: BF16GEMM.isAvailable, "this CPU lacks AVX512-BF16"),
    arguments: kernels, [(false, false), (false, true), (true, false), (true, true)])
  func kernelHasTheReferenceBits(_ kernel: Implementation, trans: (Bool, Bool)) {
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
            let out = Self.run(
              ta, tb, M, N, K, a: a, b: b, c: c0, beta: beta, alpha: alpha, threads: threads, using: kernel)
            let bad = zip(out, ref).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(
              bad == 0,
              "\(kernel) \(M)x\(N)x\(K) trans \(trans) beta \(beta) alpha \(alpha) threads \(threads): \(bad) differ")
          }
        }
      }
    }
  }

  /// Values over the whole float32 range, with zeros and subnormals, so that products overflow; values
  /// near 2^-63, whose products straddle the bottom of the normal range (where flushing products first
  /// would change about every output); and values that are not bfloat16: both kernels give the
  /// reference's bits for every transpose, and the FMA kernel runs on all of them (no Inf or NaN).
  @Test(.enabled(if: BF16GEMM.isAvailable, "this CPU lacks AVX512-BF16"), arguments: kernels)
  func extremeValuesHaveTheReferenceBits(_ kernel: Implementation) {
    var rng = TestRNG(34)
    let M = 19, N = 33, K = 129
    func operand(_ n: Int, binades: Int, scale: Float) -> [Float] {
      Self.values(n, &rng, binades: binades).map { x in
        switch rng.next() % 8 {
        case 0: return 0
        case 1: return Float(bitPattern: x.bitPattern & 0x807F_0000 | 0x0001_0000)  // subnormal
        default: return x * scale
        }
      }
    }
    // The third set has random low 16 bits (values that are not bfloat16, which the kernels cut).
    for (binades, scale, low) in [(252, Float(1), false), (8, 0x1p-63, false), (40, 1, true)] {
      func lowBits(_ x: [Float]) -> [Float] {
        low ? x.map { Float(bitPattern: $0.bitPattern | UInt32(truncatingIfNeeded: rng.next()) & 0xFFFF) } : x
      }
      let a = lowBits(operand(M * K, binades: binades, scale: scale))
      let b = lowBits(operand(N * K, binades: binades, scale: scale))
      let c0 = rng.floats(M * N)
      for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        for beta: Float in [0, 1] {
          var ref = c0
          BF16GEMM.reference(
            transA: ta, transB: tb, M: M, N: N, K: K, A: a, lda: ta ? M : K, B: b, ldb: tb ? K : N, beta: beta, C: &ref,
            ldc: N)
          let out = Self.run(ta, tb, M, N, K, a: a, b: b, c: c0, beta: beta, threads: 2, using: kernel)
          let bad = zip(out, ref).filter { $0.bitPattern != $1.bitPattern }.count
          #expect(bad == 0, "\(binades) binades, trans \(ta) \(tb), beta \(beta): \(bad) differ")
        }
      }
      var work = [UInt32](repeating: 0, count: BF16GEMM.workspaceCount(M: M, N: N, K: K))
      var out = c0
      #expect(BF16GEMM.multiplyWithFMA(
        transA: false, transB: true, M: M, N: N, K: K, alpha: 1, A: a, lda: K, B: b, ldb: K, beta: 0, C: &out, ldc: N,
        workspace: &work, threads: 1))
      // What the first two sets reach: infinite sums, and sums within a few binades of the smallest normal.
      if !low {
        #expect(binades == 252 ? out.contains { $0.isInfinite } : out.contains { $0 != 0 && abs($0) < 0x1p-120 })
      }
    }
  }

  /// The FMA kernel declines operands with Inf or NaN (C untouched), and `multiply` runs them on
  /// VDPBF16PS, whose NaN outputs are the hardware's.
  @Test(.enabled(if: BF16GEMM.isAvailable, "this CPU lacks AVX512-BF16"))
  func fmaKernelLeavesInfAndNaNToVDPBF16PS() {
    var rng = TestRNG(35)
    let M = 9, N = 17, K = 10
    let b = Self.values(N * K, &rng)
    for special in [Float.infinity, -.infinity, .nan, Float(bitPattern: 0x7FC1_2300)] {
      var a = Self.values(M * K, &rng)
      a[3 * K + 5] = special
      var c: [Float] = [Float](repeating: 7, count: M * N)
      var work = [UInt32](repeating: 0, count: BF16GEMM.workspaceCount(M: M, N: N, K: K))
      #expect(!BF16GEMM.multiplyWithFMA(
        transA: false, transB: true, M: M, N: N, K: K, alpha: 1, A: a, lda: K, B: b, ldb: K, beta: 0, C: &c, ldc: N,
        workspace: &work, threads: 1))
      #expect(c.allSatisfy { $0 == 7 })
      let viaFMA = Self.run(false, true, M, N, K, a: a, b: b, c: c, beta: 0, threads: 1, using: .fma)
      let viaDP = Self.run(false, true, M, N, K, a: a, b: b, c: c, beta: 0, threads: 1, using: .dpbf16)
      #expect(zip(viaFMA, viaDP).filter { $0.bitPattern != $1.bitPattern }.count == 0)
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

  /// Documented differences from sgemm: subnormal inputs and sums are flushed to zero, a product is
  /// added unrounded (a fused multiply-add, never flushed on its own), values that are not bfloat16 are
  /// cut to their high 16 bits, and the odd half of each pair is added first.
  @Test(arguments: implementations)
  func flushesSubnormalsCutsToBFloat16AndAddsTheOddHalfFirst(_ implementation: Implementation) {
    func one(_ a: [Float], _ b: [Float]) -> Float {
      Self.run(false, true, 1, 1, a.count, a: a, b: b, c: [0], beta: 0, threads: 1, using: implementation)[0]
    }
    #expect(one([0x1p-130, 1], [1, 0]) == 0)  // a subnormal input
    #expect(one([0x1p-70, 0], [0x1p-60, 0]) == 0)  // a sum below float32's normal range
    // After the first pair acc = 2^-126; the last product, 2^-127, is below the normal range, and is
    // added as it is: 1.5 x 2^-126 (were products flushed first, 2^-126).
    #expect(one([0x1p-63, 0, 0, 0x1p-64], [0x1p-63, 0, 0, 0x1p-63]) == 0x1.8p-126)
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
      Self.run(
        false, true, 1, 1, a.count, a: a, b: b, c: [c], beta: beta, alpha: alpha, threads: 1, using: implementation)[0]
    }
    #expect(one([1, 1], [1, 0x1p-24], alpha: 1.5) == 1.5)
    #expect(Float(1.5) + Float(1.5) * 0x1p-24 == 1.5 + 0x1p-23)
    #expect(one([1], [1], alpha: 0x1p-140) == 0x1p-140)
    #expect(one([2], [3], alpha: 0.25, c: 10, beta: 1) == 11.5)
    #expect(one([0x1p100], [0x1p27], alpha: 0x1p-120) == 0x1p7)
  }
}
