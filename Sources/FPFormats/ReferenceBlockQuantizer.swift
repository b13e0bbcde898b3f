import Foundation  // frexp, fmaf

/// The scalar reference for the block-scaled formats: `BlockQuantizer` (rows, rows read from a
/// source, 2-D tiles, blocks down columns), `quantizeColumns` (with or without its fused Hadamard
/// transform) and the engine's threaded splits of them must all agree with it bit for bit and count
/// for count (`BlockReferenceTests`).
///
/// Written from the README's "Block-scaled formats" semantics, block by block and value by value, and
/// sharing nothing with the fast paths: no kernel, no amax loop, no factor code. Elements and scales
/// are rounded by `ReferenceQuantizer` (the independent Double reference of the element formats); the
/// random numbers are `CounterRNG`'s, which define the stream. Float32 steps are written as
/// `fl(Double(a) op Double(b))`: a product of two floats is exact in Double, and a quotient rounded to
/// Double and then to float equals the float32 quotient (53 >= 2 * 24 + 2, so double rounding is
/// innocuous), so this is IEEE float32 arithmetic without using it.
///
/// What is computed, for a row-major matrix X [rows, cols]:
/// 1. A, the matrix blocked along its rows: X itself, or X^T [cols, rows] for vector blocks with
///    axis 0 (blocks down columns). With a random Hadamard transform, A <- A R on each group of n
///    values along A's rows (see `hadamard`).
/// 2. Blocks of A: `N` consecutive values along each row (a short last block is its own block), a
///    whole row (`row`), everything (`tensor`), or (on X) RxC tiles, short at the right and bottom
///    edges, taken tile row by tile row, each tile's values in row-major order. Element counter i is a
///    value's position in that order (A's row-major order for rows); block b is the block's position
///    in block order (for tiles, the tile's position in that order, short tiles included).
/// 3. A_t = max |a| over the finite values of A (0 if none); per block A_b likewise.
/// 4. Per block, from the rule, a factor `down` applied before element rounding, `up` after, and the
///    stored scale:
///    - floor: e = floor(log2 A_b) - emax_elem (emax_elem = floor(log2 max_elem)); ceil: the smallest
///      e with max_elem * 2^e >= A_b. All-zero block: e = -127. Clamped to [-127, 127] (a clamp from
///      below with A_b > 0 counts as scale underflow, from above as scale saturation).
///      down = 2^-e, up = stored = 2^e.
///    - amax: g = fl(A_t / fl(max_elem * max_scale)) with tensor scaling and A_t > 0, else 1;
///      s = S(fl(fl(A_b / max_elem) / g)), S the scale format's rounding (saturating; stochastic draws
///      counter b of stream + 1); stored = s; d = fl(s * g); down = fl(1 / d), up = d, except when d is
///      0 (or not finite): down = up = 0.
///    - nvfp4: S_enc = min(fl(2688 / A_t), FLT_MAX) (1 when A_t = 0), S_dec = fl(1 / S_enc),
///      M = fl(S_enc * fl(1/6)); s = S(min(fl(A_b * M), FLT_MAX)) = stored;
///      down = min(fl(1 / fl(s * S_dec)), FLT_MAX), up = fl(fl(s * A_t) * fl(1/2688)).
///    A rounded scale counts as saturated when the unrounded one exceeds the scale's max, as underflow
///    when a positive unrounded scale rounded to 0.
/// 5. Per value a: y = fl(a * down); q = Q(y), the element rounding with saturation (stochastic:
///    counter i of `stream`); out = fl(q * up); the element stored is q. So for a block whose scale is 0
///    (down = up = 0) finite values become zeros with their signs, and Inf or NaN become Q(NaN) * 0
///    (a NaN, or a zero for elements without NaN): the README's "infinities saturate" holds wherever
///    the block's scale is not 0.
/// 6. Telemetry: a value saturated when |y| >= max_elem + half the element format's top spacing (NaN
///    never); flushed when a is non-zero and not NaN and out is +-0; blocks, count, amax = A_t.
/// The result is laid out as X (transposed back for axis 0); elements likewise; scales in block order.
public struct ReferenceBlockQuantizer: Sendable {
  public let format: ScaledFormat
  public let rounding: RoundingMode
  public let seed: UInt64
  public let stream: UInt64

  public init(format: ScaledFormat, rounding: RoundingMode = .rne, seed: UInt64 = 0, stream: UInt64 = 0) {
    self.format = format
    self.rounding = rounding
    self.seed = seed
    self.stream = stream
  }

  public struct Result: Sendable {
    /// The quantized values, laid out as the input.
    public var values: [Float]
    /// Each value's element (the rounded value before scaling back), laid out as the input.
    public var elements: [Float]
    /// Each block's stored scale, in block order.
    public var scales: [Float]
    public var stats: QuantizationStats
  }

  /// Quantizes X [rows, cols] (row-major). `axis` 0 puts vector blocks down the columns; `hadamard`
  /// transforms A along its rows first (its size must divide A's row length).
  public func quantize(_ x: [Float], rows: Int, cols: Int, axis: Int = 1, hadamard: RandomHadamard? = nil) -> Result {
    precondition(x.count == rows * cols)
    var transposed = false
    if case .vector = format.block, axis == 0 { transposed = true }
    let (ar, ac) = transposed ? (cols, rows) : (rows, cols)
    var a = [Float](repeating: 0, count: rows * cols)
    for r in 0..<rows {
      for c in 0..<cols {
        if transposed { a[c * rows + r] = x[r * cols + c] } else { a[r * cols + c] = x[r * cols + c] }
      }
    }
    if let h = hadamard { a = Self.hadamard(a, rows: ar, cols: ac, size: h.size, seed: h.seed, stream: h.stream) }

    // The blocks: lists of positions in A, in block order, each in counter order.
    var blocks: [[Int]] = []
    var counters: [Int] = []  // counter of the value at each position of the concatenated blocks
    switch format.block {
    case .vector(let n):
      for r in 0..<ar {
        for c0 in stride(from: 0, to: ac, by: n) { blocks.append(Array((r * ac + c0)..<(r * ac + min(ac, c0 + n)))) }
      }
    case .row:
      for r in 0..<ar { blocks.append(Array((r * ac)..<(r * ac + ac))) }
    case .tensor:
      blocks.append(Array(0..<(ar * ac)))
    case .tile(let tr, let tc):
      for r0 in stride(from: 0, to: ar, by: tr) {
        for c0 in stride(from: 0, to: ac, by: tc) {
          var tile: [Int] = []
          for r in r0..<min(ar, r0 + tr) { for c in c0..<min(ac, c0 + tc) { tile.append(r * ac + c) } }
          blocks.append(tile)
        }
      }
    }
    var position = 0
    for block in blocks { for _ in block { counters.append(position); position += 1 } }

    let tensorAmax = Self.finiteAmax(a)
    let element = ReferenceQuantizer(
      format: format.element, rounding: rounding, overflow: .saturate, seed: seed, stream: stream)
    let scaleRounder = ReferenceQuantizer(
      format: format.scale, rounding: format.scaleRounding, overflow: .saturate, seed: seed, stream: stream &+ 1)
    let threshold = Self.overflowThreshold(format.element)

    var out = [Float](repeating: 0, count: a.count)
    var elements = [Float](repeating: 0, count: a.count)
    var scales: [Float] = []
    var stats = QuantizationStats()
    var k = 0
    for (b, block) in blocks.enumerated() {
      let blockAmax = Self.finiteAmax(block.map { a[$0] })
      let f = factors(blockAmax: blockAmax, tensorAmax: tensorAmax, blockIndex: b, scaleRounder, &stats)
      scales.append(f.stored)
      for p in block {
        let v = a[p]
        let y = Self.fl(Double(v) * Double(f.down))
        let q = element.quantize(y, index: counters[k])
        let o = Self.fl(Double(q) * Double(f.up))
        out[p] = o
        elements[p] = q
        if !y.isNaN && Double(y.magnitude) >= threshold { stats.saturated += 1 }
        if v != 0 && !v.isNaN && o == 0 { stats.flushedToZero += 1 }
        k += 1
      }
    }
    stats.blocks = blocks.count
    stats.count = a.count
    stats.amax = tensorAmax

    if transposed {
      var back = out, backElements = elements
      for r in 0..<rows {
        for c in 0..<cols {
          back[r * cols + c] = out[c * rows + r]
          backElements[r * cols + c] = elements[c * rows + r]
        }
      }
      (out, elements) = (back, backElements)
    }
    return Result(values: out, elements: elements, scales: scales, stats: stats)
  }

  /// Step 4: (down, up, stored) for a block whose finite max |x| is `blockAmax`; counts the scale clamps.
  private func factors(
    blockAmax ab: Float, tensorAmax at: Float, blockIndex: Int, _ scaleRounder: ReferenceQuantizer,
    _ stats: inout QuantizationStats
  ) -> (down: Float, up: Float, stored: Float) {
    let maxElem = format.element.maxFinite
    let fltMax = Float.greatestFiniteMagnitude
    /// The scale rounding with its two counts.
    func roundScale(_ s: Float) -> Float {
      let r = scaleRounder.quantize(s, index: blockIndex)
      if s > format.scale.maxFinite { stats.scaleSaturated += 1 }
      if s > 0 && r == 0 { stats.scaleUnderflow += 1 }
      return r
    }
    switch format.rule {
    case .floor, .ceil:
      var e: Int
      if ab == 0 {
        e = -127
      } else if format.rule == .floor {
        e = Self.floorLog2(Double(ab)) - Self.floorLog2(Double(maxElem))
      } else {
        e = -300
        while Double(maxElem) * Self.pow2(e) < Double(ab) { e += 1 }
      }
      if e < -127 {
        if ab > 0 { stats.scaleUnderflow += 1 }
        e = -127
      }
      if e > 127 {
        stats.scaleSaturated += 1
        e = 127
      }
      return (Float(Self.pow2(-e)), Float(Self.pow2(e)), Float(Self.pow2(e)))
    case .amax:
      var g: Float = 1
      if format.tensorScale && at > 0 {
        g = Self.fl(Double(at) / Double(Self.fl(Double(maxElem) * Double(format.scale.maxFinite))))
      }
      let s = roundScale(Self.fl(Double(Self.fl(Double(ab) / Double(maxElem))) / Double(g)))
      let d = Self.fl(Double(s) * Double(g))
      if d == 0 || !d.isFinite { return (0, 0, s) }
      return (Self.fl(1 / Double(d)), d, s)
    case .nvfp4:
      let sEnc: Float = at == 0 ? 1 : min(Self.fl(2688 / Double(at)), fltMax)
      let sDec = Self.fl(1 / Double(sEnc))
      let m = Self.fl(Double(sEnc) * Double(Self.fl(1.0 / 6)))
      let s = roundScale(min(Self.fl(Double(ab) * Double(m)), fltMax))
      let down = min(Self.fl(1 / Double(Self.fl(Double(s) * Double(sDec)))), fltMax)
      let up = Self.fl(Double(Self.fl(Double(s) * Double(at))) * Double(Self.fl(1.0 / 2688)))
      return (down, up, s)
    }
  }

  /// A R on each group of n values along the rows of a row-major [rows, cols] matrix, R = D H / sqrt(n):
  /// D the signs (sign i is + when bit 0 of `CounterRNG(seed, stream).bits32(i)` is 0), H[k][j] =
  /// (-1)^popcount(k & j), 1/sqrt(n) rounded to float32. Output j of a group is
  /// (s0 + s1) + (s2 + s3) in float32, s_m the chain of float32 fused multiply-adds
  /// s_m <- fma(R[k][j], x_k, s_m) over k = m, m + 4, m + 8, ... from s_m = 0: the operation order
  /// that the fast transforms define (so that the row and the fused column transform agree bit for
  /// bit). For n = 16 every entry of R is +-1/4, so each product is exact and only the additions round.
  /// Only for n = 16 and 32, the sizes whose fast transform is this dense fused product (smaller
  /// sizes use plain products and sums, larger ones butterflies, with other roundings).
  static func hadamard(_ x: [Float], rows: Int, cols: Int, size n: Int, seed: UInt64, stream: UInt64) -> [Float] {
    precondition(cols % n == 0 && (n == 16 || n == 32), "the reference transform covers sizes 16 and 32")
    let rng = CounterRNG(seed: seed, stream: stream)
    let scale = fl(1 / Double(fl(Double(n).squareRoot())))  // fl(1 / fl(sqrt(n)))
    func r(_ k: Int, _ j: Int) -> Float {
      let d: Float = rng.bits32(UInt64(k)) & 1 == 0 ? 1 : -1
      return (k & j).nonzeroBitCount % 2 == 0 ? d * scale : -d * scale
    }
    var y = x
    for g in stride(from: 0, to: rows * cols, by: n) {
      for j in 0..<n {
        var s: [Float] = [0, 0, 0, 0]
        for k in 0..<n { s[k % 4] = fmaf(r(k, j), x[g + k], s[k % 4]) }
        y[g + j] = (s[0] + s[1]) + (s[2] + s[3])
      }
    }
    return y
  }

  // MARK: Plain helpers

  /// Round to float32, nearest even (overflow to Inf, as float32 arithmetic).
  static func fl(_ v: Double) -> Float { Float(v) }

  static func pow2(_ e: Int) -> Double { Double(sign: .plus, exponent: e, significand: 1) }

  /// floor(log2 v) for v > 0.
  static func floorLog2(_ v: Double) -> Int { frexp(v).1 - 1 }

  /// max |x| over the finite values (0 when there are none).
  static func finiteAmax(_ x: [Float]) -> Float {
    var m: Float = 0
    for v in x where v.isFinite && v.magnitude > m { m = v.magnitude }
    return m
  }

  /// max_elem plus half the spacing at max_elem: the magnitude from which rounding alone would leave
  /// the format, so the saturating clamp (not the rounding) decides the result.
  static func overflowThreshold(_ f: FloatFormat) -> Double {
    let m = Double(f.maxFinite)
    let e = floorLog2(m)
    let spacing = f.exponentBits > 0 && e >= f.emin ? e - f.mantissaBits : (f.subnormals ? f.emin - f.mantissaBits : f.emin)
    return m + pow2(spacing - 1)
  }
}
