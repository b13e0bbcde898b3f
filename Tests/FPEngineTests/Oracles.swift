import Foundation

/// Float64 reference forwards, written plainly from the formulas (independent of the float32 kernels),
/// and central finite differences over them: the oracle for every backward kernel.
enum Oracle {
  static func linear(_ x: [Double], _ w: [Double], _ b: [Double]?, N: Int, C: Int, OC: Int) -> [Double] {
    var out = [Double](repeating: 0, count: N * OC)
    for n in 0..<N {
      for o in 0..<OC {
        var s = b?[o] ?? 0
        for c in 0..<C { s += x[n * C + c] * w[o * C + c] }
        out[n * OC + o] = s
      }
    }
    return out
  }

  static func layerNorm(_ x: [Double], _ w: [Double], _ b: [Double], N: Int, C: Int) -> [Double] {
    var out = [Double](repeating: 0, count: N * C)
    for n in 0..<N {
      let row = x[(n * C)..<(n * C + C)]
      let m = row.reduce(0, +) / Double(C)
      let v = row.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(C)
      let r = 1 / (v + 1e-5).squareRoot()
      for i in 0..<C { out[n * C + i] = (x[n * C + i] - m) * r * w[i] + b[i] }
    }
    return out
  }

  static func gelu(_ x: [Double]) -> [Double] { x.map { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) } }
  static func relu(_ x: [Double]) -> [Double] { x.map { max($0, 0) } }

  static func softmax(_ z: [Double], N: Int, V: Int) -> [Double] {
    var p = [Double](repeating: 0, count: N * V)
    for n in 0..<N {
      let row = z[(n * V)..<(n * V + V)]
      let m = row.max()!
      let s = row.reduce(0) { $0 + exp($1 - m) }
      for j in 0..<V { p[n * V + j] = exp(z[n * V + j] - m) / s }
    }
    return p
  }

  /// Mean over positions of -log softmax(z)[target].
  static func crossEntropy(_ z: [Double], _ targets: [Int32], N: Int, V: Int) -> Double {
    let p = softmax(z, N: N, V: V)
    var s = 0.0
    for n in 0..<N { s -= log(p[n * V + Int(targets[n])]) }
    return s / Double(N)
  }

  static func mse(_ p: [Double], _ y: [Double]) -> Double {
    zip(p, y).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / Double(p.count)
  }

  static func embedding(_ tokens: [Int32], _ wte: [Double], _ wpe: [Double], B: Int, T: Int, C: Int) -> [Double] {
    var out = [Double](repeating: 0, count: B * T * C)
    for b in 0..<B {
      for t in 0..<T {
        for i in 0..<C { out[(b * T + t) * C + i] = wte[Int(tokens[b * T + t]) * C + i] + wpe[t * C + i] }
      }
    }
    return out
  }

  /// Causal attention on packed qkv (B,T,3C) -> (B,T,C).
  static func attention(_ qkv: [Double], B: Int, T: Int, C: Int, NH: Int) -> [Double] {
    let hs = C / NH
    var out = [Double](repeating: 0, count: B * T * C)
    for b in 0..<B {
      for h in 0..<NH {
        for t in 0..<T {
          var s = [Double](repeating: 0, count: t + 1)
          for t2 in 0...t {
            var d = 0.0
            for i in 0..<hs { d += qkv[(b * T + t) * 3 * C + h * hs + i] * qkv[(b * T + t2) * 3 * C + C + h * hs + i] }
            s[t2] = d / Double(hs).squareRoot()
          }
          let m = s.max()!
          let e = s.map { exp($0 - m) }
          let z = e.reduce(0, +)
          for i in 0..<hs {
            var y = 0.0
            for t2 in 0...t { y += e[t2] / z * qkv[(b * T + t2) * 3 * C + 2 * C + h * hs + i] }
            out[(b * T + t) * C + h * hs + i] = y
          }
        }
      }
    }
    return out
  }

  /// d/dx_j of f at x for each j in `indices`, by central differences with step h (error O(h^2)).
  static func gradient(_ x: [Double], indices: [Int], h: Double = 1e-6, _ f: ([Double]) -> Double) -> [Double] {
    var y = x
    return indices.map { j in
      y[j] = x[j] + h
      let up = f(y)
      y[j] = x[j] - h
      let down = f(y)
      y[j] = x[j]
      return (up - down) / (2 * h)
    }
  }

  static func weightedSum(_ out: [Double], _ r: [Float]) -> Double {
    zip(out, r).reduce(0) { $0 + $1.0 * Double($1.1) }
  }
}

/// A seeded generator for test inputs (SplitMix64), independent of the engine's own RNG.
struct TestRNG {
  var state: UInt64
  init(_ seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  /// Uniform in [-scale, scale), rounded to float32.
  mutating func floats(_ n: Int, scale: Float = 1) -> [Float] {
    (0..<n).map { _ in Float((Double(next() >> 11) * 0x1p-53 * 2 - 1) * Double(scale)) }
  }
  mutating func ints(_ n: Int, below: Int) -> [Int32] { (0..<n).map { _ in Int32(next() % UInt64(below)) } }
}

/// max |a - b| over two equal-length arrays, and the largest |b| (the scale errors are judged against).
func maxDifference(_ a: [Float], _ b: [Double]) -> (diff: Double, scale: Double) {
  precondition(a.count == b.count, "length mismatch \(a.count) vs \(b.count)")
  var d = 0.0, s = 0.0
  for (x, y) in zip(a, b) {
    d = max(d, abs(Double(x) - y))
    s = max(s, abs(y))
  }
  return (d, s)
}

func doubles(_ x: [Float]) -> [Double] { x.map(Double.init) }

/// A few indices spread over 0..<n (all when n is small): the elements finite differences probe.
func probeIndices(_ n: Int, max count: Int = 48) -> [Int] {
  n <= count ? Array(0..<n) : (0..<count).map { $0 * n / count + ($0 * 7919) % max(1, n / count) }
}
