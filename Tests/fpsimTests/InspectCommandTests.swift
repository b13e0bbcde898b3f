import Foundation
import Testing

/// `fpsim inspect` on a grid file: the summary first, `--depth`, the summary in `--json`, and all of
/// it while another process (h5py) holds the file open.
@Suite(.serialized) struct InspectCommandTests {
  /// One small finished grid (linreg, two formats, 20 steps: about a second), made once for the suite.
  static let grid: Result<String, Error> = Result {
    let dir = try scratchDirectory()
    let out = dir.appendingPathComponent("g.h5").path
    let r = try CLI.run([
      "grid", "--model", "linreg", "--formats", "e8m7,e8m3", "--rounding", "rtz", "--lrs", "0.01", "--seeds", "0",
      "--steps", "20", "--eval-every", "10", "--data", dataDirectory, "--out", out, "--jobs", "1",
    ])
    guard r.status == 0 else { throw CLIError("grid failed: \(r.stderr)") }
    return out
  }

  @Test func gridSummaryComesRightAfterTheHeaderLine() throws {
    let path = try Self.grid.get()
    let r = try CLI.run(["inspect", path])
    #expect(r.status == 0, "\(r.stderr)")
    let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    #expect(lines[0].hasPrefix("\(path): fpsim/grid schema_version"))
    #expect(lines[1] == "\(path): 2 runs of linreg, 20 steps each", "\(lines.prefix(3))")
    #expect(lines[2].hasPrefix("format ") && lines[3].hasPrefix("e8m7 ") && lines[4].hasPrefix("e8m3 "))
    // The tree follows the summary: its root line comes after the table, and the table is not repeated.
    let root = try #require(lines.firstIndex(of: "/"))
    #expect(root > 4)
    #expect(lines.filter { $0.hasPrefix("format  runs") }.count == 1)
    #expect(lines.contains("  results/") && lines.contains("      metrics/"))
  }

  @Test func depthLimitsTheTreeAndCountsWhatItHides() throws {
    let path = try Self.grid.get()
    let full = try CLI.run(["inspect", path]).stdout
    let one = try CLI.run(["inspect", path, "--depth", "1"])
    #expect(one.status == 0, "\(one.stderr)")
    #expect(one.stdout.contains("\n  runs/  (2 children, below --depth)\n"), "\(one.stdout)")
    #expect(one.stdout.contains("    @summary_json = "), "attributes of the groups shown are shown")
    #expect(!one.stdout.contains("metrics/") && full.contains("metrics/"))
    #expect(one.stdout.contains("e8m3 "), "the summary is still printed")
    let zero = try CLI.run(["inspect", path, "--depth", "0"]).stdout
    #expect(zero.contains("\n/  (2 children, below --depth)\n") && !zero.contains("results/"), "\(zero)")
    // A depth beyond the tree's shows all of it.
    #expect(try CLI.run(["inspect", path, "--depth", "50"]).stdout == full)
    let json = dir(path).appendingPathComponent("depth1.json")
    try CLI.run(["inspect", path, "--json", "--depth", "1"]).stdout.write(to: json, atomically: true, encoding: .utf8)
    let check = try python("""
      import json
      d = json.load(open('\(json.path)'))
      assert d['depth'] == 1
      kids = {c['name']: c for c in d['root']['children']}
      assert set(kids) == {'runs', 'results'}, kids.keys()
      assert 'children' not in kids['runs'] and kids['runs']['child_count'] == 2, kids['runs']
      print('ok')
      """)
    #expect(check == "ok\n")
    let bad = try CLI.run(["inspect", path, "--depth", "-1"])
    #expect(bad.status == 2 && bad.stderr.hasPrefix("fpsim: error: ") && bad.stderr.contains("--depth"))
  }

  @Test func jsonHoldsTheSummaryAsJSONNotAsText() throws {
    let path = try Self.grid.get()
    let r = try CLI.run(["inspect", path, "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    let json = dir(path).appendingPathComponent("inspect.json")
    try r.stdout.write(to: json, atomically: true, encoding: .utf8)
    // The stored attribute, parsed by Python, must equal what inspect embeds (numbers included).
    let check = try python("""
      import json, h5py
      d = json.load(open('\(json.path)'))
      stored = json.loads(h5py.File('\(path)', 'r')['results'].attrs['summary_json'])
      assert isinstance(d['summary'], list) and d['summary'] == stored, (d['summary'], stored)
      assert [row['label'] for row in d['summary']] == ['e8m7', 'e8m3']
      print('ok')
      """)
    #expect(check == "ok\n")
    // A file that is not a grid has no summary.
    let runFile = try CLI.run(["inspect", "--json", try Self.tensorsFile()])
    #expect(runFile.status == 0 && !runFile.stdout.contains("\"summary\""), "\(runFile.stderr)")
  }

  /// A reader (h5py, read-only, as a notebook holds a file) keeps the grid open while inspect runs,
  /// in text and JSON. The reader says when it has the file open; no sleeps.
  @Test func worksWhileH5pyHoldsTheFileOpen() throws {
    let path = try Self.grid.get()
    let alone = try CLI.run(["inspect", path])
    let aloneJSON = try CLI.run(["inspect", path, "--json"])
    let reader = Process()
    reader.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    reader.arguments = [
      "python3", "-c",
      "import h5py, sys\nf = h5py.File(sys.argv[1], 'r')\nprint('opened', flush=True)\nsys.stdin.read()\nf.close()",
      path,
    ]
    let toReader = Pipe(), fromReader = Pipe()
    reader.standardInput = toReader
    reader.standardOutput = fromReader
    try reader.run()
    defer {
      try? toReader.fileHandleForWriting.close()  // the reader exits at end of input
      reader.waitUntilExit()
    }
    var said = ""
    while !said.contains("\n") {
      let chunk = fromReader.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      said += String(decoding: chunk, as: UTF8.self)
    }
    try #require(said == "opened\n", "the h5py reader did not open the file: \(said)")
    let held = try CLI.run(["inspect", path])
    #expect(held.status == 0, "\(held.stderr)")
    #expect(held.stdout == alone.stdout)
    let heldJSON = try CLI.run(["inspect", path, "--json"])
    #expect(heldJSON.status == 0 && heldJSON.stdout == aloneJSON.stdout, "\(heldJSON.stderr)")
    #expect(reader.isRunning, "the reader still holds the file")
  }

  static func tensorsFile() throws -> String {
    let d = dir(try grid.get())
    let input = d.appendingPathComponent("w.h5").path, output = d.appendingPathComponent("t.h5").path
    if FileManager.default.fileExists(atPath: output) { return output }
    _ = try python("""
      import h5py, numpy as np
      with h5py.File('\(input)', 'w') as f: f['w'] = np.ones(32, np.float32)
      """)
    let r = try CLI.run(["quantize", "--format", "e4m3fn", "--in", "\(input):/w", "--out", "\(output):/w"])
    guard r.status == 0 else { throw CLIError(r.stderr) }
    return output
  }
}

private func dir(_ path: String) -> URL { URL(fileURLWithPath: path).deletingLastPathComponent() }
