import ArgumentParser
import FPStore
import FPStudy
import Foundation

/// `fpsim bench store`: HDF5 write and read throughput and compressed size per codec (none,
/// deflate + shuffle, zstd + shuffle) on the same data, in one run; optionally h5py as a peer.
struct BenchStore: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "store",
    abstract: "MB/s writing and reading a float32 dataset, and its stored size, per codec.",
    discussion: """
      Writes a growable [rows, 1024] float32 dataset (1 MiB chunks, 16 MiB appends) of a smooth \
      signal plus 1% seeded noise, then reads it back and checks every value. Reads come from the \
      page cache: the figures measure HDF5 and the codecs, not the disk. MB is MiB (2^20 bytes).
      """)

  @Option(help: "Uncompressed size in MiB (rounded up to a multiple of 16).")
  var mb: Int = 256

  @Option(help: "Directory for the temporary files (default: the system temporary directory).")
  var dir: String?

  @Option(help: "Codecs to time, comma separated (none, deflate[:level], zstd[:level], -noshuffle suffix).")
  var codecs: String = "none,deflate:4,zstd:3"

  @Option(help: "Seed of the noise.")
  var seed: UInt64 = 1

  @Option(help: "Also time a peer in this run: h5py (python3 with h5py and hdf5plugin).")
  var peer: String?

  @Flag(help: "Print JSON.")
  var json = false

  func validate() throws {
    guard mb > 0 else { throw ValidationError("--mb must be positive") }
    guard parsedCodecs() != nil else {
      throw ValidationError("bad --codecs '\(codecs)': use none, deflate[:0-9], zstd[:1-22], optionally with -noshuffle")
    }
    if let p = peer, p != "h5py" { throw ValidationError("unknown peer '\(p)': the peer is h5py") }
  }

  private func parsedCodecs() -> [Compression]? {
    let list = codecs.split(separator: ",").map { Compression(String($0)) }
    return list.isEmpty || list.contains(where: { $0 == nil }) ? nil : list.compactMap { $0 }
  }

  func run() throws {
    let directory = dir ?? FileManager.default.temporaryDirectory.path
    let results = try StoreBenchmark.run(megabytes: mb, directory: directory, seed: seed, codecs: parsedCodecs() ?? [])
    if let bad = results.first(where: { !$0.verified }) {
      throw CLIError("bench store: values read back with \(bad.codec) differ from those written")
    }
    let peerResults = peer == nil ? nil : try h5pyPeer(megabytes: Int(results[0].megabytes), directory: directory)
    if json {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      let report = Report(megabytes: results[0].megabytes, directory: directory, seed: seed, results: results, h5py: peerResults)
      print(String(decoding: try encoder.encode(report), as: UTF8.self))
    } else {
      print("store: float32 [\(Int(results[0].megabytes) * 256), 1024], \(Int(results[0].megabytes)) MiB, 1 MiB chunks, in \(directory)")
      print(StoreBenchmark.table(results))
      if let peerResults {
        print("h5py peer (same shape, chunks and codecs; numpy data of the same form):")
        for p in peerResults {
          print("  " + p.codec.padding(toLength: 10, withPad: " ", startingAt: 0)
            + String(format: " stored %8.1f MB  write %8.1f MB/s  read %8.1f MB/s", Double(p.storedBytes) / 1048576, p.writeMBps, p.readMBps))
        }
      }
    }
  }

  struct Report: Encodable {
    var benchmark = "store"
    var megabytes: Double
    var directory: String
    var seed: UInt64
    var results: [StoreBenchmark.Result]
    var h5py: [PeerResult]?
  }

  struct PeerResult: Codable {
    var codec: String
    var storedBytes: Int
    var writeMBps: Double
    var readMBps: Double
    enum CodingKeys: String, CodingKey {
      case codec
      case storedBytes = "stored_bytes"
      case writeMBps = "write_mb_per_s"
      case readMBps = "read_mb_per_s"
    }
  }

  /// The same workload in h5py (bundling its own HDF5) with hdf5plugin's zstd.
  private func h5pyPeer(megabytes: Int, directory: String) throws -> [PeerResult] {
    let script = """
      import sys, os, time, json, numpy as np, h5py, hdf5plugin
      mb, directory, codecs = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(",")
      rows_per_block, n = 4096, 1024
      blocks = (mb + 15) // 16
      c = np.arange(n, dtype=np.float32) / n
      rng = np.random.default_rng(int(sys.argv[4]))
      def block(b):
          r = (b * rows_per_block + np.arange(rows_per_block, dtype=np.float32))[:, None] / 50
          return (np.sin(2 * np.pi * 3 * c + r) + 0.5 * np.cos(2 * np.pi * 7 * c)
                  + 0.01 * rng.uniform(-1, 1, (rows_per_block, n))).astype(np.float32)
      out = []
      for codec in codecs:
          name, _, level = codec.partition(":")
          shuffle = not name.endswith("-noshuffle") and not level.endswith("-noshuffle")
          name, level = name.replace("-noshuffle", ""), level.replace("-noshuffle", "")
          kw = {}
          if name == "deflate": kw = dict(compression="gzip", compression_opts=int(level or 4), shuffle=shuffle)
          elif name == "zstd": kw = dict(shuffle=shuffle, **hdf5plugin.Zstd(clevel=int(level or 3)))
          path = os.path.join(directory, "fpsim-bench-store-h5py-%d.h5" % os.getpid())
          tw = tr = 0.0
          f = h5py.File(path, "w")
          d = f.create_dataset("data", shape=(0, n), maxshape=(None, n), chunks=(256, n), dtype=np.float32, **kw)
          for b in range(blocks):
              x = block(b)
              t = time.perf_counter(); d.resize((b + 1) * rows_per_block, axis=0); d[b * rows_per_block:, :] = x; tw += time.perf_counter() - t
          t = time.perf_counter(); f.close(); tw += time.perf_counter() - t
          f = h5py.File(path, "r"); d = f["data"]; stored = d.id.get_storage_size()
          buf = np.empty((rows_per_block, n), dtype=np.float32)
          for b in range(blocks):
              t = time.perf_counter(); d.read_direct(buf, np.s_[b * rows_per_block:(b + 1) * rows_per_block, :]); tr += time.perf_counter() - t
          f.close(); os.unlink(path)
          total = blocks * 16.0
          out.append({"codec": codec, "stored_bytes": int(stored), "write_mb_per_s": total / tw, "read_mb_per_s": total / tr})
      print(json.dumps(out))
      """
    let codecNames = (parsedCodecs() ?? []).map(\.description).joined(separator: ",")
    let data = try PythonPeer.run(script, arguments: ["\(megabytes)", directory, codecNames, "\(seed)"])
    guard let data, let results = try? JSONDecoder().decode([PeerResult].self, from: data) else {
      throw CLIError("the h5py peer failed: install it with `pip install h5py hdf5plugin`")
    }
    return results
  }
}
