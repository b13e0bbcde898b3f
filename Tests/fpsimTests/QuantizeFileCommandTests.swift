import Foundation
import Testing

/// Runs python3 with a script; fails the test (not skips) with the install command when it cannot.
func python(_ script: String) throws -> String {
  let p = Process()
  p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  p.arguments = ["python3", "-c", script]
  let out = Pipe(), err = Pipe()
  p.standardOutput = out
  p.standardError = err
  try p.run()
  let data = out.fileHandleForReading.readDataToEndOfFile()
  let errData = err.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  guard p.terminationStatus == 0 else {
    throw CLIError("python failed (pip install h5py hdf5plugin numpy): \(String(decoding: errData, as: UTF8.self))")
  }
  return String(decoding: data, as: UTF8.self)
}

struct CLIError: Error, CustomStringConvertible { let description: String; init(_ s: String) { description = s } }

@Suite(.serialized) struct QuantizeFileCommandTests {
  /// h5py writes a dataset; `fpsim quantize --in/--out` quantizes it; h5py reads values and codes,
  /// which must equal what the text path prints for the same values (row-major order).
  @Test(arguments: [
    ["--format", "e4m3fn"], ["--format", "nvfp4"], ["--format", "mxfp4_e2m1"],
    ["--format", "e2m1/ue5m3/16", "--tensor-scale", "--rounding", "stochastic", "--seed", "3"],
    ["--format", "e5m2", "--compression", "zstd"],
  ])
  func hdf5PathMatchesTheTextPathAndReadsInH5py(options: [String]) throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fpsim-q-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let input = dir.appendingPathComponent("w.h5").path, output = dir.appendingPathComponent("q.h5").path
    let bits = try python("""
      import h5py, numpy as np
      x = np.random.default_rng(1).standard_t(3, size=(8, 48)).astype(np.float32)
      with h5py.File('\(input)', 'w') as f: f['layer0/w'] = x
      print(' '.join('0x%08x' % b for b in x.view(np.uint32).ravel()))
      """)
    let r = try CLI.run(["quantize"] + options + ["--in", "\(input):/layer0/w", "--out", "\(output):/layer0/w"])
    #expect(r.status == 0, "\(r.stderr)")
    // The same values as a row-major 8x48 matrix on standard input: blocks along its rows too.
    let text = try CLI.run(
      ["quantize"] + options.filter { $0 != "--compression" && $0 != "zstd" } + ["--shape", "8x48", "--from", "bits", "--to", "bits"],
      stdin: bits)
    let read = try python("""
      import h5py, numpy as np, hdf5plugin
      with h5py.File('\(output)', 'r') as f:
          g = f['layer0/w']
          assert f.attrs['schema'] == 'fpsim/tensors', f.attrs['schema']
          assert g['values'].shape == (8, 48) and g['values'].dtype == np.float32
          assert g['codes'].dtype == np.uint8 and g.attrs['format']
          print('\\n'.join('0x%08x' % b for b in g['values'][:].view(np.uint32).ravel()))
      """)
    #expect(read == text.stdout, "values differ from the text path")
  }

  @Test(arguments: [
    (["--in", "/nonexistent/w.h5:/w"], "w.h5"),
    (["--in", "W:/i"], "holds"),
    (["--in", "W:/missing"], "no such"),
    (["--in", "W:/x", "--out", "/proc/forbidden/q.h5:/x"], "q.h5"),
    (["--in", "W:/x", "--out", "TEXT:/x"], "not an HDF5 file"),
  ])
  func badFileInputGivesOneLineErrorAndNoOutput(arguments: [String], message: String) throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fpsim-q-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let w = dir.appendingPathComponent("w.h5").path, textFile = dir.appendingPathComponent("t.h5").path
    try "not hdf5".write(toFile: textFile, atomically: true, encoding: .utf8)
    _ = try python("""
      import h5py, numpy as np
      with h5py.File('\(w)', 'w') as f: f['i'] = np.arange(4); f['x'] = np.ones(4, np.float32)
      """)
    let out = dir.appendingPathComponent("q.h5").path
    var args = ["quantize", "--format", "e4m3fn"] + arguments.map {
      $0.replacingOccurrences(of: "W:", with: "\(w):").replacingOccurrences(of: "TEXT:", with: "\(textFile):")
    }
    if !args.contains("--out") { args += ["--out", "\(out):/x"] }
    let r = try CLI.run(args)
    #expect(r.status == 2)
    #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    #expect(r.stderr.contains(message), "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: out), "no output file")
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp-") }
    #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
  }
}
