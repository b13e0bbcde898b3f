/// Named formats and the generic grammar.
///
/// Grammar (case-insensitive), tried after the catalog of names:
///
///     [u]e<E>m<M>[b<BIAS>][ieee|fn|fnuz|finite][-nosub][-nozero]
///     int<N>                                   N = 2...24
///
/// - `u`: unsigned (no sign bit). `b<BIAS>`: exponent bias (default 2^(E-1) - 1, one more for fnuz).
/// - policy suffix: none or `ieee` = Inf and NaN in the top binade; `fn` = only the all-ones code is
///   NaN; `fnuz` = NaN is the negative-zero code; `finite` = no Inf, no NaN.
/// - `-nosub`: no subnormals; values below the smallest normal round to zero or to it.
/// - `-nozero`: exponent field 0 is a normal binade, so there is no zero (OCP E8M0); M must be 0.
///
/// Catalog names keep the meaning of ml_dtypes and the OCP specifications: `float8_e4m3fn` has NaN
/// at 0x7f/0xff, while `float6_e2m3fn` and `float4_e2m1fn` (and their short forms `e2m3`, `e2m1` ...)
/// have no NaN at all, as in ml_dtypes; spell `e3m2ieee` for the IEEE-style format of that shape.
/// `fpsim formats NAME` shows what any name resolves to.
extension FloatFormat {
  /// One catalog entry: canonical name, aliases, and the format.
  struct CatalogEntry: Sendable {
    let names: [String]
    let make: @Sendable () throws -> FloatFormat
  }

  static let catalog: [CatalogEntry] = [
    entry(["float32", "fp32", "f32"], e: 8, m: 23),
    entry(["tf32"], e: 8, m: 10),
    entry(["bfloat16", "bf16"], e: 8, m: 7),
    entry(["float16", "fp16", "half", "f16"], e: 5, m: 10),
    entry(["float8_e5m2", "e5m2", "fp8_e5m2"], e: 5, m: 2),
    entry(["float8_e4m3fn", "e4m3fn", "fp8_e4m3fn", "fp8_e4m3"], e: 4, m: 3, policy: .fn),
    entry(["float8_e4m3", "e4m3"], e: 4, m: 3),
    entry(["float8_e3m4", "e3m4"], e: 3, m: 4),
    entry(["float8_e4m3fnuz", "e4m3fnuz"], e: 4, m: 3, policy: .fnuz),
    entry(["float8_e5m2fnuz", "e5m2fnuz"], e: 5, m: 2, policy: .fnuz),
    entry(["float8_e4m3b11fnuz", "e4m3b11fnuz"], e: 4, m: 3, bias: 11, policy: .fnuz),
    entry(["float8_e8m0fnu", "e8m0fnu", "e8m0", "ue8m0"], e: 8, m: 0, signed: false, policy: .fn, hasZero: false),
    entry(["float6_e2m3fn", "e2m3fn", "e2m3", "fp6_e2m3"], e: 2, m: 3, policy: .finite),
    entry(["float6_e3m2fn", "e3m2fn", "e3m2", "fp6_e3m2"], e: 3, m: 2, policy: .finite),
    entry(["float4_e2m1fn", "e2m1fn", "e2m1", "fp4_e2m1", "fp4"], e: 2, m: 1, policy: .finite),
    // Scale formats. UE4M3 is E4M3 without its sign bit (max 448); UE5M3 spends the sign bit on a
    // fifth exponent bit: bias 15, subnormals, only 0xFF is NaN, max 114688 (the NVFP4 reference and
    // auto-round definition). `ue5m3ieee` reserves the whole top binade instead (max 61440).
    entry(["ue4m3"], e: 4, m: 3, signed: false, policy: .fn),
    entry(["ue5m3"], e: 5, m: 3, signed: false, policy: .fn),
    entry(["int8"], e: 0, m: 7, policy: .finite, integer: true),
    entry(["int4"], e: 0, m: 3, policy: .finite, integer: true),
  ]

  private static func entry(
    _ names: [String], e: Int, m: Int, bias: Int? = nil, signed: Bool = true,
    policy: SpecialPolicy = .ieee, hasZero: Bool = true, integer: Bool = false
  ) -> CatalogEntry {
    CatalogEntry(names: names) {
      try FloatFormat(
        name: names[0], exponentBits: e, mantissaBits: m, bias: bias, signed: signed, policy: policy,
        hasZero: hasZero, isInteger: integer)
    }
  }

  /// The catalog's formats, one per entry, in catalog order.
  public static var named: [FloatFormat] { catalog.map { try! $0.make() } }

  /// Every name the catalog accepts (canonical names and aliases).
  public static var catalogNames: [String] { catalog.flatMap(\.names) }

  /// Resolves a catalog name or a generic spelling (see the type's documentation).
  public init(parsing text: String) throws {
    let t = text.lowercased()
    if let e = FloatFormat.catalog.first(where: { $0.names.contains(t) }) {
      self = try e.make()
      return
    }
    if let generic = try FloatFormat.parseGeneric(t) {
      self = generic
      return
    }
    throw FormatError.unknownName(text, suggestions: FloatFormat.closestNames(to: t))
  }

  private static func parseGeneric(_ t: String) throws -> FloatFormat? {
    var rest = Substring(t)
    if rest.hasPrefix("int"), let n = Int(rest.dropFirst(3)) {
      guard n >= 2 else {
        throw FormatError.invalid("int\(n) has too few bits: an integer format needs a sign and at least one magnitude bit (int2 to int24)")
      }
      guard n <= 24 else {
        throw FormatError.tooWide("int\(n): integers of 2 to 24 bits are exactly representable in float32")
      }
      return try FloatFormat(name: t, exponentBits: 0, mantissaBits: n - 1, policy: .finite, isInteger: true)
    }
    var signed = true
    if rest.hasPrefix("u") { signed = false; rest = rest.dropFirst() }
    guard rest.hasPrefix("e") else { return nil }
    rest = rest.dropFirst()
    guard let e = takeInt(&rest), rest.hasPrefix("m") else { return nil }
    rest = rest.dropFirst()
    guard let m = takeInt(&rest) else { return nil }
    var bias: Int? = nil
    if rest.hasPrefix("b") {
      rest = rest.dropFirst()
      var negative = false
      if rest.hasPrefix("-") { negative = true; rest = rest.dropFirst() }
      guard let b = takeInt(&rest) else { return nil }
      bias = negative ? -b : b
    }
    var policy = SpecialPolicy.ieee
    for p in [SpecialPolicy.fnuz, .finite, .ieee, .fn] where rest.hasPrefix(p.rawValue) {
      policy = p
      rest = rest.dropFirst(p.rawValue.count)
      break
    }
    var subnormals = true, hasZero = true
    while !rest.isEmpty {
      if rest.hasPrefix("-nosub") {
        subnormals = false; rest = rest.dropFirst(6)
      } else if rest.hasPrefix("-nozero") {
        hasZero = false; rest = rest.dropFirst(7)
      } else {
        return nil
      }
    }
    if !hasZero && m != 0 {
      throw FormatError.invalid("'\(t)': -nozero needs 0 mantissa bits (field 0 would otherwise hold subnormals)")
    }
    return try FloatFormat(
      name: t, exponentBits: e, mantissaBits: m, bias: bias, signed: signed, subnormals: subnormals,
      policy: policy, hasZero: hasZero)
  }

  private static func takeInt(_ s: inout Substring) -> Int? {
    let digits = s.prefix(while: { $0.isASCII && $0.isNumber })
    guard !digits.isEmpty, digits.count <= 4, let v = Int(digits) else { return nil }
    s = s.dropFirst(digits.count)
    return v
  }

  /// Up to three catalog names nearest to `text` by edit distance.
  static func closestNames(to text: String) -> [String] {
    let scored = catalogNames.map { ($0, editDistance($0, text)) }
    let limit = max(2, text.count / 3)
    return scored.filter { $0.1 <= limit }.sorted { ($0.1, $0.0) < ($1.1, $1.0) }.prefix(3).map(\.0)
  }

  static func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a.utf8), y = Array(b.utf8)
    var row = Array(0...y.count)
    for i in 1...max(x.count, 1) where !x.isEmpty {
      var prev = row[0]
      row[0] = i
      for j in stride(from: 1, through: y.count, by: 1) {
        let cur = row[j]
        row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (x[i - 1] == y[j - 1] ? 0 : 1))
        prev = cur
      }
    }
    return x.isEmpty ? y.count : row[y.count]
  }
}
