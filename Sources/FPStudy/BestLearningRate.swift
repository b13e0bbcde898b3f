/// The best learning rate of one label of a grid, as the summary's `best_lr` (README "Grids") and the
/// report's grid heat maps choose it: among the learning rates at which no seed diverged and every
/// seed's final validation loss is finite, the one with the lowest median over seeds (the first on a tie).
public enum BestLearningRate {
  public struct Choice: Sendable, Equatable {
    /// Index into the grid's learning rates.
    public var index: Int
    /// Median, minimum and maximum over seeds of the final validation loss there.
    public var median: Double, low: Double, high: Double
  }

  /// `finalEval(l, s)` and `diverged(l, s)` for lr index l < `lrs` and seed index s < `seeds`; nil
  /// when no learning rate qualifies.
  public static func choose(
    lrs: Int, seeds: Int, finalEval: (Int, Int) -> Double, diverged: (Int, Int) -> Bool
  ) -> Choice? {
    var best: Choice? = nil
    for l in 0..<lrs {
      guard (0..<seeds).allSatisfy({ !diverged(l, $0) }) else { continue }
      let finite = (0..<seeds).map { finalEval(l, $0) }.filter(\.isFinite).sorted()
      guard finite.count == seeds, seeds > 0 else { continue }
      let median = Median.of(finite)
      if best == nil || median < best!.median { best = Choice(index: l, median: median, low: finite.first!, high: finite.last!) }
    }
    return best
  }
}
