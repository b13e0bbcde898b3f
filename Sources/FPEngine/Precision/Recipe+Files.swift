import FPFormats
import Foundation  // file reading, JSONSerialization

/// Recipe files and the stored JSON form.
///
/// A file is a table of recipe keys (`RecipeKeys`), nested tables joining their names with `.`:
/// `{"base": "mxfp4", "backward": {"rounding": "stochastic"}, "hadamard": "wgrad:16"}` in JSON, or the
/// same in a TOML subset (comments `#`, `[table]` headers, `key = "string" | integer | true | false`).
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
      pairs = try RecipeFile.toml(String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n"), path: path)
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

  /// The TOML subset: `# comments`, `[a.b]` table headers, `key = value` with a "basic string",
  /// a 'literal string', an integer, a float or a boolean. Anything else is refused with its line.
  static func toml(_ text: String, path: String) throws -> [(String, String)] {
    var pairs: [(String, String)] = []
    var table = ""
    if let bad = text.unicodeScalars.first(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\t" }) {
      throw RecipeError.badFile(path, "control character U+\(String(bad.value, radix: 16, uppercase: true)) in the text: a recipe file is plain text")
    }
    for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      // trimmingCharacters(.whitespacesAndNewlines) also drops the "\r" of a CRLF line end.
      let line = stripComment(String(raw)).trimmingCharacters(in: .whitespacesAndNewlines)
      if line.isEmpty { continue }
      if line.hasPrefix("[") {
        guard line.hasSuffix("]"), !line.hasPrefix("[[") else { throw RecipeError.badFile(path, "line \(n + 1): expected a [table] header") }
        table = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces) + "."
        continue
      }
      guard let eq = line.firstIndex(of: "=") else { throw RecipeError.badFile(path, "line \(n + 1): expected key = value") }
      let key = line[..<eq].trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "\"", with: "")
      let v = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
      let value: String
      if v.count >= 2, (v.hasPrefix("\"") && v.hasSuffix("\"")) || (v.hasPrefix("'") && v.hasSuffix("'")) {
        value = String(v.dropFirst().dropLast())
      } else if v == "true" || v == "false" {
        value = v == "true" ? "on" : "off"
      } else if Double(v) != nil {
        value = v
      } else {
        throw RecipeError.badFile(path, "line \(n + 1): value '\(v)' is not a quoted string, number or boolean")
      }
      pairs.append((table + key, value))
    }
    return pairs
  }

  /// The line up to a `#` that is outside quotes.
  static func stripComment(_ line: String) -> String {
    var quote: Character? = nil
    for (i, ch) in zip(line.indices, line) {
      if let q = quote {
        if ch == q { quote = nil }
      } else if ch == "\"" || ch == "'" {
        quote = ch
      } else if ch == "#" {
        return String(line[..<i])
      }
    }
    return line
  }
}
