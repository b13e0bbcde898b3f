import ArgumentParser
import FPEngine
import Foundation

/// `fpsim recipes [NAME|FILE|INLINE] [--json]`: the presets, or one recipe fully resolved.
struct Recipes: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "List the precision-recipe presets, or print one recipe fully resolved.",
    discussion: """
      A recipe is a preset, a .json or .toml file, or either followed by inline overrides: \
      BASE:KEY=VALUE[,KEY=VALUE...], for example mxfp4:backward-rounding=stochastic,hadamard=wgrad:16. \
      Keys: [TARGET.]format|rounding|overflow (TARGET: forward, dgrad, wgrad, backward, weights, activations, \
      gradients, forward.x, forward.w, dgrad.dy, dgrad.w, wgrad.dy, wgrad.x), hadamard (none, on, SIZE, \
      GEMM[+GEMM]:SIZE), GEMM.hadamard, sr (off, on = gradients, gradients, forward, backward, all), \
      keep (head, first-block, last-block, first-blocks:K, last-blocks:K, layer:NAME, joined by +), keep-format, \
      layers (all, mlp, attention: the others stay float32), attention-products (off|on: QK^T and PV operands \
      rounded in the operand roles), estimator (ste|clipped-ste). \
      Only after fp4: scale, block, tensor-scale (on|off), scale-rounding (nearest|up), and hadamard also takes \
      off, forward, dgrad, wgrad, backward or all with the block size as transform size (on = wgrad:16).
      """)

  @Argument(help: "A preset name, a recipe file, or an inline recipe.")
  var recipe: String?

  @Flag(help: "Print the resolved recipe as JSON (a valid recipe file).")
  var json = false

  func run() throws {
    guard let recipe else {
      let rows = Recipe.presets.map { [$0.name, $0.summary] }
      print(TextTable.render(header: ["recipe", "what it does"], rows: rows), terminator: "")
      return
    }
    let r = try Recipe(parsing: recipe)
    if json {
      print(r.json)
      return
    }
    print("recipe: \(r.description)")
    for s in r.settings { print("\(s.key) = \(s.value)") }
  }
}
