import FPFormats
import Foundation  // trimmingCharacters

/// The named recipes (`fpsim recipes` lists them): fp32, bf16, uniform:FORMAT, the OCP MX and NVFP4
/// presets, and the fp4 design-space family with its own keys.
extension Recipe {
  /// Presets, with what each does (for `fpsim recipes`).
  public static let presets: [(name: String, summary: String)] = [
    ("fp32", "nothing rounded: the float32 model, bit for bit"),
    ("bf16", "every operand of every GEMM rounded to bfloat16 (rne, saturating)"),
    ("uniform:FORMAT[:ROUNDING]", "every operand rounded to one element format, no scaling (uniform:e8m3:rtz is \"To FP8 and Back\")"),
    ("mxfp8", "OCP MXFP8 on all three GEMMs: E4M3 weights and activations, E5M2 gradients, blocks of 32 along the reduction, UE8M0 scales"),
    ("mxfp6", "OCP MXFP6 on all three GEMMs: E2M3 weights and activations, E3M2 gradients, blocks of 32, UE8M0 scales"),
    ("mxfp4", "OCP MXFP4 (E2M1, blocks of 32, UE8M0 scales) on every operand of all three GEMMs, nearest rounding"),
    ("nvfp4", "NVFP4 training (NVIDIA 2025): nvfp4 on all three GEMMs, 16x16 weight tiles, stochastic rounding of gradients, 16-point random Hadamard on the weight-gradient GEMM, last block and head in bf16"),
    ("fp4[:scale=S,block=N,tensor-scale=on|off,scale-rounding=nearest|up,sr=P,hadamard=H,layers=L]", "FP4 design space (Hu et al. 2025): E2M1 elements with scale S (ue8m0, ue4m3, ue5m3, fp32; default ue5m3), blocks of N (16), optional tensor scale (off), block scales rounded to nearest or up (nearest), stochastic rounding P = off, on (= gradients, default), gradients, forward, backward or all, Hadamard H = off, on (= wgrad:16, default), forward, dgrad, wgrad, backward or all of size N, linears L = all (default), mlp or attention"),
  ]

  public static let presetNames = ["fp32", "bf16", "uniform:FORMAT", "mxfp8", "mxfp6", "mxfp4", "nvfp4", "fp4"]


  static func preset(_ t: String) throws -> Recipe {
    var r = Recipe(base: t.lowercased())
    switch t.lowercased() {
    case "fp32", "float32", "none":
      r.base = "fp32"
    case "bf16", "bfloat16":
      r = Recipe(.uniform(bf16Rounding))
    case "mxfp8":
      try r.set("format", "mxfp8_e4m3")
      try r.set("gradients.format", "mxfp8_e5m2")
    case "mxfp6":
      try r.set("format", "mxfp6_e2m3")
      try r.set("gradients.format", "mxfp6_e3m2")
    case "mxfp4":
      try r.set("format", "mxfp4_e2m1")
    case "nvfp4":
      try r.set("format", "nvfp4")
      try r.set("weights.format", "nvfp4@16x16")
      try r.set("gradients.rounding", "stochastic")
      try r.set("hadamard", "wgrad:16")
      try r.set("keep", "last-block+head")
    default:
      let parts = t.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
      guard parts.count >= 2, parts[0].lowercased() == "uniform", !parts[1].isEmpty else { throw RecipeError.unknown(t) }
      let format: FloatFormat
      do { format = try FloatFormat(parsing: parts[1]) } catch let e as FormatError {
        throw RecipeError.badFormat(t, e.description)
      }
      var rounding = RoundingMode.rne
      if parts.count == 3 {
        do { rounding = try RoundingMode(parsing: parts[2]) } catch let e as FormatError {
          throw RecipeError.badFormat(t, e.description)
        }
      }
      r = Recipe(.uniform(ElementRounding(format: format, rounding: rounding)))
    }
    return r
  }

  /// The FP4 design-space family: consumes `scale`, `block`, `tensor-scale` from `pairs`.
  static func fp4Family(_ pairs: inout [(String, String)]) throws -> Recipe {
    var scale = "ue5m3", block = 16, tensorScale = false, roundScalesUp = false
    var base: [String] = []
    var rest: [(String, String)] = []
    var hadamardAt: Int? = nil
    for (k, v) in pairs {
      switch RecipeKeys.normalize(k.trimmingCharacters(in: .whitespaces)) {
      case "scale":
        scale = v.lowercased()
        base.append("scale=\(scale)")
      case "block":
        guard let n = Int(v), n >= 1, n <= ScaledFormat.maxBlockValues else {
          throw RecipeError.badKey(k, "block size '\(v)' is not an integer from 1 to \(ScaledFormat.maxBlockValues)")
        }
        block = n
        base.append("block=\(n)")
      case "tensor.scale":
        tensorScale = try RecipeKeys.onOff(v, key: k)
        base.append("tensor-scale=\(tensorScale ? "on" : "off")")
      case "scale.rounding":
        switch v.lowercased() {
        case "nearest", "rne": roundScalesUp = false
        case "up": roundScalesUp = true
        default: throw RecipeError.badKey(k, "unknown scale rounding '\(v)': use nearest or up (toward +infinity)")
        }
        base.append("scale-rounding=\(roundScalesUp ? "up" : "nearest")")
      case "hadamard":
        if RecipeKeys.hadamardPlacements.contains(v.lowercased()) { hadamardAt = rest.count }
        rest.append((k, v))
      default: rest.append((k, v))
      }
    }
    if let i = hadamardAt {
      // A placement without a size: the transform spans one block.
      guard block >= 2, block <= 256, block & (block - 1) == 0 else {
        throw RecipeError.badKey(
          rest[i].0, "hadamard=\(rest[i].1) takes the block size as transform size, and block \(block) is not a power of two from 2 to 256: write \(rest[i].1):SIZE")
      }
      rest[i].1 = "\(rest[i].1.lowercased()):\(block)"
    }
    pairs = rest
    var r = Recipe(base: base.isEmpty ? "fp4" : "fp4:" + base.joined(separator: ","))
    // Rounding scales up: the ceil rule for power-of-two scales, else scale-rounding=up.
    let powerOfTwo = (try? FloatFormat(parsing: scale))?.mantissaBits == 0
    let up = roundScalesUp ? (powerOfTwo ? ":rule=ceil" : ":scale-rounding=up") : ""
    let spec = "e2m1/\(scale)/\(block)" + (tensorScale ? ":tensor-scale" : "") + up
    do { _ = try ScaledFormat(parsing: spec) } catch let e as FormatError {
      throw RecipeError.badKey("scale", e.description)
    }
    try r.set("format", spec)
    try r.set("sr", "on")
    try r.set("hadamard", "on")
    return r
  }
}
