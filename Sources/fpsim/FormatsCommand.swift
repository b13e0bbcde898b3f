import ArgumentParser
import FPFormats
import Foundation

/// `fpsim formats [NAME ...] [--json] [--values]`: the properties of formats, or every code of one.
struct Formats: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Show format properties (all catalog formats when no name is given), or every code with --values.")

  @Argument(help: "Format names or generic spellings (e4m3fn, e8m3, ue5m3, e5m3b13fn-nosub, int8, ...).")
  var names: [String] = []

  @Flag(help: "Print JSON instead of a table.")
  var json = false

  @Flag(help: "List every code of each format and its value (formats of at most 8 bits).")
  var values = false

  @Flag(help: "List the block-scaled presets (MX, NVFP4).")
  var scaled = false

  func run() throws {
    if scaled {
      let presets = try ScaledFormat.presetNames.map { try ScaledFormat(parsing: $0) }
      let rows = presets.map { s -> [String] in
        let block: Int
        if case .vector(let k) = s.block { block = k } else { block = 0 }
        return [s.name, s.element.name, s.scale.name, "\(s.block)", s.tensorScale ? "fp32" : "-", s.rule.rawValue,
                String(format2: s.bitsPerValue(count: 1 << 20, blockSize: max(block, 1)))]
      }
      print(TextTable.render(
        header: ["name", "element", "scale", "block", "tensor scale", "scale rule", "bits/value"], rows: rows),
        terminator: "")
      return
    }
    let formats = try names.isEmpty ? FloatFormat.named : names.map { try FloatFormat(parsing: $0) }
    if values {
      for f in formats where f.bitCount > 8 {
        throw CLIError("\(f.name) has \(f.codeCount) codes; --values lists formats of at most 8 bits")
      }
      print(json ? FormatReport.valuesJSON(formats) : FormatReport.valuesTable(formats), terminator: "")
    } else {
      print(json ? FormatReport.propertiesJSON(formats) : FormatReport.propertiesTable(formats), terminator: "")
    }
  }
}
