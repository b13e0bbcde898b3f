import Foundation
import Testing

@testable import FPStore

/// A fresh directory per test, removed when the value is released.
final class TemporaryDirectory: @unchecked Sendable {
  let path: String

  init(_ name: String = #function) {
    let base = FileManager.default.temporaryDirectory.path
    let safe = name.filter { $0.isLetter || $0.isNumber }
    path = "\(base)/fpstore-tests-\(getpid())-\(safe)-\(UInt32.random(in: 0...UInt32.max))"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }

  func file(_ name: String) -> String { "\(path)/\(name)" }

  deinit { try? FileManager.default.removeItem(atPath: path) }
}

struct ProcessResult {
  var status: Int32
  var stdout: String
  var stderr: String
}

/// Runs a program to completion, capturing its output (through files, so a chatty child can never
/// block on a full pipe).
func runProcess(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
  let scratch = TemporaryDirectory("process")
  let outPath = scratch.file("stdout"), errPath = scratch.file("stderr")
  _ = FileManager.default.createFile(atPath: outPath, contents: nil)
  _ = FileManager.default.createFile(atPath: errPath, contents: nil)
  let process = Process()
  process.executableURL = URL(fileURLWithPath: executable)
  process.arguments = arguments
  if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
  process.standardInput = FileHandle.nullDevice
  process.standardOutput = FileHandle(forWritingAtPath: outPath)
  process.standardError = FileHandle(forWritingAtPath: errPath)
  try process.run()
  process.waitUntilExit()
  return ProcessResult(
    status: process.terminationStatus,
    stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
    stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

/// The Python packages the interoperability tests need.
let pythonInstallHint = "pip install h5py hdf5plugin xarray h5netcdf"

/// Runs a Python script (`sys.argv[1:]` = `arguments`) and returns its standard output.
/// Missing Python packages make the calling test fail (not skip) with the install command.
func python(_ script: String, _ arguments: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
  let result = try runProcess("/usr/bin/env", ["python3", "-c", script] + arguments)
  if result.status == 127 || result.stderr.contains("ModuleNotFoundError") || result.stderr.contains("No module named") {
    Issue.record("Python packages missing (\(result.stderr.split(separator: "\n").last ?? "")): \(pythonInstallHint)", sourceLocation: sourceLocation)
    throw PythonMissing()
  }
  if result.status != 0 {
    Issue.record("python3 exited \(result.status): \(result.stderr)", sourceLocation: sourceLocation)
    throw PythonFailed()
  }
  return result.stdout
}

struct PythonMissing: Error {}
struct PythonFailed: Error {}

/// Parses a JSON object printed by a Python script.
func jsonObject(_ text: String) throws -> [String: Any] {
  let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
  guard let dictionary = object as? [String: Any] else { throw PythonFailed() }
  return dictionary
}

/// The crash test's writer (the `StoreCrashWriter` program) built next to this test bundle.
func crashWriterExecutable() -> String? {
  var candidates: [URL] = []
  if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
    var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
    for _ in 0..<4 {
      candidates.append(url.appendingPathComponent("StoreCrashWriter"))
      url.deleteLastPathComponent()
    }
  }
  for bundle in Bundle.allBundles {
    candidates.append(bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("StoreCrashWriter"))
  }
  return candidates.map(\.path).first { FileManager.default.isExecutableFile(atPath: $0) }
}
