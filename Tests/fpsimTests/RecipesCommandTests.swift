import Foundation
import Testing

/// `fpsim recipes`: the exact text a user sees.
@Suite struct RecipesCommandTests {
  @Test func listsEveryPresetWithWhatItDoes() throws {
    let r = try CLI.run(["recipes"])
    #expect(r.status == 0, "\(r.stderr)")
    let lines = r.stdout.split(separator: "\n")
    #expect(lines.first?.hasPrefix("recipe") == true)
    for name in ["fp32", "bf16", "uniform:FORMAT", "mxfp8", "mxfp6", "mxfp4", "nvfp4", "fp4"] {
      #expect(lines.contains { $0.hasPrefix(name) }, "\(name) missing")
    }
  }

  @Test func printsAnInlineRecipeFullyResolved() throws {
    let r = try CLI.run(["recipes", "mxfp4:backward-rounding=stochastic,hadamard=wgrad:16"])
    #expect(r.status == 0, "\(r.stderr)")
    let lines = r.stdout.split(separator: "\n").map(String.init)
    #expect(lines.first == "recipe: mxfp4:backward.rounding=stochastic,wgrad.hadamard=16")
    #expect(lines.contains("wgrad.x.rounding = stochastic") && lines.contains("forward.x.rounding = rne"))
    #expect(lines.contains("wgrad.hadamard = 16") && lines.contains("forward.hadamard = none"))
  }

  /// `--json` prints the stored form, which is itself a recipe file resolving to the same recipe.
  @Test func jsonIsAValidRecipeFile() throws {
    let r = try CLI.run(["recipes", "nvfp4", "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
    #expect(object?["description"] as? String == "nvfp4")
    #expect((object?["weights"] as? [String: Any]) == nil)  // fully expanded per operand
    #expect(((object?["forward"] as? [String: Any])?["w"] as? [String: Any])?["format"] as? String == "nvfp4@16x16")
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("fpsim-recipe-\(UUID()).json")
    try r.stdout.write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    let again = try CLI.run(["recipes", file.path])
    #expect(again.stdout.hasPrefix("recipe: nvfp4\n") || again.stdout.contains("nvfp4@16x16"), "\(again.stdout)")
    let nv = try CLI.run(["recipes", "nvfp4"])
    #expect(again.stdout.split(separator: "\n").dropFirst() == nv.stdout.split(separator: "\n").dropFirst())
  }

  @Test(arguments: [
    ("mxfp4:hadamard=wgrad:12", "recipe key 'hadamard'"), ("mxfp4:fwd.format=e2m1", "recipe key 'fwd.format'"),
    ("mxfp4:forward.format=e9m9", "recipe key 'forward.format'"), ("mxfp4:hadamard=gemm2:16", "unknown GEMM 'gemm2'"),
    ("/nonexistent/recipe.toml", "recipe file '/nonexistent/recipe.toml'"),
    ("fp4:layers=ffn", "use all, mlp or attention"), ("fp4:scale-rounding=down", "use nearest or up"),
    ("fp4:sr=sometimes", "use off, on (= gradients), gradients, forward, backward or all"),
    ("fp4:hadamard=sideways", "recipe key 'hadamard'"), ("fp4:block=24,hadamard=forward", "not a power of two"),
    ("mxfp4:hadamard=forward", "write forward:SIZE"), ("nvfp4:layers=mlp", "recipe key 'keep'"),
    ("mxfp4:scale-rounding=up", "belongs to the fp4 family"), ("fp4:hadamard=all,estimator=clipped-ste", "recipe key 'estimator'"),
  ])
  func malformedRecipesFailWithOneLineNamingTheKey(spec: String, message: String) throws {
    let r = try CLI.run(["recipes", spec])
    #expect(r.status == 2 && r.stdout.isEmpty)
    #expect(r.stderr.hasPrefix("fpsim: error: ") && r.stderr.contains(message), "\(r.stderr)")
    #expect(r.stderr.split(separator: "\n").count == 1)
  }

  /// The FP4 study's keys: listed in the help and the catalog, printed resolved per operand / GEMM.
  @Test func fp4StudyKeysAreShownAndResolved() throws {
    let help = try CLI.run(["recipes", "--help"])
    for word in ["layers (all, mlp, attention", "scale-rounding (nearest|up)", "sr (off, on = gradients, gradients, forward, backward, all)", "attention-products (off|on"] {
      #expect(help.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ").contains(word), "\(word)")
    }
    let list = try CLI.run(["recipes"])
    #expect(list.stdout.contains("scale-rounding=nearest|up") && list.stdout.contains("layers=L"))
    let r = try CLI.run(["recipes", "fp4:block=32,scale-rounding=up,sr=forward,hadamard=backward,layers=mlp"])
    #expect(r.status == 0, "\(r.stderr)")
    let lines = r.stdout.split(separator: "\n").map(String.init)
    #expect(lines.first == "recipe: fp4:block=32,scale-rounding=up,forward.rounding=stochastic,gradients.rounding=rne,dgrad.hadamard=32,wgrad.hadamard=32,layers=mlp")
    #expect(lines.contains("forward.x.format = e2m1/ue5m3/32:scale-rounding=up") && lines.contains("forward.w.rounding = stochastic"))
    #expect(lines.contains("wgrad.dy.rounding = rne") && lines.contains("forward.hadamard = none") && lines.contains("dgrad.hadamard = 32"))
    #expect(lines.contains("layers = mlp") && lines.contains("attention-products = off"))
    let on = try CLI.run(["recipes", "fp4:attention-products=on"])
    #expect(on.stdout.hasPrefix("recipe: fp4:attention-products=on\n") && on.stdout.contains("attention-products = on"), "\(on.stdout)")
  }
}
