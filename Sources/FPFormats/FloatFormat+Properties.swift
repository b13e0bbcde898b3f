/// A format's properties as ordered (key, value) pairs: what `fpsim formats` prints and its JSON
/// carries. Values are numbers, booleans, strings, lists of integers or nil (JSON null: "this format has none").
extension FloatFormat {
  public enum PropertyValue: Sendable, Equatable {
    case int(Int), float(Float), double(Double), bool(Bool), string(String), ints([Int]), none
  }

  public var properties: [(key: String, value: PropertyValue)] {
    [
      ("name", .string(name)),
      ("bits", .int(bitCount)),
      ("exponent_bits", .int(exponentBits)),
      ("mantissa_bits", .int(mantissaBits)),
      ("bias", .int(bias)),
      ("signed", .bool(signed)),
      ("policy", .string(policy.rawValue)),
      ("subnormals", .bool(subnormals)),
      ("max", .float(maxFinite)),
      ("min_normal", minNormal.map { .float($0) } ?? .none),
      ("min_subnormal", minSubnormal.map { .float($0) } ?? .none),
      ("epsilon", .float(epsilon)),
      ("dynamic_range_binades", .double(dynamicRangeBinades)),
      ("has_inf", .bool(hasInfinity)),
      ("has_nan", .bool(hasNaN)),
      ("codes", .int(codeCount)),
      ("generic", .string(genericName)),
    ]
  }
}
