import Foundation

/// Prints `value` as the JSON of the commands' `--json`: keys sorted and in snake_case
/// (`msPerStep` -> `ms_per_step`), compact unless `pretty`.
func printJSON(_ value: some Encodable, pretty: Bool = false) throws {
  let encoder = JSONEncoder()
  encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys]
  encoder.keyEncodingStrategy = .convertToSnakeCase
  print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
