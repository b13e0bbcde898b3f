import FPFormats

/// Stochastic-rounding streams: the operand `operand` of linear layer `layer` at step `step` draws
/// from stream hash(step, pass, layer, operand) of the run's seed, so every rounded tensor of a run
/// has its own random numbers and a rerun (or a resumed run) draws the same ones.
public enum RoundingStreams {
  /// Passes: training forward/backward, and evaluation forwards (which must not reuse training draws).
  public enum Pass: UInt64, Sendable { case train = 0, eval = 1 }

  public static func stream(step: Int, pass: Pass, layer: Int, operand: GEMMOperand) -> UInt64 {
    var h = CounterRNG.mix(UInt64(bitPattern: Int64(step)) &+ 0x6A09_E667_F3BC_C909)
    h = CounterRNG.mix(h ^ (pass.rawValue &<< 32 | UInt64(layer)))
    return CounterRNG.mix(h ^ UInt64(operand.rawValue))
  }

  /// The Hadamard signs of GEMM `gemm` of linear layer `layer`: fixed for the whole run (one random
  /// sign vector per layer and GEMM, as the NVFP4 recipe's fixed random Hadamard), drawn from the run's
  /// seed through the counter-based generator.
  public static func hadamardStream(layer: Int, gemm: GEMMKind) -> UInt64 {
    CounterRNG.mix(0x4841_4441_4D41_5244 ^ (UInt64(layer) &<< 8 | UInt64(gemm.rawValue)))
  }
}
