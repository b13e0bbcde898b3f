/// A random Hadamard transform R = D H / sqrt(n): H the n x n Walsh-Hadamard matrix (n a power of two,
/// 2...256 here, 16...128 in training recipes), D a diagonal of random signs from (seed, stream).
/// R is orthogonal, so for two matrices transformed along their shared reduction axis,
/// (X R)(W R)^T = X W^T in exact arithmetic; rounding X R and W R to a block format spreads outliers
/// across each group of n values first.
///
/// Rows of a row-major [rows, cols] matrix are transformed in consecutive groups of n along the last
/// axis (cols must be a multiple of n): y = x R in float32, as a dense product for n <= 32 and as
/// FWHT(x * d) / sqrt(n) (fast Walsh-Hadamard butterflies) above.
public struct RandomHadamard: Sendable, Hashable {
  public let size: Int
  public let seed: UInt64
  public let stream: UInt64
  /// The random signs, +1 or -1.
  public let signs: [Float]
  /// R itself, row-major n x n, for sizes up to `denseLimit`: there a dense product (n multiply-adds
  /// per value, all 512-bit vector operations) is faster than the n log2 n butterflies, whose short
  /// early stages do not vectorize.
  let matrix: [Float]
  let transposedMatrix: [Float]
  static let denseLimit = 32

  public init(size: Int, seed: UInt64 = 0, stream: UInt64 = 0) throws {
    guard size >= 2, size <= 256, size & (size - 1) == 0 else {
      throw FormatError.invalid("Hadamard size \(size): use a power of two from 2 to 256 (16 ... 128 in recipes)")
    }
    self.size = size
    self.seed = seed
    self.stream = stream
    let rng = CounterRNG(seed: seed, stream: stream)
    signs = (0..<size).map { rng.bits32(UInt64($0)) & 1 == 0 ? 1 : -1 }
    if size <= RandomHadamard.denseLimit {
      // R[i][j] = d_i * H[i][j] / sqrt(n), H[i][j] = (-1)^popcount(i & j).
      let scale = 1 / Float(size).squareRoot()
      var m = [Float](repeating: 0, count: size * size)
      for i in 0..<size {
        for j in 0..<size { m[i * size + j] = signs[i] * ((i & j).nonzeroBitCount % 2 == 0 ? scale : -scale) }
      }
      matrix = m
      transposedMatrix = (0..<size * size).map { m[($0 % size) * size + $0 / size] }
    } else {
      matrix = []
      transposedMatrix = []
    }
  }

  /// x <- x R on every group of n values along the last axis. Returns the result's max |x| over its
  /// finite values, taken as each piece is written (NVFP4 and tensor scaling need it before any block
  /// can be rounded: this saves them a pass over the tensor).
  @discardableResult
  public func forward(_ x: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int) throws -> Float {
    try check(cols)
    let n = rows * cols
    if size == 16 { return forward16(x.baseAddress!, n) }
    var amax: UInt32 = 0
    // Pieces of 64 Ki values: the amax reads each piece again while it is still in cache.
    for p0 in stride(from: 0, to: n, by: 1 << 16) {
      let p = x.baseAddress! + p0, len = min(n - p0, 1 << 16)
      if !matrix.isEmpty {
        dense(p, len, transposed: false)
      } else {
        for g in stride(from: 0, to: len, by: size) {
          for i in 0..<size { p[g + i] *= signs[i] }
          RandomHadamard.fwht(p + g, size)
        }
      }
      amax = max(amax, BlockAmax.finiteAmax(p, len).bitPattern)
    }
    return Float(bitPattern: amax)
  }

  /// x <- x R^T (the inverse): FWHT(x) / sqrt(n), then the signs.
  public func inverse(_ x: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int) throws {
    try check(cols)
    if !matrix.isEmpty { return dense(x.baseAddress!, rows * cols, transposed: true) }
    for g in stride(from: 0, to: rows * cols, by: size) {
      let p = x.baseAddress! + g
      RandomHadamard.fwht(p, size)
      for i in 0..<size { p[i] *= signs[i] }
    }
  }

  /// Each group y = x R (or x R^T): y_j = sum_k x_k R[k][j], in float32 with fused multiply-adds,
  /// summed in a fixed order.
  /// Sizes 16 and 32 keep y in one or two 16-lane registers (SIMD16 arithmetic, no comparisons).
  private func dense(_ p: UnsafeMutablePointer<Float>, _ count: Int, transposed: Bool) {
    let n = size
    let r = transposed ? transposedMatrix : matrix
    r.withUnsafeBufferPointer { rb in
      let rm = rb.baseAddress!
      if n == 16 {
        Self.dense16(p, count, UnsafeRawPointer(rm).bindMemory(to: SIMD16<Float>.self, capacity: 16))
        return
      }
      if n % 16 == 0 {
        // Four partial sums (k mod 4) break the chain of dependent additions; each group's result is
        // complete before it overwrites x.
        let lanes = n / 16
        let rows = UnsafeRawPointer(rm).bindMemory(to: SIMD16<Float>.self, capacity: n * lanes)
        var out = (SIMD16<Float>(repeating: 0), SIMD16<Float>(repeating: 0))
        for g in stride(from: 0, to: count, by: n) {
          let x = p + g
          for half in 0..<lanes {
            var a0 = SIMD16<Float>(repeating: 0), a1 = a0, a2 = a0, a3 = a0
            for k in stride(from: 0, to: n, by: 4) {
              a0 = a0.addingProduct(rows[k * lanes + half], SIMD16(repeating: x[k]))
              a1 = a1.addingProduct(rows[(k + 1) * lanes + half], SIMD16(repeating: x[k + 1]))
              a2 = a2.addingProduct(rows[(k + 2) * lanes + half], SIMD16(repeating: x[k + 2]))
              a3 = a3.addingProduct(rows[(k + 3) * lanes + half], SIMD16(repeating: x[k + 3]))
            }
            if half == 0 { out.0 = (a0 + a1) + (a2 + a3) } else { out.1 = (a0 + a1) + (a2 + a3) }
          }
          UnsafeMutableRawPointer(x).storeBytes(of: out.0, as: SIMD16<Float>.self)
          if lanes == 2 { UnsafeMutableRawPointer(x + 16).storeBytes(of: out.1, as: SIMD16<Float>.self) }
        }
        return
      }
      var y = [Float](repeating: 0, count: n)
      for g in stride(from: 0, to: count, by: n) {
        let x = p + g
        for j in 0..<n {
          var s: Float = 0
          for k in 0..<n { s += x[k] * rm[k * n + j] }
          y[j] = s
        }
        for j in 0..<n { x[j] = y[j] }
      }
    }
  }

  /// `forward` for n = 16: `dense16`, with the amax taken from each group's result as it is stored.
  private func forward16(_ p: UnsafeMutablePointer<Float>, _ count: Int) -> Float {
    matrix.withUnsafeBufferPointer { m in
      let lanes = Self.dense16(
        p, count, UnsafeRawPointer(m.baseAddress!).bindMemory(to: SIMD16<Float>.self, capacity: 16), amax: true)
      return Float(bitPattern: lanes.max())
    }
  }

  /// The 16-point product with R's 16 rows held in registers: per group, 16 broadcasts and 16 fused
  /// multiply-adds into four partial sums (k mod 4), added pairwise; the same order as the general loop.
  /// With `amax`, returns lane j's running max of the results' finite |y| bits, kept in a register
  /// (`BlockAmax.sixteenBlocks` says why not in memory); else zeros.
  @discardableResult
  private static func dense16(
    _ p: UnsafeMutablePointer<Float>, _ count: Int, _ rows: UnsafePointer<SIMD16<Float>>, amax: Bool = false
  ) -> SIMD16<UInt32> {
    typealias V = SIMD16<Float>
    var lanes = SIMD16<UInt32>()
    let r0 = rows[0], r1 = rows[1], r2 = rows[2], r3 = rows[3], r4 = rows[4], r5 = rows[5], r6 = rows[6]
    let r7 = rows[7], r8 = rows[8], r9 = rows[9], r10 = rows[10], r11 = rows[11], r12 = rows[12]
    let r13 = rows[13], r14 = rows[14], r15 = rows[15]
    for g in stride(from: 0, to: count, by: 16) {
      let x = p + g
      var a0 = V(repeating: 0), a1 = a0, a2 = a0, a3 = a0
      a0 = a0.addingProduct(r0, V(repeating: x[0])); a1 = a1.addingProduct(r1, V(repeating: x[1]))
      a2 = a2.addingProduct(r2, V(repeating: x[2])); a3 = a3.addingProduct(r3, V(repeating: x[3]))
      a0 = a0.addingProduct(r4, V(repeating: x[4])); a1 = a1.addingProduct(r5, V(repeating: x[5]))
      a2 = a2.addingProduct(r6, V(repeating: x[6])); a3 = a3.addingProduct(r7, V(repeating: x[7]))
      a0 = a0.addingProduct(r8, V(repeating: x[8])); a1 = a1.addingProduct(r9, V(repeating: x[9]))
      a2 = a2.addingProduct(r10, V(repeating: x[10])); a3 = a3.addingProduct(r11, V(repeating: x[11]))
      a0 = a0.addingProduct(r12, V(repeating: x[12])); a1 = a1.addingProduct(r13, V(repeating: x[13]))
      a2 = a2.addingProduct(r14, V(repeating: x[14])); a3 = a3.addingProduct(r15, V(repeating: x[15]))
      let y = (a0 + a1) + (a2 + a3)
      UnsafeMutableRawPointer(x).storeBytes(of: y, as: V.self)
      if amax { lanes = BlockAmax.lanesMax(lanes, BlockAmax.finiteMagnitudes(unsafeBitCast(y, to: SIMD16<UInt32>.self))) }
    }
    return lanes
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
