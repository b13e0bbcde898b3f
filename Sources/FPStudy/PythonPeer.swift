import Foundation

/// A benchmark's peer measured in Python (ml_dtypes, h5py): `python3 -c SCRIPT ARGUMENTS...`, its
/// standard output returned when it exits 0, nil otherwise (the caller says what to install).
public enum PythonPeer {
  public static func run(_ script: String, arguments: [String]) throws -> Data? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script] + arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return p.terminationStatus == 0 ? data : nil
  }
}
