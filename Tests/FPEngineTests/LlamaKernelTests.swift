import Foundation
import Testing

import FPEngine

/// Float64 forwards of Llama's kernels, written from the formulas (Hugging Face's modeling_llama),
/// independent of the float32 kernels: the oracles of `LlamaKernelTests`.
extension Oracle {
  /// weight * x / sqrt(mean(x^2) + 1e-5) per row of C.
  static func rmsNorm(_ x: [Double], _ w: [Double], N: Int, C: Int) -> [Double] {
    var out = [Double](repeating: 0, count: N * C)
    for n in 0..<N {
      let ms = x[(n * C)..<(n * C + C)].reduce(0) { $0 + $1 * $1 } / Double(C)
      for i in 0..<C { out[n * C + i] = w[i] * (x[n * C + i] / (ms + 1e-5).squareRoot()) }
    }
    return out
  }

  /// Hugging Face's form: x * cos + rotate_half(x) * sin per head, rotate_half([x1, x2]) = [-x2, x1],
  /// cos and sin of t * base^(-2i/hs) repeated over both halves; rows are positions n mod T.
  static func rotary(_ x: [Double], N: Int, T: Int, C: Int, NH: Int, base: Double = 10_000) -> [Double] {
    let hs = C / NH, half = hs / 2
    var out = [Double](repeating: 0, count: N * C)
    for n in 0..<N {
      let t = Double(n % T)
      for h in 0..<NH {
        let head = Array(x[(n * C + h * hs)..<(n * C + h * hs + hs)])
        let rotated = head[half...].map { -$0 } + head[..<half]
        for j in 0..<hs {
          let angle = t * pow(base, -Double(2 * (j % half)) / Double(hs))
          out[n * C + h * hs + j] = head[j] * cos(angle) + rotated[j] * sin(angle)
        }
      }
    }
    return out
  }

  /// silu(a) * b with silu(a) = a / (1 + e^-a).
  static func swiglu(_ a: [Double], _ b: [Double]) -> [Double] { zip(a, b).map { $0 / (1 + exp(-$0)) * $1 } }
}

/// RMSNorm, rotary embeddings and SwiGLU: forwards against the float64 oracles, backwards against
/// central finite differences of them (tolerances as `KernelGradientTests`), and bits independent of
/// the thread count.
@Suite struct LlamaKernelTests {
  @Test func rmsNormBackwardMatchesFiniteDifferences() {
    var rng = TestRNG(31)
    let N = 4, C = 40  // 40 = two 16-wide SIMD blocks and a scalar tail
    let x = rng.floats(N * C, scale: 2).enumerated().map { $0.element + Float($0.offset % 3) }
    let w = rng.floats(C, scale: 0.3).map { $0 + 1 }, r = rng.floats(N * C)
    var out = [Float](repeating: 0, count: N * C), rstd = [Float](repeating: 0, count: N)
    RMSNorm.forward(out: &out, rstd: &rstd, inp: x, weight: w, N: N, C: C)
    expectForward("rmsnorm", out, Oracle.rmsNorm(doubles(x), doubles(w), N: N, C: C))
    // The gradient accumulates into dinp (the residual stream's gradient): start from a non-zero one.
    let base = rng.floats(N * C)
    var dx = base, dw = [Float](repeating: 0, count: C)
    RMSNorm.backward(dinp: &dx, dweight: &dw, dout: r, inp: x, weight: w, rstd: rstd, N: N, C: C)
    let (xd, wd) = (doubles(x), doubles(w))
    expectGradient("rmsnorm dx", analytic: zip(dx, base).map { $0 - $1 }, at: x) { Oracle.weightedSum(Oracle.rmsNorm($0, wd, N: N, C: C), r) }
    expectGradient("rmsnorm dweight", analytic: dw, at: w) { Oracle.weightedSum(Oracle.rmsNorm(xd, $0, N: N, C: C), r) }
  }

  /// Rotary into and out of strided rows, as the model uses it (into a third of the packed qkv).
  @Test func rotaryBackwardMatchesFiniteDifferences() {
    var rng = TestRNG(32)
    let B = 2, T = 7, C = 24, NH = 3, N = B * T, ld = 3 * C
    let x = rng.floats(N * C, scale: 2), r = rng.floats(N * C)
    let (c, s) = Rotary.table(T: T, headSize: C / NH)
    var packed = [Float](repeating: 0, count: N * ld)
    Rotary.forward(out: &packed, ldo: ld, inp: x, ldi: C, cos: c, sin: s, N: N, T: T, C: C, NH: NH)
    let out = (0..<N).flatMap { packed[($0 * ld)..<($0 * ld + C)] }
    expectForward("rotary", out, Oracle.rotary(doubles(x), N: N, T: T, C: C, NH: NH))
    // Only the first C columns of each packed row are written.
    #expect((0..<N).allSatisfy { n in packed[(n * ld + C)..<(n * ld + ld)].allSatisfy { $0 == 0 } })
    var dpacked = [Float](repeating: 0, count: N * ld)
    for n in 0..<N { for i in 0..<C { dpacked[n * ld + C + i] = r[n * C + i] } }  // dout in the middle third
    var dx = [Float](repeating: 0, count: N * C)
    dx.withUnsafeMutableBufferPointer { d in
      dpacked.withUnsafeBufferPointer { p in
        Rotary.backward(dinp: d.baseAddress!, lddi: C, dout: p.baseAddress! + C, lddo: ld, cos: c, sin: s, N: N, T: T, C: C, NH: NH)
      }
    }
    expectGradient("rotary dx", analytic: dx, at: x, probes: Array(0..<(N * C))) {
      Oracle.weightedSum(Oracle.rotary($0, N: N, T: T, C: C, NH: NH), r)
    }
  }

  /// What rotary embeddings are for: after rotation, q_t . k_s depends on t - s only (and position 0
  /// is left alone). A wrong pairing or angle breaks this.
  @Test func rotatedDotProductsDependOnRelativePositionOnly() {
    var rng = TestRNG(33)
    let T = 12, C = 16, NH = 1
    let q = rng.floats(C), k = rng.floats(C)
    let (c, s) = Rotary.table(T: T, headSize: C)
    func rotated(_ v: [Float]) -> [Float] {
      let rows = (0..<T).flatMap { _ in v }
      var out = [Float](repeating: 0, count: T * C)
      Rotary.forward(out: &out, ldo: C, inp: rows, ldi: C, cos: c, sin: s, N: T, T: T, C: C, NH: NH)
      return out
    }
    let rq = rotated(q), rk = rotated(k)
    #expect(Array(rq[0..<C]) == q)
    func dot(_ t: Int, _ s: Int) -> Double { (0..<C).reduce(0.0) { $0 + Double(rq[t * C + $1]) * Double(rk[s * C + $1]) } }
    for (t, s) in [(5, 2), (9, 0), (3, 3)] {
      for shift in [1, 2] {
        #expect(abs(dot(t, s) - dot(t + shift, s + shift)) < 1e-5, "(\(t), \(s)) shifted by \(shift)")
      }
    }
    #expect(abs(dot(5, 2) - dot(6, 2)) > 1e-3)  // and it does depend on t - s
  }

  @Test func swigluBackwardMatchesFiniteDifferences() {
    var rng = TestRNG(34)
    let n = 300
    let a = rng.floats(n, scale: 6), b = rng.floats(n, scale: 2), r = rng.floats(n)
    var out = [Float](repeating: 0, count: n)
    SwiGLU.forward(out: &out, gate: a, up: b, count: n)
    expectForward("swiglu", out, Oracle.swiglu(doubles(a), doubles(b)))
    var da = [Float](repeating: 0, count: n), db = da
    SwiGLU.backward(dgate: &da, dup: &db, gate: a, up: b, dout: r, count: n)
    let (ad, bd) = (doubles(a), doubles(b))
    expectGradient("swiglu dgate", analytic: da, at: a) { Oracle.weightedSum(Oracle.swiglu($0, bd), r) }
    expectGradient("swiglu dup", analytic: db, at: b) { Oracle.weightedSum(Oracle.swiglu(ad, $0), r) }
    // Far tails: silu(-100) = 0 and silu(100) = 100, with finite gradients.
    var tail = [Float](repeating: 0, count: 2), dt = tail, du = tail
    SwiGLU.forward(out: &tail, gate: [-100, 100], up: [1, 1], count: 2)
    SwiGLU.backward(dgate: &dt, dup: &du, gate: [-100, 100], up: [1, 1], dout: [1, 1], count: 2)
    #expect(tail[0] == 0 && tail[1] == 100 && dt == [0, 1] && du == [0, 100])
  }

  /// At llama-tiny's shapes (2048 rows, C = 128, H = 384): 1, 2 and 3 threads give the same bits.
  @Test func llamaKernelsDoNotDependOnTheThreadCount() {
    var rng = TestRNG(35)
    let B = 16, T = 128, C = 128, NH = 4, H = 384, N = B * T
    let x = rng.floats(N * C, scale: 3), dy = rng.floats(N * C), w = rng.floats(C)
    let a = rng.floats(N * H, scale: 4), b = rng.floats(N * H), dh = rng.floats(N * H)
    let (c, s) = Rotary.table(T: T, headSize: C / NH)
    func run(_ threads: Int) -> [[Float]] {
      var out = [Float](repeating: 0, count: N * C), rstd = [Float](repeating: 0, count: N)
      RMSNorm.forward(out: &out, rstd: &rstd, inp: x, weight: w, N: N, C: C, threads: threads)
      var dx = dy, dw = w
      RMSNorm.backward(dinp: &dx, dweight: &dw, dout: dy, inp: x, weight: w, rstd: rstd, N: N, C: C, threads: threads)
      var rot = [Float](repeating: 0, count: N * C), drot = rot
      Rotary.forward(out: &rot, ldo: C, inp: x, ldi: C, cos: c, sin: s, N: N, T: T, C: C, NH: NH, threads: threads)
      Rotary.backward(dinp: &drot, lddi: C, dout: dy, lddo: C, cos: c, sin: s, N: N, T: T, C: C, NH: NH, threads: threads)
      var m = [Float](repeating: 0, count: N * H), da = m, db = m
      SwiGLU.forward(out: &m, gate: a, up: b, count: N * H, threads: threads)
      SwiGLU.backward(dgate: &da, dup: &db, gate: a, up: b, dout: dh, count: N * H, threads: threads)
      return [out, rstd, dx, dw, rot, drot, m, da, db]
    }
    let one = run(1)
    for t in [2, 3] {
      #expect(run(t).map { $0.map(\.bitPattern) } == one.map { $0.map(\.bitPattern) }, "threads \(t)")
    }
  }
}
