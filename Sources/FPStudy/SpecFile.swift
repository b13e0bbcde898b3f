import FPEngine
import Foundation

/// A value in a spec file.
public enum SpecValue: Hashable, Sendable {
  case string(String)
  case number(Double)
  case bool(Bool)
  case array([SpecValue])
}

/// A spec error names the file, the line (when known) and the problem.
public struct SpecError: Error, CustomStringConvertible {
  public let file: String
  public let line: Int?
  public let problem: String
  public var description: String { line.map { "\(file):\($0): \(problem)" } ?? "\(file): \(problem)" }
}

/// The entries of a TOML or JSON spec as dotted keys (`divergence.margin`), each with its line.
///
/// TOML: the subset specs need: `# comments`, `[section]` tables, `key = value` with basic and literal
/// strings, integers and floats (`1e-3`, `1_000`), booleans, and arrays (which may span lines).
/// Duplicate keys are errors. JSON: an object whose values are those types, nested objects being
/// sections.
public struct SpecDocument: Sendable {
  public let file: String
  public private(set) var entries: [String: (value: SpecValue, line: Int?)] = [:]
  public private(set) var order: [String] = []

  public init(contentsOf path: String) throws {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw SpecError(file: path, line: nil, problem: "cannot read the spec file (does it exist?)")
    }
    try self.init(text: String(decoding: data, as: UTF8.self), file: path)
  }

  public init(text: String, file: String) throws {
    self.file = file
    // CRLF line ends (Windows editors) read as LF. (In a Swift String "\r\n" is one Character, so
    // splitting on "\n" alone would not see them.)
    let text = text.replacingOccurrences(of: "\r\n", with: "\n")
    if let bad = text.unicodeScalars.first(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\t" }) {
      let line = text.unicodeScalars.prefix { $0 != bad }.filter { $0 == "\n" }.count + 1
      throw SpecError(file: file, line: line, problem: "control character U+\(String(format: "%04X", bad.value)) in the text: a spec is plain text")
    }
    let trimmed = text.drop { $0.isWhitespace }
    if trimmed.first == "{" { try parseJSON(text) } else { try parseTOML(text) }
  }

  mutating func add(_ key: String, _ value: SpecValue, line: Int?) throws {
    if entries[key] != nil {
      throw SpecError(file: file, line: line, problem: "duplicate key '\(key)'")
    }
    entries[key] = (value, line)
    order.append(key)
  }

  // MARK: TOML subset

  mutating func parseTOML(_ text: String) throws {
    var section = ""
    let lines = text.components(separatedBy: "\n")
    var i = 0
    while i < lines.count {
      let lineNumber = i + 1
      var line = stripComment(lines[i]).trimmingCharacters(in: .whitespaces)
      i += 1
      if line.isEmpty { continue }
      if line.hasPrefix("[") {
        guard line.hasSuffix("]"), !line.hasPrefix("[[") else {
          throw SpecError(file: file, line: lineNumber, problem: "malformed table header '\(line)': write [name]")
        }
        section = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
        guard !section.isEmpty, section.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }) else {
          throw SpecError(file: file, line: lineNumber, problem: "malformed table name '\(section)'")
        }
        continue
      }
      guard let eq = line.firstIndex(of: "=") else {
        throw SpecError(file: file, line: lineNumber, problem: "expected key = value, got '\(line)'")
      }
      let key = line[..<eq].trimmingCharacters(in: .whitespaces)
      guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
        throw SpecError(file: file, line: lineNumber, problem: "malformed key '\(key)'")
      }
      var rest = String(line[line.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
      // An array may continue on the following lines until its brackets balance.
      while bracketDepth(rest) > 0 && i < lines.count {
        rest += " " + stripComment(lines[i]).trimmingCharacters(in: .whitespaces)
        i += 1
      }
      var scanner = Substring(rest)
      let value = try parseValue(&scanner, line: lineNumber)
      guard scanner.trimmingCharacters(in: .whitespaces).isEmpty else {
        throw SpecError(file: file, line: lineNumber, problem: "unexpected '\(scanner)' after the value of '\(key)'")
      }
      line = ""
      try add(section.isEmpty ? key : section + "." + key, value, line: lineNumber)
    }
  }

  private func stripComment(_ s: String) -> String {
    var inString: Character? = nil
    var out = ""
    for c in s {
      if let q = inString {
        if c == q { inString = nil }
      } else if c == "\"" || c == "'" {
        inString = c
      } else if c == "#" {
        break
      }
      out.append(c)
    }
    return out
  }

  private func bracketDepth(_ s: String) -> Int {
    var depth = 0
    var inString: Character? = nil
    for c in s {
      if let q = inString { if c == q { inString = nil }; continue }
      if c == "\"" || c == "'" { inString = c } else if c == "[" { depth += 1 } else if c == "]" { depth -= 1 }
    }
    return depth
  }

  private func parseValue(_ s: inout Substring, line: Int) throws -> SpecValue {
    s = s.drop { $0 == " " || $0 == "\t" }
    guard let c = s.first else { throw SpecError(file: file, line: line, problem: "missing value") }
    if c == "\"" || c == "'" {
      s = s.dropFirst()
      var out = ""
      while let d = s.first, d != c {
        s = s.dropFirst()
        if d == "\\" && c == "\"", let e = s.first {
          s = s.dropFirst()
          switch e {
          case "n": out.append("\n")
          case "t": out.append("\t")
          default: out.append(e)
          }
        } else {
          out.append(d)
        }
      }
      guard s.first == c else { throw SpecError(file: file, line: line, problem: "unterminated string") }
      s = s.dropFirst()
      return .string(out)
    }
    if c == "[" {
      s = s.dropFirst()
      var items: [SpecValue] = []
      while true {
        s = s.drop { $0 == " " || $0 == "\t" || $0 == "," }
        if s.first == "]" { s = s.dropFirst(); return .array(items) }
        if s.isEmpty { throw SpecError(file: file, line: line, problem: "unterminated array") }
        items.append(try parseValue(&s, line: line))
        s = s.drop { $0 == " " || $0 == "\t" }
        if s.first == "," { s = s.dropFirst() } else if s.first != "]" {
          throw SpecError(file: file, line: line, problem: "expected , or ] in an array, got '\(s.prefix(10))'")
        }
      }
    }
    let token = s.prefix { !($0 == "," || $0 == "]" || $0 == " " || $0 == "\t") }
    s = s.dropFirst(token.count)
    if token == "true" { return .bool(true) }
    if token == "false" { return .bool(false) }
    if let d = Double(token.replacingOccurrences(of: "_", with: "")) { return .number(d) }
    throw SpecError(file: file, line: line, problem: "cannot read value '\(token)' (strings need quotes)")
  }

  // MARK: JSON

  mutating func parseJSON(_ text: String) throws {
    if let (key, line) = JSONDuplicateKeys.first(in: Array(text.utf8)) {
      throw SpecError(file: file, line: line, problem: "duplicate key '\(key)' (JSON objects take each key once)")
    }
    let object: Any
    do {
      object = try JSONSerialization.jsonObject(with: Data(text.utf8))
    } catch {
      // Foundation's text ("The data couldn't be read ...") says nothing useful: name the problem.
      throw SpecError(file: file, line: nil, problem: "malformed JSON: check brackets, commas and quotes (or write the spec in TOML)")
    }
    guard let top = object as? [String: Any] else {
      throw SpecError(file: file, line: nil, problem: "a JSON spec is an object of keys")
    }
    try addJSON(top, prefix: "")
  }

  private mutating func addJSON(_ o: [String: Any], prefix: String) throws {
    for key in o.keys.sorted() {
      let full = prefix.isEmpty ? key : prefix + "." + key
      if let nested = o[key] as? [String: Any] {
        try addJSON(nested, prefix: full)
      } else {
        try add(full, try jsonValue(o[key]!, key: full), line: nil)
      }
    }
  }

  private func jsonValue(_ v: Any, key: String) throws -> SpecValue {
    if let b = v as? Bool, type(of: v) == type(of: true as NSNumber) || v is Bool { return .bool(b) }
    if let n = v as? NSNumber { return .number(n.doubleValue) }
    if let s = v as? String { return .string(s) }
    if let a = v as? [Any] { return .array(try a.map { try jsonValue($0, key: key) }) }
    throw SpecError(file: file, line: nil, problem: "unsupported value for '\(key)'")
  }

  // MARK: Typed access

  public func line(_ key: String) -> Int? { entries[key]?.line }

  public func error(_ key: String, _ problem: String) -> SpecError {
    SpecError(file: file, line: line(key), problem: "'\(key)': \(problem)")
  }

  public func string(_ key: String) throws -> String? {
    guard let (v, _) = entries[key] else { return nil }
    guard case .string(let s) = v else { throw error(key, "expected a quoted string") }
    return s
  }

  public func number(_ key: String) throws -> Double? {
    guard let (v, _) = entries[key] else { return nil }
    guard case .number(let d) = v else { throw error(key, "expected a number") }
    return d
  }

  public func integer(_ key: String) throws -> Int? {
    guard let d = try number(key) else { return nil }
    guard d == d.rounded(), abs(d) < 1e15 else { throw error(key, "expected an integer, got \(d)") }
    return Int(d)
  }

  public func bool(_ key: String) throws -> Bool? {
    guard let (v, _) = entries[key] else { return nil }
    guard case .bool(let b) = v else { throw error(key, "expected true or false") }
    return b
  }

  /// An array, or a single value taken as a one-element array.
  public func list(_ key: String) -> [SpecValue]? {
    guard let (v, _) = entries[key] else { return nil }
    if case .array(let a) = v { return a }
    return [v]
  }
}
