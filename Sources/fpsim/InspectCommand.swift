import ArgumentParser
import FPStore
import FPStudy

/// `fpsim inspect FILE`: the tree of any HDF5 file, with the fpsim header when it has one.
struct Inspect: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Show an HDF5 file's groups, datasets (dtype, shape, chunks, compression) and attributes.",
    discussion: """
      The first line names the file and, for fpsim files, its schema, schema_version, the fpsim \
      version that wrote it and when. Files written by other tools are shown too. Units that an \
      interrupted writer left under /.incomplete are counted but hidden (see --all).
      """)

  @Argument(help: "The HDF5 file.")
  var file: String

  @Flag(help: "Print the tree as JSON.")
  var json = false

  @Flag(name: .customLong("all"), help: "Also show /.incomplete (units of interrupted writers).")
  var showHidden = false

  func run() throws {
    let report = try Inspector.inspect(file, showHidden: showHidden)
    print(json ? try report.json() : report.text())
    // Grid files end with their summary (per format: divergence, failures to learn, best lr, ...).
    if !json, let f = try? H5File.open(file), (try? FileHeader.read(from: f))??.schema == Schema.grid.name,
      (try? f.root.contains("/results")) == true
    {
      print("")
      try Grid.printSummary(file, json: false)
    }
  }
}
