import Foundation

/// A data file that cannot be used; each description is one line naming the file and the fix.
public enum DataError: Error, CustomStringConvertible, Equatable {
  case missing(String)
  case unreadable(String, String)
  case malformed(String, String)

  public var description: String {
    switch self {
    case .missing(let p):
      return "data file not found: \(p) (the data sets live in the repository's data/ folder; pass its location)"
    case .unreadable(let p, let why): return "cannot read \(p): \(why)"
    case .malformed(let p, let why): return "malformed data in \(p): \(why)"
    }
  }
}

/// File access for the data sets (kept out of the kernels and models).
enum DataFiles {
  static func read(_ url: URL) throws -> Data {
    guard FileManager.default.fileExists(atPath: url.path) else { throw DataError.missing(url.path) }
    do { return try Data(contentsOf: url) } catch { throw DataError.unreadable(url.path, "\(error)") }
  }

  /// The decompressed contents of a gzip file, through the system's `gzip -dc` (Foundation on Linux
  /// exposes no zlib).
  static func gunzip(_ url: URL) throws -> Data {
    guard FileManager.default.fileExists(atPath: url.path) else { throw DataError.missing(url.path) }
    let gzip = ["/bin/gzip", "/usr/bin/gzip"].first { FileManager.default.isExecutableFile(atPath: $0) }
    guard let gzip else { throw DataError.unreadable(url.path, "no gzip executable in /bin or /usr/bin") }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: gzip)
    p.arguments = ["-dc", url.path]
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    do { try p.run() } catch { throw DataError.unreadable(url.path, "cannot run gzip: \(error)") }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let message = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
      throw DataError.unreadable(url.path, "gzip: \(String(decoding: message, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
    }
    return data
  }

  /// Rows of whitespace- or comma-separated numbers (empty lines skipped).
  static func numberRows(_ data: Data, path: String) throws -> [[Double]] {
    let text = String(decoding: data, as: UTF8.self)
    var rows: [[Double]] = []
    for (k, line) in text.split(whereSeparator: \.isNewline).enumerated() {
      let fields = line.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" })
      if fields.isEmpty { continue }
      var row: [Double] = []
      row.reserveCapacity(fields.count)
      for f in fields {
        guard let v = Double(f) else { throw DataError.malformed(path, "line \(k + 1): '\(f)' is not a number") }
        row.append(v)
      }
      rows.append(row)
    }
    return rows
  }
}
