import FPEngine
import Foundation
import Testing

/// The one TOML reader (grid specs and recipe files), against hand-written expectations.
@Suite struct TOMLDocumentTests {
  static func entries(_ text: String) throws -> [String] {
    try TOMLDocument.entries(text).map { e in "\(e.line) \(e.key) \(e.value)" }
  }

  @Test func everyFeatureReadsAsWritten() throws {
    let text = """
      # a comment line
      name = "fp4 \\"study\\"\\tA\\u00e9"   # a comment after a value
      path = 'C:\\temp\\x # not a comment'
      steps = 1_000
      lr = 3e-3
      on = true
      off = false
      lrs = [1e-3,
        3e-3,   # inside an array
      ]
      nested = [["a", 'b'], []]
      "quoted key" = 1
      forward.x.format = "e4m3fn"
      [divergence]
      margin = 1.0
      [ a . "b" ]
      c = -2
      """
    #expect(try Self.entries(text) == [
      "2 name string(\"fp4 \\\"study\\\"\\tAé\")",
      "3 path string(\"C:\\\\temp\\\\x # not a comment\")",
      "4 steps number(\"1000\")",
      "5 lr number(\"3e-3\")",
      "6 on bool(true)",
      "7 off bool(false)",
      "8 lrs array([FPEngine.TOMLValue.number(\"1e-3\"), FPEngine.TOMLValue.number(\"3e-3\")])",
      "11 nested array([FPEngine.TOMLValue.array([FPEngine.TOMLValue.string(\"a\"), FPEngine.TOMLValue.string(\"b\")]), FPEngine.TOMLValue.array([])])",
      "12 quoted key number(\"1\")",
      "13 forward.x.format string(\"e4m3fn\")",
      "15 divergence.margin number(\"1.0\")",
      "17 a.b.c number(\"-2\")",
    ])
  }

  @Test func dottedKeysTablesAndQuotedKeysAreTheSameKey() throws {
    let a = try TOMLDocument.entries("forward.x.format = \"e4m3fn\"\n").map(\.key)
    let b = try TOMLDocument.entries("[forward]\nx.format = \"e4m3fn\"\n").map(\.key)
    let c = try TOMLDocument.entries("[forward.x]\n'format' = \"e4m3fn\"\n").map(\.key)
    #expect(a == ["forward.x.format"] && b == a && c == a)
    #expect(try TOMLDocument.entries("a = 1\r\nb = 2\r\n").map(\.line) == [1, 2])
  }

  @Test func whatIsNotReadIsRefusedWithItsLine() throws {
    let cases: [(String, Int, String)] = [
      ("a = 1\na = 2\n", 2, "duplicate key 'a'"),
      ("[t]\nk = 1\n[t]\nk = 2\n", 4, "duplicate key 't.k'"),
      ("[[runs]]\n", 1, "array tables"),
      ("a = {b = 1}\n", 1, "inline tables"),
      ("a = \"\"\"x\"\"\"\n", 1, "multi-line strings"),
      ("a = 1979-05-27\n", 1, "cannot read value '1979-05-27'"),
      ("a = e4m3\n", 1, "strings need quotes"),
      ("\n\na = \"x\n", 3, "unterminated string"),
      ("a = [1, 2\n", 1, "unterminated array"),
      ("a = \"\\q\"\n", 1, "unknown escape"),
      ("my key = 1\n", 1, "expected key = value"),
      ("= 1\n", 1, "malformed key"),
      ("a = 1 2\n", 1, "unexpected '2'"),
      ("just words\n", 1, "expected key = value"),
      ("[open\n", 1, "malformed table header"),
      ("a = 1\nb = \u{1B}\n", 2, "control character U+001B"),
    ]
    for (text, line, problem) in cases {
      do {
        _ = try TOMLDocument.entries(text)
        Issue.record("\(text.debugDescription) was read")
      } catch let e as TOMLError {
        #expect(e.line == line && e.problem.contains(problem), "\(text.debugDescription): \(e.line): \(e.problem)")
      }
    }
  }
}
