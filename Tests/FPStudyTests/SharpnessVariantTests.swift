@testable import FPStudy
import Testing

@Suite struct SharpnessVariantTests {
  /// Canonical names: the command line's options always, in a fixed order; options that do not
  /// affect the metric do not change the name; library-only options appear only when not default.
  @Test func variantNamesAreCanonical() {
    var p = SharpnessParameters()
    #expect(SharpnessVariant.standard(.keskarLogits).name == "epsilon=0.001,ascent_steps=20")
    #expect(SharpnessVariant.standard(.hessianTop).name == "power_iterations=100,tolerance=0.0001")
    #expect(SharpnessVariant.standard(.sam).name == "rho=0.05")
    p.rho = 0.1
    p.seed = 42
    #expect(SharpnessVariant(metric: .keskarLogits, parameters: p, underRecipe: false).isStandard, "rho and seed do not change keskar-logits")
    #expect(SharpnessVariant(metric: .sam, parameters: p, underRecipe: true).name == "rho=0.1,under_recipe")
    p.batch = 3
    #expect(SharpnessVariant(metric: .sam, parameters: p, underRecipe: false).name == "rho=0.1,batch=3")
    #expect(SharpnessResults.arrayName(metric: "keskar-logits", variant: "epsilon=0.01,ascent_steps=20", standard: false)
      == "sharpness_keskar_logits_epsilon_0.01_ascent_steps_20")
    #expect(SharpnessResults.arrayName(metric: "hessian-top", variant: "power_iterations=100,tolerance=0.0001", standard: true)
      == "sharpness_hessian_top")
  }

  /// Merging keeps the old points the new ones do not replace (their bits, including a NaN payload),
  /// takes the new value at a step measured again, and orders by step; points without a recorded
  /// iteration count get -1.
  @Test func mergeReplacesOnlyTheStepsMeasuredAgain() {
    let payload = Double(bitPattern: 0x7FF8_0000_0000_1234)
    func series(_ steps: [Int], _ values: [Double], _ iterations: [Int]?) -> SharpnessSeries {
      SharpnessSeries(
        metric: "hessian-top", variant: "v", isStandard: false, attributes: [:], steps: steps, values: values,
        iterations: iterations, converged: iterations.map { $0.map { $0 < 100 ? 1 : 0 } })
    }
    let old = series([10, 30, 50], [1.5, payload, 3.5], nil)
    let new = series([30, 20], [9.0, 8.0], [7, 100])
    let m = SharpnessStore.merge(old, new)
    #expect(m.steps == [10, 20, 30, 50])
    #expect(m.values.map(\.bitPattern) == [1.5, 8.0, 9.0, 3.5].map(\.bitPattern))
    #expect(m.iterations == [-1, 100, 7, -1])
    #expect(m.converged == [-1, 0, 1, -1])
    let kept = SharpnessStore.merge(old, series([20], [8.0], nil))
    #expect(kept.values[2].bitPattern == payload.bitPattern)
    #expect(kept.iterations == nil)
  }
}
