import Foundation

/// Any JSON value, for JSON text stored in an attribute (a grid's `/results@summary_json`) that
/// `fpsim inspect --json` embeds as JSON rather than as a string. Numbers keep their value: an
/// integer stays an Int, any other number is the Double the text denotes (JSONEncoder writes that
/// Double's shortest round-tripping text back).
public indirect enum JSONValue: Sendable, Equatable, Codable {
  case null
  case bool(Bool)
  case int(Int)
  case double(Double)
  case string(String)
  case array([JSONValue])
  /// Members in key order (the encoder sorts keys anyway).
  case object([String: JSONValue])

  /// Parses JSON text; nil when it is not JSON.
  public init?(parsing text: String) {
    guard let v = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else { return nil }
    self = v
  }

  public init(from decoder: Decoder) throws {
    let c = try decoder.singleValueContainer()
    if c.decodeNil() { self = .null }
    else if let v = try? c.decode(Bool.self) { self = .bool(v) }
    else if let v = try? c.decode(Int.self) { self = .int(v) }
    else if let v = try? c.decode(Double.self) { self = .double(v) }
    else if let v = try? c.decode(String.self) { self = .string(v) }
    else if let v = try? c.decode([JSONValue].self) { self = .array(v) }
    else if let v = try? c.decode([String: JSONValue].self) { self = .object(v) }
    else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a JSON value") }
  }

  public func encode(to encoder: Encoder) throws {
    var c = encoder.singleValueContainer()
    switch self {
    case .null: try c.encodeNil()
    case .bool(let v): try c.encode(v)
    case .int(let v): try c.encode(v)
    case .double(let v): try c.encode(v)
    case .string(let v): try c.encode(v)
    case .array(let v): try c.encode(v)
    case .object(let v): try c.encode(v)
    }
  }
}

extension JSONValue {
  /// Every leaf under its path, `a.b` for object members and `a[2]` for array elements, as text
  /// (`training.steps` -> `800`): what comparisons of stored configurations name and show.
  public var leaves: [String: String] {
    var out: [String: String] = [:]
    func walk(_ v: JSONValue, _ path: String) {
      switch v {
      case .object(let members): for (k, x) in members { walk(x, path.isEmpty ? k : path + "." + k) }
      case .array(let items): for (i, x) in items.enumerated() { walk(x, "\(path)[\(i)]") }
      case .null: out[path] = "null"
      case .bool(let b): out[path] = "\(b)"
      case .int(let i): out[path] = "\(i)"
      case .double(let d): out[path] = "\(d)"
      case .string(let s): out[path] = s
      }
    }
    walk(self, "")
    return out
  }
}
