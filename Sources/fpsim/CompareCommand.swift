import ArgumentParser
import FPStore
import FPStudy
import Foundation

/// `fpsim compare FILE... [--baseline B] [--json]`: seed-paired differences to a baseline, across grid files.
struct CompareCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "compare",
    abstract: "Differences in final validation loss to a baseline, paired by seed, with 95% t-intervals.",
    discussion: """
      One row per file, format or recipe, and learning rate: seeds and pairs (seeds where both runs \
      finished), mean final validation loss, mean paired difference to the baseline with its 95% \
      Student-t interval, and a verdict ("within seed noise" when the interval contains 0). The \
      baseline is each grid's first label unless --baseline names one. Format grids also get the \
      fewest bits within --tolerance of the baseline at every learning rate.
      """)

  @Argument(help: "Grid files (HDF5).")
  var files: [String]

  @Option(help: "Baseline format or recipe (default: each grid's first).")
  var baseline: String?

  @Option(help: "Tolerance in nats for the fewest-bits answer of bit-reduction grids.")
  var tolerance: Double = 0.05

  @Flag(help: "Print JSON: {\"rows\": [...], \"bit_reduction\": [...]}.")
  var json = false

  struct Output: Encodable {
    var rows: [PairedDifference]
    var bitReduction: [FileAnswer]
    struct FileAnswer: Encodable {
      var file: String
      var answer: BitReduction
    }
  }

  func validate() throws {
    guard tolerance >= 0, tolerance.isFinite else { throw CLIError("--tolerance must be a non-negative number of nats, as 0.05") }
  }

  func run() throws {
    var rows: [PairedDifference] = []
    var answers: [Output.FileAnswer] = []
    var kinds = Set<String>()
    for path in files {
      let (file, header) = try Store.open(path, expecting: .grid)
      defer { try? file.close() }
      _ = header
      let study = try GridStudy.read(file)
      kinds.insert(study.values.labelKind)
      do {
        for var r in try PairedComparison.compute(study.values, baseline: baseline) {
          r.file = path
          rows.append(r)
        }
        if let a = try BitReduction.compute(study.values, baseline: baseline, tolerance: tolerance) {
          answers.append(.init(file: path, answer: a))
        }
      } catch let e as StudyInputError {
        throw CLIError("\(path): \(e.description)")
      }
    }
    if json {
      let e = JSONEncoder()
      e.keyEncodingStrategy = .convertToSnakeCase
      e.outputFormatting = [.sortedKeys, .prettyPrinted]
      e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
      print(String(decoding: try e.encode(Output(rows: rows, bitReduction: answers)), as: UTF8.self))
      return
    }
    print(PairedComparison.table(rows, kind: kinds.count == 1 ? kinds.first! : "label"), terminator: "")
    for a in answers { print("\(a.file): \(a.answer.sentence)") }
  }
}
