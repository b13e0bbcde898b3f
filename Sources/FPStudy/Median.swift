/// The one median of the project (summaries, reports, benchmarks): of the finite values, the middle
/// one for an odd count and the mean of the middle two for an even count; NaN when there is none.
public enum Median {
  public static func of(_ v: [Double]) -> Double {
    let f = v.filter(\.isFinite).sorted()
    guard !f.isEmpty else { return .nan }
    return f.count % 2 == 1 ? f[f.count / 2] : (f[f.count / 2 - 1] + f[f.count / 2]) / 2
  }
}
