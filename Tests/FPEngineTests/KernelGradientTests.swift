import Foundation
import Testing

import FPEngine

/// Every backward kernel against central finite differences of a float64 forward (`Oracle`), and every
/// forward against that forward.
///
/// Tolerances: a float32 kernel over sums of at most a few hundred terms is accurate to ~1e-6 of the
/// result's scale; central differences in float64 with h = 1e-6 are accurate to ~1e-9. So forwards must
/// agree within 1e-5 of the largest reference value and gradients within 1e-5 of the largest reference
/// gradient (observed: below 2e-7 for both; each test prints its figures).
let forwardTolerance = 1e-5
let gradientTolerance = 1e-5

/// Checks analytic (float32) gradients against finite differences of `loss` at `x`.
func expectGradient(
  _ name: String, analytic: [Float], at x: [Float], probes: [Int]? = nil,
  _ loss: ([Double]) -> Double, sourceLocation: SourceLocation = #_sourceLocation
) {
  let idx = probes ?? probeIndices(x.count)
  let fd = Oracle.gradient(doubles(x), indices: idx, loss)
  let (d, s) = maxDifference(idx.map { analytic[$0] }, fd)
  print("\(name): max |analytic - finite difference| = \(d) (scale \(s), ratio \(d / max(s, 1e-30)))")
  #expect(s > 0, "\(name): gradient is identically zero at the probes", sourceLocation: sourceLocation)
  #expect(d <= gradientTolerance * s, "\(name): \(d) > \(gradientTolerance) x \(s)", sourceLocation: sourceLocation)
}

func expectForward(
  _ name: String, _ out: [Float], _ ref: [Double], sourceLocation: SourceLocation = #_sourceLocation
) {
  let (d, s) = maxDifference(out, ref)
  print("\(name) forward: max diff \(d) (scale \(s))")
  #expect(d <= forwardTolerance * s, "\(name) forward: \(d) > \(forwardTolerance) x \(s)", sourceLocation: sourceLocation)
}

@Suite struct KernelGradientTests {
  @Test func linearBackwardMatchesFiniteDifferences() {
    var rng = TestRNG(1)
    let N = 6, C = 20, OC = 9
    let x = rng.floats(N * C), w = rng.floats(OC * C, scale: 0.5), b = rng.floats(OC), r = rng.floats(N * OC)
    var out = [Float](repeating: 0, count: N * OC)
    Linear.forward(out: &out, inp: x, weight: w, bias: b, N: N, C: C, OC: OC)
    expectForward("linear", out, Oracle.linear(doubles(x), doubles(w), doubles(b), N: N, C: C, OC: OC))
    var dx = [Float](repeating: 0, count: N * C), dw = [Float](repeating: 0, count: OC * C), db = [Float](repeating: 0, count: OC)
    Linear.backward(dinp: &dx, dweight: &dw, dbias: &db, dout: r, inp: x, weight: w, N: N, C: C, OC: OC)
    let (xd, wd, bd) = (doubles(x), doubles(w), doubles(b))
    expectGradient("linear dX", analytic: dx, at: x) { Oracle.weightedSum(Oracle.linear($0, wd, bd, N: N, C: C, OC: OC), r) }
    expectGradient("linear dW", analytic: dw, at: w) { Oracle.weightedSum(Oracle.linear(xd, $0, bd, N: N, C: C, OC: OC), r) }
    expectGradient("linear db", analytic: db, at: b) { Oracle.weightedSum(Oracle.linear(xd, wd, $0, N: N, C: C, OC: OC), r) }
  }

  @Test func linearBackwardAccumulatesIntoExistingGradients() {
    var rng = TestRNG(2)
    let N = 3, C = 4, OC = 5
    let x = rng.floats(N * C), w = rng.floats(OC * C), r = rng.floats(N * OC)
    var once = [Float](repeating: 0, count: OC * C), twice = once
    Linear.backwardWeight(dweight: &once, dout: r, inp: x, N: N, C: C, OC: OC)
    Linear.backwardWeight(dweight: &twice, dout: r, inp: x, N: N, C: C, OC: OC)
    Linear.backwardWeight(dweight: &twice, dout: r, inp: x, N: N, C: C, OC: OC)
    for (a, b) in zip(once, twice) { #expect(abs(2 * a - b) <= 1e-6 * max(1, abs(b))) }
    _ = w
  }

  @Test func layerNormBackwardMatchesFiniteDifferences() {
    var rng = TestRNG(3)
    let N = 4, C = 40  // 40 = two 16-wide SIMD blocks and a scalar tail
    let x = rng.floats(N * C, scale: 2).enumerated().map { $0.element + Float($0.offset % 3) }
    let w = rng.floats(C, scale: 0.3).map { $0 + 1 }, b = rng.floats(C), r = rng.floats(N * C)
    var out = [Float](repeating: 0, count: N * C), mean = [Float](repeating: 0, count: N), rstd = mean
    LayerNorm.forward(out: &out, mean: &mean, rstd: &rstd, inp: x, weight: w, bias: b, N: N, C: C)
    expectForward("layernorm", out, Oracle.layerNorm(doubles(x), doubles(w), doubles(b), N: N, C: C))
    var dx = [Float](repeating: 0, count: N * C), dw = [Float](repeating: 0, count: C), db = dw
    LayerNorm.backward(dinp: &dx, dweight: &dw, dbias: &db, dout: r, inp: x, weight: w, mean: mean, rstd: rstd, N: N, C: C)
    let (xd, wd, bd) = (doubles(x), doubles(w), doubles(b))
    expectGradient("layernorm dx", analytic: dx, at: x) { Oracle.weightedSum(Oracle.layerNorm($0, wd, bd, N: N, C: C), r) }
    expectGradient("layernorm dweight", analytic: dw, at: w) { Oracle.weightedSum(Oracle.layerNorm(xd, $0, bd, N: N, C: C), r) }
    expectGradient("layernorm dbias", analytic: db, at: b) { Oracle.weightedSum(Oracle.layerNorm(xd, wd, $0, N: N, C: C), r) }
  }

  @Test func geluIsTheExactErfFormAndItsBackwardMatchesFiniteDifferences() {
    var rng = TestRNG(4)
    let n = 300
    let x = rng.floats(n, scale: 6), r = rng.floats(n)
    var out = [Float](repeating: 0, count: n)
    GELU.forward(out: &out, inp: x, count: n)
    // Absolute tolerance here: gelu(x) passes through 0, so the scale is max |gelu|.
    expectForward("gelu", out, Oracle.gelu(doubles(x)))
    var dx = [Float](repeating: 0, count: n)
    GELU.backward(dinp: &dx, inp: x, dout: r, count: n)
    expectGradient("gelu dx", analytic: dx, at: x) { Oracle.weightedSum(Oracle.gelu($0), r) }
    // Not the tanh approximation: the two differ by ~1e-4 near |x| = 2, far above the tolerance.
    let tanhForm = 0.5 * 2.0 * (1 + tanh((2 / Double.pi).squareRoot() * (2.0 + 0.044715 * 8)))
    var g: Float = 0
    GELU.forward(out: &g, inp: [2], count: 1)
    #expect(abs(Double(g) - Oracle.gelu([2])[0]) < 1e-6)
    #expect(abs(Double(g) - tanhForm) > 1e-5)
  }

  /// The forward pass keeping Phi(x) for the backward pass, and the backward pass reading it, against
  /// the plain passes that compute it: the same bits, on 100,003 values over [-12, 12] (both tails)
  /// plus 0, -0, the extremes, Inf and NaN, on one and two threads.
  @Test func geluWithTheKeptCDFHasThePlainBits() {
    var rng = TestRNG(9)
    var x = rng.floats(100_003, scale: 12)
    x += [0, -0, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, .infinity, -.infinity, .nan]
    let n = x.count, dout = rng.floats(n)
    var plainOut = [Float](repeating: 0, count: n), plainDx = plainOut
    GELU.forward(out: &plainOut, inp: x, count: n)
    GELU.backward(dinp: &plainDx, inp: x, dout: dout, count: n)
    for threads in [1, 2] {
      var out = [Float](repeating: 0, count: n), cdf = out, dx = out
      GELU.forward(out: &out, cdf: &cdf, inp: x, count: n, threads: threads)
      GELU.backward(dinp: &dx, inp: x, cdf: cdf, dout: dout, count: n, threads: threads)
      #expect(out.map(\.bitPattern) == plainOut.map(\.bitPattern), "threads = \(threads)")
      #expect(dx.map(\.bitPattern) == plainDx.map(\.bitPattern), "threads = \(threads)")
    }
  }

  /// The two-pass forward against the one-expression formula `x * FastMath.normalCDF(x)` in a plain
  /// loop: the same bits on every 4099th float32 bit pattern (1,047,809 values: both signs, every binade,
  /// subnormals, Inf and NaN) with and without the kept CDF, on 1, 2 and 3 threads; the count is not a
  /// multiple of the block, so partial blocks are covered too.
  @Test func geluForwardHasTheBitsOfTheOneLoopFormula() {
    let x = stride(from: UInt64(0), to: 1 << 32, by: 4099).map { Float(bitPattern: UInt32($0)) }
    let n = x.count
    let plain = x.map { $0 * FastMath.normalCDF($0) }, plainCDF = x.map { FastMath.normalCDF($0) }
    func same(_ a: [Float], _ b: [Float]) -> Bool {
      zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
    }
    for threads in [1, 2, 3] {
      var out = [Float](repeating: 0, count: n), cdf = out, bare = out
      GELU.forward(out: &out, cdf: &cdf, inp: x, count: n, threads: threads)
      GELU.forward(out: &bare, inp: x, count: n, threads: threads)
      #expect(same(out, plain) && same(cdf, plainCDF) && same(bare, plain), "threads = \(threads)")
    }
  }

  /// The backward pass that also takes the next layer's bias gradient (`bias:`) against the plain
  /// backward pass and `Linear.backwardBias` after it: dinp and dbias bit for bit, dbias starting from
  /// non-zero sums. Every `afterBlock` call covers whole rows, and every value exactly once; and each
  /// comes after its block's bias sums: the callback replaces its block with NaN (as a rounding in place
  /// replaces it), and dbias is still the sums of the values before.
  @Test func geluBackwardTakesLinearsBiasGradient() {
    var rng = TestRNG(23)
    // 1000 rows of 48: blocks of 21 rows, the last one short.
    let rows = 1000, C = 48, n = rows * C
    let x = rng.floats(n, scale: 6), dout = rng.floats(n), start = rng.floats(C)
    var cdf = [Float](repeating: 0, count: n), out = cdf, plainDx = cdf
    GELU.forward(out: &out, cdf: &cdf, inp: x, count: n)
    GELU.backward(dinp: &plainDx, inp: x, cdf: cdf, dout: dout, count: n)
    var plainBias = start
    Linear.backwardBias(dbias: &plainBias, dout: plainDx, N: rows, OC: C)
    // dinp, what each callback found in its block, the calls per value, and blocks of part of a row.
    let dx = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
    let handed = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
    let calls = UnsafeMutableBufferPointer<Int>.allocate(capacity: n + 1)
    calls.initialize(repeating: 0)
    defer { dx.deallocate(); handed.deallocate(); calls.deallocate() }
    var bias = start
    nonisolated(unsafe) let d = dx, h = handed, c = calls
    bias.withUnsafeMutableBufferPointer { b in
      GELU.backward(
        dinp: d.baseAddress!, inp: x, cdf: cdf, dout: dout, count: n,
        afterBlock: { lo, count in
          if lo % C != 0 || count % C != 0 { c[n] += 1 }
          for i in lo..<lo + count {
            c[i] += 1
            h[i] = d[i]
            d[i] = .nan
          }
        }, bias: (b.baseAddress!, C))
    }
    #expect(calls[..<n].allSatisfy { $0 == 1 }, "every value handed on once")
    #expect(calls[n] == 0, "blocks of whole rows")
    #expect(handed.map(\.bitPattern) == plainDx.map(\.bitPattern))
    #expect(bias.map(\.bitPattern) == plainBias.map(\.bitPattern))
  }

  @Test func reluBackwardMatchesFiniteDifferences() {
    var rng = TestRNG(5)
    let n = 100
    // Kept away from the kink at 0, where finite differences are not a derivative.
    let x = rng.floats(n, scale: 3).map { $0 >= 0 ? $0 + 0.05 : $0 - 0.05 }, r = rng.floats(n)
    var out = [Float](repeating: 0, count: n), dx = out
    ReLU.forward(out: &out, inp: x, count: n)
    expectForward("relu", out, Oracle.relu(doubles(x)))
    ReLU.backward(dinp: &dx, inp: x, dout: r, count: n)
    expectGradient("relu dx", analytic: dx, at: x) { Oracle.weightedSum(Oracle.relu($0), r) }
  }

  @Test func softmaxBackwardMatchesFiniteDifferences() {
    var rng = TestRNG(6)
    let N = 3, V = 37
    let z = rng.floats(N * V, scale: 3), r = rng.floats(N * V)
    var p = [Float](repeating: 0, count: N * V), dz = p
    Softmax.forward(probs: &p, logits: z, N: N, V: V)
    expectForward("softmax", p, Oracle.softmax(doubles(z), N: N, V: V))
    Softmax.backward(dlogits: &dz, probs: p, dprobs: r, N: N, V: V)
    expectGradient("softmax dz", analytic: dz, at: z) { Oracle.weightedSum(Oracle.softmax($0, N: N, V: V), r) }
  }

  @Test func crossEntropyBackwardMatchesFiniteDifferences() {
    var rng = TestRNG(7)
    let N = 5, V = 23
    let z = rng.floats(N * V, scale: 4), t = rng.ints(N, below: V)
    var losses = [Float](repeating: 0, count: N), p = [Float](repeating: 0, count: N * V), dz = p
    CrossEntropy.forward(losses: &losses, probs: &p, logits: z, targets: t, N: N, V: V)
    let loss = CrossEntropy.mean(losses, N: N), ref = Oracle.crossEntropy(doubles(z), t, N: N, V: V)
    print("cross-entropy forward: \(loss) vs \(ref)")
    #expect(abs(Double(loss) - ref) <= forwardTolerance * ref)
    CrossEntropy.backward(dlogits: &dz, probs: p, targets: t, dloss: 1 / Float(N), N: N, V: V)
    expectGradient("cross-entropy dz", analytic: dz, at: z) { Oracle.crossEntropy($0, t, N: N, V: V) }
  }

  @Test func meanSquaredErrorBackwardMatchesFiniteDifferences() {
    var rng = TestRNG(8)
    let n = 17
    let p = rng.floats(n, scale: 2), y = rng.floats(n, scale: 2)
    let loss = MeanSquaredError.forward(pred: p, target: y, N: n), ref = Oracle.mse(doubles(p), doubles(y))
    #expect(abs(Double(loss) - ref) <= forwardTolerance * ref)
    var dp = [Float](repeating: 0, count: n)
    MeanSquaredError.backward(dpred: &dp, pred: p, target: y, dloss: 1, N: n)
    let yd = doubles(y)
    expectGradient("mse dpred", analytic: dp, at: p) { Oracle.mse($0, yd) }
  }

  @Test func embeddingBackwardMatchesFiniteDifferences() {
    var rng = TestRNG(9)
    let B = 2, T = 5, C = 8, V = 7, maxT = 6
    let tokens = rng.ints(B * T, below: V)
    let wte = rng.floats(V * C), wpe = rng.floats(maxT * C), r = rng.floats(B * T * C)
    var out = [Float](repeating: 0, count: B * T * C)
    Embedding.forward(out: &out, tokens: tokens, wte: wte, wpe: wpe, B: B, T: T, C: C)
    expectForward("embedding", out, Oracle.embedding(tokens, doubles(wte), doubles(wpe), B: B, T: T, C: C))
    var dwte = [Float](repeating: 0, count: V * C), dwpe = [Float](repeating: 0, count: maxT * C)
    Embedding.backward(dwte: &dwte, dwpe: &dwpe, dout: r, tokens: tokens, B: B, T: T, C: C)
    let (ted, ped) = (doubles(wte), doubles(wpe))
    // Every row of wte that some token uses, and the T used rows of wpe.
    let used = Array(Set(tokens.map { Int($0) })).sorted().flatMap { v in (0..<C).map { v * C + $0 } }
    expectGradient("embedding dwte", analytic: dwte, at: wte, probes: used) {
      Oracle.weightedSum(Oracle.embedding(tokens, $0, ped, B: B, T: T, C: C), r)
    }
    expectGradient("embedding dwpe", analytic: dwpe, at: wpe, probes: Array(0..<(T * C))) {
      Oracle.weightedSum(Oracle.embedding(tokens, ted, $0, B: B, T: T, C: C), r)
    }
  }

  /// hs = 4 runs the reference kernels, hs = 32 the blocked ones.
  @Test(arguments: [(C: 12, NH: 3), (C: 64, NH: 2)])
  func attentionBackwardMatchesFiniteDifferences(shape: (C: Int, NH: Int)) {
    var rng = TestRNG(10)
    let B = 2, T = 9, C = shape.C, NH = shape.NH
    let qkv = rng.floats(B * T * 3 * C, scale: 1.5), r = rng.floats(B * T * C)
    var out = [Float](repeating: 0, count: B * T * C), att = [Float](repeating: 0, count: B * NH * T * T)
    var scratch = [Float](repeating: 0, count: Attention.scratchCount(T: T, C: C, NH: NH, threads: 2))
    Attention.forward(out: &out, att: &att, qkv: qkv, scratch: &scratch, B: B, T: T, C: C, NH: NH, threads: 2)
    expectForward("attention", out, Oracle.attention(doubles(qkv), B: B, T: T, C: C, NH: NH))
    // The causal mask: no probability above the diagonal; rows sum to 1.
    for row in 0..<(B * NH * T) {
      let t = row % T
      #expect(att[(row * T + t + 1)..<(row * T + T)].allSatisfy { $0 == 0 })
      #expect(abs(att[(row * T)..<(row * T + T)].reduce(0, +) - 1) < 1e-5)
    }
    var dqkv = [Float](repeating: 0, count: B * T * 3 * C)
    Attention.backward(dqkv: &dqkv, dout: r, qkv: qkv, att: att, scratch: &scratch, B: B, T: T, C: C, NH: NH, threads: 2)
    expectGradient("attention dqkv (C \(C), NH \(NH))", analytic: dqkv, at: qkv, probes: probeIndices(qkv.count, max: 96)) {
      Oracle.weightedSum(Oracle.attention($0, B: B, T: T, C: C, NH: NH), r)
    }
  }

  /// The blocked kernels (head size a multiple of 16) against the plain-loop references, for lengths
  /// that are not multiples of the 8-row blocks or 16-wide vectors. Same formulas, different summation
  /// order: agreement within 1e-5 of the largest value.
  @Test(arguments: [(T: 13, C: 48, NH: 3), (T: 37, C: 64, NH: 2), (T: 32, C: 32, NH: 1)])
  func blockedAttentionMatchesTheReferenceKernels(shape: (T: Int, C: Int, NH: Int)) {
    var rng = TestRNG(13)
    let B = 2, (T, C, NH) = shape
    let qkv = rng.floats(B * T * 3 * C, scale: 1.5), r = rng.floats(B * T * C)
    var scratch = [Float](repeating: 0, count: Attention.scratchCount(T: T, C: C, NH: NH, threads: 2))
    var out1 = [Float](repeating: 0, count: B * T * C), att1 = [Float](repeating: 0, count: B * NH * T * T)
    var out2 = out1, att2 = att1
    Attention.forward(out: &out1, att: &att1, qkv: qkv, scratch: &scratch, B: B, T: T, C: C, NH: NH, threads: 2)
    Attention.forwardReference(out: &out2, att: &att2, qkv: qkv, scratch: &scratch, B: B, T: T, C: C, NH: NH, threads: 2)
    for (a, b) in [(out1, out2), (att1, att2)] {
      let (d, s) = maxDifference(a, doubles(b))
      #expect(d <= 1e-5 * s, "forward \(shape): \(d)")
    }
    var d1 = [Float](repeating: 0, count: B * T * 3 * C), d2 = d1
    Attention.backward(dqkv: &d1, dout: r, qkv: qkv, att: att1, scratch: &scratch, B: B, T: T, C: C, NH: NH, threads: 2)
    Attention.backwardReference(dqkv: &d2, dout: r, qkv: qkv, att: att2, scratch: &scratch, B: B, T: T, C: C, NH: NH, threads: 2)
    let (d, s) = maxDifference(d1, doubles(d2))
    print("blocked vs reference attention \(shape): backward max diff \(d) (scale \(s))")
    #expect(d <= 1e-5 * s, "backward \(shape): \(d)")
  }

  @Test func attentionResultsDoNotDependOnTheThreadCount() {
    var rng = TestRNG(11)
    let B = 3, T = 16, C = 32, NH = 4
    let qkv = rng.floats(B * T * 3 * C), r = rng.floats(B * T * C)
    func run(_ threads: Int) -> ([Float], [Float]) {
      var out = [Float](repeating: 0, count: B * T * C), att = [Float](repeating: 0, count: B * NH * T * T)
      var scratch = [Float](repeating: 0, count: Attention.scratchCount(T: T, C: C, NH: NH, threads: threads))
      var dqkv = [Float](repeating: 0, count: B * T * 3 * C)
      Attention.forward(out: &out, att: &att, qkv: qkv, scratch: &scratch, B: B, T: T, C: C, NH: NH, threads: threads)
      Attention.backward(dqkv: &dqkv, dout: r, qkv: qkv, att: att, scratch: &scratch, B: B, T: T, C: C, NH: NH, threads: threads)
      return (out, dqkv)
    }
    let one = run(1), three = run(3)
    #expect(one.0.map(\.bitPattern) == three.0.map(\.bitPattern))
    #expect(one.1.map(\.bitPattern) == three.1.map(\.bitPattern))
  }

  /// The backward overwrites dqkv (the models no longer zero it): into a buffer of NaNs it gives the
  /// bits it gives into zeros, blocked (hs 16) and reference (hs 4) kernels alike.
  @Test(arguments: [(C: 32, NH: 2), (C: 12, NH: 3)])
  func attentionBackwardOverwritesDqkv(shape: (C: Int, NH: Int)) {
    var rng = TestRNG(12)
    let B = 2, T = 11, (C, NH) = shape
    let qkv = rng.floats(B * T * 3 * C), r = rng.floats(B * T * C)
    var out = [Float](repeating: 0, count: B * T * C), att = [Float](repeating: 0, count: B * NH * T * T)
    var scratch = [Float](repeating: 0, count: Attention.scratchCount(T: T, C: C, NH: NH, threads: 2))
    Attention.forward(out: &out, att: &att, qkv: qkv, scratch: &scratch, B: B, T: T, C: C, NH: NH, threads: 2)
    for reference in [false, true] {
      func backward(into dqkv: inout [Float]) {
        if reference {
          Attention.backwardReference(
            dqkv: &dqkv, dout: r, qkv: qkv, att: att, scratch: &scratch, B: B, T: T, C: C, NH: NH, threads: 2)
        } else {
          Attention.backward(
            dqkv: &dqkv, dout: r, qkv: qkv, att: att, scratch: &scratch, B: B, T: T, C: C, NH: NH, threads: 2)
        }
      }
      var zeros = [Float](repeating: 0, count: qkv.count), nans = [Float](repeating: .nan, count: qkv.count)
      backward(into: &zeros)
      backward(into: &nans)
      #expect(!nans.contains { $0.isNaN }, "\(shape) reference \(reference)")
      #expect(nans.map(\.bitPattern) == zeros.map(\.bitPattern), "\(shape) reference \(reference)")
    }
  }
}

@Suite struct GEMMAndMathTests {
  /// OpenBLAS against the naive definition for every transpose combination, with padded leading
  /// dimensions and beta in {0, 1}. Float32 sums of K = 37 terms: agreement within 1e-5 of the scale.
  @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
  func blasMatchesTheNaiveReference(trans: (Bool, Bool)) {
    var rng = TestRNG(12)
    let M = 13, N = 19, K = 37, pad = 3
    let (ta, tb) = trans
    let lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad
    let a = rng.floats((ta ? K : M) * lda), b = rng.floats((tb ? N : K) * ldb), c0 = rng.floats(M * ldc)
    for beta: Float in [0, 1] {
      var c1 = c0, c2 = c0
      GEMM.sgemm(transA: ta, transB: tb, M: M, N: N, K: K, alpha: 0.5, A: a, lda: lda, B: b, ldb: ldb, beta: beta, C: &c1, ldc: ldc)
      GEMM.sgemmNaive(transA: ta, transB: tb, M: M, N: N, K: K, alpha: 0.5, A: a, lda: lda, B: b, ldb: ldb, beta: beta, C: &c2, ldc: ldc)
      let (d, s) = maxDifference(c1, doubles(c2))
      #expect(d <= 1e-5 * s, "trans \(trans) beta \(beta): \(d)")
      // Padding columns are untouched.
      for i in 0..<M { for j in N..<ldc { #expect(c1[i * ldc + j] == c0[i * ldc + j]) } }
    }
  }

  /// The threaded GEMM cuts C into row panels, each its own single-threaded BLAS call: every element
  /// must be the same sum in the same order as in one call, for the shapes of gpt-tiny's layers (K up
  /// to 2048, so that the BLAS blocks K) and every transpose combination, beta 0 and 1. The cuts fall
  /// on the loaded BLAS kernel's row step (`GEMM.rowStep`); the fpsim binary's own kernel, which it
  /// may choose by re-executing itself, is checked by `ThreadCountCommandTests`.
  @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
  func threadedGEMMHasTheBitsOfOneCall(trans: (Bool, Bool)) {
    var rng = TestRNG(21)
    let (ta, tb) = trans
    for (M, N, K) in [(2048, 384, 128), (512, 128, 2048), (128, 512, 2048), (76, 128, 2048), (1000, 77, 515)] {
      let lda = ta ? M : K, ldb = tb ? K : N
      let a = rng.floats(M * K), b = rng.floats(K * N), c0 = rng.floats(M * N)
      for beta: Float in [0, 1] {
        var one = c0, two = c0, three = c0
        GEMM.sgemm(transA: ta, transB: tb, M: M, N: N, K: K, A: a, lda: lda, B: b, ldb: ldb, beta: beta, C: &one, ldc: N, threads: 1)
        GEMM.sgemm(transA: ta, transB: tb, M: M, N: N, K: K, A: a, lda: lda, B: b, ldb: ldb, beta: beta, C: &two, ldc: N, threads: 2)
        GEMM.sgemm(transA: ta, transB: tb, M: M, N: N, K: K, A: a, lda: lda, B: b, ldb: ldb, beta: beta, C: &three, ldc: N, threads: 3)
        #expect(one.map(\.bitPattern) == two.map(\.bitPattern), "\(M)x\(N)x\(K) trans \(trans) beta \(beta)")
        #expect(one.map(\.bitPattern) == three.map(\.bitPattern), "\(M)x\(N)x\(K) trans \(trans) beta \(beta)")
      }
    }
  }

  /// LayerNorm and the bias gradient split rows (and columns for the parameter gradients) between
  /// threads: the bits must not depend on the thread count.
  @Test func layerNormAndBiasGradientsDoNotDependOnTheThreadCount() {
    var rng = TestRNG(22)
    let N = 2048, C = 128
    let x = rng.floats(N * C, scale: 3), dy = rng.floats(N * C), w = rng.floats(C), b = rng.floats(C)
    func run(_ threads: Int) -> [[Float]] {
      var out = [Float](repeating: 0, count: N * C), mean = [Float](repeating: 0, count: N), rstd = mean
      LayerNorm.forward(out: &out, mean: &mean, rstd: &rstd, inp: x, weight: w, bias: b, N: N, C: C, threads: threads)
      var dx = dy, dw = w, db = b, dbias = b
      LayerNorm.backward(dinp: &dx, dweight: &dw, dbias: &db, dout: dy, inp: x, weight: w, mean: mean, rstd: rstd, N: N, C: C, threads: threads)
      Linear.backwardBias(dbias: &dbias, dout: dy, N: N, OC: C, threads: threads)
      return [out, mean, rstd, dx, dw, db, dbias]
    }
    let one = run(1)
    for t in [2, 3] {
      #expect(run(t).map { $0.map(\.bitPattern) } == one.map { $0.map(\.bitPattern) }, "threads \(t)")
    }
  }

  /// FastMath.exp within 2 ulp of exp in double over the whole finite range; 0 below -87.3.
  @Test func fastExpIsAccurateToTwoUlps() {
    var worst = 0.0
    for k in 0...200_000 {
      let x = Float(-87.0 + 175.5 * Double(k) / 200_000)
      let ref = Foundation.exp(Double(x))
      let ulp = Double(Float(ref).ulp)
      worst = max(worst, abs(Double(FastMath.exp(x)) - ref) / ulp)
    }
    print("fastExp worst error: \(worst) ulp")
    #expect(worst <= 2)
    #expect(FastMath.exp(-100) == 0)
    #expect(FastMath.exp(0) == 1)
    #expect(FastMath.exp(.nan).isNaN)
  }

  /// Phi(x) within 3e-7 absolute everywhere, and relative to its value within 1e-6 down to x = -5 and
  /// 4e-6 down to -9 (where the float32 sum of the polynomial and -x^2/2 loses a few bits; GELU's value
  /// there, x * Phi(x) < 1e-18, is negligible anyway).
  @Test func normalCDFIsAccurate() {
    var worstAbs = 0.0, worstRel5 = 0.0, worstRel9 = 0.0
    for k in 0...100_000 {
      let x = Float(-12.0 + 24.0 * Double(k) / 100_000)
      let ref = 0.5 * erfc(-Double(x) / 2.0.squareRoot())
      let got = Double(FastMath.normalCDF(x))
      worstAbs = max(worstAbs, abs(got - ref))
      if x >= -9 { worstRel9 = max(worstRel9, abs(got - ref) / ref) }
      if x >= -5 { worstRel5 = max(worstRel5, abs(got - ref) / ref) }
    }
    print("normalCDF worst error: \(worstAbs) absolute, \(worstRel5) relative (x >= -5), \(worstRel9) (x >= -9)")
    #expect(worstRel5 <= 1e-6)
    #expect(worstRel9 <= 4e-6)
    #expect(worstAbs <= 3e-7)
  }
}
