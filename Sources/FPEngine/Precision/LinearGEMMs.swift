import FPFormats

/// A model's precision state at run time: the recipe resolved per linear layer, the scratch buffers
/// that hold rounded operands, the step counter that keys stochastic-rounding streams, and telemetry.
///
/// The model registers its linear layers in forward order (`addLinear`), then calls `finish()`, which
/// allocates every buffer once; nothing is allocated per step.
public final class PrecisionRuntime {
  public let recipe: Recipe
  /// Run seed of every stochastic rounding.
  public let seed: UInt64
  /// Threads for rounding large operands (results do not depend on it).
  public let threads: Int
  /// Training step whose streams the next GEMMs use; set by the trainer.
  public var step: Int = 0
  public var pass: RoundingStreams.Pass = .train
  /// The factor the models multiply the loss gradient by (loss scaling; the trainer sets and undoes it).
  public var lossScale: Float = 1
  /// Count saturations and flushes (training passes); evaluation passes skip it.
  public var collectTelemetry = true
  /// With telemetry, also count each rounded operand's binade histogram (`BinadeHistogram`); the
  /// trainer sets it from `TrainingConfig.binadeHistograms`.
  public var collectHistograms = false
  /// Indices of the layers whose rounded operands the current training pass keeps whole
  /// (`OperandSnapshot`); the trainer sets it at snapshot steps and takes `capturedOperands` after.
  public var captureLayers: Set<Int> = []
  public internal(set) var capturedOperands: [OperandSnapshot] = []
  public private(set) var layers: [LinearGEMMs] = []

  // Transient scratch shared by all layers, used only between a rounding and the GEMM that reads it
  // (within one layer's forward or one layer's backward): X and W where no other GEMM reuses their
  // rounding (the forward and the weight-gradient X take turns in `xRounded`, the forward and the
  // data-gradient W in `wRounded`), and dY for each backward GEMM. One buffer each, rather than one per
  // layer, stays in cache from step to step, so the rounding's stores do not wait on memory.
  var xRounded = FloatBuffer(count: 0)
  /// Which rounding `xRounded` holds (nil: none yet), for layers that take their leader's (`inputLeader`).
  var xRoundedHolds: RoundedX? = nil
  /// Whether layers take their leader's rounded X (`LinearGEMMs.inputLeader`); off, every layer rounds
  /// its own (the tests' baseline).
  var shareRoundedInputs = true
  /// How many X operands layers took from their leaders so far (for the tests).
  var roundedInputsTaken = 0
  var wRounded = FloatBuffer(count: 0)
  var dyData = FloatBuffer(count: 0)
  var dyWeight = FloatBuffer(count: 0)
  // Transposed / Hadamard-transformed copies of one operand at a time (see `OperandRounder.round`).
  var transformA = FloatBuffer(count: 0)
  var transformB = FloatBuffer(count: 0)
  /// The packed operands of the GEMMs that `useBF16GEMMs` moved to `BF16GEMM` (nil: none moved), in a
  /// `FloatBuffer` for its cache-line alignment (the kernel's 512-bit loads then never split a line).
  private var bf16Buffer = FloatBuffer(count: 0)
  var bf16Workspace: UnsafeMutablePointer<UInt32>? { bf16Buffer.bf16Words }

  /// Test hook: called with every operand a GEMM reads (rounded or not), as the GEMM reads it.
  public var operandObserver: ((LinearLayerInfo, GEMMOperand, UnsafeBufferPointer<Float>, OperandLayout) -> Void)?

  public init(recipe: Recipe, seed: UInt64, threads: Int = 1) {
    self.recipe = recipe
    self.seed = seed
    self.threads = max(1, threads)
  }

  /// Registers a linear layer whose input has at most `N` rows, `C` in-features, `OC` out-features;
  /// `block` of `blocks` and `isHead` are what recipes select kept layers by. `sameInputAs`: a layer
  /// registered before that every pass calls on the same input, unchanged, right before this one, in
  /// the forward and in the backward pass (Llama's q before k and v, gate before up); this layer then
  /// takes that layer's rounded X where it would round X the same way (`LinearGEMMs.inputLeader`).
  public func addLinear(
    name: String, N: Int, C: Int, OC: Int, block: Int? = nil, blocks: Int = 0, isHead: Bool = false,
    sameInputAs leader: LinearGEMMs? = nil
  ) -> LinearGEMMs {
    precondition(
      leader.map { $0.N == N && $0.info.inFeatures == C } ?? true,
      "a layer that shares its input has the rows and in-features of the layer it shares with")
    let info = LinearLayerInfo(
      name: name, index: layers.count, inFeatures: C, outFeatures: OC, block: block, blockCount: blocks, isHead: isHead)
    let l = LinearGEMMs(
      info: info, precision: recipe.precision(for: info), N: N, runtime: self, inputLeader: leader.map { $0.inputLeader ?? $0 })
    layers.append(l)
    return l
  }

  /// The rounding of the attention products of transformer block `block` at the current step and pass;
  /// nil unless the recipe has `attention-products=on` (then the models call `Attention.forwardRounded`).
  public func attentionRounding(block: Int) -> AttentionRounding? {
    guard recipe.attentionProducts else { return nil }
    return AttentionRounding(recipe: recipe, seed: seed, step: step, pass: pass, block: block)
  }

  /// Allocates the shared scratch for the registered layers.
  public func finish() {
    var dy = 0, x = 0, w = 0
    for l in layers {
      let p = l.precision, C = l.info.inFeatures, OC = l.info.outFeatures
      if p[.dataGradDY] != nil { dy = max(dy, l.N * OC) }
      if (p[.forwardX] != nil || p[.weightGradX] != nil) && !l.reuseWeightGradX { x = max(x, l.N * C) }
      if (p[.forwardW] != nil || p[.dataGradW] != nil) && !l.reuseDataGradW { w = max(w, OC * C) }
    }
    xRounded = FloatBuffer(count: x)
    wRounded = FloatBuffer(count: w)
    dyData = FloatBuffer(count: dy)
    dyWeight = FloatBuffer(count: layers.contains { $0.precision[.weightGradDY] != nil } ? maxDY() : 0)
    var t = 0
    for l in layers {
      let p = l.precision
      let transforms = p.hadamard.contains { $0 != nil } || p.rounders.contains { $0.map { !$0.isAxisFree } ?? false }
        || p.clipSaturated
      if transforms {
        let C = l.info.inFeatures, OC = l.info.outFeatures
        t = max(t, l.N * C, l.N * OC, OC * C)
      }
    }
    transformA = FloatBuffer(count: t)
    transformB = FloatBuffer(count: t)
  }

  /// The explicit `--gemm bf16` mode: every GEMM whose two operands the recipe rounds to bfloat16 values
  /// (`OperandRounder.outputsBFloat16`) runs on `BF16GEMM` from now on; the others stay on sgemm.
  /// Returns the names (`<layer>.<gemm>`) of the GEMMs it moved. Throws on a CPU without AVX512-BF16.
  @discardableResult
  public func useBF16GEMMs() throws -> [String] {
    guard BF16GEMM.isAvailable else {
      throw TrainingError.invalidConfig(
        "--gemm bf16 needs a CPU with AVX512-BF16 (AMD Zen 4, Intel Cooper Lake and later); this one lacks it: drop --gemm bf16")
    }
    var words = 0
    for l in layers {
      let C = l.info.inFeatures, OC = l.info.outFeatures
      l.moveToBF16()
      for g in GEMMKind.allCases where l.bf16[g.rawValue] {
        let (M, N, K) = Linear.productShapes(N: l.N, C: C, OC: OC)[g.rawValue]
        words = max(words, BF16GEMM.workspaceCount(M: M, N: N, K: K))
      }
    }
    bf16Buffer = FloatBuffer(count: words)
    return bf16GEMMNames
  }

  /// The GEMMs on `BF16GEMM` (`<layer>.<gemm>`, in layer order; empty: every GEMM on sgemm).
  public var bf16GEMMNames: [String] {
    layers.flatMap { l in GEMMKind.allCases.filter { l.bf16[$0.rawValue] }.map { "\(l.info.name).\($0)" } }
  }

  /// The GEMMs whose recipe asks for a Hadamard transform that does not divide their reduction length:
  /// they run without it (`<layer>.<gemm>`, in layer order; empty when every transform runs).
  public var hadamardSkippedNames: [String] {
    layers.flatMap { l in
      GEMMKind.allCases.filter { l.hadamards[$0.rawValue] != nil && l.transform($0, reductionLength: l.reductionLength($0)) == nil }
        .map { "\(l.info.name).\($0)" }
    }
  }

  private func maxDY() -> Int { layers.map { $0.N * $0.info.outFeatures }.max() ?? 0 }

  /// `<layer>.<operand>` for every rounded operand, in the order `telemetry` fills.
  public var telemetryNames: [String] {
    layers.flatMap { l in GEMMOperand.allCases.filter { l.precision[$0] != nil }.map { "\(l.info.name).\($0)" } }
  }

  /// The counts of every rounded operand at the last training pass, in the order of `telemetryNames`.
  public var operandCounts: [RoundingCounts] {
    layers.flatMap { l in GEMMOperand.allCases.filter { l.precision[$0] != nil }.map { l.counts[$0.rawValue] } }
  }

  /// The binade histograms of every rounded operand at the last training pass (with their flushed and
  /// saturated counts), in the order of `telemetryNames`.
  public var operandHistograms: [BinadeHistogram] {
    layers.flatMap { l in GEMMOperand.allCases.filter { l.precision[$0] != nil }.map { l.histograms[$0.rawValue] } }
  }

  /// Hands over the operands captured since the last call (in the order the GEMMs rounded them).
  public func takeCapturedOperands() -> [OperandSnapshot] {
    defer { capturedOperands = [] }
    return capturedOperands
  }

  /// Fractions saturated and flushed to zero per rounded operand at the last training pass, in the
  /// order of `telemetryNames`; `saturated` and `flushed` must have that many elements.
  public func telemetry(saturated: UnsafeMutablePointer<Float>, flushed: UnsafeMutablePointer<Float>) {
    var k = 0
    for l in layers {
      for op in GEMMOperand.allCases where l.precision[op] != nil {
        let c = l.counts[op.rawValue]
        saturated[k] = c.total > 0 ? Float(Double(c.saturated) / Double(c.total)) : 0
        flushed[k] = c.total > 0 ? Float(Double(c.flushed) / Double(c.total)) : 0
        k += 1
      }
    }
  }
}

/// The three GEMMs of one linear layer `Y = X W^T + b` with the recipe's rounding applied to their
/// operands (see `GEMMOperand`). Straight-through: gradients are computed from the rounded operands
/// and passed on as if the rounding were the identity. An operand the recipe leaves alone is used in
/// place, so `GEMMPrecision.fp32` runs exactly `Linear`'s float32 code.
///
/// Deterministic roundings are done once per step and reused: the weight-gradient GEMM reuses the
/// forward GEMM's rounded X, and the data-gradient GEMM its rounded W, when their rounders are equal;
/// the two backward GEMMs share one rounded dY. Stochastic ones draw fresh streams per operand.
public final class LinearGEMMs {
  public let info: LinearLayerInfo
  /// The recipe's precision for this layer; `moveToBF16` sets the tensor scale apart in the operands
  /// of the GEMMs it moves.
  public internal(set) var precision: GEMMPrecision
  /// Largest number of input rows (B*T).
  public let N: Int
  unowned let runtime: PrecisionRuntime
  let reuseWeightGradX: Bool, reuseDataGradW: Bool, reuseWeightGradDY: Bool
  /// The rounded forward X and W when a backward GEMM reuses them (else the runtime's shared scratch).
  let xq: FloatBuffer, wq: FloatBuffer
  /// The forward rounding of X that the weight-gradient GEMM reuses (nil: none yet): which rounding,
  /// and where it lies: in `xq`, or in the input itself when its producer rounded it in place
  /// (`producerRounding`).
  var keptX: (holds: RoundedX, at: UnsafePointer<Float>)? = nil
  /// The first layer of a group that reads one input X, when this is a later one (`addLinear`'s
  /// `sameInputAs`): an X operand that both round with the same deterministic rounder and no transform
  /// is the same values, so this layer takes the leader's instead of rounding X again (`xOperand`).
  /// Llama's k and v projections save the rounding of X twice per GEMM kind, up once.
  let inputLeader: LinearGEMMs?
  /// Counts of the last training pass, indexed by `GEMMOperand.rawValue`.
  public internal(set) var counts = [RoundingCounts](repeating: RoundingCounts(), count: 6)
  /// Binade histograms of the last training pass, indexed by `GEMMOperand.rawValue`.
  public internal(set) var histograms = [BinadeHistogram](repeating: BinadeHistogram(), count: 6)
  /// The tensor (address, count) each histogram of this step was counted from: an operand that reads
  /// the same tensor as its partner (W in the forward and data-gradient GEMMs, X in the forward and
  /// weight-gradient GEMMs, dY in both backward GEMMs) copies the partner's counts instead of counting
  /// again. Cleared at each training forward.
  var histogramSource = [(UnsafeRawPointer, Int)?](repeating: nil, count: 6)

  /// The random Hadamard transform of each GEMM (by `GEMMKind.rawValue`), nil where the recipe has none.
  let hadamards: [RandomHadamard?]
  /// Which of the three GEMMs (by `GEMMKind.rawValue`) run on `BF16GEMM` (`PrecisionRuntime.useBF16GEMMs`).
  var bf16 = [false, false, false]
  /// The float32 tensor scale each operand's rounding left out of its values this pass (1: none; see
  /// `ScaledRounding.tensorScaleApart`), indexed by `GEMMOperand.rawValue`: a GEMM multiplies its
  /// product by its two operands' scales (`alpha`).
  var tensorScales = [Float](repeating: 1, count: 6)
  /// Clipped straight-through estimator: indices of the forward X and W values that saturated in this
  /// step's training forward, and room to save the gradient entries there (see `backward`).
  let clipX: SaturationList?, clipW: SaturationList?

  init(info: LinearLayerInfo, precision: GEMMPrecision, N: Int, runtime: PrecisionRuntime, inputLeader: LinearGEMMs?) {
    self.info = info
    self.precision = precision
    self.N = N
    self.runtime = runtime
    self.inputLeader = inputLeader
    hadamards = GEMMKind.allCases.map { g in
      guard let n = precision.hadamard[g.rawValue] else { return nil }
      return try? RandomHadamard(
        size: n, seed: runtime.seed, stream: RoundingStreams.hadamardStream(layer: info.index, gemm: g))
    }
    // A rounded operand can be reused by a second GEMM when the second would compute exactly the same
    // values: equal rounders, independent of the reduction axis, no Hadamard on either GEMM, and no
    // fresh random draws, except that a 2-D-tiled weight is shared by the forward and data-gradient
    // GEMMs even when stochastic (the point of tiles: both GEMMs see the same quantized weight).
    func same(_ a: GEMMOperand, _ b: GEMMOperand) -> Bool {
      guard let x = precision[a], let y = precision[b], x.description == y.description, x.isAxisFree,
        precision.hadamard[a.gemm.rawValue] == nil, precision.hadamard[b.gemm.rawValue] == nil
      else { return false }
      if !x.isStochastic && !y.isStochastic { return true }
      if x.roundsTiles, a == .forwardW { return true }
      return false
    }
    reuseWeightGradX = same(.forwardX, .weightGradX)
    reuseDataGradW = same(.forwardW, .dataGradW)
    reuseWeightGradDY = same(.dataGradDY, .weightGradDY)
    let C = info.inFeatures, OC = info.outFeatures
    clipX = precision.clipSaturated && precision[.forwardX] != nil ? SaturationList(capacity: N * C) : nil
    clipW = precision.clipSaturated && precision[.forwardW] != nil ? SaturationList(capacity: OC * C) : nil
    xq = FloatBuffer(count: precision[.forwardX] != nil && reuseWeightGradX ? N * C : 0)
    wq = FloatBuffer(count: precision[.forwardW] != nil && reuseDataGradW ? OC * C : 0)
  }

  /// Marks the GEMMs whose two operands are bfloat16 values, or are once a tensor-scaled format
  /// (NVFP4, `tensor-scale`) leaves its float32 tensor scale apart, to run on `BF16GEMM`, and sets that
  /// scale apart in their operands. An operand that one GEMM rounds and another reuses is shared in one
  /// form, so when it sets its scale apart the two GEMMs move together or not at all.
  func moveToBF16() {
    func apart(_ op: GEMMOperand) -> ScaledRounding? {
      guard var s = precision[op] as? ScaledRounding, s.needsTensorAmax, s.elementTimesScaleIsBFloat16 else { return nil }
      s.tensorScaleApart = true
      return s
    }
    func qualifies(_ op: GEMMOperand) -> Bool { precision[op]?.outputsBFloat16 == true || apart(op) != nil }
    var moved = GEMMKind.allCases.map { g in qualifies(g.operands.0) && qualifies(g.operands.1) }
    let shared: [(Bool, GEMMOperand, GEMMKind, GEMMKind)] = [
      (reuseWeightGradX, .forwardX, .forward, .weightGrad), (reuseDataGradW, .forwardW, .forward, .dataGrad),
      (reuseWeightGradDY, .dataGradDY, .dataGrad, .weightGrad),
    ]
    var changed = true
    while changed {
      changed = false
      for (reused, op, g, h) in shared where reused && apart(op) != nil && moved[g.rawValue] != moved[h.rawValue] {
        moved[g.rawValue] = false
        moved[h.rawValue] = false
        changed = true
      }
    }
    for g in GEMMKind.allCases where moved[g.rawValue] {
      for op in [g.operands.0, g.operands.1] { if let s = apart(op) { precision[op] = s } }
    }
    bf16 = moved
  }

  /// The length GEMM `g` sums over: the input features (forward), the output features (data
  /// gradient), the rows B*T (weight gradient).
  func reductionLength(_ g: GEMMKind) -> Int {
    switch g {
    case .forward: return info.inFeatures
    case .dataGrad: return info.outFeatures
    case .weightGrad: return N
    }
  }

  /// GEMM `g`'s Hadamard transform for a reduction over `length` values: nil where the recipe gives
  /// none, or where its size does not divide the length (the GEMM then runs without it).
  func transform(_ g: GEMMKind, reductionLength length: Int) -> RandomHadamard? {
    hadamards[g.rawValue].flatMap { length % $0.size == 0 ? $0 : nil }
  }

  /// Rounds `src` as operand `op` into `dst` (or returns `src` when the recipe leaves it alone).
  @inline(__always)
  func operand(
    _ op: GEMMOperand, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ layout: OperandLayout
  ) -> UnsafePointer<Float> {
    guard let r = precision[op] else {
      observe(op, src, layout)
      return src
    }
    let (stream, h) = roundingStreamAndTransform(op, layout)
    let scratch = runtime.transformA.count >= layout.count ? (runtime.transformA.pointer, runtime.transformB.pointer) : nil
    let c = r.round(
      src, into: dst, layout: layout,
      context: RoundingContext(
        seed: runtime.seed, stream: stream, threads: runtime.threads, countEvents: runtime.collectTelemetry,
        hadamard: h, scratch: scratch))
    adopt(op, r, src, dst, layout, counts: c, stream: stream, hadamard: h)
    return UnsafePointer(dst)
  }

  /// Takes `dst`, rounder `r`'s rounding of `src` as operand `op` with counts `c`: its telemetry, tensor
  /// scale, histogram, snapshot and observers.
  @inline(__always)
  func adopt(
    _ op: GEMMOperand, _ r: any OperandRounder, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
    _ layout: OperandLayout, counts c: RoundingCounts, stream: UInt64, hadamard h: RandomHadamard?
  ) {
    if runtime.collectTelemetry { counts[op.rawValue] = c }
    tensorScales[op.rawValue] = (r as? ScaledRounding)?.tensorScale(amax: c.amax) ?? 1
    record(op, src, dst, layout, stream: stream, hadamard: h)
    observe(op, dst, layout)
  }

  /// Where forward X is rounded to: `xq` when the weight-gradient GEMM reuses it, else the shared
  /// `xRounded`.
  var xDestination: UnsafeMutablePointer<Float> { reuseWeightGradX ? xq.pointer : runtime.xRounded.pointer }

  /// Operand `op` (forward X or the data gradient's dY) of an input with `n` rows that a kernel is about
  /// to write at `output`, rounded by that kernel (`ProducerRounding`), where that gives what this layer
  /// would: an element format, no Hadamard transform on the GEMM, and for X no leader's rounding to take
  /// instead. Else nil.
  ///
  /// `onlyReader`: nothing but this layer's GEMMs reads `output` (for dY: no bias gradient either)
  /// until it is written again. Then, where the second GEMM that reads the operand takes the same
  /// rounding and no histogram, snapshot or clipped estimator needs the unrounded values, the rounding
  /// replaces the output where it lies (`ProducerRounding.inPlace`).
  public func producerRounding(
    _ op: GEMMOperand, n: Int, of output: UnsafeMutablePointer<Float>, onlyReader: Bool
  ) -> ProducerRounding? {
    precondition(op == .forwardX || op == .dataGradDY, "only forward X and the data gradient's dY have producers")
    guard let r = precision[op] as? ElementRounding,
      !(op == .forwardX && runtime.shareRoundedInputs && inputLeader != nil)
    else { return nil }
    let (stream, h) = roundingStreamAndTransform(op, producedLayout(op, n: n))
    guard h == nil else { return nil }
    let inPlace = onlyReader && (op == .forwardX ? reuseWeightGradX && clipX == nil : reuseWeightGradDY)
      && !runtime.collectHistograms && !runtime.captureLayers.contains(info.index)
    return ProducerRounding(
      rounder: r, seed: runtime.seed, stream: stream, source: output, into: inPlace ? output : producedDestination(op),
      countEvents: runtime.collectTelemetry)
  }

  /// The layout and the buffer of a produced operand: forward X (`xDestination`) or dY (`dyData`).
  func producedLayout(_ op: GEMMOperand, n: Int) -> OperandLayout {
    OperandLayout(rows: n, cols: op == .forwardX ? info.inFeatures : info.outFeatures, reducesAlongRows: false)
  }

  func producedDestination(_ op: GEMMOperand) -> UnsafeMutablePointer<Float> {
    op == .forwardX ? xDestination : runtime.dyData.pointer
  }

  /// Takes operand `op` of `src` as `rounded` left it (from `producerRounding` for this input).
  func produced(_ op: GEMMOperand, _ src: UnsafePointer<Float>, _ rounded: ProducerRounding, n: Int) -> UnsafePointer<Float> {
    let layout = producedLayout(op, n: n)
    precondition(rounded.source == UnsafeMutablePointer(mutating: src), "a producer rounds this very input")
    precondition(rounded.inPlace || rounded.destination == producedDestination(op), "a producer rounds into the operand's place")
    adopt(op, precision[op]!, src, rounded.destination, layout, counts: rounded.counts, stream: rounded.stream, hadamard: nil)
    return UnsafePointer(rounded.destination)
  }

  /// The operand that reads the same tensor as `op` in an earlier GEMM of the same step.
  static func partner(_ op: GEMMOperand) -> GEMMOperand? {
    switch op {
    case .weightGradX: return .forwardX
    case .dataGradW: return .forwardW
    case .weightGradDY: return .dataGradDY
    default: return nil
    }
  }

  /// Histogram (from `src`, as it entered rounding, and this step's `counts[op]`) and, at snapshot
  /// steps, the whole operand, of rounded operand `op` whose rounding (stream, transform) gave `rounded`.
  @inline(__always)
  func record(
    _ op: GEMMOperand, _ src: UnsafePointer<Float>, _ rounded: UnsafePointer<Float>, _ layout: OperandLayout,
    stream: UInt64, hadamard: RandomHadamard?
  ) {
    guard runtime.collectTelemetry else { return }
    if runtime.collectHistograms {
      let i = op.rawValue, source = (UnsafeRawPointer(src), layout.count)
      if let p = Self.partner(op), let s = histogramSource[p.rawValue], s == source {
        histograms[i].counts = histograms[p.rawValue].counts
        histograms[i].zeros = histograms[p.rawValue].zeros
        histograms[i].nonFinite = histograms[p.rawValue].nonFinite
      } else {
        let (z, nf) = histograms[i].counts.withUnsafeMutableBufferPointer { BinadeHistogram.count(src, layout.count, into: $0.baseAddress!, threads: runtime.threads) }
        histograms[i].zeros = z
        histograms[i].nonFinite = nf
      }
      histograms[i].flushed = Int32(clamping: counts[i].flushed)
      histograms[i].saturated = Int32(clamping: counts[i].saturated)
      histogramSource[i] = source
    }
    if runtime.pass == .train, runtime.captureLayers.contains(info.index), let r = precision[op] {
      runtime.capturedOperands.removeAll { $0.layer == info.name && $0.operand == op }
      runtime.capturedOperands.append(
        OperandSnapshot.make(
          layer: info.name, operand: op, layout: layout, input: src, rounded: rounded, rounder: r, seed: runtime.seed,
          stream: stream, hadamard: hadamard, lossScale: runtime.lossScale))
    }
  }

  /// The stream and transform operand `op` is rounded with at the current step and pass.
  func roundingStreamAndTransform(_ op: GEMMOperand, _ layout: OperandLayout) -> (UInt64, RandomHadamard?) {
    (RoundingStreams.stream(step: runtime.step, pass: runtime.pass, layer: info.index, operand: op),
     transform(op.gemm, reductionLength: layout.reductionLength))
  }

  /// The saturated values of forward operand `op` (rows x cols, reducing along its last axis), as its
  /// rounder rounded them this step.
  func saturated(_ op: GEMMOperand, _ src: UnsafePointer<Float>, rows: Int, cols: Int, into l: SaturationList) -> Int {
    guard let r = precision[op] else { return 0 }
    let stream = RoundingStreams.stream(step: runtime.step, pass: runtime.pass, layer: info.index, operand: op)
    return r.saturatedIndices(
      src, rows: rows, cols: cols, seed: runtime.seed, stream: stream, scratch: runtime.transformA.pointer,
      elements: runtime.transformB.pointer, into: l.indices)
  }

  /// Operand `op` uses `partner`'s rounding of the same tensor `src` (`rounded`): its histogram and
  /// snapshot are taken as for a rounding of its own, with the partner's stream (the one that rounded it).
  func reused(
    _ op: GEMMOperand, from partner: GEMMOperand, _ src: UnsafePointer<Float>, _ rounded: UnsafePointer<Float>,
    _ layout: OperandLayout
  ) {
    let (stream, h) = roundingStreamAndTransform(partner, layout)
    tensorScales[op.rawValue] = tensorScales[partner.rawValue]
    record(op, src, rounded, layout, stream: stream, hadamard: h)
    observe(op, rounded, layout)
  }

  /// The bfloat16 workspace when GEMM `g` runs on `BF16GEMM`, else nil (sgemm).
  @inline(__always)
  func workspace(_ g: GEMMKind) -> UnsafeMutablePointer<UInt32>? { bf16[g.rawValue] ? runtime.bf16Workspace : nil }

  /// The factor GEMM `g`'s product takes: its operands' tensor scales left out of their values.
  @inline(__always)
  func alpha(_ g: GEMMKind) -> Float { tensorScales[g.operands.0.rawValue] * tensorScales[g.operands.1.rawValue] }

  @inline(__always)
  func observe(_ op: GEMMOperand, _ p: UnsafePointer<Float>, _ layout: OperandLayout) {
    if let f = runtime.operandObserver { f(info, op, UnsafeBufferPointer(start: p, count: layout.count), layout) }
  }

  /// What rounding `op` of this layer, of input `inp` with `n` rows in the current step and pass, leaves.
  func holds(_ op: GEMMOperand, _ inp: UnsafePointer<Float>, n: Int) -> RoundedX {
    RoundedX(layer: info.index, operand: op, input: UnsafeRawPointer(inp), rows: n, step: runtime.step, pass: runtime.pass)
  }

  /// X operand `op` (of the forward or the weight-gradient GEMM) of input `inp` with `n` rows: the
  /// leader's rounding where this layer may take it (`leaderX`); for the weight-gradient GEMM of a layer
  /// that reuses its forward rounding, that rounding, when `keptX` is it; else rounded here (or taken
  /// from the producer that rounded it), into `xq` or the input itself (kept for the weight-gradient GEMM:
  /// `keptX` then says which and where) or into the shared `xRounded` (`xRoundedHolds` says which).
  func xOperand(
    _ op: GEMMOperand, _ inp: UnsafePointer<Float>, n: Int, rounded: ProducerRounding? = nil
  ) -> UnsafePointer<Float> {
    let layout = OperandLayout(rows: n, cols: info.inFeatures, reducesAlongRows: op == .weightGradX)
    if runtime.shareRoundedInputs, let leader = inputLeader, let x = leaderX(op, inp, n: n) {
      runtime.roundedInputsTaken += 1
      if runtime.collectTelemetry { counts[op.rawValue] = leader.counts[op.rawValue] }
      tensorScales[op.rawValue] = leader.tensorScales[op.rawValue]
      record(op, inp, x, layout, stream: roundingStreamAndTransform(op, layout).0, hadamard: nil)
      observe(op, x, layout)
      return x
    }
    if op == .weightGradX && reuseWeightGradX, let kept = keptX, kept.holds == holds(.forwardX, inp, n: n) {
      let x = kept.at
      counts[op.rawValue] = counts[GEMMOperand.forwardX.rawValue]
      reused(.weightGradX, from: .forwardX, inp, x, layout)
      return x
    }
    // (A reusing layer whose forward took its leader's rounding rounds its own here: the same values. A
    // producer's rounding is never a leader's: `producerRounding` gives none where one would be taken.)
    let x = if let rounded { produced(op, inp, rounded, n: n) } else { operand(op, inp, xDestination, layout) }
    if precision[op] != nil {
      if reuseWeightGradX {
        keptX = (holds(.forwardX, inp, n: n), x)
      } else {
        runtime.xRoundedHolds = holds(op, inp, n: n)
      }
    }
    return x
  }

  /// The leader's rounding of X operand `op` of `inp` (n rows), where this layer may take it: both round
  /// it with the same deterministic rounder (its own streams would not matter) and neither GEMM has a
  /// Hadamard transform (drawn per layer), and the leader's rounding of this input in this step and
  /// pass is still where it left it: its `keptX` when it reuses its forward rounding (the
  /// weight-gradient rounding is then the same), else the shared `xRounded`. Otherwise nil.
  func leaderX(_ op: GEMMOperand, _ inp: UnsafePointer<Float>, n: Int) -> UnsafePointer<Float>? {
    guard let leader = inputLeader, let mine = precision[op], let theirs = leader.precision[op],
      mine.description == theirs.description, !mine.isStochastic,
      (mine as? ScaledRounding)?.tensorScaleApart == (theirs as? ScaledRounding)?.tensorScaleApart,
      hadamards[op.gemm.rawValue] == nil, leader.hadamards[op.gemm.rawValue] == nil
    else { return nil }
    if leader.reuseWeightGradX {
      guard let kept = leader.keptX, kept.holds == leader.holds(.forwardX, inp, n: n) else { return nil }
      return kept.at
    }
    return runtime.xRoundedHolds == leader.holds(op, inp, n: n) ? UnsafePointer(runtime.xRounded.pointer) : nil
  }

  /// out(n,OC) = inp(n,C) . weight(OC,C)^T + bias, n <= N rows. `rounded`: X as its producer rounded
  /// it while writing `inp` (from this layer's `producerRounding(.forwardX, ...)`, for this very input).
  public func forward(
    out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, n: Int, rounded: ProducerRounding? = nil
  ) {
    let C = info.inFeatures, OC = info.outFeatures
    if runtime.pass == .train && runtime.collectTelemetry {
      for i in 0..<6 { histogramSource[i] = nil }
    }
    let x = xOperand(.forwardX, inp, n: n, rounded: rounded)
    let w = operand(
      .forwardW, weight, reuseDataGradW ? wq.pointer : runtime.wRounded.pointer,
      OperandLayout(rows: OC, cols: C, reducesAlongRows: false))
    if runtime.pass == .train {
      if let l = clipX { l.count = saturated(.forwardX, inp, rows: n, cols: C, into: l) }
      if let l = clipW { l.count = saturated(.forwardW, weight, rows: OC, cols: C, into: l) }
    }
    Linear.forward(
      out: out, inp: x, weight: w, bias: bias, N: n, C: C, OC: OC, threads: runtime.threads, bf16: workspace(.forward),
      alpha: alpha(.forward))
  }

  /// dinp += dout . W (skipped when `dinp` is nil; `=` when `overwriteDinp`), dweight += dout^T . inp,
  /// dbias += column sums of dout (from the unrounded dout: the bias gradient is no GEMM). Must follow
  /// this layer's `forward` on the same `inp` and `weight` in the same step. `rounded`: the data
  /// gradient's dY as its producer rounded it while writing `dout` (from `producerRounding(.dataGradDY,
  /// ...)`, for this very gradient).
  public func backward(
    dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, n: Int,
    overwriteDinp: Bool = false, rounded: ProducerRounding? = nil
  ) {
    let C = info.inFeatures, OC = info.outFeatures
    precondition(rounded == nil || dinp != nil, "a produced dY is the data gradient's")
    precondition(!(rounded?.inPlace ?? false) || dbias == nil, "a bias gradient reads dY as it was before rounding")
    var dyForData: UnsafePointer<Float>? = nil
    if let dinp {
      let dy =
        if let rounded { produced(.dataGradDY, dout, rounded, n: n) } else {
          operand(.dataGradDY, dout, runtime.dyData.pointer, OperandLayout(rows: n, cols: OC, reducesAlongRows: false))
        }
      let w: UnsafePointer<Float>
      if reuseDataGradW {
        w = UnsafePointer(wq.pointer)
        counts[GEMMOperand.dataGradW.rawValue] = counts[GEMMOperand.forwardW.rawValue]
        reused(.dataGradW, from: .forwardW, weight, w, OperandLayout(rows: OC, cols: C, reducesAlongRows: true))
      } else {
        w = operand(.dataGradW, weight, runtime.wRounded.pointer, OperandLayout(rows: OC, cols: C, reducesAlongRows: true))
      }
      // The clipped estimator restores dinp's old values at saturated positions: they must exist.
      if overwriteDinp && clipX != nil { dinp.update(repeating: 0, count: n * C) }
      clipX?.save(dinp)
      Linear.backwardData(
        dinp: dinp, dout: dy, weight: w, N: n, C: C, OC: OC, overwrite: overwriteDinp && clipX == nil,
        threads: runtime.threads, bf16: workspace(.dataGrad), alpha: alpha(.dataGrad))
      clipX?.restore(dinp)
      dyForData = dy
    }
    let dy: UnsafePointer<Float>
    if reuseWeightGradDY, let shared = dyForData {
      dy = shared
      counts[GEMMOperand.weightGradDY.rawValue] = counts[GEMMOperand.dataGradDY.rawValue]
      reused(.weightGradDY, from: .dataGradDY, dout, dy, OperandLayout(rows: n, cols: OC, reducesAlongRows: true))
    } else {
      dy = operand(.weightGradDY, dout, runtime.dyWeight.pointer, OperandLayout(rows: n, cols: OC, reducesAlongRows: true))
    }
    let x = xOperand(.weightGradX, inp, n: n)
    clipW?.save(dweight)
    Linear.backwardWeight(
      dweight: dweight, dout: dy, inp: x, N: n, C: C, OC: OC, threads: runtime.threads, bf16: workspace(.weightGrad),
      alpha: alpha(.weightGrad))
    clipW?.restore(dweight)
    if let dbias { Linear.backwardBias(dbias: dbias, dout: dout, N: n, OC: OC, threads: runtime.threads) }
  }
}

/// Positions of saturated values, and the gradient entries saved there around one GEMM: the
/// clipped straight-through estimator keeps what the gradient buffer held before the GEMM at these
/// positions, i.e. zeroes exactly this GEMM's contribution to them (gradients accumulate with +=).
final class SaturationList {
  let indices: UnsafeMutablePointer<Int32>
  let saved: UnsafeMutablePointer<Float>
  var count = 0

  init(capacity: Int) {
    indices = .allocate(capacity: max(capacity, 1))
    saved = .allocate(capacity: max(capacity, 1))
  }

  deinit {
    indices.deallocate()
    saved.deallocate()
  }

  func save(_ g: UnsafeMutablePointer<Float>) { for k in 0..<count { saved[k] = g[Int(indices[k])] } }
  func restore(_ g: UnsafeMutablePointer<Float>) { for k in 0..<count { g[Int(indices[k])] = saved[k] } }
}

/// A rounding of a layer's X operand left in a buffer: which layer and operand, of which input (its
/// address and rows), at which step and pass.
struct RoundedX: Equatable {
  let layer: Int
  let operand: GEMMOperand
  let input: UnsafeRawPointer
  let rows: Int
  let step: Int
  let pass: RoundingStreams.Pass
}
