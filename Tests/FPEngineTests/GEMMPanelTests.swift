@testable import FPEngine
import Testing

@Suite struct GEMMPanelTests {
  /// `GEMM.panelStart` cuts M rows among t threads (t <= M / step, as `sgemm` chooses t) into panels
  /// that start on multiples of the row step (where the BLAS kernel keeps every bit) and cover 0..<M
  /// in order. Each cut is within step / 2 rows of i * M / t, so no panel exceeds M / t by more than a
  /// step, and on two threads by more than half a step: the most even cut that the step allows there.
  @Test(arguments: [12, 16, 48])
  func panelsStartOnMultiplesOfTheStepAndAreNearlyEven(step: Int) {
    for t in 2...8 {
      for M in (step * t)...(step * t + 700) {
        let starts = (0...t).map { GEMM.panelStart($0, of: t, rows: M, step: step) }
        #expect(starts.first == 0 && starts.last == M, "M \(M) t \(t)")
        #expect(starts.dropLast().allSatisfy { $0 % step == 0 }, "M \(M) t \(t): \(starts)")
        let sizes = (0..<t).map { starts[$0 + 1] - starts[$0] }
        let slack = t == 2 ? step / 2 : step
        #expect(sizes.allSatisfy { $0 > 0 } && t * sizes.max()! <= M + t * slack, "M \(M) t \(t): \(sizes)")
      }
    }
  }

  /// gpt-tiny's weight gradients of 128 and 512 rows on two threads: 96 + 32 and 288 + 224 when the
  /// panel size was rounded up to 48 rows instead.
  @Test func gptTinyWeightGradientsSplitNearlyInHalf() {
    #expect(GEMM.panelStart(1, of: 2, rows: 128, step: 48) == 48)
    #expect(GEMM.panelStart(1, of: 2, rows: 512, step: 48) == 240)
    #expect(GEMM.panelStart(1, of: 2, rows: 128, step: 12) == 60)
    #expect(GEMM.panelStart(1, of: 2, rows: 128, step: 16) == 64)
  }

  /// The step per OpenBLAS kernel: the tiles measured on Zen 2 (12) and on the AVX-512 Xeons (16),
  /// 48 (a multiple of both) for every other kernel, unknown names and a BLAS that is not OpenBLAS.
  @Test func rowStepFollowsTheKernel() {
    #expect(GEMM.rowStep(kernel: "Zen") == 12)
    #expect(GEMM.rowStep(kernel: "SkylakeX") == 16 && GEMM.rowStep(kernel: "Cooperlake") == 16)
    for other in ["Haswell", "Prescott", "SapphireRapids", "", nil] as [String?] {
      #expect(GEMM.rowStep(kernel: other) == 48)
    }
  }
}
