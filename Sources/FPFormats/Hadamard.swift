/// A random Hadamard transform R = D H / sqrt(n): H the n x n Walsh-Hadamard matrix (n a power of two,
/// 2...256 here, 16...128 in training recipes), D a diagonal of random signs from (seed, stream).
/// R is orthogonal, so for two matrices transformed along their shared reduction axis,
/// (X R)(W R)^T = X W^T in exact arithmetic; rounding X R and W R to a block format spreads outliers
/// across each group of n values first.
///
/// Rows of a row-major [rows, cols] matrix are transformed in consecutive groups of n along the last
/// axis (cols must be a multiple of n): y = x R, computed as FWHT(x * d) / sqrt(n), in float32.
public struct RandomHadamard: Sendable, Hashable {
  public let size: Int
  public let seed: UInt64
  public let stream: UInt64
  /// The random signs, +1 or -1.
  public let signs: [Float]

  public init(size: Int, seed: UInt64 = 0, stream: UInt64 = 0) throws {
    guard size >= 2, size <= 256, size & (size - 1) == 0 else {
      throw FormatError.invalid("Hadamard size \(size): use a power of two from 2 to 256 (16 ... 128 in recipes)")
    }
    self.size = size
    self.seed = seed
    self.stream = stream
    let rng = CounterRNG(seed: seed, stream: stream)
    signs = (0..<size).map { rng.bits32(UInt64($0)) & 1 == 0 ? 1 : -1 }
  }

  /// x <- x R on every group of n values along the last axis.
  public func forward(_ x: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int) throws {
    try check(cols)
    for g in stride(from: 0, to: rows * cols, by: size) {
      let p = x.baseAddress! + g
      for i in 0..<size { p[i] *= signs[i] }
      RandomHadamard.fwht(p, size)
    }
  }

  /// x <- x R^T (the inverse): FWHT(x) / sqrt(n), then the signs.
  public func inverse(_ x: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int) throws {
    try check(cols)
    for g in stride(from: 0, to: rows * cols, by: size) {
      let p = x.baseAddress! + g
      RandomHadamard.fwht(p, size)
      for i in 0..<size { p[i] *= signs[i] }
    }
  }

  private func check(_ cols: Int) throws {
    guard cols % size == 0 else {
      throw FormatError.invalid("a \(size)-point Hadamard needs rows whose length is a multiple of \(size), not \(cols)")
    }
  }

  /// In-place orthonormal fast Walsh-Hadamard transform of n values (n log2 n additions, then 1/sqrt(n)).
  static func fwht(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
    var h = 1
    while h < n {
      for i in stride(from: 0, to: n, by: 2 * h) {
        for j in i..<(i + h) {
          let a = p[j], b = p[j + h]
          p[j] = a + b
          p[j + h] = a - b
        }
      }
      h *= 2
    }
    let scale = 1 / Float(n).squareRoot()
    for i in 0..<n { p[i] *= scale }
  }
}
