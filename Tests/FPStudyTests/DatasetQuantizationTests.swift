import FPFormats
import FPStore
import FPStudy
import Foundation
import Testing

func temporaryDirectory() throws -> URL {
  let url = FileManager.default.temporaryDirectory.appendingPathComponent("fpsim-study-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}

@Suite(.serialized) struct DatasetQuantizationTests {
  /// Streaming in small pieces gives the same bits as quantizing the whole tensor in memory: random
  /// counters, scale counters and the tensor amax all continue across pieces.
  @Test(arguments: [
    ("e4m3fn", "stochastic"), ("mxfp4_e2m1", "rne"), ("nvfp4", "rne"), ("e2m1/ue5m3/16:tensor-scale:scale-rounding=stochastic", "stochastic"),
    ("int4/fp32/row", "rne"),
  ])
  func streamingInPiecesEqualsTheWholeTensor(spec: String, rounding: String) throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let input = dir.appendingPathComponent("in.h5").path
    let (rows, cols) = (40, 96)
    let x = Distribution.studentT(3).sample(rows * cols, seed: 5)
    let f = try H5File.create(input)
    try f.root.createDataset("w", values: x, shape: [rows, cols])
    try f.close()
    let format = try AnyFormat(parsing: spec)
    let r = try RoundingMode(parsing: rounding)
    var job = DatasetQuantization(
      input: HDF5Location(file: input, path: "/w"), output: HDF5Location(file: dir.appendingPathComponent("q.h5").path, path: "/w"),
      format: format, rounding: r, seed: 7)
    job.pieceValues = 200  // two rows (192 values) a piece
    _ = try job.run()
    let out = try H5File.open(job.output.file)
    let values = try out.dataset("/w/values").read(as: Float.self)
    #expect(try out.dataset("/w/values").shape == [rows, cols])
    let whole = try AnyQuantizer(format: format, rounding: r, seed: 7).quantize(x, rows: rows)
    #expect(values == whole)
    // The codes decode to the elements; with the scales they give the values back.
    let element = format.elementFormat
    let codes = try out.dataset("/w/codes").read(as: UInt16.self)
    if case .scaled(let s) = format, s.rule != .nvfp4 && !s.tensorScale {
      let scales = try out.dataset("/w/scales").read(as: Float.self)
      let perLine = try out.dataset("/w/scales").shape.last!
      let block = (cols + perLine - 1) / perLine
      for i in 0..<(rows * cols) {
        let scale = scales[(i / cols) * perLine + (i % cols) / block]
        #expect(element.decode(UInt32(codes[i])) * scale == values[i])
      }
    } else if case .element = format {
      for i in 0..<(rows * cols) { #expect(element.decode(UInt32(codes[i])) == values[i]) }
    }
    try out.close()
  }

  @Test func vectorsStreamInWholeBlocks() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let input = dir.appendingPathComponent("in.h5").path
    let x = Distribution.laplace.sample(1000, seed: 2)
    let f = try H5File.create(input)
    try f.root.createDataset("v", values: x.map(Double.init))
    try f.close()
    var job = DatasetQuantization(
      input: HDF5Location(file: input, path: "v"), output: HDF5Location(file: dir.appendingPathComponent("q.h5").path, path: "/a/b/v"),
      format: try AnyFormat(parsing: "nvfp4"))
    job.pieceValues = 100
    _ = try job.run()
    let out = try H5File.open(job.output.file)
    #expect(try out.dataset("/a/b/v/values").read(as: Float.self) == (try AnyQuantizer(format: job.format).quantize(x)))
    #expect(try out.dataset("/a/b/v/scales").shape == [63])  // ceil(1000 / 16) blocks
    try out.close()
  }

  @Test func nonFloatDatasetsAndExistingPathsAreRefused() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let input = dir.appendingPathComponent("in.h5").path
    let f = try H5File.create(input)
    try f.root.createDataset("i", values: [Int32(1), 2, 3])
    try f.root.createDataset("x", values: [Float(1), 2, 3])
    try f.close()
    let out = dir.appendingPathComponent("q.h5").path
    func job(_ path: String) throws -> DatasetQuantization {
      DatasetQuantization(input: HDF5Location(file: input, path: path), output: HDF5Location(file: out, path: path), format: try AnyFormat(parsing: "e4m3fn"))
    }
    #expect(throws: StoreError.self) { try job("/i").run() }
    #expect(!FileManager.default.fileExists(atPath: out), "no output file after a refused input")
    _ = try job("/x").run()
    #expect(throws: StoreError.self) { try job("/x").run() }
  }
}
