/// Finds a key given twice in one JSON object, which JSON decoders accept silently (the last value
/// wins) but fpsim's spec and recipe files refuse.
///
/// A scanner over the bytes, not a parser: it tracks strings (with escapes) and the nesting of
/// objects and arrays, and collects the keys of each object (a string followed by `:`). Malformed
/// JSON is left to the real decoder, which reports it.
public enum JSONDuplicateKeys {
  /// The first repeated key (its text as written, escapes undecoded) and its 1-based line.
  public static func first<Bytes: Collection>(in data: Bytes) -> (key: String, line: Int)? where Bytes.Element == UInt8 {
    let bytes = Array(data)
    // One entry per open container: nil for an array, the keys seen so far for an object.
    var stack: [Set<[UInt8]>?] = []
    var line = 1, i = 0
    while i < bytes.count {
      let b = bytes[i]
      switch b {
      case UInt8(ascii: "\n"): line += 1
      case UInt8(ascii: "{"): stack.append(Set())
      case UInt8(ascii: "["): stack.append(nil)
      case UInt8(ascii: "}"), UInt8(ascii: "]"): if !stack.isEmpty { stack.removeLast() }
      case UInt8(ascii: "\""):
        var j = i + 1
        while j < bytes.count && bytes[j] != UInt8(ascii: "\"") { j += bytes[j] == UInt8(ascii: "\\") ? 2 : 1 }
        let text = Array(bytes[(i + 1)..<min(j, bytes.count)])
        var k = j + 1
        while k < bytes.count, [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n")].contains(bytes[k]) { k += 1 }
        if k < bytes.count, bytes[k] == UInt8(ascii: ":"), let last = stack.last, var keys = last {
          if keys.contains(text) { return (String(decoding: text, as: UTF8.self), line) }
          keys.insert(text)
          stack[stack.count - 1] = keys
        }
        i = j
      default: break
      }
      i += 1
    }
    return nil
  }
}
