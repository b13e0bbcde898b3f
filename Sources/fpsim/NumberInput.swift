import ArgumentParser
import Foundation

/// Reads whitespace-separated numbers, remembering where each came from so that an error can name
/// the token, its position in the input and its line.
enum NumberInput {
  enum Kind: String, ExpressibleByArgument, CaseIterable {
    case value, bits
  }

  /// All tokens of `text` parsed as float32 values (`value`: decimal, `nan`, `inf`; `bits`:
  /// a float32 bit pattern `0x3f800000`).
  static func parse(_ text: String, as kind: Kind) throws -> [Float] {
    var out: [Float] = []
    var line = 1, index = 0
    for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
      defer { line += 1 }
      for token in rawLine.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "," }) {
        index += 1
        // Float("0x3f800000") would read the hex digits as an integer (1065353216): a bit pattern read
        // as a value by mistake, so refuse it and name the flag that reads it.
        if kind == .value, token.drop(while: { $0 == "-" || $0 == "+" }).lowercased().hasPrefix("0x") {
          throw CLIError("'\(token)' looks like a bit pattern: add --from bits (position \(index), line \(line))")
        }
        guard let v = kind == .value ? value(token) : bits(token) else {
          let expected = kind == .value
            ? "a decimal number, nan or inf" : "a float32 bit pattern such as 0x3f800000"
          throw CLIError(
            "malformed number '\(token)' at position \(index) (line \(line)): expected \(expected)")
        }
        out.append(v)
      }
    }
    if out.isEmpty { throw CLIError("no numbers on standard input: give whitespace-separated numbers") }
    return out
  }

  static func value(_ t: Substring) -> Float? {
    switch t.lowercased() {
    case "nan", "+nan": return .nan
    case "-nan": return -.nan
    case "inf", "+inf", "infinity": return .infinity
    case "-inf", "-infinity": return -.infinity
    default:
      // Float(String) rounds correctly (to nearest, ties to even) and rejects junk.
      guard t.first.map({ $0.isNumber || $0 == "-" || $0 == "+" || $0 == "." }) == true else { return nil }
      return Float(t)
    }
  }

  static func bits(_ t: Substring) -> Float? {
    let lower = t.lowercased()
    guard lower.hasPrefix("0x"), (3...10).contains(lower.count), let b = UInt32(lower.dropFirst(2), radix: 16)
    else { return nil }
    return Float(bitPattern: b)
  }

  static func readStandardInput() -> String {
    String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
  }
}
