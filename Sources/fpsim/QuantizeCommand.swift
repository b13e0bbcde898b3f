import ArgumentParser
import FPFormats
import Foundation

/// `fpsim quantize`: numbers from standard input, rounded to a format, one result a line.
struct Quantize: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Round numbers from standard input to a format; one result a line.")

  @OptionGroup var options: QuantizeOptions

  @Option(help: "Input numbers are decimal values or float32 bit patterns (0x3f800000).")
  var from: NumberInput.Kind = .value

  @Option(help: "Print the rounded value, its float32 bit pattern, or the format's storage code (hex).")
  var to: OutputKind = .value

  enum OutputKind: String, ExpressibleByArgument, CaseIterable { case value, bits, code }

  func run() throws {
    let quantizer = try options.quantizer()
    let input = try NumberInput.parse(NumberInput.readStandardInput(), as: from)
    let output = quantizer.quantize(input)
    let format = quantizer.format
    let digits = (format.bitCount + 3) / 4
    var text = ""
    text.reserveCapacity(output.count * 12)
    for v in output {
      switch to {
      case .value: text += FormatReport.number(v)
      case .bits: text += FormatReport.hex(v.bitPattern, 8)
      case .code: text += FormatReport.hex(format.code(ofRepresentable: v), digits)
      }
      text += "\n"
    }
    FileHandle.standardOutput.write(Data(text.utf8))
  }
}

/// The flags that choose how to round: shared by `quantize` and `bench quantize`.
struct QuantizeOptions: ParsableArguments {
  @Option(help: "The format: a name or generic spelling (see `fpsim formats` and the README grammar).")
  var format: String

  @Option(help: "rne, rna, rtz, up, down, odd, stochastic or stochastic:BITS.")
  var rounding: String = "rne"

  @Option(help: "saturate (clamp to +-max) or ieee (Inf, else NaN, else max; as ml_dtypes).")
  var overflow: Overflow = .saturate

  @Option(help: "Seed of the counter-based random numbers (stochastic rounding).")
  var seed: UInt64 = 0

  func quantizer() throws -> Quantizer {
    Quantizer(
      format: try FloatFormat(parsing: format), rounding: try RoundingMode(parsing: rounding),
      overflow: overflow, seed: seed)
  }
}

extension Overflow: ExpressibleByArgument {}
