import Foundation  // logf

/// Softmax over the last dimension: probs(N,V) from logits(N,V),
///
///     p_j = exp(z_j - max z) / sum_k exp(z_k - max z)
///
/// and its backward, dz_j += p_j * (dp_j - sum_k dp_k p_k).
public enum Softmax {
  public static func forward(probs: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>, N: Int, V: Int) {
    for n in 0..<N { row(probs + n * V, logits + n * V, V) }
  }

  /// One row; returns log(sum exp(z - max)) + max (the log-partition), which cross-entropy needs.
  @inline(__always)
  @discardableResult
  static func row(_ p: UnsafeMutablePointer<Float>, _ z: UnsafePointer<Float>, _ V: Int) -> Float {
    var m = -Float.infinity
    for j in 0..<V { m = max(m, z[j]) }
    for j in 0..<V { p[j] = FastMath.exp(z[j] - m) }
    let s = Reduce.sum(p, V)
    let inv = 1 / s
    for j in 0..<V { p[j] *= inv }
    return m + logf(s)
  }

  public static func backward(
    dlogits: UnsafeMutablePointer<Float>, probs: UnsafePointer<Float>, dprobs: UnsafePointer<Float>, N: Int, V: Int
  ) {
    for n in 0..<N {
      let p = probs + n * V, dp = dprobs + n * V, dz = dlogits + n * V
      let s = Reduce.dot(dp, p, V)
      for j in 0..<V { dz[j] += p[j] * (dp[j] - s) }
    }
  }
}

/// Cross-entropy fused with softmax, per position:
///
///     loss_n = -log p_n[target_n] = logsumexp(z_n) - z_n[target_n]
///
/// logits and probs are (N,V), targets and losses (N). The backward takes dloss, the gradient of the
/// reduced loss with respect to each per-position loss (1/N for the mean):
///
///     dlogits_n += dloss * (p_n - onehot(target_n))
///
/// Rows are independent: `threads` split them, and results do not depend on it.
public enum CrossEntropy {
  /// A language model's loss head (GPT, Llama): copies `targets` (N token ids, each checked to be
  /// below V) into `kept`, which the backward pass reads, and returns the mean of `forward`'s losses.
  static func meanLoss(
    logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, kept: UnsafeMutablePointer<Int32>,
    losses: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>, N: Int, V: Int, threads: Int = 1
  ) -> Float {
    for i in 0..<N {
      precondition(targets[i] >= 0 && Int(targets[i]) < V, "target out of range")
      kept[i] = targets[i]
    }
    forward(losses: losses, probs: probs, logits: logits, targets: kept, N: N, V: V, threads: threads)
    return mean(losses, N: N)
  }

  public static func forward(
    losses: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
    targets: UnsafePointer<Int32>, N: Int, V: Int, threads: Int = 1
  ) {
    nonisolated(unsafe) let losses = losses, probs = probs, logits = logits, targets = targets
    parallelRows(N, width: V, threads) { lo, hi in
      for n in lo..<hi {
        let lse = Softmax.row(probs + n * V, logits + n * V, V)
        losses[n] = lse - logits[n * V + Int(targets[n])]
      }
    }
  }

  public static func backward(
    dlogits: UnsafeMutablePointer<Float>, probs: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
    dloss: Float, N: Int, V: Int, threads: Int = 1
  ) {
    nonisolated(unsafe) let dlogits = dlogits, probs = probs, targets = targets
    parallelRows(N, width: V, threads) { lo, hi in
      for n in lo..<hi {
        let p = probs + n * V, dz = dlogits + n * V
        for j in 0..<V { dz[j] += dloss * p[j] }
        dz[Int(targets[n])] -= dloss
      }
    }
  }

  /// The mean of `losses` (N), summed in double so that the reported loss does not depend on N's size.
  public static func mean(_ losses: UnsafePointer<Float>, N: Int) -> Float {
    var s = 0.0
    for n in 0..<N { s += Double(losses[n]) }
    return Float(s / Double(N))
  }
}

/// Mean squared error, loss = sum_n (pred_n - target_n)^2 / N over N values;
/// dpred_n += dloss * 2 (pred_n - target_n) / N.
public enum MeanSquaredError {
  public static func forward(pred: UnsafePointer<Float>, target: UnsafePointer<Float>, N: Int) -> Float {
    var s = 0.0
    for n in 0..<N {
      let d = Double(pred[n]) - Double(target[n])
      s += d * d
    }
    return Float(s / Double(N))
  }

  public static func backward(
    dpred: UnsafeMutablePointer<Float>, pred: UnsafePointer<Float>, target: UnsafePointer<Float>,
    dloss: Float, N: Int
  ) {
    let k = dloss * 2 / Float(N)
    for n in 0..<N { dpred[n] += k * (pred[n] - target[n]) }
  }
}
