import ArgumentParser
import FPFormats
import Foundation

/// `fpsim formats [NAME ...] [--json] [--values]`: the properties of formats (element formats and
/// block specs), or every code of one.
struct Formats: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Show format properties (all catalog formats when no name is given), or every code with --values.",
    discussion: """
      A block format (a preset such as mxfp4_e2m1 or nvfp4, or ELEMENT/SCALE/BLOCK[:OPTION...] such as \
      e2m1/ue5m3/16) is shown with its block, tensor scale, scale rule and storage bits per value \
      (element bits + scale bits / values per block; a float32 tensor scale adds 32/N for a tensor of N \
      values), followed by the properties of its element and scale formats.
      """)

  @Argument(help: "Format names, generic spellings or block specs (e4m3fn, e8m3, ue5m3, int8, mxfp4_e2m1, nvfp4, e2m1/ue5m3/16, ...).")
  var names: [String] = []

  @Flag(help: "Print JSON instead of a table.")
  var json = false

  @Flag(help: "List every code of each format and its value (formats of at most 8 bits).")
  var values = false

  @Flag(help: "List the block-scaled presets (MX, NVFP4).")
  var scaled = false

  func run() throws {
    let formats: [AnyFormat]
    if scaled {
      formats = try ScaledFormat.presetNames.map { .scaled(try ScaledFormat(parsing: $0)) }
    } else {
      formats = try names.isEmpty ? FloatFormat.named.map(AnyFormat.element) : names.map { try AnyFormat(parsing: $0) }
    }
    let blocks = formats.compactMap { f -> ScaledFormat? in if case .scaled(let s) = f { return s } else { return nil } }
    if values {
      if let s = blocks.first {
        throw CLIError("\(s.name) is a block format; --values lists the codes of element formats: fpsim formats \(s.element.name) \(s.scale.name) --values")
      }
      let elements = formats.map(\.elementFormat)
      for f in elements where f.bitCount > 8 {
        throw CLIError("\(f.name) has \(f.codeCount) codes; --values lists formats of at most 8 bits")
      }
      print(json ? FormatReport.valuesJSON(elements) : FormatReport.valuesTable(elements), terminator: "")
      return
    }
    if json {
      print(FormatReport.propertiesJSON(formats), terminator: "")
      return
    }
    if blocks.isEmpty {
      print(FormatReport.propertiesTable(formats.map(\.elementFormat)), terminator: "")
      return
    }
    // Block formats first, then one table of every element and scale format involved (each once).
    var seen = Set<String>()
    var involved: [FloatFormat] = []
    for f in formats {
      let parts: [FloatFormat]
      switch f {
      case .element(let e): parts = [e]
      case .scaled(let s): parts = [s.element, s.scale]
      }
      for p in parts where seen.insert(p.name).inserted { involved.append(p) }
    }
    print(FormatReport.blockTable(blocks), terminator: "")
    if blocks.contains(where: { $0.bitsPerValueFormula.contains("N") || $0.bitsPerValueFormula.contains("C") }) {
      print("(N: values in the tensor; C: values in a row)")
    }
    print("")
    print(FormatReport.propertiesTable(involved), terminator: "")
  }
}
