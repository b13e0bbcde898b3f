import FPFormats

/// Text and JSON renderings of format properties and code tables for `fpsim formats`.
enum FormatReport {
  static func propertiesTable(_ formats: [FloatFormat]) -> String {
    let header = ["name", "bits", "E", "M", "bias", "sign", "policy", "max", "min normal", "min subnormal",
                  "epsilon", "binades", "inf", "nan"]
    let rows = formats.map { f -> [String] in
      [f.name, "\(f.bitCount)", "\(f.exponentBits)", "\(f.mantissaBits)", "\(f.bias)", f.signed ? "yes" : "no",
       f.policy.rawValue + (f.subnormals || f.mantissaBits == 0 ? "" : ",nosub") + (f.hasZero ? "" : ",nozero"),
       number(f.maxFinite), f.minNormal.map(number) ?? "-", f.minSubnormal.map(number) ?? "-",
       number(f.epsilon), String(format2: f.dynamicRangeBinades), f.hasInfinity ? "yes" : "no",
       f.hasNaN ? "yes" : "no"]
    }
    return TextTable.render(header: header, rows: rows)
  }

  static func propertiesJSON(_ formats: [FloatFormat]) -> String {
    propertiesJSON(formats.map(AnyFormat.element))
  }

  /// One JSON object a format, in the order given. A block format's object holds its own properties
  /// (`ScaledFormat.blockProperties`) and, under `element` and `scale`, those of its two formats.
  static func propertiesJSON(_ formats: [AnyFormat]) -> String {
    func object(_ properties: [(key: String, value: FloatFormat.PropertyValue)]) -> String {
      "{" + properties.map { "\"\($0.key)\": \(json($0.value))" }.joined(separator: ", ") + "}"
    }
    return "[\n" + formats.map { f in
      switch f {
      case .element(let e): return "  " + object(e.properties)
      case .scaled(let s):
        return "  {" + s.blockProperties.map { "\"\($0.key)\": \(json($0.value))" }.joined(separator: ", ")
          + ",\n   \"element\": " + object(s.element.properties)
          + ",\n   \"scale\": " + object(s.scale.properties) + "}"
      }
    }.joined(separator: ",\n") + "\n]\n"
  }

  /// Block formats, one row each: the element and scale formats, the block, the tensor scale, the
  /// scale rule and the storage bits per value with how they are counted.
  static func blockTable(_ formats: [ScaledFormat]) -> String {
    let rows = formats.map { s -> [String] in
      [s.name, s.element.name, s.scale.name, s.block.description, s.tensorScale ? "float32" : "-", s.rule.rawValue,
       s.bitsPerValueWithoutTensorScale.map { "\($0)" + (s.tensorScale ? " + 32/N" : "") } ?? "-",
       s.bitsPerValueFormula]
    }
    return TextTable.render(
      header: ["name", "element", "scale", "block", "tensor scale", "scale rule", "bits/value", "counted as"],
      rows: rows)
  }

  static func valuesTable(_ formats: [FloatFormat]) -> String {
    formats.map { f in
      let digits = (f.bitCount + 3) / 4
      let rows = (0..<UInt32(f.codeCount)).map { c -> [String] in
        let v = f.decode(c)
        return [hex(c, digits), hex(v.bitPattern, 8), number(v), f.codeClass(c)]
      }
      return "# \(f.name)\n" + TextTable.render(header: ["code", "f32", "value", "class"], rows: rows)
    }.joined(separator: "\n")
  }

  static func valuesJSON(_ formats: [FloatFormat]) -> String {
    "{\n" + formats.map { f in
      let digits = (f.bitCount + 3) / 4
      let items = (0..<UInt32(f.codeCount)).map { c -> String in
        let v = f.decode(c)
        return "    {\"code\": \"\(hex(c, digits))\", \"f32\": \"\(hex(v.bitPattern, 8))\", "
          + "\"value\": \(json(.float(v))), \"class\": \"\(f.codeClass(c))\"}"
      }
      return "  \"\(f.name)\": [\n" + items.joined(separator: ",\n") + "\n  ]"
    }.joined(separator: ",\n") + "\n}\n"
  }

  /// Shortest text that reads back as the same float32 ("448.0", "0.001953125", "nan", "-inf").
  static func number(_ v: Float) -> String {
    if v.isNaN { return "nan" }
    if v.isInfinite { return v < 0 ? "-inf" : "inf" }
    return "\(v)"
  }

  static func hex(_ v: UInt32, _ digits: Int) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, digits - s.count)) + s
  }

  /// JSON has no NaN or Inf: they become strings, as Python's json module can be told to read.
  /// A float32 is written as the Double of the same value (exact: every float32 is a Double), whose
  /// shortest text reads back as exactly that value in any float64 parser: 2^-14 is written
  /// 6.103515625e-05, not float32's shortest 6.1035156e-05, which a float64 parser reads as another number.
  static func json(_ v: FloatFormat.PropertyValue) -> String {
    switch v {
    case .int(let i): return "\(i)"
    case .float(let f): return f.isFinite ? "\(Double(f))" : "\"\(number(f))\""
    case .double(let d): return d.isFinite ? "\(d)" : "\"\(d)\""
    case .bool(let b): return b ? "true" : "false"
    case .string(let s): return "\"\(s)\""
    case .ints(let v): return "[" + v.map(String.init).joined(separator: ", ") + "]"
    case .none: return "null"
    }
  }
}

extension String {
  /// Two decimals, without Foundation's locale-dependent formatting.
  init(format2 x: Double) {
    let r = (x * 100).rounded() / 100
    let whole = Int(r.rounded(.towardZero))
    let cents = Int((abs(r - Double(whole)) * 100).rounded())
    self = "\(r < 0 && whole == 0 ? "-" : "")\(whole).\(cents < 10 ? "0" : "")\(cents)"
  }
}

/// Left-aligned text columns separated by two spaces.
enum TextTable {
  static func render(header: [String], rows: [[String]]) -> String {
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
      cells.enumerated().map { i, c in
        i == cells.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count)
      }.joined(separator: "  ") + "\n"
    }
    return line(header) + rows.map(line).joined()
  }
}
