/// A Llama-architecture decoder (Touvron et al. 2023, as Hugging Face's `LlamaForCausalLM` defines it):
/// a token embedding without learned positions, `nLayer` pre-RMSNorm blocks of causal multi-head
/// self-attention with rotary position embeddings on queries and keys (`Rotary`: the rotate-half
/// pairing, base 10000) and a SwiGLU MLP of `hidden` width, a final RMSNorm, and an output head with
/// its own weights (untied). No biases, no dropout, eps 1e-5.
public struct LlamaConfig: Hashable, Codable, Sendable {
  public var vocabSize: Int
  public var blockSize: Int
  public var nLayer: Int
  public var nHead: Int
  public var nEmbd: Int
  /// Width of the SwiGLU MLP (gate and up project C -> hidden, down hidden -> C).
  public var hidden: Int
  /// Rotary base (Hugging Face's `rope_theta`).
  public var ropeBase: Double

  public init(vocabSize: Int, blockSize: Int, nLayer: Int, nHead: Int, nEmbd: Int, hidden: Int, ropeBase: Double = Rotary.defaultBase) {
    self.vocabSize = vocabSize
    self.blockSize = blockSize
    self.nLayer = nLayer
    self.nHead = nHead
    self.nEmbd = nEmbd
    self.hidden = hidden
    self.ropeBase = ropeBase
  }

  /// `llama-tiny`: 4 layers, 4 heads, width 128, MLP width 384, context 128 (the size of the FP4
  /// design-space study's smallest Llama): 872,576 parameters with 76 symbols.
  public static func tiny(vocabSize: Int = 76) -> LlamaConfig {
    LlamaConfig(vocabSize: vocabSize, blockSize: 128, nLayer: 4, nHead: 4, nEmbd: 128, hidden: 384)
  }

  /// Parameters with Hugging Face's `LlamaForCausalLM` `state_dict` names, shapes (out-features by
  /// in-features) and order.
  public var parameterLayout: [(String, [Int])] {
    let C = nEmbd, H = hidden
    var l: [(String, [Int])] = [("model.embed_tokens.weight", [vocabSize, C])]
    for i in 0..<nLayer {
      let p = "model.layers.\(i)."
      l += [
        (p + "input_layernorm.weight", [C]),
        (p + "self_attn.q_proj.weight", [C, C]), (p + "self_attn.k_proj.weight", [C, C]),
        (p + "self_attn.v_proj.weight", [C, C]), (p + "self_attn.o_proj.weight", [C, C]),
        (p + "post_attention_layernorm.weight", [C]),
        (p + "mlp.gate_proj.weight", [H, C]), (p + "mlp.up_proj.weight", [H, C]), (p + "mlp.down_proj.weight", [C, H]),
      ]
    }
    l += [("model.norm.weight", [C]), ("lm_head.weight", [vocabSize, C])]
    return l
  }

  /// V C + L (4 C^2 + 3 C H + 2 C) + C + V C.
  public var parameterCount: Int { parameterLayout.reduce(0) { $0 + $1.1.reduce(1, *) } }
}

/// A Llama that owns its parameters, activations and gradient scratch for batches of B sequences of
/// T <= blockSize tokens (kernels over flat buffers, orchestration here, as `GPT`). Every linear layer
/// (q, k, v, o, gate, up, down per block, then the head) runs through the precision hook.
public final class Llama {
  public let config: LlamaConfig
  public let B: Int
  public let T: Int
  public let parameters: ParameterSet
  public let precision: PrecisionRuntime
  /// Threads for attention, elementwise kernels and operand rounding (results do not depend on it).
  public let threads: Int

  // Linear layers in forward order: per block q, k, v, o, gate, up, down; then lm_head.
  let qProj: [LinearGEMMs], kProj: [LinearGEMMs], vProj: [LinearGEMMs], oProj: [LinearGEMMs]
  let gateProj: [LinearGEMMs], upProj: [LinearGEMMs], downProj: [LinearGEMMs]
  let lmHead: LinearGEMMs

  // Rotary angle tables (T, hs/2).
  let ropeCos: FloatBuffer, ropeSin: FloatBuffer
  // Activations. Per-layer buffers hold all L layers back to back (layer l at l * size).
  let tokens: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>
  let encoded: FloatBuffer  // (B,T,C) token embeddings = residual stream entering block 0
  let ln1, ln1Rstd: FloatBuffer  // (L,B,T,C), (L,B,T)
  let qkv: FloatBuffer  // (L,B,T,3C): [rotary(q) | rotary(k) | v], as `Attention` reads it
  let att: FloatBuffer  // (L,B,NH,T,T) attention probabilities
  let atty: FloatBuffer  // (L,B,T,C) attention output before o_proj
  let residual2: FloatBuffer  // (L,B,T,C) residual + attention branch
  let ln2, ln2Rstd: FloatBuffer
  let gate, up, swiglu: FloatBuffer  // (L,B,T,H): gate_proj and up_proj outputs, silu(gate) * up
  let residual3: FloatBuffer  // (L,B,T,C) block output
  let lnf, lnfRstd: FloatBuffer
  public let logits: FloatBuffer  // (B,T,V)
  public let probs: FloatBuffer  // (B,T,V)
  public let losses: FloatBuffer  // (B,T)
  // Scratch: projections before rotary (forward), and gradients, reused by every block.
  let q, k, v: FloatBuffer  // (B,T,C)
  let branch: FloatBuffer  // (B,T,C) o_proj / down_proj outputs before they join the residual
  let dresidual, dln, datty: FloatBuffer  // (B,T,C)
  let dqkv: FloatBuffer  // (B,T,3C)
  let dgate, dup, dswiglu: FloatBuffer  // (B,T,H)
  let dlogits: FloatBuffer  // (B,T,V)
  let attScratch: FloatBuffer
  var hasTargets = false

  public init(config: LlamaConfig, batchSize B: Int, sequenceLength T: Int? = nil, recipe: Recipe = .fp32, seed: UInt64 = 0, threads: Int = 1) {
    let T = T ?? config.blockSize
    precondition(T <= config.blockSize, "sequence length exceeds block size")
    precondition(config.nEmbd % config.nHead == 0, "n_embd must be a multiple of n_head")
    precondition((config.nEmbd / config.nHead) % 2 == 0, "the head size must be even (rotary pairs)")
    self.config = config
    self.B = B
    self.T = T
    self.threads = max(1, threads)
    parameters = ParameterSet(layout: config.parameterLayout)
    precision = PrecisionRuntime(recipe: recipe, seed: seed, threads: threads)
    let L = config.nLayer, C = config.nEmbd, V = config.vocabSize, NH = config.nHead, H = config.hidden, N = B * T
    var lq: [LinearGEMMs] = [], lk: [LinearGEMMs] = [], lv: [LinearGEMMs] = [], lo: [LinearGEMMs] = []
    var lg: [LinearGEMMs] = [], lu: [LinearGEMMs] = [], ld: [LinearGEMMs] = []
    for l in 0..<L {
      let h = "model.layers.\(l)."
      // q, k and v read one input (the first norm's output), gate and up another, in that order in
      // both passes: k, v and up take the first one's rounded X where they round it the same way.
      let q = precision.addLinear(name: h + "self_attn.q_proj", N: N, C: C, OC: C, block: l, blocks: L)
      lq.append(q)
      lk.append(precision.addLinear(name: h + "self_attn.k_proj", N: N, C: C, OC: C, block: l, blocks: L, sameInputAs: q))
      lv.append(precision.addLinear(name: h + "self_attn.v_proj", N: N, C: C, OC: C, block: l, blocks: L, sameInputAs: q))
      lo.append(precision.addLinear(name: h + "self_attn.o_proj", N: N, C: C, OC: C, block: l, blocks: L))
      let gate = precision.addLinear(name: h + "mlp.gate_proj", N: N, C: C, OC: H, block: l, blocks: L)
      lg.append(gate)
      lu.append(precision.addLinear(name: h + "mlp.up_proj", N: N, C: C, OC: H, block: l, blocks: L, sameInputAs: gate))
      ld.append(precision.addLinear(name: h + "mlp.down_proj", N: N, C: H, OC: C, block: l, blocks: L))
    }
    lmHead = precision.addLinear(name: "lm_head", N: N, C: C, OC: V, isHead: true)
    precision.finish()
    qProj = lq
    kProj = lk
    vProj = lv
    oProj = lo
    gateProj = lg
    upProj = lu
    downProj = ld
    let table = Rotary.table(T: T, headSize: C / NH, base: config.ropeBase)
    ropeCos = FloatBuffer(table.cos)
    ropeSin = FloatBuffer(table.sin)
    tokens = .allocate(capacity: N)
    tokens.initialize(repeating: 0, count: N)
    targets = .allocate(capacity: N)
    targets.initialize(repeating: 0, count: N)
    func buf(_ n: Int) -> FloatBuffer { FloatBuffer(count: n) }
    encoded = buf(N * C)
    ln1 = buf(L * N * C); ln1Rstd = buf(L * N)
    qkv = buf(L * N * 3 * C)
    att = buf(L * B * NH * T * T)
    atty = buf(L * N * C)
    residual2 = buf(L * N * C)
    ln2 = buf(L * N * C); ln2Rstd = buf(L * N)
    gate = buf(L * N * H); up = buf(L * N * H); swiglu = buf(L * N * H)
    residual3 = buf(L * N * C)
    lnf = buf(N * C); lnfRstd = buf(N)
    logits = buf(N * V); probs = buf(N * V); losses = buf(N)
    q = buf(N * C); k = buf(N * C); v = buf(N * C)
    branch = buf(N * C)
    dresidual = buf(N * C); dln = buf(N * C); datty = buf(N * C)
    dqkv = buf(N * 3 * C)
    dgate = buf(N * H); dup = buf(N * H); dswiglu = buf(N * H)
    dlogits = buf(N * V)
    attScratch = buf(Attention.scratchCount(T: T, C: C, NH: NH, threads: self.threads))
  }

  deinit {
    tokens.deallocate()
    targets.deallocate()
  }

  /// Initialization (GPT-2's rule carried over, as nanoGPT-style Llama ports do): every weight matrix,
  /// the embedding and the head ~ N(0, 0.02^2); the two projections of each block that write into the
  /// residual stream (o_proj, down_proj) ~ N(0, (0.02 / sqrt(2 L))^2); RMSNorm gains 1. Tensor k (in
  /// `parameterLayout` order) draws from stream k of `seed`.
  public func initializeWeights(seed: UInt64) {
    let std = Float(0.02), projStd = Float(0.02 / (2.0 * Double(config.nLayer)).squareRoot())
    for (k, t) in parameters.tensors.enumerated() {
      let x = parameters.values.pointer + t.offset
      if t.name.hasSuffix("o_proj.weight") || t.name.hasSuffix("down_proj.weight") {
        Initializer.normal(x, count: t.count, std: projStd, seed: seed, stream: UInt64(k))
      } else if t.isMatrix {
        Initializer.normal(x, count: t.count, std: std, seed: seed, stream: UInt64(k))
      } else {
        Initializer.fill(x, count: t.count, value: 1)  // RMSNorm gains, the only vectors
      }
    }
  }

  /// Forward pass over `tokens` (B,T). With `targets` (B,T) it computes the per-position losses and
  /// returns their mean; without, it returns NaN and `logits` holds the output.
  @discardableResult
  public func forward(tokens input: UnsafePointer<Int32>, targets target: UnsafePointer<Int32>?) -> Float {
    let L = config.nLayer, C = config.nEmbd, V = config.vocabSize, NH = config.nHead, H = config.hidden, N = B * T
    for i in 0..<N {
      precondition(input[i] >= 0 && Int(input[i]) < V, "token out of range")
      tokens[i] = input[i]
    }
    let P = parameters
    Embedding.forward(out: encoded.pointer, tokens: tokens, wte: P.value("model.embed_tokens.weight"), wpe: nil, B: B, T: T, C: C)
    for l in 0..<L {
      let h = "model.layers.\(l)."
      let residual = l == 0 ? encoded.pointer : residual3.pointer + (l - 1) * N * C
      let ln1 = self.ln1.pointer + l * N * C, qkv = self.qkv.pointer + l * N * 3 * C
      let att = self.att.pointer + l * B * NH * T * T, atty = self.atty.pointer + l * N * C
      let res2 = residual2.pointer + l * N * C, ln2 = self.ln2.pointer + l * N * C
      let gate = self.gate.pointer + l * N * H, up = self.up.pointer + l * N * H, sw = swiglu.pointer + l * N * H
      let res3 = residual3.pointer + l * N * C
      // Attention branch: residual2 = residual + o_proj(attn(rotary(q_proj(x)), rotary(k_proj(x)), v_proj(x))),
      // x = input_layernorm(residual).
      RMSNorm.forward(
        out: ln1, rstd: ln1Rstd.pointer + l * N, inp: residual, weight: P.value(h + "input_layernorm.weight"),
        N: N, C: C, threads: threads)
      qProj[l].forward(out: q.pointer, inp: ln1, weight: P.value(h + "self_attn.q_proj.weight"), bias: nil, n: N)
      kProj[l].forward(out: k.pointer, inp: ln1, weight: P.value(h + "self_attn.k_proj.weight"), bias: nil, n: N)
      vProj[l].forward(out: v.pointer, inp: ln1, weight: P.value(h + "self_attn.v_proj.weight"), bias: nil, n: N)
      Rotary.forward(
        out: qkv, ldo: 3 * C, inp: q.pointer, ldi: C, cos: ropeCos.pointer, sin: ropeSin.pointer,
        N: N, T: T, C: C, NH: NH, threads: threads)
      Rotary.forward(
        out: qkv + C, ldo: 3 * C, inp: k.pointer, ldi: C, cos: ropeCos.pointer, sin: ropeSin.pointer,
        N: N, T: T, C: C, NH: NH, threads: threads)
      for n in 0..<N { (qkv + n * 3 * C + 2 * C).update(from: v.pointer + n * C, count: C) }
      Attention.forward(
        out: atty, att: att, qkv: qkv, scratch: attScratch.pointer, B: B, T: T, C: C, NH: NH,
        rounding: precision.attentionRounding(block: l), threads: threads)
      oProj[l].forward(out: branch.pointer, inp: atty, weight: P.value(h + "self_attn.o_proj.weight"), bias: nil, n: N)
      Residual.forward(out: res2, a: residual, b: branch.pointer, count: N * C, threads: threads)
      // MLP branch: residual3 = residual2 + down_proj(silu(gate_proj(x)) * up_proj(x)),
      // x = post_attention_layernorm(residual2).
      RMSNorm.forward(
        out: ln2, rstd: ln2Rstd.pointer + l * N, inp: res2, weight: P.value(h + "post_attention_layernorm.weight"),
        N: N, C: C, threads: threads)
      gateProj[l].forward(out: gate, inp: ln2, weight: P.value(h + "mlp.gate_proj.weight"), bias: nil, n: N)
      upProj[l].forward(out: up, inp: ln2, weight: P.value(h + "mlp.up_proj.weight"), bias: nil, n: N)
      // down_proj's X is rounded (element formats) by SwiGLU as it writes each block (`ProducerRounding`);
      // only down_proj reads SwiGLU's output.
      let rounded = downProj[l].producerRounding(.forwardX, n: N, of: sw, onlyReader: true)
      SwiGLU.forward(out: sw, gate: gate, up: up, count: N * H, threads: threads, afterBlock: rounded?.afterBlock)
      downProj[l].forward(
        out: branch.pointer, inp: sw, weight: P.value(h + "mlp.down_proj.weight"), bias: nil, n: N, rounded: rounded)
      Residual.forward(out: res3, a: res2, b: branch.pointer, count: N * C, threads: threads)
    }
    let last = residual3.pointer + (L - 1) * N * C
    RMSNorm.forward(out: lnf.pointer, rstd: lnfRstd.pointer, inp: last, weight: P.value("model.norm.weight"), N: N, C: C, threads: threads)
    lmHead.forward(out: logits.pointer, inp: lnf.pointer, weight: P.value("lm_head.weight"), bias: nil, n: N)
    hasTargets = target != nil
    guard let target else { return .nan }
    return CrossEntropy.meanLoss(
      logits: logits.pointer, targets: target, kept: targets, losses: losses.pointer, probs: probs.pointer, N: N, V: V,
      threads: threads)
  }

  /// Gradients of the mean loss of the last `forward` (which must have had targets) with respect to
  /// every parameter, into `parameters.grads` (overwritten).
  public func backward() {
    precondition(hasTargets, "backward needs a forward pass with targets")
    let L = config.nLayer, C = config.nEmbd, V = config.vocabSize, NH = config.nHead, H = config.hidden, N = B * T
    let P = parameters
    P.grads.zero(threads: threads)
    dlogits.zero(threads: threads)
    CrossEntropy.backward(
      dlogits: dlogits.pointer, probs: probs.pointer, targets: targets, dloss: precision.lossScale / Float(N), N: N, V: V,
      threads: threads)
    lmHead.backward(
      dinp: dln.pointer, dweight: P.grad("lm_head.weight"), dbias: nil, dout: dlogits.pointer,
      inp: lnf.pointer, weight: P.value("lm_head.weight"), n: N, overwriteDinp: true)
    dresidual.zero(threads: threads)
    RMSNorm.backward(
      dinp: dresidual.pointer, dweight: P.grad("model.norm.weight"), dout: dln.pointer,
      inp: residual3.pointer + (L - 1) * N * C, weight: P.value("model.norm.weight"), rstd: lnfRstd.pointer,
      N: N, C: C, threads: threads)
    // dresidual holds dLoss/d(residual3 of block l); each block turns it into dLoss/d(its input).
    // A producer's rounding of a layer's dY, where it replaces the dY in place (else the rounding is the
    // layer's own pass: several producer roundings into the one data-gradient buffer would collide).
    func roundedInPlace(_ layer: LinearGEMMs, _ dy: FloatBuffer) -> ProducerRounding? {
      layer.producerRounding(.dataGradDY, n: N, of: dy.pointer, onlyReader: true).flatMap { $0.inPlace ? $0 : nil }
    }
    for l in stride(from: L - 1, through: 0, by: -1) {
      let h = "model.layers.\(l)."
      let residual = l == 0 ? encoded.pointer : residual3.pointer + (l - 1) * N * C
      let ln1 = self.ln1.pointer + l * N * C, qkv = self.qkv.pointer + l * N * 3 * C
      let att = self.att.pointer + l * B * NH * T * T, atty = self.atty.pointer + l * N * C
      let res2 = residual2.pointer + l * N * C, ln2 = self.ln2.pointer + l * N * C
      let gate = self.gate.pointer + l * N * H, up = self.up.pointer + l * N * H, sw = swiglu.pointer + l * N * H
      // MLP branch.
      downProj[l].backward(
        dinp: dswiglu.pointer, dweight: P.grad(h + "mlp.down_proj.weight"), dbias: nil, dout: dresidual.pointer,
        inp: sw, weight: P.value(h + "mlp.down_proj.weight"), n: N, overwriteDinp: true)
      // gate_proj's and up_proj's dY are rounded (element formats) by SwiGLU's backward as it writes each
      // block; only those layers read them (no bias). up_proj's only where it replaces the block: else
      // both would round into the one data-gradient buffer, which gate_proj reads first.
      let roundedGate = gateProj[l].producerRounding(.dataGradDY, n: N, of: dgate.pointer, onlyReader: true)
      let roundedUp = roundedInPlace(upProj[l], dup)
      let afterBlock: (@Sendable (Int, Int) -> Void)? =
        switch (roundedGate, roundedUp) {
        case (nil, nil): nil
        case (let g?, nil): g.afterBlock
        case (nil, let u?): u.afterBlock
        case (let g?, let u?): { lo, n in g.round(from: lo, count: n); u.round(from: lo, count: n) }
        }
      SwiGLU.backward(
        dgate: dgate.pointer, dup: dup.pointer, gate: gate, up: up, dout: dswiglu.pointer, count: N * H, threads: threads,
        afterBlock: afterBlock)
      gateProj[l].backward(
        dinp: dln.pointer, dweight: P.grad(h + "mlp.gate_proj.weight"), dbias: nil, dout: dgate.pointer,
        inp: ln2, weight: P.value(h + "mlp.gate_proj.weight"), n: N, overwriteDinp: true, rounded: roundedGate)
      upProj[l].backward(
        dinp: dln.pointer, dweight: P.grad(h + "mlp.up_proj.weight"), dbias: nil, dout: dup.pointer,
        inp: ln2, weight: P.value(h + "mlp.up_proj.weight"), n: N, rounded: roundedUp)
      RMSNorm.backward(
        dinp: dresidual.pointer, dweight: P.grad(h + "post_attention_layernorm.weight"), dout: dln.pointer,
        inp: res2, weight: P.value(h + "post_attention_layernorm.weight"), rstd: ln2Rstd.pointer + l * N,
        N: N, C: C, threads: threads)
      // Attention branch.
      oProj[l].backward(
        dinp: datty.pointer, dweight: P.grad(h + "self_attn.o_proj.weight"), dbias: nil, dout: dresidual.pointer,
        inp: atty, weight: P.value(h + "self_attn.o_proj.weight"), n: N, overwriteDinp: true)
      // Attention's backward hands over each sequence's rows of dqkv as soon as they are final, while
      // they are in L2: the rotations on dq and dk are undone and dv copied out of the packed buffer
      // into q, k, v (free after the forward), and each is rounded there (element formats, where the
      // rounding replaces them: their projections are their only readers). Rows are independent, so a
      // sequence at a time gives the bits of whole tensors.
      let (roundedQ, roundedK, roundedV) = (roundedInPlace(qProj[l], q), roundedInPlace(kProj[l], k), roundedInPlace(vProj[l], v))
      nonisolated(unsafe) let dq = q.pointer, dk = k.pointer, dv = v.pointer, packed = UnsafePointer(dqkv.pointer)
      nonisolated(unsafe) let cosines = UnsafePointer(ropeCos.pointer), sines = UnsafePointer(ropeSin.pointer)
      let rows = T * C
      Attention.backward(
        dqkv: dqkv.pointer, dout: datty.pointer, qkv: qkv, att: att, scratch: attScratch.pointer,
        B: B, T: T, C: C, NH: NH, rounding: precision.attentionRounding(block: l), threads: threads,
        afterBatch: { [T, C, NH] b in
          let src = packed + b * T * 3 * C
          Rotary.backward(dinp: dq + b * rows, lddi: C, dout: src, lddo: 3 * C, cos: cosines, sin: sines, N: T, T: T, C: C, NH: NH)
          Rotary.backward(dinp: dk + b * rows, lddi: C, dout: src + C, lddo: 3 * C, cos: cosines, sin: sines, N: T, T: T, C: C, NH: NH)
          for n in 0..<T { (dv + b * rows + n * C).update(from: src + n * 3 * C + 2 * C, count: C) }
          roundedQ?.round(from: b * rows, count: rows)
          roundedK?.round(from: b * rows, count: rows)
          roundedV?.round(from: b * rows, count: rows)
        })
      qProj[l].backward(
        dinp: dln.pointer, dweight: P.grad(h + "self_attn.q_proj.weight"), dbias: nil, dout: q.pointer,
        inp: ln1, weight: P.value(h + "self_attn.q_proj.weight"), n: N, overwriteDinp: true,
        rounded: roundedQ)
      kProj[l].backward(
        dinp: dln.pointer, dweight: P.grad(h + "self_attn.k_proj.weight"), dbias: nil, dout: k.pointer,
        inp: ln1, weight: P.value(h + "self_attn.k_proj.weight"), n: N, rounded: roundedK)
      vProj[l].backward(
        dinp: dln.pointer, dweight: P.grad(h + "self_attn.v_proj.weight"), dbias: nil, dout: v.pointer,
        inp: ln1, weight: P.value(h + "self_attn.v_proj.weight"), n: N, rounded: roundedV)
      RMSNorm.backward(
        dinp: dresidual.pointer, dweight: P.grad(h + "input_layernorm.weight"), dout: dln.pointer,
        inp: residual, weight: P.value(h + "input_layernorm.weight"), rstd: ln1Rstd.pointer + l * N,
        N: N, C: C, threads: threads)
    }
    Embedding.backward(
      dwte: P.grad("model.embed_tokens.weight"), dwpe: nil, dout: dresidual.pointer, tokens: tokens, B: B, T: T, C: C)
  }
}

extension Llama: LanguageModel {}
