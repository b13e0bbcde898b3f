import ArgumentParser
import FPFormats
import FPStore
import FPStudy
import Foundation

/// `fpsim quantize`: numbers from standard input, rounded to a format, one result a line; or an HDF5
/// dataset into an `fpsim/tensors` file (`--in FILE:DATASET --out FILE:PATH`).
struct Quantize: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Round numbers from standard input to a format; one result a line.")

  @OptionGroup var options: QuantizeOptions

  @Option(help: "Input numbers are decimal values or float32 bit patterns (0x3f800000).")
  var from: NumberInput.Kind = .value

  @Option(help: "Print the rounded value, its float32 bit pattern, or the format's storage code (hex).")
  var to: OutputKind = .value

  enum OutputKind: String, ExpressibleByArgument, CaseIterable { case value, bits, code }

  @Option(help: "Treat the input as a row-major matrix ROWSxCOLS (for 2-D tiles, rows and axis 0).")
  var shape: String?

  @Option(help: "Block formats: block along axis 1 (the last, default) or 0 of the matrix.")
  var axis: Int = 1

  @Option(name: .customLong("in"), help: "Quantize an HDF5 float dataset, FILE:DATASET (instead of standard input).")
  var input: String?

  @Option(name: .customLong("out"), help: "With --in: the fpsim/tensors FILE:PATH to write (a new file, or a new path in one).")
  var output: String?

  @Option(help: "With --in: none, deflate[:LEVEL] (default, opens everywhere) or zstd[:LEVEL] (needs hdf5plugin in h5py).")
  var compression: String = "deflate"

  func run() throws {
    if input != nil || output != nil { return try runFile() }
    let quantizer = try options.quantizer()
    let input = try NumberInput.parse(NumberInput.readStandardInput(), as: from)
    let (rows, cols) = try matrixShape(count: input.count)
    var output = input
    var stats = QuantizationStats()
    try output.withUnsafeMutableBufferPointer {
      try quantizer.quantize($0, rows: rows, cols: cols, axis: axis, stats: &stats)
    }
    let elementFormat = try options.resolvedFormat().elementFormat
    if to == .code, case .scaled = try options.resolvedFormat() {
      throw CLIError("--to code prints element-format codes: use an element format, or --to value|bits for block formats")
    }
    let digits = (elementFormat.bitCount + 3) / 4
    var text = ""
    text.reserveCapacity(output.count * 12)
    for v in output {
      switch to {
      case .value: text += FormatReport.number(v)
      case .bits: text += FormatReport.hex(v.bitPattern, 8)
      case .code: text += FormatReport.hex(elementFormat.code(ofRepresentable: v), digits)
      }
      text += "\n"
    }
    FileHandle.standardOutput.write(Data(text.utf8))
  }

  private func runFile() throws {
    guard let input, let output else {
      throw CLIError("--in and --out go together: fpsim quantize --format F --in weights.h5:/w --out q.h5:/w")
    }
    guard let codec = Compression(compression) else {
      throw CLIError("unknown compression '\(compression)': use none, deflate[:LEVEL] or zstd[:LEVEL]")
    }
    if to != .value || from != .value || shape != nil {
      throw CLIError("--from, --to and --shape apply to standard input; --in/--out take the dataset's shape")
    }
    let job = DatasetQuantization(
      input: try HDF5Location(parsing: input), output: try HDF5Location(parsing: output),
      format: try options.resolvedFormat(), rounding: try RoundingMode(parsing: options.rounding),
      overflow: options.overflow, seed: options.seed, compression: codec, axis: axis == 1 ? nil : axis)
    let s = try job.run()
    let n = s.stats.count
    print("\(job.input) \(s.shape) -> \(job.output) as \(job.format): \(n) values, \(s.stats.saturated) saturated, \(s.stats.flushedToZero) flushed to zero")
  }

  private func matrixShape(count: Int) throws -> (Int, Int) {
    guard axis == 0 || axis == 1 else { throw CLIError("--axis is 0 or 1, not \(axis)") }
    guard let shape else { return (1, count) }
    let parts = shape.lowercased().split(separator: "x", omittingEmptySubsequences: false).compactMap { Int($0) }
    guard parts.count == 2, parts[0] > 0, parts[1] > 0 else {
      throw CLIError("--shape '\(shape)': write ROWSxCOLS, as 4x32")
    }
    let (product, overflow) = parts[0].multipliedReportingOverflow(by: parts[1])
    guard !overflow, product == count else {
      throw CLIError("--shape '\(shape)' holds \(overflow ? "more values than can be counted" : "\(product) values") but the input has \(count)")
    }
    return (parts[0], parts[1])
  }
}

/// The flags that choose how to round: shared by `quantize`, `bench quantize` and `error`.
struct QuantizeOptions: ParsableArguments {
  @Option(help: "The format: an element format (e4m3fn, e8m3, ...), a block format ELEM/SCALE/BLOCK (e2m1/ue5m3/16) or a preset (mxfp4_e2m1, nvfp4, ...).")
  var format: String

  @Option(help: "rne, rna, rtz, up, down, odd, stochastic or stochastic:BITS.")
  var rounding: String = "rne"

  @Option(help: "Element formats: saturate (clamp to +-max) or ieee (Inf, else NaN, else max; as ml_dtypes). Block formats saturate.")
  var overflow: Overflow = .saturate

  @Option(help: "Seed of the counter-based random numbers (stochastic rounding).")
  var seed: UInt64 = 0

  @Option(help: "Block formats with power-of-two scales: floor (OCP MX) or ceil (NVIDIA MXFP8, torchao RCEIL).")
  var scaleRule: String?

  @Flag(help: "Block formats: add a second-level float32 tensor scale.")
  var tensorScale = false

  func resolvedFormat() throws -> AnyFormat {
    var f = try AnyFormat(parsing: format)
    if scaleRule != nil || tensorScale {
      guard case .scaled(let s) = f else {
        throw CLIError("--scale-rule and --tensor-scale apply to block formats, and \(format) is an element format")
      }
      if scaleRule == nil && s.tensorScale { return f }  // nothing to change (keeps nvfp4's own rule)
      var spec = s.spec
      if let r = scaleRule { spec += ":rule=\(r)" }
      if tensorScale && !s.tensorScale { spec += ":tensor-scale" }
      f = .scaled(try ScaledFormat(parsing: spec))
    }
    return f
  }

  func quantizer() throws -> AnyQuantizer {
    let f = try resolvedFormat()
    if case .scaled = f, overflow == .ieee {
      throw CLIError("block formats saturate their elements: drop --overflow ieee")
    }
    return AnyQuantizer(format: f, rounding: try RoundingMode(parsing: rounding), overflow: overflow, seed: seed)
  }
}

extension Overflow: ExpressibleByArgument {}
