import FPFormats
import Foundation  // trimmingCharacters, file reading, JSON

/// The recipe key grammar shared by inline overrides, files, `description` and the JSON form.
///
/// Keys (`-`, `_` and `.` are interchangeable, case is ignored):
/// - `[TARGET.]format` = a format (`none` for float32, any `FloatFormat` or `ScaledFormat` spelling, and
///   `FORMAT@RxC` / `FORMAT@N` for the same block format with 2-D tiles / another block size);
///   `[TARGET.]rounding` = rne, rna, rtz, up, down, odd, stochastic[:BITS];
///   `[TARGET.]overflow` = saturate or ieee. TARGET (default: all six operands) is a GEMM (`forward`,
///   `dgrad`, `wgrad`), `backward` (both backward GEMMs), `weights` (forward.w, dgrad.w),
///   `activations` (forward.x, wgrad.x), `gradients` (dgrad.dy, wgrad.dy) or one operand:
///   `forward.x`, `forward.w`, `dgrad.dy`, `dgrad.w`, `wgrad.dy`, `wgrad.x`.
/// - `hadamard` = none, off, on (= wgrad:16), SIZE (every GEMM) or GEMM[+GEMM...]:SIZE;
///   `GEMM.hadamard` = none or SIZE. SIZE is a power of two from 2 to 256 (16 to 128 in practice).
/// - `sr` = on (stochastic rounding of the gradients dY) or off (nearest): only dY is touched. The
///   placements `gradients` (dY), `forward` (forward.x, forward.w), `backward` (the four backward
///   operands) and `all` (six) make exactly those operands stochastic and return any other stochastic
///   operand to nearest (rne); operands with another rounding (rtz ...) keep it.
/// - `keep` = none or SELECTOR[+SELECTOR...] (see `LayerSelector`); `keep-format` = a format.
/// - `layers` = all, mlp or attention (see `LinearGroup`): the linears quantized at all; the others
///   stay float32. `keep` selects among them (a `keep` that can only name excluded layers is refused).
/// - `attention-products` = off (default: float32) or on: attention's QK^T and PV products with their
///   operands rounded in the six operand roles (see `AttentionRounding` for the mapping).
/// - `estimator` = ste or clipped-ste (not with a forward Hadamard transform).
/// - `loss-scale` = none, a power of two (static) or dynamic[:INITIAL[:INTERVAL]] (default
///   dynamic:65536:2000).
/// - `master-weights`, `optimizer-states` = fp32 or ELEMENT-FORMAT[:ROUNDING] (bf16:stochastic).
/// - Only after the `fp4` family base: `scale` (ue8m0, ue4m3, ue5m3, fp32, ...), `block` (a size),
///   `tensor-scale` (on/off), `scale-rounding` (nearest, or up: toward +infinity, so that no element
///   exceeds its block's max; for UE8M0 scales nearest is the OCP floor rule and up the ceil rule):
///   the element format of every operand becomes e2m1/SCALE/BLOCK[:OPTIONS]. There `hadamard` also
///   takes a placement, off, forward, dgrad, wgrad, backward or all, with the block size as transform
///   size (on stays wgrad:16).
public enum RecipeKeys {
  static let properties = ["format", "rounding", "overflow"]

  /// Operand groups a property key may target, by normalized name.
  static let targets: [(String, [GEMMOperand])] = [
    ("", GEMMOperand.allCases),
    ("forward", [.forwardX, .forwardW]), ("dgrad", [.dataGradDY, .dataGradW]),
    ("wgrad", [.weightGradDY, .weightGradX]),
    ("backward", [.dataGradDY, .dataGradW, .weightGradDY, .weightGradX]),
    ("weights", [.forwardW, .dataGradW]), ("activations", [.forwardX, .weightGradX]),
    ("gradients", [.dataGradDY, .weightGradDY]),
  ] + GEMMOperand.allCases.map { (operandKey($0), [$0]) }

  /// `forward.x`, `forward.w`, `dgrad.dy`, `dgrad.w`, `wgrad.dy`, `wgrad.x`.
  public static func operandKey(_ op: GEMMOperand) -> String {
    switch op {
    case .forwardX: return "forward.x"
    case .forwardW: return "forward.w"
    case .dataGradDY: return "dgrad.dy"
    case .dataGradW: return "dgrad.w"
    case .weightGradDY: return "wgrad.dy"
    case .weightGradX: return "wgrad.x"
    }
  }

  static func normalize(_ key: String) -> String {
    String(key.lowercased().map { $0 == "-" || $0 == "_" ? "." : $0 })
  }

  static let usage =
    "use [TARGET.]format, [TARGET.]rounding, [TARGET.]overflow (TARGET: forward, dgrad, wgrad, backward, weights, activations, gradients, forward.x, forward.w, dgrad.dy, dgrad.w, wgrad.dy, wgrad.x), hadamard, GEMM.hadamard, sr, keep, keep-format, layers, attention-products, estimator, loss-scale, master-weights or optimizer-states"

  // MARK: Values

  /// `none`, a format spelling, or `FORMAT@BLOCK` (a block format with another block: `nvfp4@16x16`).
  static func format(_ text: String, key: String) throws -> AnyFormat? {
    let t = text.trimmingCharacters(in: .whitespaces)
    if ["none", "fp32-none"].contains(t.lowercased()) { return nil }
    do {
      let parts = t.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
      guard !parts[0].isEmpty else { throw RecipeError.badKey(key, "no format given: write a format name, as e4m3fn, or none") }
      let f = try AnyFormat(parsing: parts[0])
      guard parts.count == 2 else { return f }
      guard case .scaled(var s) = f else {
        throw RecipeError.badKey(key, "'\(parts[0])' has no blocks: '@BLOCK' follows a block format (nvfp4@16x16)")
      }
      let dims = parts[1].lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
      guard (1...2).contains(dims.count), dims.allSatisfy({ ($0 ?? 0) >= 1 }) else {
        throw RecipeError.badKey(key, "block '\(parts[1])' in '\(t)': use a size (32) or a tile (16x16)")
      }
      s.block = dims.count == 1 ? .vector(dims[0]!) : .tile(rows: dims[0]!, cols: dims[1]!)
      try ScaledFormat.validate(s.block)
      s.name = t
      return .scaled(s)
    } catch let e as FormatError {
      throw RecipeError.badKey(key, e.description)
    }
  }

  static func formatName(_ f: AnyFormat?) -> String { f?.description ?? "none" }

  static func rounding(_ text: String, key: String) throws -> RoundingMode {
    do { return try RoundingMode(parsing: text.trimmingCharacters(in: .whitespaces)) } catch let e as FormatError {
      throw RecipeError.badKey(key, e.description)
    }
  }

  static func overflow(_ text: String, key: String) throws -> Overflow {
    guard let o = Overflow(rawValue: text.lowercased()) else {
      throw RecipeError.badKey(key, "unknown overflow '\(text)': use saturate or ieee")
    }
    return o
  }

  static func hadamardSize(_ text: String, key: String) throws -> Int? {
    let t = text.lowercased()
    if t == "none" || t == "off" { return nil }
    guard let n = Int(t), n >= 2, n <= 256, n & (n - 1) == 0 else {
      throw RecipeError.badKey(key, "Hadamard size '\(text)' is not a power of two from 2 to 256 (16 to 128 in practice)")
    }
    return n
  }

  static func gemm(_ text: String, key: String) throws -> [GEMMKind] {
    switch text.lowercased() {
    case "all": return GEMMKind.allCases
    case "backward": return [.dataGrad, .weightGrad]
    default:
      guard let g = GEMMKind.allCases.first(where: { $0.description == text.lowercased() }) else {
        throw RecipeError.badKey(key, "unknown GEMM '\(text)': use forward, dgrad, wgrad, backward or all")
      }
      return [g]
    }
  }

  static func selector(_ text: String, key: String) throws -> LayerSelector {
    let t = text.trimmingCharacters(in: .whitespaces)
    let parts = t.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
    let count = parts.count == 2 ? Int(parts[1]) : nil
    switch (parts[0].lowercased(), parts.count) {
    case ("head", 1): return .head
    case ("first-block", 1): return .firstBlocks(1)
    case ("last-block", 1): return .lastBlocks(1)
    case ("first-blocks", 2) where (count ?? 0) >= 1: return .firstBlocks(count!)
    case ("last-blocks", 2) where (count ?? 0) >= 1: return .lastBlocks(count!)
    case ("layer", 2) where !parts[1].isEmpty: return .layer(parts[1])
    default:
      throw RecipeError.badKey(
        key, "unknown layer selector '\(t)': use none, head, first-block, last-block, first-blocks:K, last-blocks:K or layer:NAME, joined by +")
    }
  }

  /// `none`, a power of two (static), or `dynamic[:INITIAL[:INTERVAL]]`.
  static func lossScaling(_ text: String, key: String) throws -> LossScaling {
    let parts = text.lowercased().split(separator: ":", omittingEmptySubsequences: false).map(String.init)
    func power(_ t: String) throws -> Float {
      guard let v = Float(t), v > 0, v.isFinite, v.significandBitPattern == 0 else {
        throw RecipeError.badKey(key, "loss scale '\(t)' is not a positive power of two (unscaling must be exact)")
      }
      return v
    }
    switch parts[0] {
    case "none", "off": return .none
    case "dynamic":
      guard parts.count <= 3 else { throw RecipeError.badKey(key, "'\(text)' is not dynamic[:INITIAL[:INTERVAL]]") }
      let s = parts.count > 1 ? try power(parts[1]) : LossScaling.defaultDynamic.initialScale
      var n = 2000
      if parts.count == 3 {
        guard let i = Int(parts[2]), i >= 1 else { throw RecipeError.badKey(key, "growth interval '\(parts[2])' is not a positive integer") }
        n = i
      }
      return .dynamic(initial: s, interval: n)
    default:
      guard parts.count == 1 else { throw RecipeError.badKey(key, "'\(text)' is not none, a power of two or dynamic[:INITIAL[:INTERVAL]]") }
      return .fixed(try power(parts[0]))
    }
  }

  /// `fp32` or an element format with an optional rounding: `bf16`, `bf16:stochastic`, `e5m10:rtz`.
  static func stateFormat(_ text: String, key: String) throws -> OperandSetting {
    let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
    guard !parts[0].trimmingCharacters(in: .whitespaces).isEmpty else {
      throw RecipeError.badKey(key, "no format given: write fp32 or an element format with an optional rounding (bf16:stochastic)")
    }
    if ["fp32", "float32", "none"].contains(parts[0].lowercased()) && parts.count == 1 { return OperandSetting() }
    guard case .element(let f)? = try format(parts[0], key: key) else {
      throw RecipeError.badKey(key, "'\(parts[0])' is a block format: master weights and optimizer states take element formats (bf16, e5m10 ...)")
    }
    return OperandSetting(format: .element(f), rounding: parts.count == 2 ? try rounding(parts[1], key: key) : .rne)
  }

  static func stateName(_ s: OperandSetting) -> String {
    guard let f = s.format else { return "fp32" }
    return s.rounding == .rne ? f.description : "\(f.description):\(s.rounding)"
  }

  /// A key given twice (after normalization: `master_weights` is `master-weights`) would silently
  /// drop one of its values: refused, naming the key.
  static func refuseRepeatedKeys(_ pairs: [(String, String)]) throws {
    var seen = Set<String>()
    for (k, _) in pairs {
      let n = normalize(k.trimmingCharacters(in: .whitespaces))
      guard seen.insert(n).inserted else {
        throw RecipeError.badKey(k, "given twice: keep one value (a later one would silently replace the earlier)")
      }
    }
  }

  /// The operands `sr=VALUE` makes stochastic, and the ones it may return to nearest: `on` / `off` touch
  /// only the gradients dY (today's meaning), a placement all six.
  static func stochasticPlacement(_ text: String, key: String) throws -> (stochastic: [GEMMOperand], scope: [GEMMOperand]) {
    let gradients: [GEMMOperand] = [.dataGradDY, .weightGradDY]
    switch text.lowercased() {
    case "on", "true", "yes", "1": return (gradients, gradients)
    case "off", "false", "no", "0": return ([], gradients)
    case "gradients": return (gradients, GEMMOperand.allCases)
    case "forward": return ([.forwardX, .forwardW], GEMMOperand.allCases)
    case "backward": return ([.dataGradDY, .dataGradW, .weightGradDY, .weightGradX], GEMMOperand.allCases)
    case "all": return (GEMMOperand.allCases, GEMMOperand.allCases)
    default: throw RecipeError.badKey(key, "'\(text)' is not a stochastic-rounding placement: use off, on (= gradients), gradients, forward, backward or all")
    }
  }

  static let hadamardPlacements = ["forward", "dgrad", "wgrad", "backward", "all"]

  static func onOff(_ text: String, key: String) throws -> Bool {
    switch text.lowercased() {
    case "on", "true", "yes", "1": return true
    case "off", "false", "no", "0": return false
    default: throw RecipeError.badKey(key, "'\(text)' is not on or off")
    }
  }
}

extension Recipe {
  /// Sets one key (see `RecipeKeys`); throws a one-line error naming the key.
  public mutating func set(_ key: String, _ value: String) throws {
    let k = RecipeKeys.normalize(key.trimmingCharacters(in: .whitespaces))
    let v = value.trimmingCharacters(in: .whitespaces)
    let parts = k.split(separator: ".").map(String.init)
    if let property = parts.last, RecipeKeys.properties.contains(property) {
      let target = parts.dropLast().joined(separator: ".")
      if let ops = RecipeKeys.targets.first(where: { $0.0 == target })?.1 {
        switch property {
        case "format":
          let f = try RecipeKeys.format(v, key: key)
          for op in ops { operands[op.rawValue].format = f }
        case "rounding":
          let r = try RecipeKeys.rounding(v, key: key)
          for op in ops { operands[op.rawValue].rounding = r }
        default:
          let o = try RecipeKeys.overflow(v, key: key)
          for op in ops { operands[op.rawValue].overflow = o }
        }
        return
      }
    }
    switch k {
    case "hadamard":
      let t = v.lowercased()
      if t == "on" { hadamard = [nil, nil, 16]; return }
      if t == "off" || t == "none" { hadamard = [nil, nil, nil]; return }
      if RecipeKeys.hadamardPlacements.contains(t) {
        throw RecipeError.badKey(key, "'\(v)' gives no size: write \(t):SIZE (\(t):16); only the fp4 family takes the block size by default")
      }
      let parts = t.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
      guard parts.count <= 2 else { throw RecipeError.badKey(key, "'\(v)' is not none, SIZE or GEMM[+GEMM]:SIZE (wgrad:16)") }
      let size = try RecipeKeys.hadamardSize(parts.last!, key: key)
      let gemms = parts.count == 2 ? try parts[0].split(separator: "+", omittingEmptySubsequences: false).flatMap { try RecipeKeys.gemm(String($0), key: key) } : GEMMKind.allCases
      hadamard = GEMMKind.allCases.map { gemms.contains($0) ? size : nil }
    case "forward.hadamard", "dgrad.hadamard", "wgrad.hadamard":
      let g = try RecipeKeys.gemm(String(k.dropLast(".hadamard".count)), key: key)[0]
      hadamard[g.rawValue] = try RecipeKeys.hadamardSize(v, key: key)
    case "sr":
      let (stochastic, scope) = try RecipeKeys.stochasticPlacement(v, key: key)
      for op in scope {
        if stochastic.contains(op) {
          operands[op.rawValue].rounding = .stochastic
        } else if scope.count == 2 || operands[op.rawValue].rounding.isStochastic {
          // `off` sets dY to nearest whatever it was (as before); a placement only undoes stochastic rounding.
          operands[op.rawValue].rounding = .rne
        }
      }
    case "attention.products":
      attentionProducts = try RecipeKeys.onOff(v, key: key)
    case "layers":
      guard let g = LinearGroup(rawValue: v.lowercased()) else {
        throw RecipeError.badKey(key, "unknown layer group '\(v)': use all, mlp or attention")
      }
      layers = g
    case "keep":
      keep = v.lowercased() == "none" || v.isEmpty
        ? [] : try v.split(separator: "+", omittingEmptySubsequences: false).map { try RecipeKeys.selector(String($0), key: key) }
    case "keep.format":
      keepFormat.format = try RecipeKeys.format(v, key: key)
    case "estimator":
      switch v.lowercased() {
      case "ste", "straight-through": estimator = .straightThrough
      case "clipped-ste", "clipped", "clipped-straight-through": estimator = .clippedStraightThrough
      default: throw RecipeError.badKey(key, "unknown estimator '\(v)': use ste or clipped-ste")
      }
    case "loss.scale":
      lossScaling = try RecipeKeys.lossScaling(v, key: key)
    case "master.weights":
      masterWeights = try RecipeKeys.stateFormat(v, key: key)
    case "optimizer.states":
      optimizerStates = try RecipeKeys.stateFormat(v, key: key)
    case "scale", "block", "tensor.scale", "scale.rounding":
      throw RecipeError.badKey(key, "'\(key)' belongs to the fp4 family: write fp4:\(key)=\(v)")
    default:
      throw RecipeError.badKey(key, "unknown key: " + RecipeKeys.usage)
    }
  }

  /// Every setting as canonical (key, value) pairs, in a fixed order: the full resolved recipe.
  public var settings: [(key: String, value: String)] {
    var s: [(key: String, value: String)] = []
    for op in GEMMOperand.allCases {
      let o = operands[op.rawValue], k = RecipeKeys.operandKey(op)
      s += [(k + ".format", RecipeKeys.formatName(o.format)), (k + ".rounding", "\(o.rounding)"), (k + ".overflow", o.overflow.rawValue)]
    }
    for g in GEMMKind.allCases { s.append(("\(g).hadamard", hadamard[g.rawValue].map(String.init) ?? "none")) }
    s.append(("keep", keep.isEmpty ? "none" : keep.map(\.description).joined(separator: "+")))
    s.append(("keep-format", RecipeKeys.formatName(keepFormat.format)))
    s.append(("layers", layers.rawValue))
    s.append(("attention-products", attentionProducts ? "on" : "off"))
    s.append(("estimator", estimator.rawValue))
    s.append(("loss-scale", lossScaling.description))
    s.append(("master-weights", RecipeKeys.stateName(masterWeights)))
    s.append(("optimizer-states", RecipeKeys.stateName(optimizerStates)))
    return s
  }

  /// The canonical spelling: the base, then the settings that differ from it (operand keys merged into
  /// the widest target whose operands all differ alike).
  public var description: String {
    guard let reference = try? Recipe(parsing: base) else { return base }
    let mine = settings, theirs = Dictionary(uniqueKeysWithValues: reference.settings.map { ($0.key, $0.value) })
    var diff = mine.filter { theirs[$0.key] != $0.value }
    guard !diff.isEmpty else { return base }
    for property in RecipeKeys.properties {
      // Widest first: all six, backward (four), then the pairs.
      for (target, ops) in RecipeKeys.targets.sorted(by: { $0.1.count > $1.1.count }) where ops.count > 1 {
        let keys = ops.map { RecipeKeys.operandKey($0) + "." + property }
        let values = keys.compactMap { k in diff.first { $0.key == k }?.value }
        guard values.count == keys.count, Set(values).count == 1 else { continue }
        let at = diff.firstIndex { $0.key == keys[0] }!
        diff.removeAll { keys.contains($0.key) }
        diff.insert((target.isEmpty ? property : target + "." + property, values[0]), at: min(at, diff.count))
      }
    }
    // A family base already carries KEY=VALUE items: continue its list.
    return base + (base.contains("=") ? "," : ":") + diff.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
  }
}

// MARK: Parsing

extension Recipe {
  /// A preset, `uniform:...`, `fp4` or a file, or any of them followed by `:KEY=VALUE,...` overrides.
  public init(parsing text: String) throws {
    let t = text.trimmingCharacters(in: .whitespaces)
    guard let eq = t.firstIndex(of: "=") else {
      self = try Recipe.base(parsing: t)
      return
    }
    let head = t[..<eq]
    let baseText = head.lastIndex(of: ":").map { String(t[..<$0]) } ?? "fp32"
    let rest = head.lastIndex(of: ":").map { String(t[t.index(after: $0)...]) } ?? t
    var pairs: [(String, String)] = []
    for item in rest.split(separator: ",", omittingEmptySubsequences: false) {
      let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
      guard kv.count == 2, !kv[0].trimmingCharacters(in: .whitespaces).isEmpty else {
        throw RecipeError.badFormat(text, "override '\(item)' is not KEY=VALUE (overrides are separated by commas)")
      }
      pairs.append((kv[0], kv[1]))
    }
    self = try Recipe.base(parsing: baseText, overrides: pairs)
  }

  /// A base recipe, then `overrides` in order (the fp4 family's own keys first).
  static func base(parsing text: String, overrides: [(String, String)] = []) throws -> Recipe {
    try RecipeKeys.refuseRepeatedKeys(overrides)
    let t = text.trimmingCharacters(in: .whitespaces)
    let lower = t.lowercased()
    var pairs = overrides
    var r: Recipe
    if lower.hasSuffix(".json") || lower.hasSuffix(".toml") || FileManager.default.fileExists(atPath: t) && t.contains("/") {
      r = try Recipe(file: t)
    } else if lower == "fp4" {
      r = try fp4Family(&pairs)
    } else {
      r = try preset(t)
    }
    for (k, v) in pairs { try r.set(k, v) }
    try r.validate()
    return r
  }

  /// Combinations that cannot mean what they say.
  func validate() throws {
    if layers != .all {
      for k in keep {
        let excluded: Bool
        switch k {
        case .head: excluded = true
        case .layer(let n): excluded = n == "lm_head" || LinearGroup.of(name: n).map { $0 != layers } ?? false
        case .firstBlocks, .lastBlocks: excluded = false
        }
        if excluded {
          throw RecipeError.badKey(
            "keep", "'\(k)' names only layers that layers=\(layers) leaves in float32: remove it from keep (keep=last-block keeps the last block's \(layers) linears)")
        }
      }
    }
    if estimator == .clippedStraightThrough && hadamard[GEMMKind.forward.rawValue] != nil {
      throw RecipeError.badKey(
        "estimator", "clipped-ste zeroes the gradients of saturated values, which a forward Hadamard transform mixes: set forward.hadamard=none (in fp4: hadamard=off, wgrad or backward)")
    }
  }
}
