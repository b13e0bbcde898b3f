import FPEngine

/// The float32 GEMMs of one training step, alone: for every linear layer of a task (N rows, C in,
/// OC out), the three products a step runs, with `Linear`'s shapes and transposes:
///
///     forward          out(N,OC)  = X(N,C) W(OC,C)^T       beta 0
///     data gradient    dX(N,C)   += dY(N,OC) W(OC,C)       beta 1
///     weight gradient  dW(OC,C)  += dY(N,OC)^T X(N,C)      beta 1
///
/// 2 N C OC floating-point operations each, 6 N C OC per layer. `fpsim bench train --gemm-floor`
/// times them beside the step: the time the BLAS needs for a step's products on warm operands, which
/// no other kernel can take back while the GEMMs stay float32 sgemm. (Attention's products run on the
/// model's own kernels and are not in it.) One set of operand buffers, sized for the largest layer,
/// serves every layer, so its operands stay in cache, where a real step's often do not.
public final class StepGEMMs {
  struct Shape {
    let N: Int, C: Int, OC: Int
  }
  let shapes: [Shape]
  let x: FloatBuffer, w: FloatBuffer, dy: FloatBuffer, out: FloatBuffer
  /// Floating-point operations of one pass (multiplies and adds).
  public let flops: Double

  public init(task: TrainingTask) {
    shapes = task.precision.layers.map { Shape(N: $0.N, C: $0.info.inFeatures, OC: $0.info.outFeatures) }
    flops = shapes.reduce(0) { $0 + 6 * Double($1.N) * Double($1.C) * Double($1.OC) }
    let rows = shapes.map(\.N).max() ?? 0, width = shapes.map { max($0.C, $0.OC) }.max() ?? 0
    x = FloatBuffer(count: rows * width)
    w = FloatBuffer(count: width * width)
    dy = FloatBuffer(count: rows * width)
    out = FloatBuffer(count: max(rows, width) * width)
    // Values of order 0.1, none subnormal: a fixed pattern (only the time is of interest).
    for b in [x, w, dy] {
      for i in 0..<b.count { b.pointer[i] = Float(i % 61 + 1) * 0.003 - 0.09 }
    }
  }

  /// One pass over every layer's three GEMMs on `threads` threads (as a step runs them).
  public func run(threads: Int) {
    for s in shapes {
      GEMM.sgemm(
        transA: false, transB: true, M: s.N, N: s.OC, K: s.C, A: x.pointer, lda: s.C, B: w.pointer, ldb: s.C,
        beta: 0, C: out.pointer, ldc: s.OC, threads: threads)
      GEMM.sgemm(
        transA: false, transB: false, M: s.N, N: s.C, K: s.OC, A: dy.pointer, lda: s.OC, B: w.pointer, ldb: s.C,
        beta: 1, C: out.pointer, ldc: s.C, threads: threads)
      GEMM.sgemm(
        transA: true, transB: false, M: s.OC, N: s.C, K: s.N, A: dy.pointer, lda: s.OC, B: x.pointer, ldb: s.C,
        beta: 1, C: out.pointer, ldc: s.C, threads: threads)
    }
  }
}
