import ArgumentParser
import Foundation

/// The command line: thin subcommands over the library layers (README "Commands").
///
/// Every failure, from a bad flag to a malformed number, prints one line `fpsim: error: ...` on
/// standard error and exits with status 2.
@main
struct FPSim: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "fpsim",
    abstract: "Simulate low-precision float formats and the training runs that use them.",
    version: "0.1.0",
    subcommands: [Formats.self, Quantize.self, ErrorCommand.self, Train.self, Recipes.self, Grid.self, SharpnessCommand.self, Bench.self, Inspect.self, StoreSelfTest.self, Worker.self])

  static func main() {
    CPUCheck.require()  // refuses, one line and exit 2, on a CPU without the features it was built for
    BLASKernel.ensureTuned()  // re-executes once with an OpenBLAS kernel for this CPU (BLASKernel.swift)
    do {
      var command = try parseAsRoot()
      try command.run()
    } catch {
      if exitCode(for: error) == .success { exit(withError: error) }  // --help, --version
      failAndExit(error)
    }
  }

  /// Prints the first line of the error's message and exits 2.
  static func failAndExit(_ error: Error) -> Never {
    var text = message(for: error)
    if text.hasPrefix("Error: ") { text.removeFirst(7) }
    let line = text.split(separator: "\n").first.map(String.init) ?? "failed"
    FileHandle.standardError.write(Data("fpsim: error: \(line)\n".utf8))
    Foundation.exit(2)
  }
}

/// An error of the command line itself; its text is the whole message.
struct CLIError: Error, CustomStringConvertible {
  let description: String
  init(_ text: String) { description = text }
}
