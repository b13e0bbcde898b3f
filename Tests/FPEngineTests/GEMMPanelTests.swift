@testable import FPEngine
import Testing

@Suite struct GEMMPanelTests {
  /// `GEMM.panelStart` cuts M rows among t threads (t <= M / 48, as `sgemm` chooses t) into panels
  /// that start on multiples of 48 (where the BLAS kernels keep every bit) and cover 0..<M in order.
  /// Each cut is within 24 rows of i * M / t, so no panel exceeds M / t by more than 48 rows, and on
  /// two threads by more than 24: the most even cut that 48-row steps allow.
  @Test func panelsStartOnMultiplesOf48AndAreNearlyEven() {
    for t in 2...8 {
      for M in (48 * t)...(48 * t + 700) {
        let starts = (0...t).map { GEMM.panelStart($0, of: t, rows: M) }
        #expect(starts.first == 0 && starts.last == M, "M \(M) t \(t)")
        #expect(starts.dropLast().allSatisfy { $0 % 48 == 0 }, "M \(M) t \(t): \(starts)")
        let sizes = (0..<t).map { starts[$0 + 1] - starts[$0] }
        let slack = t == 2 ? 24 : 48
        #expect(sizes.allSatisfy { $0 > 0 } && t * sizes.max()! <= M + t * slack, "M \(M) t \(t): \(sizes)")
      }
    }
    // gpt-tiny's weight gradients of 128 and 512 rows on two threads (96 + 32 and 288 + 224 when the
    // panel size was rounded up instead).
    #expect(GEMM.panelStart(1, of: 2, rows: 128) == 48)
    #expect(GEMM.panelStart(1, of: 2, rows: 512) == 240)
  }
}
