/// What an error message may echo of the user's input: every message goes through `line(_:)`.
///
/// A token the user typed is shown between single quotes. A long one (a pasted file, a fuzzer's
/// garbage) is cut to its first 40 characters with a count of the rest, and every control character
/// anywhere in the line is shown escaped (`\0`, `\t`, `\u{1b}`), so one error is one readable line.
enum Echo {
  static let maxToken = 40

  /// A token for a message: escaped, and cut to `maxToken` characters.
  static func token(_ s: some StringProtocol) -> String {
    let chars = Array(String(s))
    let shown = String(chars.prefix(maxToken))
    let cut = chars.count > maxToken ? "...(\(chars.count - maxToken) more characters)" : ""
    return escape(shown) + cut
  }

  /// A token in single quotes, ready for a message.
  static func quoted(_ s: some StringProtocol) -> String { "'" + token(s) + "'" }

  /// Control characters as escapes; everything else as it is.
  static func escape(_ s: String) -> String {
    var out = ""
    for u in s.unicodeScalars {
      switch u {
      case "\0": out += "\\0"
      case "\t": out += "\\t"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      default:
        if u.value < 0x20 || u.value == 0x7f || (0x80..<0xa0).contains(u.value) {
          out += "\\u{\(String(u.value, radix: 16))}"
        } else {
          out.unicodeScalars.append(u)
        }
      }
    }
    return out
  }

  /// A message line with every '...'-quoted token passed through `token(_:)` and the rest escaped.
  /// A quote opens a token after a space, a bracket or punctuation (not inside a word: "don't"),
  /// and closes it before a space, punctuation or the end.
  static func line(_ text: String) -> String {
    let chars = Array(text)
    var out = "", i = 0
    while i < chars.count {
      let c = chars[i]
      let opens = c == "'" && (i == 0 || " (=:,[{/\"".contains(chars[i - 1]))
      if opens, let end = (i + 1..<chars.count).first(where: { j in
        chars[j] == "'" && (j + 1 == chars.count || !(chars[j + 1].isLetter || chars[j + 1].isNumber))
      }) {
        out += "'" + token(String(chars[(i + 1)..<end])) + "'"
        i = end + 1
      } else {
        out += escape(String(c))
        i += 1
      }
    }
    return out
  }
}
