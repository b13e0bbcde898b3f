import Foundation

/// A value of a TOML document. Numbers keep their text (without `_` separators): a recipe file's
/// `block = 16` stays "16", and a grid spec reads the same text as a Double.
public enum TOMLValue: Hashable, Sendable {
  case string(String)
  case number(String)
  case bool(Bool)
  case array([TOMLValue])
}

/// A TOML document that cannot be read: the line (from 1) and what is wrong with it.
public struct TOMLError: Error, Sendable {
  public let line: Int
  public let problem: String
}

/// The one TOML reader of fpsim, for grid specs and recipe files: a document as dotted keys
/// (`divergence.margin`, `forward.x.format`) in file order, each with its value and line.
///
/// The TOML read: `# comments`; `[table]` and `[a.b]` headers; `key = value` where a key is bare
/// (letters, digits, `_`, `-`), quoted ("..." or '...') or dotted (`forward.x.format`); values that
/// are basic strings (escapes \b \t \n \f \r \" \\ \uXXXX \UXXXXXXXX), literal strings, integers and
/// floats (`1e-3`, `1_000`), `true`/`false`, and arrays of those (which may span lines). Refused, each
/// with its line: array tables (`[[...]]`), inline tables, multi-line strings, dates, a key given
/// twice, control characters. CRLF line ends read as LF.
public enum TOMLDocument {
  public typealias Entry = (key: String, value: TOMLValue, line: Int)

  public static func entries(_ text: String) throws -> [Entry] {
    // In a Swift String "\r\n" is one Character, so splitting on "\n" alone would not see it.
    let text = text.replacingOccurrences(of: "\r\n", with: "\n")
    if let bad = text.unicodeScalars.first(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\t" }) {
      let line = text.unicodeScalars.prefix { $0 != bad }.filter { $0 == "\n" }.count + 1
      throw TOMLError(line: line, problem: "control character U+\(String(format: "%04X", bad.value)) in the text: the file must be plain text")
    }
    let lines = text.components(separatedBy: "\n")
    var table: [String] = []
    var out: [Entry] = []
    var seen: Set<String> = []
    var i = 0
    while i < lines.count {
      let n = i + 1
      let line = stripComment(lines[i]).trimmingCharacters(in: .whitespaces)
      i += 1
      if line.isEmpty { continue }
      if line.hasPrefix("[[") {
        throw TOMLError(line: n, problem: "array tables ([[name]]) are not read: write a [name] table")
      }
      if line.hasPrefix("[") {
        guard line.hasSuffix("]") else { throw TOMLError(line: n, problem: "malformed table header '\(line)': write [name]") }
        var s = Substring(line.dropFirst().dropLast())
        table = try key(&s, line: n)
        guard s.allSatisfy(\.isWhitespace) else { throw TOMLError(line: n, problem: "malformed table name '\(line)'") }
        continue
      }
      var s = Substring(line)
      let parts = try key(&s, line: n)
      guard s.first == "=" else { throw TOMLError(line: n, problem: "expected key = value, got '\(line)'") }
      var rest = String(s.dropFirst())
      // An array may continue on the following lines until its brackets balance.
      while bracketDepth(rest) > 0 && i < lines.count {
        rest += " " + stripComment(lines[i]).trimmingCharacters(in: .whitespaces)
        i += 1
      }
      let name = (table + parts).joined(separator: ".")
      var v = Substring(rest)
      let parsed = try value(&v, line: n)
      guard v.allSatisfy(\.isWhitespace) else {
        throw TOMLError(line: n, problem: "unexpected '\(v.trimmingCharacters(in: .whitespaces))' after the value of '\(name)'")
      }
      guard seen.insert(name).inserted else { throw TOMLError(line: n, problem: "duplicate key '\(name)'") }
      out.append((name, parsed, n))
    }
    return out
  }

  /// A key: parts separated by `.`, each bare or quoted; stops before `=` or at the end. `s` is left
  /// at what follows the key.
  static func key(_ s: inout Substring, line: Int) throws -> [String] {
    var parts: [String] = []
    while true {
      s = s.drop { $0 == " " || $0 == "\t" }
      if s.first == "\"" || s.first == "'" {
        guard case .string(let q) = try value(&s, line: line) else { preconditionFailure("a quoted value is a string") }
        parts.append(q)
      } else {
        let bare = s.prefix { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
        guard !bare.isEmpty else {
          throw TOMLError(line: line, problem: "malformed key '\(s.prefix { $0 != "=" }.trimmingCharacters(in: .whitespaces))': keys are letters, digits, _ and -, or quoted")
        }
        parts.append(String(bare))
        s = s.dropFirst(bare.count)
      }
      s = s.drop { $0 == " " || $0 == "\t" }
      guard s.first == "." else { return parts }
      s = s.dropFirst()
    }
  }

  static func value(_ s: inout Substring, line: Int) throws -> TOMLValue {
    s = s.drop { $0 == " " || $0 == "\t" }
    guard let c = s.first else { throw TOMLError(line: line, problem: "missing value") }
    if c == "\"" || c == "'" {
      if s.hasPrefix(String(repeating: c, count: 3)) {
        throw TOMLError(line: line, problem: "multi-line strings are not read: write the string on one line")
      }
      s = s.dropFirst()
      var out = ""
      while let d = s.first, d != c {
        s = s.dropFirst()
        guard d == "\\" && c == "\"" else { out.append(d); continue }
        guard let e = s.first else { break }
        s = s.dropFirst()
        switch e {
        case "b": out.append("\u{08}")
        case "t": out.append("\t")
        case "n": out.append("\n")
        case "f": out.append("\u{0C}")
        case "r": out.append("\r")
        case "\"", "\\": out.append(e)
        case "u", "U":
          let hex = s.prefix(e == "u" ? 4 : 8)
          guard hex.count == (e == "u" ? 4 : 8), let code = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(code) else {
            throw TOMLError(line: line, problem: "malformed escape '\\\(e)\(hex)' in a string")
          }
          out.unicodeScalars.append(scalar)
          s = s.dropFirst(hex.count)
        default: throw TOMLError(line: line, problem: "unknown escape '\\\(e)' in a string (write \\\\ for a backslash)")
        }
      }
      guard s.first == c else { throw TOMLError(line: line, problem: "unterminated string") }
      s = s.dropFirst()
      return .string(out)
    }
    if c == "{" { throw TOMLError(line: line, problem: "inline tables ({...}) are not read: write a [table]") }
    if c == "[" {
      s = s.dropFirst()
      var items: [TOMLValue] = []
      while true {
        s = s.drop { $0 == " " || $0 == "\t" }
        if s.first == "]" { s = s.dropFirst(); return .array(items) }
        if s.isEmpty { throw TOMLError(line: line, problem: "unterminated array") }
        items.append(try value(&s, line: line))
        s = s.drop { $0 == " " || $0 == "\t" }
        if s.isEmpty { throw TOMLError(line: line, problem: "unterminated array") }
        if s.first == "," { s = s.dropFirst() } else if s.first != "]" {
          throw TOMLError(line: line, problem: "expected , or ] in an array, got '\(s.prefix(10))'")
        }
      }
    }
    let token = s.prefix { !($0 == "," || $0 == "]" || $0 == " " || $0 == "\t") }
    s = s.dropFirst(token.count)
    if token == "true" { return .bool(true) }
    if token == "false" { return .bool(false) }
    let digits = token.replacingOccurrences(of: "_", with: "")
    if Double(digits) != nil { return .number(digits) }
    throw TOMLError(line: line, problem: "cannot read value '\(token)' (strings need quotes)")
  }

  /// The line up to a `#` outside strings.
  static func stripComment(_ line: String) -> String {
    var quote: Character? = nil, escaped = false
    for (i, ch) in zip(line.indices, line) {
      if let q = quote {
        if escaped { escaped = false } else if ch == "\\" && q == "\"" { escaped = true } else if ch == q { quote = nil }
      } else if ch == "\"" || ch == "'" {
        quote = ch
      } else if ch == "#" {
        return String(line[..<i])
      }
    }
    return line
  }

  /// Open `[` minus closed `]` outside strings.
  static func bracketDepth(_ s: String) -> Int {
    var depth = 0, quote: Character? = nil, escaped = false
    for ch in s {
      if let q = quote {
        if escaped { escaped = false } else if ch == "\\" && q == "\"" { escaped = true } else if ch == q { quote = nil }
      } else if ch == "\"" || ch == "'" {
        quote = ch
      } else if ch == "[" {
        depth += 1
      } else if ch == "]" {
        depth -= 1
      }
    }
    return depth
  }
}
