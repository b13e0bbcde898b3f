import Foundation
import Testing

/// Runs the built `fpsim` executable (a sibling of the test bundle in the build folder) the way a
/// user does: arguments, standard input, and the exact text and exit status it produces.
struct CLIResult {
  let status: Int32
  let stdout: String
  let stderr: String
}

enum CLI {
  static let executable: URL = {
    if let path = ProcessInfo.processInfo.environment["FPSIM_BIN"] { return URL(fileURLWithPath: path) }
    var dir = Bundle.main.bundleURL
    for _ in 0..<4 {
      let candidate = dir.appendingPathComponent("fpsim")
      if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
      dir = dir.deletingLastPathComponent()
    }
    fatalError("fpsim executable not found next to \(Bundle.main.bundleURL.path); set FPSIM_BIN")
  }()

  static func run(_ arguments: [String], stdin: String = "", environment: [String: String]? = nil) throws -> CLIResult {
    let p = Process()
    p.executableURL = executable
    p.arguments = arguments
    if let environment { p.environment = environment }
    let input = Pipe(), output = Pipe(), error = Pipe()
    p.standardInput = input
    p.standardOutput = output
    p.standardError = error
    try p.run()
    // Write and read concurrently so large inputs and outputs cannot fill a pipe and deadlock.
    let writer = Thread {
      input.fileHandleForWriting.write(Data(stdin.utf8))
      try? input.fileHandleForWriting.close()
    }
    writer.start()
    nonisolated(unsafe) var errData = Data()
    let errReader = Thread { errData = error.fileHandleForReading.readDataToEndOfFile() }
    errReader.start()
    let outData = output.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    while errReader.isExecuting || !errReader.isFinished { usleep(1000) }
    return CLIResult(
      status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
      stderr: String(decoding: errData, as: UTF8.self))
  }

  /// Starts `fpsim` and SIGKILLs it as soon as its standard error so far satisfies `killWhen`.
  /// Returns whether it was killed (false: it ended first) and what it had printed.
  static func runAndKill(_ arguments: [String], when killWhen: (String) -> Bool) throws -> (killed: Bool, stderr: String) {
    let p = Process()
    p.executableURL = executable
    p.arguments = arguments
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    var seen = ""
    while p.isRunning {
      let chunk = err.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      seen += String(decoding: chunk, as: UTF8.self)
      if killWhen(seen) {
        kill(p.processIdentifier, SIGKILL)
        break
      }
    }
    p.waitUntilExit()
    return (p.terminationReason == .uncaughtSignal, seen)
  }
}
