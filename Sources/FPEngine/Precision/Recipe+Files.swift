import FPFormats
import Foundation  // file reading, JSONSerialization

/// Recipe files and the stored JSON form.
///
/// A file is a table of recipe keys (`RecipeKeys`), nested tables joining their names with `.`:
/// `{"base": "mxfp4", "backward": {"rounding": "stochastic"}, "hadamard": "wgrad:16"}` in JSON, or the
/// the same in TOML (`TOMLDocument`: comments, `[table]` headers, dotted keys, strings, numbers, booleans).
/// `base` (a preset, default fp32) is applied first, then every other key in file order. Keys starting
/// with `_` or named `comment` / `description` are ignored (JSON has no comments; the stored form
/// carries its description).
extension Recipe {
  public init(file path: String) throws {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw RecipeError.badFile(path, "cannot read it (check the path)")
    }
    let pairs: [(String, String)]
    if path.lowercased().hasSuffix(".toml") {
      pairs = try RecipeFile.toml(String(decoding: data, as: UTF8.self), path: path)
    } else {
      if let (key, line) = JSONDuplicateKeys.first(in: data) {
        throw RecipeError.badFile(path, "line \(line): duplicate key '\(key)' (JSON objects take each key once)")
      }
      let value: RecipeFile.JSONValue
      do { value = try JSONDecoder().decode(RecipeFile.JSONValue.self, from: data) } catch {
        throw RecipeError.badFile(path, "not valid JSON, or a value that is not a string, number, boolean or object")
      }
      guard case .object(let top) = value else { throw RecipeError.badFile(path, "the top level must be an object of recipe keys") }
      var flat: [(String, String)] = []
      RecipeFile.flatten(top, prefix: "", into: &flat)
      pairs = flat
    }
    self = try Recipe.fromPairs(pairs)
  }

  /// `base` first, then the rest: wider keys (fewer `.`-separated parts, e.g. `format` before
  /// `forward.format` before `forward.x.format`) first, in file order among equals (JSON objects: sorted).
  static func fromPairs(_ pairs: [(String, String)]) throws -> Recipe {
    try RecipeKeys.refuseRepeatedKeys(pairs)
    let depth = { (k: String) in RecipeKeys.normalize(k).split(separator: ".").count }
    let ordered = pairs.enumerated().sorted { a, b in
      let da = depth(a.element.0), db = depth(b.element.0)
      return da != db ? da < db : a.offset < b.offset
    }.map(\.element)
    let kept = ordered.filter { p in
      let k = RecipeKeys.normalize(p.0)
      return !(k.hasPrefix(".") || k == "comment" || k == "description" || k.split(separator: ".").last == "comment")
    }
    let base = kept.last { RecipeKeys.normalize($0.0) == "base" }?.1 ?? "fp32"
    guard !base.lowercased().hasSuffix(".json"), !base.lowercased().hasSuffix(".toml") else {
      throw RecipeError.badKey("base", "'\(base)' is a file: a file's base is a preset")
    }
    let rest = kept.filter { RecipeKeys.normalize($0.0) != "base" }
    if base.contains("=") {
      // A family member spelled inline (fp4:scale=ue8m0): parse it, then apply the rest.
      var r = try Recipe(parsing: base)
      for (k, v) in rest { try r.set(k, v) }
      try r.validate()
      return r
    }
    return try Recipe.base(parsing: base, overrides: rest)
  }

  /// The full resolved recipe as a nested JSON object (keys sorted), with its `base` and `description`:
  /// a valid recipe file.
  public var json: String {
    let data = try! JSONSerialization.data(withJSONObject: nestedObject, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    return String(decoding: data, as: UTF8.self)
  }

  var nestedObject: [String: Any] {
    var top: [String: Any] = ["base": base, "description": description]
    for (key, value) in settings {
      let path = key.split(separator: ".").map(String.init)
      RecipeFile.insert(value, at: path[...], into: &top)
    }
    return top
  }
}

extension Recipe: Codable {
  /// Decodes any recipe file's JSON object (in particular the form `encode` writes).
  public init(from decoder: Decoder) throws {
    let c = try decoder.singleValueContainer()
    let value = try c.decode(RecipeFile.JSONValue.self)
    guard case .object(let o) = value else {
      throw DecodingError.dataCorruptedError(in: c, debugDescription: "a recipe is a JSON object of recipe keys")
    }
    var pairs: [(String, String)] = []
    RecipeFile.flatten(o, prefix: "", into: &pairs)
    self = try Recipe.fromPairs(pairs)
  }

  public func encode(to encoder: Encoder) throws {
    var c = encoder.singleValueContainer()
    try c.encode(RecipeFile.JSONValue(nestedObject))
  }
}

enum RecipeFile {
  /// A JSON value with its object keys in file order.
  indirect enum JSONValue: Codable {
    case string(String)
    case object([(String, JSONValue)])

    init(_ any: Any) {
      if let d = any as? [String: Any] {
        self = .object(d.keys.sorted().map { ($0, JSONValue(d[$0]!)) })
      } else {
        self = .string("\(any)")
      }
    }

    struct Key: CodingKey {
      var stringValue: String
      var intValue: Int? { nil }
      init(stringValue: String) { self.stringValue = stringValue }
      init?(intValue: Int) { nil }
    }

    init(from decoder: Decoder) throws {
      if let k = try? decoder.container(keyedBy: Key.self) {
        // Sorted: the decoder's key order is not the file's.
        let keys = k.allKeys.sorted { $0.stringValue < $1.stringValue }
        self = .object(try keys.map { ($0.stringValue, try k.decode(JSONValue.self, forKey: $0)) })
        return
      }
      let c = try decoder.singleValueContainer()
      if let s = try? c.decode(String.self) { self = .string(s); return }
      if let b = try? c.decode(Bool.self) { self = .string(b ? "on" : "off"); return }
      if let i = try? c.decode(Int.self) { self = .string(String(i)); return }
      if let d = try? c.decode(Double.self) { self = .string(String(d)); return }
      throw DecodingError.dataCorruptedError(in: c, debugDescription: "recipe values are strings, numbers, booleans or tables")
    }

    func encode(to encoder: Encoder) throws {
      switch self {
      case .string(let s):
        var c = encoder.singleValueContainer()
        try c.encode(s)
      case .object(let o):
        var c = encoder.container(keyedBy: Key.self)
        for (k, v) in o { try c.encode(v, forKey: Key(stringValue: k)) }
      }
    }
  }

  static func flatten(_ o: [(String, JSONValue)], prefix: String, into pairs: inout [(String, String)]) {
    for (k, v) in o {
      switch v {
      case .string(let s): pairs.append((prefix + k, s))
      case .object(let inner): flatten(inner, prefix: prefix + k + ".", into: &pairs)
      }
    }
  }

  static func insert(_ value: String, at path: ArraySlice<String>, into o: inout [String: Any]) {
    guard let first = path.first else { return }
    if path.count == 1 {
      o[first] = value
      return
    }
    var inner = o[first] as? [String: Any] ?? [:]
    insert(value, at: path.dropFirst(), into: &inner)
    o[first] = inner
  }

  /// A recipe file's TOML (`TOMLDocument`) as key-value pairs in file order: numbers as written,
  /// booleans as on/off; arrays are refused (a recipe value is one string, number or boolean).
  static func toml(_ text: String, path: String) throws -> [(String, String)] {
    let entries: [TOMLDocument.Entry]
    do { entries = try TOMLDocument.entries(text) } catch let e as TOMLError {
      throw RecipeError.badFile(path, "line \(e.line): \(e.problem)")
    }
    return try entries.map { e in
      switch e.value {
      case .string(let s): return (e.key, s)
      case .number(let t): return (e.key, t)
      case .bool(let b): return (e.key, b ? "on" : "off")
      case .array: throw RecipeError.badFile(path, "line \(e.line): '\(e.key)' is an array: a recipe value is a quoted string, number or boolean")
      }
    }
  }
}
