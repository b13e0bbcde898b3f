/// A two-layer perceptron classifier: logits = fc2(relu(fc1(x))), cross-entropy loss (mean).
/// x (n, inFeatures), hidden width H, `classes` outputs; parameters `fc1.weight` (H, in), `fc1.bias`,
/// `fc2.weight` (classes, H), `fc2.bias`. Both linear layers run through the precision hook.
public final class MLP {
  public let inFeatures: Int, hidden: Int, classes: Int
  /// Largest number of rows a forward pass takes.
  public let maxRows: Int
  public let parameters: ParameterSet
  public let precision: PrecisionRuntime
  let fc1: LinearGEMMs, fc2: LinearGEMMs
  let x: FloatBuffer, h: FloatBuffer, a: FloatBuffer  // (n,in), (n,H) pre-activation, (n,H) relu
  public let logits: FloatBuffer, probs: FloatBuffer, losses: FloatBuffer  // (n,classes) x2, (n)
  let da: FloatBuffer, dh: FloatBuffer, dlogits: FloatBuffer
  let labels: UnsafeMutablePointer<Int32>
  var rows = 0

  public init(inFeatures: Int, hidden: Int, classes: Int, maxRows: Int, recipe: Recipe = .fp32, seed: UInt64 = 0, threads: Int = 1) {
    self.inFeatures = inFeatures
    self.hidden = hidden
    self.classes = classes
    self.maxRows = maxRows
    parameters = ParameterSet(layout: [
      ("fc1.weight", [hidden, inFeatures]), ("fc1.bias", [hidden]),
      ("fc2.weight", [classes, hidden]), ("fc2.bias", [classes]),
    ])
    precision = PrecisionRuntime(recipe: recipe, seed: seed, threads: threads)
    fc1 = precision.addLinear(name: "fc1", N: maxRows, C: inFeatures, OC: hidden, block: 0, blocks: 1)
    fc2 = precision.addLinear(name: "fc2", N: maxRows, C: hidden, OC: classes, isHead: true)
    precision.finish()
    x = FloatBuffer(count: maxRows * inFeatures)
    h = FloatBuffer(count: maxRows * hidden)
    a = FloatBuffer(count: maxRows * hidden)
    logits = FloatBuffer(count: maxRows * classes)
    probs = FloatBuffer(count: maxRows * classes)
    losses = FloatBuffer(count: maxRows)
    da = FloatBuffer(count: maxRows * hidden)
    dh = FloatBuffer(count: maxRows * hidden)
    dlogits = FloatBuffer(count: maxRows * classes)
    labels = .allocate(capacity: maxRows)
    labels.initialize(repeating: 0, count: maxRows)
  }

  deinit { labels.deallocate() }

  /// PyTorch's default `nn.Linear` initialization: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)).
  public func initializeWeights(seed: UInt64) {
    for (k, t) in parameters.tensors.enumerated() {
      let fanIn = t.name.hasPrefix("fc1") ? inFeatures : hidden
      Initializer.uniform(
        parameters.values.pointer + t.offset, count: t.count, bound: 1 / Float(fanIn).squareRoot(),
        seed: seed, stream: UInt64(k))
    }
  }

  /// Mean cross-entropy of `n` rows of `input` (n, in) with `targets` (n).
  @discardableResult
  public func forward(input: UnsafePointer<Float>, targets: UnsafePointer<Int32>, n: Int) -> Float {
    precondition(n <= maxRows, "more rows than the model was built for")
    rows = n
    x.pointer.update(from: input, count: n * inFeatures)
    for i in 0..<n {
      precondition(targets[i] >= 0 && Int(targets[i]) < classes, "label out of range")
      labels[i] = targets[i]
    }
    let P = parameters
    fc1.forward(out: h.pointer, inp: x.pointer, weight: P.value("fc1.weight"), bias: P.value("fc1.bias"), n: n)
    ReLU.forward(out: a.pointer, inp: h.pointer, count: n * hidden)
    fc2.forward(out: logits.pointer, inp: a.pointer, weight: P.value("fc2.weight"), bias: P.value("fc2.bias"), n: n)
    CrossEntropy.forward(losses: losses.pointer, probs: probs.pointer, logits: logits.pointer, targets: labels, N: n, V: classes)
    return CrossEntropy.mean(losses.pointer, N: n)
  }

  /// Fraction of the last forward's rows whose largest logit is the label.
  public var accuracy: Float {
    var right = 0
    for i in 0..<rows {
      let z = logits.pointer + i * classes
      var best = 0
      for j in 1..<classes where z[j] > z[best] { best = j }
      if best == Int(labels[i]) { right += 1 }
    }
    return rows > 0 ? Float(right) / Float(rows) : 0
  }

  public func backward() {
    let n = rows, P = parameters
    P.grads.zero()
    dlogits.zero()
    CrossEntropy.backward(dlogits: dlogits.pointer, probs: probs.pointer, targets: labels, dloss: precision.lossScale / Float(n), N: n, V: classes)
    da.zero()
    fc2.backward(
      dinp: da.pointer, dweight: P.grad("fc2.weight"), dbias: P.grad("fc2.bias"), dout: dlogits.pointer,
      inp: a.pointer, weight: P.value("fc2.weight"), n: n)
    dh.zero()
    ReLU.backward(dinp: dh.pointer, inp: h.pointer, dout: da.pointer, count: n * hidden)
    fc1.backward(
      dinp: nil, dweight: P.grad("fc1.weight"), dbias: P.grad("fc1.bias"), dout: dh.pointer,
      inp: x.pointer, weight: P.value("fc1.weight"), n: n)
  }
}

/// Linear regression y = X w + b with mean squared error over n rows: parameters `weight` (1, F) and
/// `bias` (1), initialized to zero. With standardized data its loss Hessian is exactly
/// (2/n) [X 1]^T [X 1], whatever the parameters.
public final class LinearRegression {
  public let features: Int
  public let maxRows: Int
  public let parameters: ParameterSet
  public let precision: PrecisionRuntime
  let layer: LinearGEMMs
  let x: FloatBuffer, y: FloatBuffer, pred: FloatBuffer, dpred: FloatBuffer
  var rows = 0

  public init(features: Int, maxRows: Int, recipe: Recipe = .fp32, seed: UInt64 = 0, threads: Int = 1) {
    self.features = features
    self.maxRows = maxRows
    parameters = ParameterSet(layout: [("weight", [1, features]), ("bias", [1])])
    precision = PrecisionRuntime(recipe: recipe, seed: seed, threads: threads)
    layer = precision.addLinear(name: "linear", N: maxRows, C: features, OC: 1)
    precision.finish()
    x = FloatBuffer(count: maxRows * features)
    y = FloatBuffer(count: maxRows)
    pred = FloatBuffer(count: maxRows)
    dpred = FloatBuffer(count: maxRows)
  }

  public func initializeWeights(seed: UInt64) { parameters.values.zero() }

  @discardableResult
  public func forward(input: UnsafePointer<Float>, targets: UnsafePointer<Float>, n: Int) -> Float {
    precondition(n <= maxRows, "more rows than the model was built for")
    rows = n
    x.pointer.update(from: input, count: n * features)
    y.pointer.update(from: targets, count: n)
    layer.forward(out: pred.pointer, inp: x.pointer, weight: parameters.value("weight"), bias: parameters.value("bias"), n: n)
    return MeanSquaredError.forward(pred: pred.pointer, target: y.pointer, N: n)
  }

  public func backward() {
    let P = parameters
    P.grads.zero()
    dpred.zero()
    MeanSquaredError.backward(dpred: dpred.pointer, pred: pred.pointer, target: y.pointer, dloss: precision.lossScale, N: rows)
    layer.backward(
      dinp: nil, dweight: P.grad("weight"), dbias: P.grad("bias"), dout: dpred.pointer, inp: x.pointer,
      weight: P.value("weight"), n: rows)
  }
}
