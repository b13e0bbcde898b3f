import FPEngine
import FPFormats
@testable import FPStudy
import Foundation
import Testing

@Suite struct KeskarTests {
  /// The cross-entropy is convex in the logits, so its maximum over the box is at a vertex: the
  /// brute-force maximum over all 2^V vertices is the oracle. Tolerance 1e-9 (Double arithmetic).
  @Test func keskarAscentReachesTheBruteForceMaximum() {
    let rng = CounterRNG(seed: 17, stream: 0)  // seeded: the same 20 trials on every run
    for trial in 0..<20 {
      let V = 5
      let z = (0..<V).map { Double(rng.uniform(UInt64(trial * V + $0))) * 8 - 4 }
      let target = trial % V
      let epsilon = [1e-3, 1e-2, 0.1, 0.5][trial % 4]
      let w = z.map { epsilon * (abs($0) + 1) }
      var best = -Double.infinity
      for mask in 0..<(1 << V) {
        let y = (0..<V).map { mask >> $0 & 1 == 1 ? w[$0] : -w[$0] }
        best = max(best, Sharpness.crossEntropy(zip(z, y).map { $0 + $1 }, target))
      }
      let base = Sharpness.crossEntropy(z, target)
      let expected = 100 * (best - base) / (1 + base)
      let phi = Sharpness.keskarPhi(z: z, target: target, epsilon: epsilon, steps: 20)
      #expect(abs(phi - expected) <= 1e-9 * max(1, abs(expected)), "trial \(trial): \(phi) vs \(expected)")
    }
  }

  @Test func keskarIsZeroWithoutABoxAndGrowsWithIt() {
    let z = [1.0, -0.5, 2.0, 0.3], target = 1
    #expect(Sharpness.keskarPhi(z: z, target: target, epsilon: 0, steps: 20) == 0)
    var last = 0.0
    for e in [1e-4, 1e-3, 1e-2, 1e-1] {
      let phi = Sharpness.keskarPhi(z: z, target: target, epsilon: e, steps: 20)
      #expect(phi > last)
      last = phi
    }
  }
}

@Suite struct SAMTests {
  /// linreg's loss L(theta) = |A theta - y|^2 / n (A = [X 1], theta = [w, b]) is quadratic, so the SAM
  /// step's loss increase has a closed form: L(theta + rho g/|g|) - L(theta) = rho |g| + rho^2/2
  /// g^T H g / |g|^2, with g = 2/n A^T (A theta - y) and H = 2/n A^T A (README "Sharpness"). Computed
  /// here in Double from the data and theta; the metric runs the model's float32 forward and backward,
  /// hence the relative tolerance 1e-4.
  @Test(arguments: [0.05, 0.5])
  func samOnLinregEqualsTheClosedForm(rho: Double) throws {
    let data = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("data")
    let task = try ModelSpec.linreg.makeTask(dataDirectory: data, recipe: .fp32, seed: 0)
    let linreg = try #require(task as? LinearRegressionTask)
    let P = task.parameters
    let k = DiabetesDataset.features
    #expect(P.count == k + 1)
    // A seeded point away from the optimum (weights, then the bias).
    let rng = CounterRNG(seed: 4, stream: 0)
    for j in 0..<P.count { P.values.pointer[j] = (rng.uniform(UInt64(j)) - 0.5) * 0.6 }
    let theta = (0..<P.count).map { Double(P.values.pointer[$0]) }

    let x = linreg.data.x.map(Double.init), y = linreg.data.y.map(Double.init), n = y.count
    func row(_ i: Int) -> [Double] { Array(x[(i * k)..<(i * k + k)]) + [1] }
    func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
    var g = [Double](repeating: 0, count: k + 1)
    for i in 0..<n {
      let a = row(i), r = dot(a, theta) - y[i]
      for j in 0...k { g[j] += 2 / Double(n) * a[j] * r }
    }
    let norm = dot(g, g).squareRoot()
    let unit = g.map { $0 / norm }
    var curvature = 0.0  // unit^T H unit = 2/n |A unit|^2
    for i in 0..<n { curvature += 2 / Double(n) * pow(dot(row(i), unit), 2) }
    let expected = rho * norm + rho * rho / 2 * curvature

    var p = SharpnessParameters()
    p.rho = rho
    let measured = try Sharpness.measure(.sam, task: task, parameters: p)
    #expect(abs(measured - expected) <= 1e-4 * expected, "sam \(measured) vs closed form \(expected) (|g| \(norm), g^T H g / |g|^2 \(curvature))")
    // The metric restores the parameters it moved.
    #expect((0..<P.count).allSatisfy { Double(P.values.pointer[$0]) == theta[$0] })
  }
}
