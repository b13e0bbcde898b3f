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

  /// `cwd`: the child's working folder (never the test process's own, which parallel tests share).
  static func run(_ arguments: [String], stdin: String = "", environment: [String: String]? = nil, in cwd: URL? = nil) throws -> CLIResult {
    let p = Process()
    p.executableURL = executable
    p.arguments = arguments
    if let environment { p.environment = environment }
    if let cwd { p.currentDirectoryURL = cwd }
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
    let errRead = DispatchSemaphore(value: 0)
    let errReader = Thread {
      errData = error.fileHandleForReading.readDataToEndOfFile()
      errRead.signal()
    }
    errReader.start()
    let outData = output.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    errRead.wait()
    return CLIResult(
      status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
      stderr: String(decoding: errData, as: UTF8.self))
  }

  /// A `runAndKill` condition: a `fpsim train`'s progress lines ("step N/...") have reached step `n`.
  static func passedStep(_ n: Int) -> (String) -> Bool {
    { text in
      let steps = text.split(separator: "\n").compactMap { line -> Int? in
        guard let r = line.range(of: "step ") else { return nil }
        return Int(line[r.upperBound...].prefix { $0.isNumber })
      }
      return (steps.last ?? 0) >= n
    }
  }

  /// Starts `fpsim` and SIGKILLs it as soon as its standard error so far satisfies `killWhen`.
  /// Returns whether it was killed (false: it ended first) and what it had printed, once it and every
  /// process it had started (grid workers, which outlive it) have ended.
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
        let started = descendants(of: p.processIdentifier)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        for pid in started { waitForEnd(pid) }
        break
      }
    }
    p.waitUntilExit()
    return (p.terminationReason == .uncaughtSignal, seen)
  }

  /// The processes below `pid` (children, theirs, ...), from the parent ids in /proc/PID/stat.
  static func descendants(of pid: Int32) -> [Int32] {
    var parent: [Int32: Int32] = [:]
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
      if let p = Int32(entry), let fields = statFields(p), fields.count > 1, let pp = Int32(fields[1]) { parent[p] = pp }
    }
    var found: [Int32] = [], frontier = [pid]
    while let q = frontier.popLast() {
      for (c, pp) in parent where pp == q {
        found.append(c)
        frontier.append(c)
      }
    }
    return found
  }

  /// The fields of /proc/PID/stat after "pid (comm)" (the name may hold spaces): state, ppid, ...
  static func statFields(_ pid: Int32) -> [Substring]? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = stat.lastIndex(of: ")")
    else { return nil }
    return stat[stat.index(after: close)...].split(separator: " ")
  }

  /// Returns once process `pid`, which is not this process's child (so it cannot be waited for with
  /// waitpid), has ended: gone from /proc, or a zombie waiting for its new parent to reap it. Checks its
  /// state every millisecond until then: a wait for the event, not a guess at how long it takes.
  static func waitForEnd(_ pid: Int32) {
    while let fields = statFields(pid), fields.first != "Z" { usleep(1000) }
  }
}
