import FPEngine
import FPFormats
import Foundation
import Testing

/// The recipe keys of the FP4 design-space study (`layers`, `scale-rounding`, `sr` placements, `hadamard`
/// placements): each one's effect on the operands and GEMMs, checked against an independent route.
@Suite struct FP4StudyKeyTests {
  static let (N, C, OC) = (RecipeTests.N, RecipeTests.C, RecipeTests.OC)

  static func layer(_ spec: String, seed: UInt64 = 7) throws -> HookedLayer {
    let (x, w, dy) = RecipeTests.data()
    return HookedLayer(try Recipe(parsing: spec), x: x, w: w, dy: dy, N: N, C: C, OC: OC, seed: seed)
  }

  static func bits(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }

  // MARK: layers=

  /// Names as the models register them: GPT, Llama, the head, and the MLP task's layers.
  @Test func layerGroupsFollowTheModelsLinearNames() throws {
    let attention = ["transformer.h.0.attn.c_attn", "transformer.h.3.attn.c_proj", "model.layers.1.self_attn.q_proj",
                     "model.layers.0.self_attn.o_proj"]
    let mlp = ["transformer.h.0.mlp.c_fc", "transformer.h.2.mlp.c_proj", "model.layers.1.mlp.gate_proj", "model.layers.0.mlp.down_proj"]
    let neither = ["lm_head", "fc1", "fc2", "linear"]
    for n in attention { #expect(LinearGroup.of(name: n) == .attention, "\(n)") }
    for n in mlp { #expect(LinearGroup.of(name: n) == .mlp, "\(n)") }
    for n in neither { #expect(LinearGroup.of(name: n) == nil, "\(n)") }
    let r = try Recipe(parsing: "fp4:layers=mlp")
    for n in attention + mlp + neither {
      let p = r.precision(for: LinearLayerInfo(name: n, index: 0, inFeatures: 64, outFeatures: 64, isHead: n == "lm_head"))
      #expect(p.roundsNothing == !mlp.contains(n), "\(n)")
    }
  }

  /// Training with `layers=mlp` (or `attention`) is, bit for bit, training with the other linears kept in
  /// float32 through `keep` (an independent route to the same precision), for GPT and Llama; the
  /// telemetry has the selected linears' operands only.
  @Test(arguments: [("gpt", "mlp"), ("gpt", "attention"), ("llama", "mlp")])
  func layersEqualKeepingTheOthersInFloat32(model: String, group: String) throws {
    let spec = model == "gpt" ? gptMicro : llamaMicro
    let prefix = model == "gpt" ? "transformer.h." : "model.layers."
    let other = group == "mlp" ? (model == "gpt" ? "attn" : "self_attn") : "mlp"
    let keep = (0..<2).map { "layer:\(prefix)\($0).\(other)" }.joined(separator: "+") + "+head"
    let config = TrainingConfig(steps: 3, learningRate: 3e-3, evalEvery: 0)
    let a = try makeTrainer(spec, recipe: "fp4:sr=all,hadamard=all,layers=\(group)", config: config)
    let b = try makeTrainer(spec, recipe: "fp4:sr=all,hadamard=all,keep=\(keep),keep-format=none", config: config)
    let names = a.task.precision.telemetryNames
    #expect(names == b.task.precision.telemetryNames)
    let perLayer = model == "gpt" ? 2 : (group == "mlp" ? 3 : 4)
    #expect(names.count == 2 * perLayer * 6 && names.allSatisfy { LinearGroup.of(name: $0) == LinearGroup(rawValue: group) }, "\(names)")
    let ma = (0..<3).map { _ in a.trainStep() }, mb = (0..<3).map { _ in b.trainStep() }
    #expect(fingerprint(ma) == fingerprint(mb))
    // And it is not the whole-model fp4 run.
    let c = try makeTrainer(spec, recipe: "fp4:sr=all,hadamard=all", config: config)
    #expect(c.trainStep().trainLoss.bitPattern != ma[0].trainLoss.bitPattern)
  }

  // MARK: scale-rounding=up

  /// Values of a row-major rows x cols tensor beyond what their block can represent (their element came
  /// out at the element max and |x| > |q|): `ScaledRounding.saturatedIndices`, the clipped-ste mask.
  static func clipped(_ f: ScaledFormat, _ x: [Float], rows: Int, cols: Int) -> Int {
    var scratch = [Float](repeating: 0, count: x.count), elements = scratch
    var indices = [Int32](repeating: 0, count: x.count)
    return x.withUnsafeBufferPointer { src in
      ScaledRounding(format: f).saturatedIndices(
        src.baseAddress!, rows: rows, cols: cols, seed: 1, stream: 0, scratch: &scratch, elements: &elements, into: &indices)
    }
  }

  /// With scales rounded toward +infinity, every block's stored scale is the smallest scale-format value
  /// at least amax / 6 (checked in Double), so no value is clipped at its block's max; nearest scales
  /// clip some (amax / 6 rounded down).
  @Test(arguments: ["e2m1/ue5m3/16", "e2m1/ue4m3/32", "e2m1/ue5m3/16:tensor-scale"])
  func scalesRoundedUpAreTheSmallestThatHoldTheBlock(spec: String) throws {
    var rng = TestRNG(51)
    let (rows, cols) = (64, 96)
    var x = rng.floats(rows * cols, scale: 3)
    for i in stride(from: 3, to: x.count, by: 41) { x[i] *= 30 }
    let up = try ScaledFormat(parsing: spec + ":scale-rounding=up"), nearest = try ScaledFormat(parsing: spec)
    let block = up.block == .vector(16) ? 16 : 32
    var v = x, stats = QuantizationStats()
    var scales = [Float](repeating: 0, count: rows * cols / block)
    try v.withUnsafeMutableBufferPointer { p in
      try scales.withUnsafeMutableBufferPointer { s in
        try BlockQuantizer(format: up).quantizeLastAxis(p, rows: rows, cols: cols, scales: s.baseAddress!, stats: &stats)
      }
    }
    let g = BlockQuantizer(format: up).tensorScale(tensorAmax: x.map(abs).max()!) ?? 1
    #expect(Self.clipped(up, x, rows: rows, cols: cols) == 0 && stats.saturated == 0)
    #expect(Self.clipped(nearest, x, rows: rows, cols: cols) > 0)
    let down = Quantizer(format: up.scale, rounding: .down, overflow: .saturate)
    for b in 0..<scales.count {
      let amax = x[(b * block)..<((b + 1) * block)].map(abs).max()!
      let need = Double(amax) / 6 / Double(g)  // the unrounded scale in the scale format's units
      let s = scales[b], below = down.quantize([s.nextDown])[0]
      #expect(Double(s) >= need * (1 - 1e-6) && Double(below) < need, "block \(b): scale \(s), below \(below), need \(need)")
    }
  }

  /// Through the recipe: `fp4:scale-rounding=up` (scale-rounding=up for ue5m3, the ceil rule for ue8m0)
  /// clips no value of an operand, the default does; with UE8M0 the telemetry's saturation count agrees.
  @Test(arguments: ["ue5m3", "ue4m3", "ue8m0"])
  func fp4ScaleRoundingUpClipsNoOperandValue(scale: String) throws {
    let (x, _, _) = RecipeTests.data()
    for (spec, clips) in [("fp4:scale=\(scale),scale-rounding=up", false), ("fp4:scale=\(scale)", true)] {
      guard case .scaled(let f)? = try Recipe(parsing: spec).operands[GEMMOperand.forwardX.rawValue].format else {
        Issue.record("\(spec): not scaled")
        return
      }
      #expect((Self.clipped(f, x, rows: Self.N, cols: Self.C) > 0) == clips, "\(spec)")
    }
    let up = try Self.layer("fp4:scale=\(scale),scale-rounding=up,sr=off,hadamard=off")
    #expect(up.counts.allSatisfy { $0.saturated == 0 && $0.total > 0 }, "\(up.counts)")
    if scale == "ue8m0" {
      let nearest = try Self.layer("fp4:scale=ue8m0,sr=off,hadamard=off")
      #expect(nearest.counts.contains { $0.saturated > 0 }, "\(nearest.counts)")
    }
  }

  // MARK: sr=

  /// A stochastic operand changes with the run seed; a nearest one does not.
  @Test(arguments: [
    ("on", [GEMMOperand.dataGradDY, .weightGradDY]), ("gradients", [.dataGradDY, .weightGradDY]),
    ("forward", [.forwardX, .forwardW]), ("backward", [.dataGradDY, .dataGradW, .weightGradDY, .weightGradX]),
    ("all", GEMMOperand.allCases), ("off", []),
  ])
  func stochasticRoundingLandsOnTheNamedOperands(placement: String, stochastic: [GEMMOperand]) throws {
    let spec = "fp4:sr=\(placement),hadamard=off"
    let a = try Self.layer(spec, seed: 7), b = try Self.layer(spec, seed: 8)
    for op in GEMMOperand.allCases {
      let differs = Self.bits(a.operands[op]!) != Self.bits(b.operands[op]!)
      #expect(differs == stochastic.contains(op), "sr=\(placement) \(op)")
    }
  }

  // MARK: hadamard=

  /// A placement transforms exactly the named GEMMs (results change against hadamard=off), with the
  /// block size as transform size; the other GEMMs' results stay bit for bit.
  @Test(arguments: [
    ("forward", [GEMMKind.forward]), ("wgrad", [.weightGrad]), ("dgrad", [.dataGrad]), ("backward", [.dataGrad, .weightGrad]),
    ("all", GEMMKind.allCases),
  ])
  func hadamardLandsOnTheNamedGEMMs(placement: String, gemms: [GEMMKind]) throws {
    let off = try Self.layer("fp4:sr=off,hadamard=off")
    let on = try Self.layer("fp4:sr=off,hadamard=\(placement)")
    let results: [GEMMKind: ([Float], [Float])] = [.forward: (off.out, on.out), .dataGrad: (off.dx, on.dx), .weightGrad: (off.dw, on.dw)]
    for (g, (a, b)) in results {
      #expect((Self.bits(a) != Self.bits(b)) == gemms.contains(g), "hadamard=\(placement) \(g)")
    }
    for block in [16, 32] {
      let r = try Recipe(parsing: "fp4:block=\(block),hadamard=\(placement)")
      #expect(r.hadamard == GEMMKind.allCases.map { gemms.contains($0) ? block : nil })
    }
    #expect(try Recipe(parsing: "fp4:hadamard=on").hadamard == [nil, nil, 16])
    #expect(try Recipe(parsing: "fp4:block=32").hadamard == [nil, nil, 16], "the default stays wgrad:16")
  }
}
