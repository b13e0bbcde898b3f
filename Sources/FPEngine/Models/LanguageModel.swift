/// A next-token model over batches of B sequences of T tokens (the GPT and the Llama): what the
/// language-model task trains and what sharpness measures on its logits.
public protocol LanguageModel: AnyObject {
  var B: Int { get }
  var T: Int { get }
  var parameters: ParameterSet { get }
  var precision: PrecisionRuntime { get }
  /// (B,T,V) scores of the last `forward`, row (b,t) predicting token t+1 of sequence b.
  var logits: FloatBuffer { get }
  /// The model's own initialization rule, seeded.
  func initializeWeights(seed: UInt64)
  /// Forward over `tokens` (B,T); with `targets` (B,T) returns the mean cross-entropy, else NaN.
  @discardableResult
  func forward(tokens: UnsafePointer<Int32>, targets: UnsafePointer<Int32>?) -> Float
  /// Gradients of the last forward's mean loss (times the recipe's loss scale) into `parameters.grads`.
  func backward()
}

extension GPT: LanguageModel {}
