import FPEngine

/// The float32 GEMMs of one training step, alone: for every linear layer of a task (N rows, C in,
/// OC out), the three products a step runs (`Linear`'s three calls):
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

  /// One pass over every layer's three GEMMs on `threads` threads, through `Linear`'s own calls (as a
  /// step runs them with unrounded operands; the data gradient accumulates). With `bf16`, a workspace
  /// of `bf16WorkspaceCount` words, every product runs on `BF16GEMM` instead of sgemm (the
  /// `--gemm bf16` mode's kernel; these operands are not bfloat16 values, which changes only the bits).
  public func run(threads: Int, bf16: UnsafeMutablePointer<UInt32>? = nil) {
    for s in shapes {
      Linear.forward(
        out: out.pointer, inp: x.pointer, weight: w.pointer, bias: nil, N: s.N, C: s.C, OC: s.OC, threads: threads, bf16: bf16)
      Linear.backwardData(
        dinp: out.pointer, dout: dy.pointer, weight: w.pointer, N: s.N, C: s.C, OC: s.OC, threads: threads, bf16: bf16)
      Linear.backwardWeight(
        dweight: out.pointer, dout: dy.pointer, inp: x.pointer, N: s.N, C: s.C, OC: s.OC, threads: threads, bf16: bf16)
    }
  }

  /// Words of workspace a pass on `BF16GEMM` needs: the largest of its products'.
  public var bf16WorkspaceCount: Int {
    shapes.flatMap { Linear.productShapes(N: $0.N, C: $0.C, OC: $0.OC) }.map { BF16GEMM.workspaceCount(M: $0.M, N: $0.N, K: $0.K) }
      .max() ?? 0
  }
}
