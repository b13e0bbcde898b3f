import CZlib
import Foundation

/// File access for the data sets (kept out of the kernels and models).
enum DataFiles {
  static func read(_ url: URL) throws -> Data {
    guard FileManager.default.fileExists(atPath: url.path) else { throw DataError.missing(url.path) }
    do { return try Data(contentsOf: url) } catch { throw DataError.unreadable(url.path, "\(error)") }
  }

  /// The decompressed contents of a gzip file, inflated with zlib in memory.
  static func gunzip(_ url: URL) throws -> Data {
    let compressed = try read(url)
    var stream = z_stream()
    guard fpsim_inflateInitGzip(&stream) == Z_OK else { throw DataError.unreadable(url.path, "zlib: cannot start inflating") }
    defer { inflateEnd(&stream) }
    var output = Data()
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    var status = Z_OK
    compressed.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
      stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
      stream.avail_in = uInt(input.count)
      repeat {
        chunk.withUnsafeMutableBufferPointer { buffer in
          stream.next_out = buffer.baseAddress
          stream.avail_out = uInt(buffer.count)
          status = inflate(&stream, Z_NO_FLUSH)
          output.append(buffer.baseAddress!, count: buffer.count - Int(stream.avail_out))
        }
      } while status == Z_OK
    }
    guard status == Z_STREAM_END, stream.avail_in == 0 else {
      let why = status == Z_STREAM_END ? "data after the end of the gzip stream" : "not a complete gzip file (zlib status \(status))"
      throw DataError.unreadable(url.path, why)
    }
    return output
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
