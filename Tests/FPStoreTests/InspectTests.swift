import Foundation
import Testing

@testable import FPStore

/// `inspect` shows the tree a person needs (header, groups, datasets with layout, attributes) as
/// text and as JSON.
@Suite(.serialized)
struct InspectTests {
  static func sample(_ dir: TemporaryDirectory) throws -> String {
    let path = dir.file("sample.h5")
    try InteropTests.writeSample(path)
    return path
  }

  @Test func textShowsTheHeaderTreeLayoutAndAttributes() throws {
    let dir = TemporaryDirectory()
    let path = try Self.sample(dir)
    let text = try Inspector.inspect(path).text()
    let lines = text.split(separator: "\n").map(String.init)
    #expect(lines[0].hasPrefix("\(path): fpsim/tensors schema_version 1, fpsim \(fpsimVersion), created 20"))
    for expected in [
      "/", "  @schema = \"fpsim/tensors\"", "  @schema_version = 1", "  tensors/", "    w0/",
      "      f32  float32 [3, 4]  chunks [3, 4]  deflate:4",
      "      plain  float32 [3]",
      "      zstd  float32 [50, 100]  chunks [10, 100]  zstd:7",
      "      deflate_noshuffle  float32 [1000]  chunks [1000]  deflate:6-noshuffle",
      "      f16  float16 [4]  chunks [4]  deflate:4",
      "        @note = \"zstd, level 7, shuffle\"",
      "      @amax = [448.0, 0.5]", "      @labels = [\"x\", \"ÿ\"]", "      @block = 32",
    ] {
      #expect(lines.contains(expected), "missing line: \(expected)\n\(text)")
    }
  }

  @Test func longValuesAreShortened() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("long.h5")
    let file = try H5File.create(path)
    try file.root.setAttribute("config", String(repeating: "x", count: 500))
    try file.root.setAttribute("many", Array(0..<100))
    try file.root.createDataset("grow", type: .int64, shape: [0, 3], growable: true)
    try file.close()
    let lines = try Inspector.inspect(path).text().split(separator: "\n").map(String.init)
    #expect(lines.contains("  @config = \"\(String(repeating: "x", count: 57))...\" (500 chars)"))
    #expect(lines.contains("  @many = [0, 1, 2, 3, 4, ...] (100 values)"))
    #expect(lines.contains("  grow  int64 [0, 3] max [unlimited, 3]  chunks [43690, 3]  deflate:4"))
  }

  @Test func jsonIsMachineReadableWithTheSameFacts() throws {
    let dir = TemporaryDirectory()
    let path = try Self.sample(dir)
    let json = try Inspector.inspect(path).json()
    let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    #expect(object["file"] as? String == path)
    let header = try #require(object["header"] as? [String: Any])
    #expect(header["schema"] as? String == "fpsim/tensors")
    #expect(header["schema_version"] as? Int == 1)
    let root = try #require(object["root"] as? [String: Any])
    let tensors = try #require((root["children"] as? [[String: Any]])?.first)
    let w0 = try #require((tensors["children"] as? [[String: Any]])?.first)
    let zstd = try #require((w0["children"] as? [[String: Any]])?.first { $0["name"] as? String == "zstd" })
    #expect(zstd["dtype"] as? String == "float32")
    #expect(zstd["shape"] as? [Int] == [50, 100])
    #expect(zstd["chunks"] as? [Int] == [10, 100])
    #expect(zstd["compression"] as? String == "zstd:7")
    #expect((zstd["filters"] as? [[String: Any]])?.map { $0["id"] as? Int } == [2, 32015])
    let attributes = try #require(w0["attributes"] as? [[String: Any]])
    #expect(attributes.first { $0["name"] as? String == "amax" }?["value"] as? [Double] == [448, 0.5])
    // The report decodes back to the same value.
    #expect(try JSONDecoder().decode(InspectReport.self, from: Data(json.utf8)) == Inspector.inspect(path))
  }

  @Test func dimensionScalesAreShownAsDimensionNames() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("grid.h5")
    try Store.writeAtomically(to: path, schema: .grid) { file in
      let results = try file.root.createGroup("results")
      let lr = try results.createDimensionScale("lr", values: [0.1, 0.01])
      let seed = try results.createDimensionScale("seed", values: [Int64(0), 1, 2])
      try results.createDataset("final_loss", values: [Float](repeating: 1, count: 6), shape: [2, 3]).attach(scales: [lr, seed])
    }
    let report = try Inspector.inspect(path)
    let text = report.text()
    let lines = text.split(separator: "\n").map(String.init)
    #expect(lines.contains("    final_loss  float32 [2, 3]  chunks [2, 3]  deflate:4  dims (lr, seed)"))
    #expect(lines.contains("    lr  float64 [2]  (dimension scale)"))
    // H5DS bookkeeping is summarized by "dims" in the text, kept whole in the JSON.
    for name in ["DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME"] {
      #expect(!text.contains("@\(name)"), "\(name) shown:\n\(text)")
      #expect(try report.json().contains("\"\(name)\""))
    }
  }

  @Test func hiddenIncompleteUnitsAreCountedAndShownOnRequest() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("runs.h5")
    let file = try Store.create(path, schema: .run)
    try file.root.createGroup("/.incomplete/runs%2Fr9").createDataset("x", values: [Float(1)])
    try file.close()
    let report = try Inspector.inspect(path)
    #expect(report.incompleteUnits == ["runs%2Fr9"])
    #expect(!report.text().contains(".incomplete/"))
    #expect(report.text().split(separator: "\n")[1].hasPrefix("note: 1 incomplete unit(s)"))
    #expect(try Inspector.inspect(path, showHidden: true).text().contains("  .incomplete/"))
  }
}
