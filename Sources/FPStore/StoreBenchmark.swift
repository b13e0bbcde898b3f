import Foundation

/// Throughput of the store per codec: write then read one float32 dataset of a given size.
///
/// The data is a smooth signal plus seeded noise (`sin` and `cos` waves of a few periods per row,
/// plus uniform noise of 1% of the amplitude), so the compressors find real but limited
/// structure, as in training metrics and weights; pure noise or constants would flatter or ruin
/// them. Each codec writes a fresh file in `directory`, streaming 16 MiB blocks into a growable
/// `[rows, 1024]` dataset with 1 MiB chunks; the read streams the same blocks back and compares
/// them with the data written (bit for bit). Only the HDF5 calls are timed (generating and
/// comparing are not), including the final flush and close. Reads come from the page cache (the
/// file was just written): this measures the codec and HDF5, not the disk.
public enum StoreBenchmark {
  public struct Result: Sendable, Codable, Equatable {
    /// The compression, as ``Compression/description`` (`none`, `deflate:4`, `zstd:3`).
    public var codec: String
    /// HDF5 filter ids of the pipeline, in order.
    public var filters: [Int]
    /// Uncompressed megabytes (MiB) written and read.
    public var megabytes: Double
    /// Bytes the dataset occupies in the file.
    public var storedBytes: Int
    /// Uncompressed bytes over stored bytes.
    public var ratio: Double
    public var writeMBps: Double
    public var readMBps: Double
    /// Whether every value read back equals the value written.
    public var verified: Bool

    enum CodingKeys: String, CodingKey {
      case codec, filters, megabytes
      case storedBytes = "stored_bytes"
      case ratio
      case writeMBps = "write_mb_per_s"
      case readMBps = "read_mb_per_s"
      case verified
    }
  }

  public static let rowLength = 1024
  public static let blockRows = 4096  // 16 MiB of float32 per block

  /// Runs every codec in turn. `megabytes` is rounded up to whole 16 MiB blocks.
  public static func run(
    megabytes: Int, directory: String, seed: UInt64 = 1,
    codecs: [Compression] = [.none, .default, .zstd()]
  ) throws -> [Result] {
    let blocks = max(1, (megabytes + 15) / 16)
    return try codecs.map { try run(codec: $0, blocks: blocks, directory: directory, seed: seed) }
  }

  static func run(codec: Compression, blocks: Int, directory: String, seed: UInt64) throws -> Result {
    let path = (directory as NSString).appendingPathComponent("fpsim-bench-store-\(getpid())-\(codec).h5")
    defer { unlink(path) }
    var block = [Float](repeating: 0, count: blockRows * rowLength)
    var back = [Float](repeating: 0, count: blockRows * rowLength)
    let clock = ContinuousClock()
    var writeTime = Duration.zero
    var readTime = Duration.zero

    let file = try H5File.create(path, overwrite: true)
    let dataset = try file.root.createDataset(
      "data", type: .float32, shape: [0, rowLength], growable: true, chunk: [256, rowLength], compression: codec)
    for index in 0..<blocks {
      fill(&block, block: index, seed: seed)
      writeTime += try clock.measure { try dataset.append(block) }
    }
    writeTime += try clock.measure { try file.close() }
    let stored = try H5File.open(path)
    let readBack = try stored.dataset("/data")
    let storedBytes = try readBack.info().storageBytes
    var verified = true
    for index in 0..<blocks {
      let rows = (index * blockRows)..<((index + 1) * blockRows)
      readTime += try clock.measure { try back.withUnsafeMutableBufferPointer { try readBack.read(rows: rows, into: $0) } }
      fill(&block, block: index, seed: seed)
      if block.withUnsafeBytes({ a in back.withUnsafeBytes { b in memcmp(a.baseAddress!, b.baseAddress!, a.count) != 0 } }) {
        verified = false
      }
    }
    try stored.close()
    let megabytes = Double(blocks * blockRows * rowLength * 4) / Double(1 << 20)
    func seconds(_ d: Duration) -> Double {
      Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
    return Result(
      codec: codec.description, filters: codec.filterIDs, megabytes: megabytes, storedBytes: storedBytes,
      ratio: megabytes * Double(1 << 20) / Double(max(storedBytes, 1)),
      writeMBps: megabytes / seconds(writeTime), readMBps: megabytes / seconds(readTime), verified: verified)
  }

  /// Block `block` of the benchmark signal: row r (global index) holds
  /// `sin(2π·3·c/1024 + r/50) + 0.5·cos(2π·7·c/1024) + 0.01·u`, u uniform in [-1, 1) from a
  /// SplitMix64 hash of (seed, global element index), so every block is reproducible on its own.
  static func fill(_ values: inout [Float], block: Int, seed: UInt64) {
    let n = rowLength
    values.withUnsafeMutableBufferPointer { out in
      for row in 0..<blockRows {
        let r = block * blockRows + row
        let phase = Float(r) / 50
        for c in 0..<n {
          let index = UInt64(r * n + c)
          let u = Float(splitMix(seed &+ index &* 0x9E37_79B9_7F4A_7C15) >> 40) / Float(1 << 24) * 2 - 1
          let x = Float(c) / Float(n)
          out[row * n + c] = sin(2 * .pi * 3 * x + phase) + 0.5 * cos(2 * .pi * 7 * x) + 0.01 * u
        }
      }
    }
  }

  static func splitMix(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// A fixed-width table, one codec a line.
  public static func table(_ results: [Result]) -> String {
    var lines = ["codec        MB     stored MB  ratio  write MB/s  read MB/s  verified"]
    for r in results {
      lines.append(
        r.codec.padding(toLength: 10, withPad: " ", startingAt: 0)
          + String(format: " %6.0f  %10.1f  %5.2f  %10.1f  %9.1f  ", r.megabytes, Double(r.storedBytes) / Double(1 << 20),
                   r.ratio, r.writeMBps, r.readMBps) + (r.verified ? "yes" : "NO"))
    }
    return lines.joined(separator: "\n")
  }
}
