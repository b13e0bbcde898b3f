/// nanoGPT's GPT (GPT-2 architecture): learned token and position embeddings, `nLayer` pre-LayerNorm
/// blocks of causal multi-head self-attention and a GELU MLP (4C hidden), a final LayerNorm, and an
/// output head tied to the token embedding. Biases everywhere, dropout 0.
public struct GPTConfig: Hashable, Codable, Sendable {
  public var vocabSize: Int
  public var blockSize: Int
  public var nLayer: Int
  public var nHead: Int
  public var nEmbd: Int

  public init(vocabSize: Int, blockSize: Int, nLayer: Int, nHead: Int, nEmbd: Int) {
    self.vocabSize = vocabSize
    self.blockSize = blockSize
    self.nLayer = nLayer
    self.nHead = nHead
    self.nEmbd = nEmbd
  }

  /// `gpt-tiny`: 4 layers, 4 heads, width 128, context 128 (819,456 parameters with 76 symbols).
  public static func tiny(vocabSize: Int = 76) -> GPTConfig {
    GPTConfig(vocabSize: vocabSize, blockSize: 128, nLayer: 4, nHead: 4, nEmbd: 128)
  }

  /// Parameters with nanoGPT's `state_dict` names, shapes and order (`lm_head.weight` is
  /// `transformer.wte.weight`, so it is not listed twice).
  public var parameterLayout: [(String, [Int])] {
    let C = nEmbd
    var l: [(String, [Int])] = [("transformer.wte.weight", [vocabSize, C]), ("transformer.wpe.weight", [blockSize, C])]
    for i in 0..<nLayer {
      let p = "transformer.h.\(i)."
      l += [
        (p + "ln_1.weight", [C]), (p + "ln_1.bias", [C]),
        (p + "attn.c_attn.weight", [3 * C, C]), (p + "attn.c_attn.bias", [3 * C]),
        (p + "attn.c_proj.weight", [C, C]), (p + "attn.c_proj.bias", [C]),
        (p + "ln_2.weight", [C]), (p + "ln_2.bias", [C]),
        (p + "mlp.c_fc.weight", [4 * C, C]), (p + "mlp.c_fc.bias", [4 * C]),
        (p + "mlp.c_proj.weight", [C, 4 * C]), (p + "mlp.c_proj.bias", [C]),
      ]
    }
    l += [("transformer.ln_f.weight", [C]), ("transformer.ln_f.bias", [C])]
    return l
  }

  /// V C + T C + L (12 C^2 + 13 C) + 2 C.
  public var parameterCount: Int { parameterLayout.reduce(0) { $0 + $1.1.reduce(1, *) } }
}

/// A GPT that owns its parameters, activations and gradient scratch for batches of B sequences of
/// T <= blockSize tokens (the llm.c layout: kernels over flat buffers, orchestration here).
public final class GPT {
  public let config: GPTConfig
  public let B: Int
  public let T: Int
  public let parameters: ParameterSet
  public let precision: PrecisionRuntime
  /// Threads for attention and operand rounding (results do not depend on it).
  public let threads: Int

  // Linear layers in forward order: per block c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj; then lm_head.
  let cAttn: [LinearGEMMs], attnProj: [LinearGEMMs], fc: [LinearGEMMs], mlpProj: [LinearGEMMs]
  let lmHead: LinearGEMMs

  // Activations. Per-layer buffers hold all L layers back to back (layer l at l * size).
  let tokens: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>
  let encoded: FloatBuffer  // (B,T,C) embeddings = residual stream entering block 0
  let ln1, ln1Mean, ln1Rstd: FloatBuffer  // (L,B,T,C), (L,B,T), (L,B,T)
  let qkv: FloatBuffer  // (L,B,T,3C)
  let att: FloatBuffer  // (L,B,NH,T,T) attention probabilities
  let atty: FloatBuffer  // (L,B,T,C) attention output before c_proj
  let residual2: FloatBuffer  // (L,B,T,C) residual + attention branch
  let ln2, ln2Mean, ln2Rstd: FloatBuffer
  let fch, fchGelu: FloatBuffer  // (L,B,T,4C)
  let fchCDF: FloatBuffer  // (L,B,T,4C): Phi(fch), kept by GELU.forward for its backward
  let residual3: FloatBuffer  // (L,B,T,C) block output
  let branch: FloatBuffer  // (B,T,C) c_proj outputs before they join the residual (not needed backward)
  let lnf, lnfMean, lnfRstd: FloatBuffer
  public let logits: FloatBuffer  // (B,T,V)
  public let probs: FloatBuffer  // (B,T,V)
  public let losses: FloatBuffer  // (B,T)
  // Gradient scratch, reused by every block during backward.
  let dresidual, dln, datty: FloatBuffer  // (B,T,C)
  let dqkv: FloatBuffer  // (B,T,3C)
  let dfch, dfchGelu: FloatBuffer  // (B,T,4C)
  let dlogits: FloatBuffer  // (B,T,V)
  let attScratch: FloatBuffer
  var hasTargets = false

  public init(config: GPTConfig, batchSize B: Int, sequenceLength T: Int? = nil, recipe: Recipe = .fp32, seed: UInt64 = 0, threads: Int = 1) {
    let T = T ?? config.blockSize
    precondition(T <= config.blockSize, "sequence length exceeds block size")
    precondition(config.nEmbd % config.nHead == 0, "n_embd must be a multiple of n_head")
    self.config = config
    self.B = B
    self.T = T
    self.threads = max(1, threads)
    parameters = ParameterSet(layout: config.parameterLayout)
    precision = PrecisionRuntime(recipe: recipe, seed: seed, threads: threads)
    let L = config.nLayer, C = config.nEmbd, V = config.vocabSize, NH = config.nHead, N = B * T
    var a: [LinearGEMMs] = [], p: [LinearGEMMs] = [], f: [LinearGEMMs] = [], m: [LinearGEMMs] = []
    for l in 0..<L {
      let h = "transformer.h.\(l)."
      a.append(precision.addLinear(name: h + "attn.c_attn", N: N, C: C, OC: 3 * C, block: l, blocks: L))
      p.append(precision.addLinear(name: h + "attn.c_proj", N: N, C: C, OC: C, block: l, blocks: L))
      f.append(precision.addLinear(name: h + "mlp.c_fc", N: N, C: C, OC: 4 * C, block: l, blocks: L))
      m.append(precision.addLinear(name: h + "mlp.c_proj", N: N, C: 4 * C, OC: C, block: l, blocks: L))
    }
    lmHead = precision.addLinear(name: "lm_head", N: N, C: C, OC: V, isHead: true)
    precision.finish()
    cAttn = a
    attnProj = p
    fc = f
    mlpProj = m
    tokens = .allocate(capacity: N)
    tokens.initialize(repeating: 0, count: N)
    targets = .allocate(capacity: N)
    targets.initialize(repeating: 0, count: N)
    func buf(_ n: Int) -> FloatBuffer { FloatBuffer(count: n) }
    encoded = buf(N * C)
    ln1 = buf(L * N * C); ln1Mean = buf(L * N); ln1Rstd = buf(L * N)
    qkv = buf(L * N * 3 * C)
    att = buf(L * B * NH * T * T)
    atty = buf(L * N * C)
    residual2 = buf(L * N * C)
    ln2 = buf(L * N * C); ln2Mean = buf(L * N); ln2Rstd = buf(L * N)
    fch = buf(L * N * 4 * C); fchGelu = buf(L * N * 4 * C); fchCDF = buf(L * N * 4 * C)
    residual3 = buf(L * N * C)
    branch = buf(N * C)
    lnf = buf(N * C); lnfMean = buf(N); lnfRstd = buf(N)
    logits = buf(N * V); probs = buf(N * V); losses = buf(N)
    dresidual = buf(N * C); dln = buf(N * C); datty = buf(N * C)
    dqkv = buf(N * 3 * C)
    dfch = buf(N * 4 * C); dfchGelu = buf(N * 4 * C)
    dlogits = buf(N * V)
    attScratch = buf(Attention.scratchCount(T: T, C: C, NH: NH, threads: self.threads))
  }

  deinit {
    tokens.deallocate()
    targets.deallocate()
  }

  /// nanoGPT's initialization: every weight matrix and both embeddings ~ N(0, 0.02^2), the two c_proj
  /// weights of each block (which write into the residual stream) ~ N(0, (0.02 / sqrt(2 L))^2), biases 0,
  /// LayerNorm gains 1 and offsets 0. Tensor k draws from stream k of `seed`.
  public func initializeWeights(seed: UInt64) {
    let std = Float(0.02), projStd = Float(0.02 / (2.0 * Double(config.nLayer)).squareRoot())
    for (k, t) in parameters.tensors.enumerated() {
      let x = parameters.values.pointer + t.offset
      if t.name.hasSuffix("c_proj.weight") {
        Initializer.normal(x, count: t.count, std: projStd, seed: seed, stream: UInt64(k))
      } else if t.name.contains(".ln_") && t.name.hasSuffix(".weight") {
        Initializer.fill(x, count: t.count, value: 1)
      } else if t.isMatrix {
        Initializer.normal(x, count: t.count, std: std, seed: seed, stream: UInt64(k))
      } else {
        Initializer.fill(x, count: t.count, value: 0)
      }
    }
  }

  /// Forward pass over `tokens` (B,T). With `targets` (B,T) it computes the per-position losses and
  /// returns their mean (the cross-entropy nanoGPT reports); without, it returns NaN and `logits` holds
  /// the output. Every linear layer runs through the precision hook.
  @discardableResult
  public func forward(tokens input: UnsafePointer<Int32>, targets target: UnsafePointer<Int32>?) -> Float {
    let L = config.nLayer, C = config.nEmbd, V = config.vocabSize, NH = config.nHead, N = B * T
    for i in 0..<N {
      precondition(input[i] >= 0 && Int(input[i]) < V, "token out of range")
      tokens[i] = input[i]
    }
    let P = parameters
    Embedding.forward(
      out: encoded.pointer, tokens: tokens, wte: P.value("transformer.wte.weight"),
      wpe: P.value("transformer.wpe.weight"), B: B, T: T, C: C)
    for l in 0..<L {
      let h = "transformer.h.\(l)."
      let residual = l == 0 ? encoded.pointer : residual3.pointer + (l - 1) * N * C
      let ln1 = self.ln1.pointer + l * N * C, qkv = self.qkv.pointer + l * N * 3 * C
      let att = self.att.pointer + l * B * NH * T * T, atty = self.atty.pointer + l * N * C
      let res2 = residual2.pointer + l * N * C, ln2 = self.ln2.pointer + l * N * C
      let fch = self.fch.pointer + l * N * 4 * C, fchG = fchGelu.pointer + l * N * 4 * C
      let res3 = residual3.pointer + l * N * C
      LayerNorm.forward(
        out: ln1, mean: ln1Mean.pointer + l * N, rstd: ln1Rstd.pointer + l * N, inp: residual,
        weight: P.value(h + "ln_1.weight"), bias: P.value(h + "ln_1.bias"), N: N, C: C, threads: threads)
      cAttn[l].forward(out: qkv, inp: ln1, weight: P.value(h + "attn.c_attn.weight"), bias: P.value(h + "attn.c_attn.bias"), n: N)
      Attention.forward(
        out: atty, att: att, qkv: qkv, scratch: attScratch.pointer, B: B, T: T, C: C, NH: NH,
        rounding: precision.attentionRounding(block: l), threads: threads)
      attnProj[l].forward(out: branch.pointer, inp: atty, weight: P.value(h + "attn.c_proj.weight"), bias: P.value(h + "attn.c_proj.bias"), n: N)
      Residual.forward(out: res2, a: residual, b: branch.pointer, count: N * C, threads: threads)
      LayerNorm.forward(
        out: ln2, mean: ln2Mean.pointer + l * N, rstd: ln2Rstd.pointer + l * N, inp: res2,
        weight: P.value(h + "ln_2.weight"), bias: P.value(h + "ln_2.bias"), N: N, C: C, threads: threads)
      fc[l].forward(out: fch, inp: ln2, weight: P.value(h + "mlp.c_fc.weight"), bias: P.value(h + "mlp.c_fc.bias"), n: N)
      // c_proj's X is rounded (element formats) by GELU as it writes each block (`ProducerRounding`);
      // only c_proj reads GELU's output.
      let rounded = mlpProj[l].producerRounding(.forwardX, n: N, of: fchG, onlyReader: true)
      GELU.forward(
        out: fchG, cdf: fchCDF.pointer + l * N * 4 * C, inp: fch, count: N * 4 * C, threads: threads,
        afterBlock: rounded?.afterBlock)
      mlpProj[l].forward(
        out: branch.pointer, inp: fchG, weight: P.value(h + "mlp.c_proj.weight"), bias: P.value(h + "mlp.c_proj.bias"), n: N,
        rounded: rounded)
      Residual.forward(out: res3, a: res2, b: branch.pointer, count: N * C, threads: threads)
    }
    let last = residual3.pointer + (L - 1) * N * C
    LayerNorm.forward(
      out: lnf.pointer, mean: lnfMean.pointer, rstd: lnfRstd.pointer, inp: last,
      weight: P.value("transformer.ln_f.weight"), bias: P.value("transformer.ln_f.bias"), N: N, C: C, threads: threads)
    lmHead.forward(out: logits.pointer, inp: lnf.pointer, weight: P.value("transformer.wte.weight"), bias: nil, n: N)
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
    let L = config.nLayer, C = config.nEmbd, V = config.vocabSize, NH = config.nHead, N = B * T
    let P = parameters
    P.grads.zero(threads: threads)
    dlogits.zero(threads: threads)
    CrossEntropy.backward(
      dlogits: dlogits.pointer, probs: probs.pointer, targets: targets, dloss: precision.lossScale / Float(N), N: N, V: V,
      threads: threads)
    lmHead.backward(
      dinp: dln.pointer, dweight: P.grad("transformer.wte.weight"), dbias: nil, dout: dlogits.pointer,
      inp: lnf.pointer, weight: P.value("transformer.wte.weight"), n: N, overwriteDinp: true)
    dresidual.zero(threads: threads)
    LayerNorm.backward(
      dinp: dresidual.pointer, dweight: P.grad("transformer.ln_f.weight"), dbias: P.grad("transformer.ln_f.bias"),
      dout: dln.pointer, inp: residual3.pointer + (L - 1) * N * C, weight: P.value("transformer.ln_f.weight"),
      mean: lnfMean.pointer, rstd: lnfRstd.pointer, N: N, C: C, threads: threads)
    // dresidual holds dLoss/d(residual3 of block l); each block turns it into dLoss/d(its input).
    // On one thread GELU's and attention's backward passes take c_fc's and c_attn's bias gradients from
    // the dY they produce, so that its rounding may then replace it (below). Each column's sum is one
    // chain down all rows, which more threads could only share by splitting the columns.
    let biasInProducer = threads == 1
    for l in stride(from: L - 1, through: 0, by: -1) {
      let h = "transformer.h.\(l)."
      let residual = l == 0 ? encoded.pointer : residual3.pointer + (l - 1) * N * C
      let ln1 = self.ln1.pointer + l * N * C, qkv = self.qkv.pointer + l * N * 3 * C
      let att = self.att.pointer + l * B * NH * T * T, atty = self.atty.pointer + l * N * C
      let res2 = residual2.pointer + l * N * C, ln2 = self.ln2.pointer + l * N * C
      let fch = self.fch.pointer + l * N * 4 * C, fchG = fchGelu.pointer + l * N * 4 * C
      // MLP branch: residual3 = residual2 + c_proj(gelu(c_fc(ln_2(residual2)))).
      mlpProj[l].backward(
        dinp: dfchGelu.pointer, dweight: P.grad(h + "mlp.c_proj.weight"), dbias: P.grad(h + "mlp.c_proj.bias"),
        dout: dresidual.pointer, inp: fchG, weight: P.value(h + "mlp.c_proj.weight"), n: N, overwriteDinp: true)
      // c_fc's dY is rounded (element formats) by GELU's backward as it writes each block. On one
      // thread GELU's backward also takes c_fc's bias gradient from each block before the rounding, which
      // may then replace the block (nothing else reads it). On more (see `GELU.backward`), the rounding
      // goes to the data-gradient buffer, and c_fc's bias gradient reads GELU's output after.
      let cFCBias = P.grad(h + "mlp.c_fc.bias")
      let roundedDY = fc[l].producerRounding(.dataGradDY, n: N, of: dfch.pointer, onlyReader: biasInProducer)
      GELU.backward(
        dinp: dfch.pointer, inp: fch, cdf: fchCDF.pointer + l * N * 4 * C, dout: dfchGelu.pointer, count: N * 4 * C,
        threads: threads, afterBlock: roundedDY?.afterBlock, bias: biasInProducer ? (cFCBias, 4 * C) : nil)
      fc[l].backward(
        dinp: dln.pointer, dweight: P.grad(h + "mlp.c_fc.weight"), dbias: biasInProducer ? nil : cFCBias,
        dout: dfch.pointer, inp: ln2, weight: P.value(h + "mlp.c_fc.weight"), n: N, overwriteDinp: true,
        rounded: roundedDY)
      LayerNorm.backward(
        dinp: dresidual.pointer, dweight: P.grad(h + "ln_2.weight"), dbias: P.grad(h + "ln_2.bias"),
        dout: dln.pointer, inp: res2, weight: P.value(h + "ln_2.weight"),
        mean: ln2Mean.pointer + l * N, rstd: ln2Rstd.pointer + l * N, N: N, C: C, threads: threads)
      // Attention branch: residual2 = residual + c_proj(attn(c_attn(ln_1(residual)))).
      attnProj[l].backward(
        dinp: datty.pointer, dweight: P.grad(h + "attn.c_proj.weight"), dbias: P.grad(h + "attn.c_proj.bias"),
        dout: dresidual.pointer, inp: atty, weight: P.value(h + "attn.c_proj.weight"), n: N, overwriteDinp: true)
      // c_attn's dY (dqkv, 3 MB per layer at gpt-tiny's size), as c_fc's above: attention's backward
      // hands over each sequence's rows as soon as they are final, for their rounding (element formats)
      // while they are in L2, and on one thread first for c_attn's bias gradient, after which the rounding
      // may replace them. On more threads the bias gradient is a pass of its own after it.
      let cAttnBias = P.grad(h + "attn.c_attn.bias"), batchRows = T * 3 * C, width = 3 * C
      let roundedQKV = cAttn[l].producerRounding(.dataGradDY, n: N, of: dqkv.pointer, onlyReader: biasInProducer)
      nonisolated(unsafe) let dqkvRows = UnsafePointer(dqkv.pointer), bias = cAttnBias
      let handOver: @Sendable (Int) -> Void = { [T] b in
        if biasInProducer { Linear.addRows(dqkvRows + b * batchRows, count: T, stride: width, width: width, into: bias) }
        roundedQKV?.round(from: b * batchRows, count: batchRows)
      }
      Attention.backward(
        dqkv: dqkv.pointer, dout: datty.pointer, qkv: qkv, att: att, scratch: attScratch.pointer,
        B: B, T: T, C: C, NH: NH, rounding: precision.attentionRounding(block: l), threads: threads,
        afterBatch: biasInProducer || roundedQKV != nil ? handOver : nil)
      cAttn[l].backward(
        dinp: dln.pointer, dweight: P.grad(h + "attn.c_attn.weight"), dbias: biasInProducer ? nil : cAttnBias,
        dout: dqkv.pointer, inp: ln1, weight: P.value(h + "attn.c_attn.weight"), n: N, overwriteDinp: true,
        rounded: roundedQKV)
      LayerNorm.backward(
        dinp: dresidual.pointer, dweight: P.grad(h + "ln_1.weight"), dbias: P.grad(h + "ln_1.bias"),
        dout: dln.pointer, inp: residual, weight: P.value(h + "ln_1.weight"),
        mean: ln1Mean.pointer + l * N, rstd: ln1Rstd.pointer + l * N, N: N, C: C, threads: threads)
    }
    Embedding.backward(
      dwte: P.grad("transformer.wte.weight"), dwpe: P.grad("transformer.wpe.weight"), dout: dresidual.pointer,
      tokens: tokens, B: B, T: T, C: C)
  }
}
