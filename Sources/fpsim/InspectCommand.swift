import ArgumentParser
import FPStore
import FPStudy

/// `fpsim inspect FILE`: the tree of any HDF5 file, with the fpsim header when it has one, and for a
/// grid file its summary first.
struct Inspect: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Show an HDF5 file's groups, datasets (dtype, shape, chunks, compression) and attributes.",
    discussion: """
      The first line names the file and, for fpsim files, its schema, schema_version, the fpsim \
      version that wrote it and when. A grid file's summary (per format: divergence, failures to \
      learn, best learning rate, stable learning rates) comes next, then the tree. Files written by \
      other tools are shown too. Units that an interrupted writer left under /.incomplete are counted \
      but hidden (see --all). The file is opened read-only: a notebook may hold it open meanwhile.
      """)

  @Argument(help: "The HDF5 file.")
  var file: String

  @Flag(help: "Print the tree as JSON (with the grid summary under \"summary\").")
  var json = false

  @Flag(name: .customLong("all"), help: "Also show /.incomplete (units of interrupted writers).")
  var showHidden = false

  @Option(help: "Levels of the tree to show below the root (0: the root's attributes only; default: all).")
  var depth: Int?

  func validate() throws {
    if let depth, depth < 0 { throw ValidationError("--depth must be 0 or more (0 shows the root only)") }
  }

  func run() throws {
    let report = try Inspector.inspect(file, showHidden: showHidden, depth: depth)
    if json {
      print(try report.json())
      return
    }
    var lines = report.text().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let header = lines.removeFirst()
    print(header)
    // A grid file with results: its summary right after the header line, then the tree.
    if report.header?.schema == Schema.grid.name, report.summary != nil {
      do {
        try Grid.printSummary(file, json: false)
      } catch {
        print("(no summary: \(FPSim.message(for: error).split(separator: "\n").first ?? ""))")
      }
      print("")
    }
    print(lines.joined(separator: "\n"))
  }
}
