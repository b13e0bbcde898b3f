import FPEngine
import FPFormats
import Foundation

/// Loss-landscape sharpness of a model at given parameters (README "Sharpness" has the formulas).
public enum SharpnessMetric: String, CaseIterable, Codable, Sendable {
  case keskarLogits = "keskar-logits"
  case hessianTop = "hessian-top"
  case sam
}

public struct SharpnessParameters: Codable, Sendable, Hashable {
  /// keskar-logits: the box half-width factor epsilon, C = { |y_i| <= epsilon (|z_i| + 1) }.
  public var epsilon: Double = 1e-3
  /// keskar-logits: projected gradient ascent iterations.
  public var ascentSteps: Int = 20
  /// hessian-top: power iterations at most, relative convergence tolerance of the eigenvalue, and the
  /// central-difference step h of the Hessian-vector product (on a unit vector).
  public var powerIterations: Int = 100
  public var tolerance: Double = 1e-4
  public var differenceStep: Double = 1e-2
  /// sam: the ascent radius rho.
  public var rho: Double = 0.05
  /// The training batch (step index) that hessian-top and sam use; keskar-logits uses validation batch 0.
  public var batch: Int = 0
  public var seed: UInt64 = 0

  public init() {}
}

public enum Sharpness {
  /// Computes `metric` for `task` at its current parameters (restored from a checkpoint).
  public static func measure(_ metric: SharpnessMetric, task: any TrainingTask, parameters p: SharpnessParameters) throws -> Double {
    switch metric {
    case .hessianTop: return hessianTop(task, p)
    case .sam: return sam(task, p)
    case .keskarLogits:
      guard let lm = task as? any CharacterLanguageTask else {
        throw SharpnessError("keskar-logits needs a language model (gpt-*, llama-*): its logits are the next-token scores")
      }
      return keskarLogits(lm, p)
    }
  }

  /// Gradient of the batch loss at the current parameters, as Double. Under a recipe with loss
  /// scaling the backward pass ran on the loss times `precision.lossScale` (the run's scale at the
  /// checkpoint, so that its gradients underflow as in training); the gradient is divided by it.
  static func gradient(_ task: any TrainingTask, _ batch: Int) -> (Float, [Double]) {
    let loss = task.trainStep(batch)
    let g = task.parameters.grads, unscale = 1 / Double(task.precision.lossScale)
    return (loss, (0..<g.count).map { Double(g.pointer[$0]) * unscale })
  }

  /// Whether `metric` is defined for `model`: keskar-logits needs a language model's next-token
  /// logits (gpt-*, llama-*); hessian-top and sam need only a training loss, so they apply to every model.
  /// (Keep in step with the guard in `measure`.)
  public static func applies(_ metric: SharpnessMetric, to model: ModelSpec) -> Bool {
    switch metric {
    case .keskarLogits:
      // Exhaustive on purpose: a new model must say whether it is a language model.
      switch model {
      case .gpt, .llama: return true
      case .mlp, .linreg: return false
      }
    case .hessianTop, .sam: return true
    }
  }

  /// hessian-top with how it ended: the eigenvalue, the power iterations run, and whether the
  /// Rayleigh quotient settled within `tolerance` (false: it stopped at `powerIterations`).
  public struct HessianTop: Sendable, Equatable {
    public var value: Double
    public var iterations: Int
    public var converged: Bool
  }

  static func hessianTop(_ task: any TrainingTask, _ p: SharpnessParameters) -> Double {
    hessianTopDetailed(task, p).value
  }

  /// Largest-magnitude eigenvalue of the training-loss Hessian by power iteration on
  /// Hv ~ (g(theta + h v) - g(theta - h v)) / (2h) for unit v (exact for quadratic losses up to
  /// float32 rounding), started from a seeded random vector; stops when the Rayleigh quotient
  /// changes by less than `tolerance` relatively.
  public static func hessianTopDetailed(_ task: any TrainingTask, _ p: SharpnessParameters) -> HessianTop {
    let P = task.parameters
    let n = P.count
    let theta = (0..<n).map { P.values.pointer[$0] }
    let rng = CounterRNG(seed: p.seed, stream: 0x5AB)
    var v = (0..<n).map { Double(rng.uniform(UInt64($0))) - 0.5 }
    normalize(&v)
    var lambda = 0.0, iterations = 0, converged = false
    func set(_ t: Double) { for i in 0..<n { P.values.pointer[i] = Float(Double(theta[i]) + t * v[i]) } }
    for k in 0..<p.powerIterations {
      iterations = k + 1
      set(p.differenceStep)
      let (_, gPlus) = gradient(task, p.batch)
      set(-p.differenceStep)
      let (_, gMinus) = gradient(task, p.batch)
      var hv = (0..<n).map { (gPlus[$0] - gMinus[$0]) / (2 * p.differenceStep) }
      let next = zip(v, hv).reduce(0.0) { $0 + $1.0 * $1.1 }
      normalize(&hv)
      v = hv
      converged = k > 0 && abs(next - lambda) <= p.tolerance * abs(next)
      lambda = next
      if converged { break }
    }
    for i in 0..<n { P.values.pointer[i] = theta[i] }
    return HessianTop(value: lambda, iterations: iterations, converged: converged)
  }

  /// L(theta + rho g/|g|) - L(theta) on the training batch: the loss increase of one normalized
  /// gradient-ascent step of radius rho.
  static func sam(_ task: any TrainingTask, _ p: SharpnessParameters) -> Double {
    let P = task.parameters
    let n = P.count
    let theta = (0..<n).map { P.values.pointer[$0] }
    let (loss, g) = gradient(task, p.batch)
    let norm = g.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
    guard norm > 0 else { return 0 }
    for i in 0..<n { P.values.pointer[i] = Float(Double(theta[i]) + p.rho * g[i] / norm) }
    let shifted = task.trainStep(p.batch)
    for i in 0..<n { P.values.pointer[i] = theta[i] }
    return Double(shifted) - Double(loss)
  }

  /// phi = 100 (max over y in C of L(z + y) - L(z)) / (1 + L(z)) on the last position's logits z of
  /// each sequence of validation batch 0, averaged over the batch; L the cross-entropy against the
  /// true next token, C = { |y_i| <= epsilon (|z_i| + 1) }.
  static func keskarLogits(_ task: any CharacterLanguageTask, _ p: SharpnessParameters) -> Double {
    let lm = task.languageModel
    let B = lm.B, T = lm.T, V = task.data.vocabularySize
    let x = UnsafeMutablePointer<Int32>.allocate(capacity: B * T), y = UnsafeMutablePointer<Int32>.allocate(capacity: B * T)
    defer { x.deallocate(); y.deallocate() }
    task.data.validationBatch(index: 0, seed: task.seed, B: B, T: T, tokens: x, targets: y)
    lm.forward(tokens: x, targets: y)
    let stride = lm.logits.count / (B * T)  // the logits row may be padded beyond V
    var total = 0.0
    for b in 0..<B {
      let row = lm.logits.pointer + (b * T + T - 1) * stride
      let z = (0..<V).map { Double(row[$0]) }
      total += keskarPhi(z: z, target: Int(y[b * T + T - 1]), epsilon: p.epsilon, steps: p.ascentSteps)
    }
    return total / Double(B)
  }

  /// One sequence's phi. The ascent: y <- clip_C(y + a * sign(dL/dy)), a_i = w_i / 2 with
  /// w_i = epsilon (|z_i| + 1), `steps` times from y = 0. dL/dy_i = softmax(z + y)_i - [i = target]
  /// is positive off the target and negative on it everywhere, so the ascent reaches the box's
  /// maximizing vertex (y_i = +w_i, y_target = -w_target) in two steps and stays there.
  public static func keskarPhi(z: [Double], target: Int, epsilon: Double, steps: Int) -> Double {
    let w = z.map { epsilon * (abs($0) + 1) }
    var y = [Double](repeating: 0, count: z.count)
    for _ in 0..<steps {
      let g = crossEntropyGradient(zip(z, y).map { $0 + $1 }, target)
      for i in y.indices {
        let s: Double = g[i] > 0 ? 1 : (g[i] < 0 ? -1 : 0)
        y[i] = min(w[i], max(-w[i], y[i] + s * w[i] / 2))
      }
    }
    let base = crossEntropy(z, target)
    let top = crossEntropy(zip(z, y).map { $0 + $1 }, target)
    return 100 * (top - base) / (1 + base)
  }

  public static func crossEntropy(_ z: [Double], _ target: Int) -> Double {
    let m = z.max() ?? 0
    let lse = m + log(z.reduce(0.0) { $0 + exp($1 - m) })
    return lse - z[target]
  }

  static func crossEntropyGradient(_ z: [Double], _ target: Int) -> [Double] {
    let m = z.max() ?? 0
    let e = z.map { exp($0 - m) }
    let s = e.reduce(0, +)
    return e.enumerated().map { $0.element / s - ($0.offset == target ? 1 : 0) }
  }

  static func normalize(_ v: inout [Double]) {
    let n = v.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
    if n > 0 { for i in v.indices { v[i] /= n } }
  }
}

public struct SharpnessError: Error, CustomStringConvertible {
  public let description: String
  public init(_ d: String) { description = d }
}
