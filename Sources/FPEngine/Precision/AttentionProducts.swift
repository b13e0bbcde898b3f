import FPFormats

/// The two batched products inside attention, rounded through the recipe (`attention-products=on`).
///
/// Each product is read as a linear layer's forward `Y = X W^T`, so its operands take the recipe's six
/// operand roles (blocks along each product's reduction axis, as for the linears):
///
///     QK^T:  S = Q K^T          X = Q (T, hs), W = K (T, hs)      reduction over hs
///            dQ = dS K          dgrad.dy = dS, dgrad.w = K         reduction over t2
///            dK = dS^T Q        wgrad.dy = dS, wgrad.x = Q         reduction over t
///     PV:    Y = P V = P (V^T)^T  X = P (T, T), W = V^T (hs, T)   reduction over t2
///            dP = dY V^T        dgrad.dy = dY, dgrad.w = V         reduction over hs
///            dV = P^T dY        wgrad.dy = dY, wgrad.x = P         reduction over t
///
/// Per (batch, head) pair each operand is one matrix, rounded as a whole tensor (a tensor scale or the
/// NVFP4 rule takes that matrix's amax). The softmax and its backward use the float32 S, P and dP;
/// no Hadamard transform is applied; `layers` and `keep` do not apply (every block's attention is
/// rounded alike). Stochastic rounding draws stream `stream(step, pass, block, product, pair, operand)`.
/// Nothing is counted in the telemetry.
public struct AttentionRounding: Sendable {
  /// Rounder per operand role, indexed by `GEMMOperand.rawValue` (nil: float32).
  public var rounders: [(any OperandRounder)?]
  public var seed: UInt64
  public var step: Int
  public var pass: RoundingStreams.Pass
  /// The transformer block (the attention's position in the model).
  public var block: Int

  public init(recipe: Recipe, seed: UInt64, step: Int, pass: RoundingStreams.Pass, block: Int) {
    rounders = GEMMOperand.allCases.map { recipe.operands[$0.rawValue].rounder }
    self.seed = seed
    self.step = step
    self.pass = pass
    self.block = block
  }

  public enum Product: Int, Sendable { case qk = 0, pv = 1 }

  /// The stream of one operand of one product of one (batch, head) pair: disjoint from the linears'
  /// (their layer indices are below 2^20).
  public func stream(_ product: Product, pair: Int, operand: GEMMOperand) -> UInt64 {
    let s = RoundingStreams.stream(step: step, pass: pass, layer: 1 << 20 | block << 1 | product.rawValue, operand: operand)
    return CounterRNG.mix(s ^ CounterRNG.mix(UInt64(pair) &+ 1))
  }

  /// `m` (rows x cols, row-major, reduction along the last axis) rounded in place as `operand`.
  func round(_ m: inout [Float], rows: Int, cols: Int, _ product: Product, pair: Int, _ operand: GEMMOperand) {
    guard let r = rounders[operand.rawValue], rows * cols > 0 else { return }
    let src = m
    let st = stream(product, pair: pair, operand: operand)
    src.withUnsafeBufferPointer { s in
      m.withUnsafeMutableBufferPointer { d in
        _ = r.roundLastAxis(
          s.baseAddress!, into: d.baseAddress!, rows: rows, cols: cols, firstIndex: 0, firstBlock: 0, tensorAmax: nil,
          seed: seed, stream: st, threads: 1, countEvents: false)
      }
    }
  }
}

extension Attention {
  /// `forwardReference` with the operands of S = Q K^T and Y = P V rounded by `rounding` (see
  /// `AttentionRounding`); the same loops in the same order, so with float32 roles it is
  /// `forwardReference` bit for bit. `att` keeps the float32 P (the softmax backward's input).
  public static func forwardRounded(
    out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>,
    B: Int, T: Int, C: Int, NH: Int, rounding: AttentionRounding, threads: Int = 1
  ) {
    precondition(C % NH == 0, "C must be a multiple of NH")
    let hs = C / NH
    let scale = 1 / Float(hs).squareRoot()
    nonisolated(unsafe) let out = out, att = att, qkv = qkv
    parallelPairs(B * NH, threads) { pairs, _ in
      var q = [Float](repeating: 0, count: T * hs), k = q, vt = q, p = [Float](repeating: 0, count: T * T)
      for pair in pairs {
        let b = pair / NH, h = pair % NH
        let base = qkv + b * T * 3 * C
        for t in 0..<T {
          for i in 0..<hs {
            q[t * hs + i] = base[t * 3 * C + h * hs + i]
            k[t * hs + i] = base[t * 3 * C + C + h * hs + i]
            vt[i * T + t] = base[t * 3 * C + 2 * C + h * hs + i]
          }
        }
        rounding.round(&q, rows: T, cols: hs, .qk, pair: pair, .forwardX)
        rounding.round(&k, rows: T, cols: hs, .qk, pair: pair, .forwardW)
        rounding.round(&vt, rows: hs, cols: T, .pv, pair: pair, .forwardW)
        for t in 0..<T {
          let row = att + (pair * T + t) * T
          let n = t + 1
          for t2 in 0..<n { row[t2] = 0 }
          for i in 0..<hs {
            let qi = q[t * hs + i]
            for t2 in 0..<n { row[t2] += qi * k[t2 * hs + i] }
          }
          var m = -Float.infinity
          for t2 in 0..<n { m = max(m, row[t2]) }
          for t2 in 0..<n { row[t2] = FastMath.exp((row[t2] - m) * scale) }
          let inv = 1 / Reduce.sum(row, n)
          for t2 in 0..<n { row[t2] *= inv }
          for t2 in n..<T { row[t2] = 0 }
          for t2 in 0..<T { p[t * T + t2] = row[t2] }
        }
        rounding.round(&p, rows: T, cols: T, .pv, pair: pair, .forwardX)
        for t in 0..<T {
          let o = out + (b * T + t) * C + h * hs
          for i in 0..<hs { o[i] = 0 }
          for t2 in 0..<(t + 1) {
            let pv = p[t * T + t2]
            for i in 0..<hs { o[i] += pv * vt[i * T + t2] }
          }
        }
      }
    }
  }

  /// `backwardReference` with the operands of the four backward products rounded by `rounding`; the
  /// same loops in the same order (float32 roles: `backwardReference` bit for bit). Overwrites dqkv.
  public static func backwardRounded(
    dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, qkv: UnsafePointer<Float>, att: UnsafePointer<Float>,
    B: Int, T: Int, C: Int, NH: Int, rounding: AttentionRounding, threads: Int = 1
  ) {
    let hs = C / NH
    let scale = 1 / Float(hs).squareRoot()
    nonisolated(unsafe) let dqkv = dqkv, dout = dout, qkv = qkv, att = att
    parallelPairs(B * NH, threads) { pairs, _ in
      // Row-major, reduction last: dY (T,hs) and V (T,hs) for dP; P^T (T,T) and dY^T (hs,T) for dV;
      // dS (T,T) and K^T (hs,T) for dQ; dS^T (T,T) and Q^T (hs,T) for dK.
      var dyD = [Float](repeating: 0, count: T * hs), vD = dyD, dyW = dyD, kT = dyD, qT = dyD
      var pT = [Float](repeating: 0, count: T * T), ds = pT, dsT = pT, drow = [Float](repeating: 0, count: T)
      for pair in pairs {
        let b = pair / NH, h = pair % NH
        let base = qkv + b * T * 3 * C, dbase = dqkv + b * T * 3 * C
        let p = att + pair * T * T
        zeroPairSlices(dbase, T: T, C: C, h: h, hs: hs)
        for t in 0..<T {
          for i in 0..<hs {
            let dy = dout[(b * T + t) * C + h * hs + i]
            dyD[t * hs + i] = dy
            dyW[i * T + t] = dy
            vD[t * hs + i] = base[t * 3 * C + 2 * C + h * hs + i]
            kT[i * T + t] = base[t * 3 * C + C + h * hs + i]
            qT[i * T + t] = base[t * 3 * C + h * hs + i]
          }
          for t2 in 0..<T { pT[t2 * T + t] = p[t * T + t2] }
        }
        rounding.round(&dyD, rows: T, cols: hs, .pv, pair: pair, .dataGradDY)
        rounding.round(&vD, rows: T, cols: hs, .pv, pair: pair, .dataGradW)
        rounding.round(&dyW, rows: hs, cols: T, .pv, pair: pair, .weightGradDY)
        rounding.round(&pT, rows: T, cols: T, .pv, pair: pair, .weightGradX)
        rounding.round(&kT, rows: hs, cols: T, .qk, pair: pair, .dataGradW)
        rounding.round(&qT, rows: hs, cols: T, .qk, pair: pair, .weightGradX)
        // dP and dS row by row (float32 P), then dV: dv_t2 += sum_t P[t,t2] dy_t in t order.
        for t in 0..<T {
          let row = p + t * T, n = t + 1
          for t2 in 0..<n { drow[t2] = 0 }
          for i in 0..<hs {
            let d = dyD[t * hs + i]
            for t2 in 0..<n { drow[t2] += d * vD[t2 * hs + i] }
          }
          for t2 in 0..<n {
            let pv = pT[t2 * T + t], dv = dbase + t2 * 3 * C + 2 * C + h * hs
            for i in 0..<hs { dv[i] += pv * dyW[i * T + t] }
          }
          let s = Reduce.dot(row, drow, n)
          for t2 in 0..<T { ds[t * T + t2] = t2 < n ? row[t2] * (drow[t2] - s) * scale : 0 }
        }
        for t in 0..<T { for t2 in 0..<T { dsT[t2 * T + t] = ds[t * T + t2] } }
        rounding.round(&ds, rows: T, cols: T, .qk, pair: pair, .dataGradDY)
        rounding.round(&dsT, rows: T, cols: T, .qk, pair: pair, .weightGradDY)
        for t in 0..<T {
          let dq = dbase + t * 3 * C + h * hs
          for t2 in 0..<(t + 1) {
            let dQ = ds[t * T + t2], dK = dsT[t2 * T + t]
            let dk = dbase + t2 * 3 * C + C + h * hs
            for i in 0..<hs {
              dq[i] += dQ * kT[i * T + t2]
              dk[i] += dK * qT[i * T + t]
            }
          }
        }
      }
    }
  }
}

extension Attention {
  /// The models' attention forward: the blocked float32 kernel, or with `rounding` (the recipe's
  /// `attention-products=on`) the rounded one.
  static func forward(
    out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>,
    scratch: UnsafeMutablePointer<Float>, B: Int, T: Int, C: Int, NH: Int, rounding: AttentionRounding?, threads: Int
  ) {
    if let rounding {
      forwardRounded(out: out, att: att, qkv: qkv, B: B, T: T, C: C, NH: NH, rounding: rounding, threads: threads)
    } else {
      forward(out: out, att: att, qkv: qkv, scratch: scratch, B: B, T: T, C: C, NH: NH, threads: threads)
    }
  }

  /// The models' attention backward, likewise (overwrites dqkv), with `afterBatch` as in the blocked
  /// kernel's (the rounded kernel's batches are handed over when it has finished them all).
  static func backward(
    dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, qkv: UnsafePointer<Float>, att: UnsafePointer<Float>,
    scratch: UnsafeMutablePointer<Float>, B: Int, T: Int, C: Int, NH: Int, rounding: AttentionRounding?, threads: Int,
    afterBatch: (@Sendable (Int) -> Void)? = nil
  ) {
    if let rounding {
      backwardRounded(dqkv: dqkv, dout: dout, qkv: qkv, att: att, B: B, T: T, C: C, NH: NH, rounding: rounding, threads: threads)
      if let afterBatch { for b in 0..<B { afterBatch(b) } }
    } else {
      backward(
        dqkv: dqkv, dout: dout, qkv: qkv, att: att, scratch: scratch, B: B, T: T, C: C, NH: NH, threads: threads,
        afterBatch: afterBatch)
    }
  }
}
