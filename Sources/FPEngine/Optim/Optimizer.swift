import CVectorSqrt
import Foundation  // cos, pow

/// Optimizers over a `ParameterSet`'s flat buffers. Weight decay, where configured, applies to
/// matrices and embeddings only (`TensorInfo.isMatrix`), as nanoGPT's `configure_optimizers`.
public enum OptimizerConfig: Hashable, Codable, Sendable, CustomStringConvertible {
  /// AdamW (Loshchilov & Hutter), PyTorch's update order: p *= 1 - lr wd; m = b1 m + (1-b1) g;
  /// v = b2 v + (1-b2) g^2; p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
  case adamw(beta1: Float = 0.9, beta2: Float = 0.95, eps: Float = 1e-8, weightDecay: Float = 0.1)
  /// SGD with heavy-ball momentum, PyTorch's form: g += wd p; b = mu b + g; p -= lr b.
  case sgd(momentum: Float = 0.9, weightDecay: Float = 0)
  /// signSGD with momentum (Signum, Bernstein et al. 2018): m = mu m + (1-mu) g; p *= 1 - lr wd;
  /// p -= lr sign(m).
  case signSGD(momentum: Float = 0.9, weightDecay: Float = 0)

  public static let adamw = OptimizerConfig.adamw()

  /// `adamw` (weight decay default 0.1), `sgd` or `signsgd` (default 0), as `fpsim train --optimizer`
  /// and a grid spec's `optimizer` spell them.
  public init(name: String, weightDecay: Float? = nil) throws {
    if let wd = weightDecay, !(wd >= 0 && wd.isFinite) {
      throw TrainingError.invalidConfig("weight decay must be 0 or a positive number, got \(wd)")
    }
    switch name.lowercased() {
    case "adamw": self = .adamw(weightDecay: weightDecay ?? 0.1)
    case "sgd": self = .sgd(weightDecay: weightDecay ?? 0)
    case "signsgd": self = .signSGD(weightDecay: weightDecay ?? 0)
    default: throw TrainingError.invalidConfig("unknown optimizer '\(name)': use adamw, sgd or signsgd")
    }
  }

  public var description: String {
    switch self {
    case .adamw(let b1, let b2, let e, let wd): return "adamw(beta1: \(b1), beta2: \(b2), eps: \(e), weight_decay: \(wd))"
    case .sgd(let m, let wd): return "sgd(momentum: \(m), weight_decay: \(wd))"
    case .signSGD(let m, let wd): return "signsgd(momentum: \(m), weight_decay: \(wd))"
    }
  }
}

/// Optimizer state (moments) and the update rule.
public final class Optimizer {
  public let config: OptimizerConfig
  public let parameters: ParameterSet
  /// First moment (AdamW, SGD momentum buffer, Signum momentum); second moment (AdamW only).
  public let m: FloatBuffer, v: FloatBuffer
  /// Updates applied so far (AdamW's bias-correction t).
  public internal(set) var updates: Int = 0

  /// Threads for the AdamW update (elementwise: the result does not depend on it).
  public let threads: Int

  public init(_ config: OptimizerConfig, parameters: ParameterSet, threads: Int = 1) {
    self.config = config
    self.threads = max(1, threads)
    self.parameters = parameters
    m = FloatBuffer(count: parameters.count)
    if case .adamw = config { v = FloatBuffer(count: parameters.count) } else { v = FloatBuffer(count: 0) }
  }

  /// Names of the state arrays a checkpoint must hold (`m`, and `v` for AdamW).
  public var stateNames: [String] { v.count > 0 ? ["m", "v"] : ["m"] }

  public func update(lr: Float) {
    updates += 1
    let p = parameters.values.pointer, g = parameters.grads.pointer
    switch config {
    case .adamw(let b1, let b2, let eps, let wd):
      let bc1 = 1 - pow(Double(b1), Double(updates)), bc2 = 1 - pow(Double(b2), Double(updates))
      let step = Float(Double(lr) / bc1), rbc2 = Float(1 / bc2.squareRoot())
      // One parallel region over the flat buffers, each chunk updating the parts of the tensors it
      // covers (a region per tensor left the tensors under two chunks' worth, over a third of
      // gpt-tiny's parameters, to one thread).
      let tensors = parameters.tensors, decays = tensors.map { $0.isMatrix ? 1 - lr * wd : 1 }
      nonisolated(unsafe) let p = p, g = g, m = m.pointer, v = v.pointer
      parallelChunks(parameters.count, threads) { lo, hi in
        for (t, decay) in zip(tensors, decays) {
          let a = max(lo, t.offset), b = min(hi, t.offset + t.count)
          if a < b { Self.adamw(p + a, g + a, m + a, v + a, b - a, b1, b2, eps, decay, step, rbc2) }
        }
      }
    case .sgd(let mu, let wd):
      for t in parameters.tensors {
        let w = t.isMatrix ? wd : 0
        let pp = p + t.offset, gg = g + t.offset, mm = m.pointer + t.offset
        for i in 0..<t.count {
          let grad = gg[i] + w * pp[i]
          mm[i] = mu * mm[i] + grad
          pp[i] -= lr * mm[i]
        }
      }
    case .signSGD(let mu, let wd):
      for t in parameters.tensors {
        let decay = t.isMatrix ? 1 - lr * wd : 1
        let pp = p + t.offset, gg = g + t.offset, mm = m.pointer + t.offset
        for i in 0..<t.count {
          mm[i] = mu * mm[i] + (1 - mu) * gg[i]
          let s: Float = mm[i] > 0 ? 1 : (mm[i] < 0 ? -1 : 0)
          pp[i] = pp[i] * decay - lr * s
        }
      }
    }
  }

  /// The AdamW update of n values, 16 at a time: the same IEEE operations in the same order as
  /// `adamwReference` on every lane (no fused multiply-adds, a correctly rounded square root and
  /// division; the square root from CVectorSqrt, as Swift's is scalar), so the same bits. (Written per
  /// element, the loop stayed scalar, a `vsqrtss` and `vdivss` per value, and the update took 5.6% of
  /// a two-thread gpt-tiny fp32 step's profile samples.)
  @inline(__always)
  static func adamw(
    _ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
    _ v: UnsafeMutablePointer<Float>, _ n: Int, _ b1: Float, _ b2: Float, _ eps: Float, _ decay: Float,
    _ step: Float, _ rbc2: Float
  ) {
    typealias V = SIMD16<Float>
    let vb1 = V(repeating: b1), vb2 = V(repeating: b2), c1 = V(repeating: 1 - b1), c2 = V(repeating: 1 - b2)
    let veps = V(repeating: eps), vdecay = V(repeating: decay), vstep = V(repeating: step), vrbc2 = V(repeating: rbc2)
    func load(_ q: UnsafePointer<Float>) -> V { UnsafeRawPointer(q).loadUnaligned(as: V.self) }
    func store(_ x: V, _ q: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(q).storeBytes(of: x, as: V.self) }
    var i = 0
    while i + 16 <= n {
      let gi = load(g + i)
      let mi = vb1 * load(m + i) + c1 * gi
      let vi = vb2 * load(v + i) + c2 * gi * gi
      store(mi, m + i)
      store(vi, v + i)
      store(load(p + i) * vdecay - vstep * mi / (fpsim_sqrt16(vi) * vrbc2 + veps), p + i)
      i += 16
    }
    adamwReference(p + i, g + i, m + i, v + i, n - i, b1, b2, eps, decay, step, rbc2)
  }

  /// The AdamW update of n values, one at a time (the plain twin of `adamw`; PyTorch's order, see
  /// `OptimizerConfig.adamw`): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
  /// p = p decay - step m / (sqrt(v) rbc2 + eps), step = lr / (1 - b1^t), rbc2 = 1 / sqrt(1 - b2^t).
  static func adamwReference(
    _ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
    _ v: UnsafeMutablePointer<Float>, _ n: Int, _ b1: Float, _ b2: Float, _ eps: Float, _ decay: Float,
    _ step: Float, _ rbc2: Float
  ) {
    for i in 0..<n {
      let gi = g[i]
      let mi = b1 * m[i] + (1 - b1) * gi
      let vi = b2 * v[i] + (1 - b2) * gi * gi
      m[i] = mi
      v[i] = vi
      p[i] = p[i] * decay - step * mi / (vi.squareRoot() * rbc2 + eps)
    }
  }
}

/// Linear warmup then cosine decay (nanoGPT's `get_lr`):
///
///     step < warmup:          lr = peak * (step + 1) / (warmup + 1)
///     warmup <= step <= decay: lr = min + (peak - min) * (1 + cos(pi * (step - warmup) / (decay - warmup))) / 2
///     step > decay:           lr = min
public struct LRSchedule: Hashable, Codable, Sendable {
  public var peak: Float
  public var minimum: Float
  public var warmupSteps: Int
  public var decaySteps: Int

  public init(peak: Float, minimum: Float, warmupSteps: Int, decaySteps: Int) {
    self.peak = peak
    self.minimum = minimum
    self.warmupSteps = warmupSteps
    self.decaySteps = decaySteps
  }

  public func lr(at step: Int) -> Float {
    if step < warmupSteps { return Float(Double(peak) * Double(step + 1) / Double(warmupSteps + 1)) }
    if step > decaySteps || decaySteps <= warmupSteps { return minimum }
    let ratio = Double(step - warmupSteps) / Double(decaySteps - warmupSteps)
    let coeff = 0.5 * (1 + cos(Double.pi * ratio))
    return Float(Double(minimum) + coeff * Double(peak - minimum))
  }
}

/// Global gradient-norm clipping (as `torch.nn.utils.clip_grad_norm_`): the norm is sqrt(sum g^2) over
/// every parameter, accumulated in double; when it exceeds `maxNorm` every gradient is multiplied by
/// maxNorm / (norm + 1e-6). Returns the norm before clipping.
public enum GradientClipping {
  @discardableResult
  public static func clip(_ grads: FloatBuffer, maxNorm: Float?) -> Float {
    let g = grads.pointer, n = grads.count
    var acc = SIMD8<Double>()
    var i = 0
    while i + 8 <= n {
      let x = SIMD8<Double>(UnsafeRawPointer(g + i).loadUnaligned(as: SIMD8<Float>.self))
      acc += x * x
      i += 8
    }
    var s = acc.sum()
    while i < n { s += Double(g[i]) * Double(g[i]); i += 1 }
    let norm = Float(s.squareRoot())
    if let maxNorm, norm > maxNorm {
      let k = Float(Double(maxNorm) / (Double(norm) + 1e-6))
      for j in 0..<n { g[j] *= k }
    }
    return norm
  }
}
