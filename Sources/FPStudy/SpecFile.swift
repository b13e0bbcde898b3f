import FPEngine
import Foundation

/// A value in a spec file.
public enum SpecValue: Hashable, Sendable {
  case string(String)
  case number(Double)
  case bool(Bool)
  case array([SpecValue])
}

extension SpecValue {
  init(_ v: TOMLValue) {
    switch v {
    case .string(let s): self = .string(s)
    // TOMLDocument returns only numbers that Double reads.
    case .number(let t): self = .number(Double(t)!)
    case .bool(let b): self = .bool(b)
    case .array(let a): self = .array(a.map(SpecValue.init))
    }
  }
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
/// TOML: as `TOMLDocument` reads it (tables, dotted keys, strings, numbers, booleans, arrays).
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

  // MARK: TOML

  mutating func parseTOML(_ text: String) throws {
    let entries: [TOMLDocument.Entry]
    do { entries = try TOMLDocument.entries(text) } catch let e as TOMLError {
      throw SpecError(file: file, line: e.line, problem: e.problem)
    }
    for e in entries { try add(e.key, SpecValue(e.value), line: e.line) }
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
