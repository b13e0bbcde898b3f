import FPFormats
import Foundation

/// The 8x8 handwritten digits (optdigits as bundled in scikit-learn): 1,797 rows of 64 pixels in
/// 0...16 and a label 0...9. Features are pixels / 16. A fixed, seeded split puts 20% in the test set:
/// rows are ordered by a counter-RNG key of (splitSeed, row) and the first fifth is the test set.
public final class DigitsDataset {
  public static let features = 64
  public static let classes = 10
  public let trainX: [Float], trainY: [Int32]
  public let testX: [Float], testY: [Int32]
  public var trainCount: Int { trainY.count }
  public var testCount: Int { testY.count }

  public init(contentsOf url: URL, splitSeed: UInt64 = 0) throws {
    let rows = try DataFiles.numberRows(try DataFiles.gunzip(url), path: url.path)
    guard !rows.isEmpty else { throw DataError.malformed(url.path, "no rows") }
    for (k, r) in rows.enumerated() {
      guard r.count == 65, let label = r.last, (0...9).contains(label), label.rounded() == label else {
        throw DataError.malformed(url.path, "row \(k + 1): expected 64 pixels and a label 0-9")
      }
    }
    let rng = CounterRNG(seed: splitSeed, stream: 0x7370_6C69_74)
    let order = rows.indices.sorted { (rng.bits64(UInt64($0)), $0) < (rng.bits64(UInt64($1)), $1) }
    let testCount = rows.count / 5
    func take(_ idx: ArraySlice<Int>) -> ([Float], [Int32]) {
      var x: [Float] = [], y: [Int32] = []
      for i in idx {
        x += rows[i][0..<64].map { Float($0 / 16) }
        y.append(Int32(rows[i][64]))
      }
      return (x, y)
    }
    (testX, testY) = take(order[..<testCount])
    (trainX, trainY) = take(order[testCount...])
  }
}

/// The diabetes regression data (Efron et al. 2004, as bundled in scikit-learn): 442 rows of 10 raw
/// features and a target. Features and target are standardized with the population standard deviation
/// (divide by n): x' = (x - mean) / std.
public final class DiabetesDataset {
  public static let features = 10
  /// (n, 10) standardized features, row-major, and (n) standardized target.
  public let x: [Float], y: [Float]
  public var count: Int { y.count }

  public init(features: URL, target: URL) throws {
    let xr = try DataFiles.numberRows(try DataFiles.gunzip(features), path: features.path)
    let yr = try DataFiles.numberRows(try DataFiles.gunzip(target), path: target.path)
    guard xr.allSatisfy({ $0.count == 10 }) else { throw DataError.malformed(features.path, "expected 10 features a row") }
    let yv = yr.flatMap { $0 }
    guard yv.count == xr.count, !yv.isEmpty else {
      throw DataError.malformed(target.path, "\(yv.count) targets for \(xr.count) feature rows")
    }
    func standardize(_ v: [Double]) -> [Double] {
      let n = Double(v.count)
      let m = v.reduce(0, +) / n
      let sd = (v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / n).squareRoot()
      return v.map { sd > 0 ? ($0 - m) / sd : 0 }
    }
    let columns = (0..<10).map { j in standardize(xr.map { $0[j] }) }
    var x = [Float](repeating: 0, count: xr.count * 10)
    for i in 0..<xr.count { for j in 0..<10 { x[i * 10 + j] = Float(columns[j][i]) } }
    self.x = x
    y = standardize(yv).map { Float($0) }
  }
}
