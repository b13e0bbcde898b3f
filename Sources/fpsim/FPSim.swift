import ArgumentParser
import FPEngine
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
    subcommands: [Formats.self, Quantize.self, ErrorCommand.self, Train.self, Recipes.self, Grid.self, SharpnessCommand.self, Bench.self, Inspect.self, ReportCommand.self, CompareCommand.self, Worker.self])

  static func main() {
    CPUCheck.require()  // refuses, one line and exit 2, on a CPU without the features it was built for
    if let problem = KernelOverrides.problem(in: ProcessInfo.processInfo.environment) {
      failAndExit(ValidationError(problem))
    }
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
    var text = fileErrorText(error) ?? message(for: error)
    if text.hasPrefix("Error: ") { text.removeFirst(7) }
    let line = text.split(separator: "\n").first.map(String.init) ?? "failed"
    FileHandle.standardError.write(Data("fpsim: error: \(Echo.line(line))\n".utf8))
    // _exit, not exit: after a failed write (a full disk) HDF5 may still hold a file it could not
    // close, and its atexit handler would try to flush it again and crash. Everything fpsim means
    // to keep was closed (and fsynced) explicitly; the temporaries of the failed write are gone.
    fflush(nil)  // every C stream, stdout included
    _exit(2)
  }
}

extension FPSim {
  /// Foundation's file errors (`NSCocoaErrorDomain Code=513 ...`) as `cannot write FILE: permission
  /// denied`: the file and the system's reason, no framework text.
  static func fileErrorText(_ error: Error) -> String? {
    let e = error as NSError
    guard e.domain == NSCocoaErrorDomain else { return nil }
    let path = (e.userInfo[NSFilePathErrorKey] as? String) ?? (e.userInfo[NSURLErrorKey] as? URL)?.path ?? "the file"
    let reading = (256..<512).contains(e.code)  // NSFileRead... codes; 512..<640 are NSFileWrite...
    var reason: String
    if let posix = e.userInfo[NSUnderlyingErrorKey] as? NSError, posix.domain == NSPOSIXErrorDomain {
      reason = String(cString: strerror(Int32(posix.code))).lowercased()
    } else {
      switch e.code {
      case NSFileWriteNoPermissionError, NSFileReadNoPermissionError: reason = "permission denied"
      case NSFileWriteOutOfSpaceError: reason = "no space left on the device"
      case NSFileNoSuchFileError, NSFileReadNoSuchFileError: reason = "no such file or folder"
      case NSFileWriteVolumeReadOnlyError: reason = "the file system is read-only"
      case NSFileWriteFileExistsError: reason = "it exists"
      default: reason = "error \(e.code)"
      }
    }
    return "cannot \(reading ? "read" : "write") \(path): \(reason)"
  }
}

/// An error of the command line itself; its text is the whole message.
struct CLIError: Error, CustomStringConvertible {
  let description: String
  init(_ text: String) { description = text }
}
