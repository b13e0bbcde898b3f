import Foundation
import Testing

@testable import FPStore

/// The `fpsim/tensors` layout round-trips and reads in h5py as docs/files.md describes it.
@Suite(.serialized)
struct TensorsFileTests {
  static let records = [
    TensorRecord(
      name: "w0", shape: [2, 4], format: "float8_e4m3fn", rounding: "rne", overflow: "saturate",
      values: [0, 0.5, -448, 1.125, 2, 3, -0.015625, 448], input: [0, 0.51, -500, 1.1, 2, 3.01, -0.0156, 460],
      codes: [0x00, 0x30, 0xFE, 0x39, 0x40, 0x44, 0xA8, 0x7E], codeBits: 8),
    TensorRecord(
      name: "x_nvfp4", shape: [32], format: "float4_e2m1fn", rounding: "stochastic", overflow: "saturate", seed: 7,
      values: (0..<32).map { Float($0 % 8) / 2 }, codes: (0..<32).map { UInt16($0 % 8) }, codeBits: 4,
      scales: [0.5, 2], scaleCodes: [0x30, 0x40], blockSize: 16, scaleFormat: "float8_e4m3fn", tensorScale: 0.25),
    TensorRecord(name: "half", shape: [3], format: "float16", values: [1, 2, 3], codes: [0x3C00, 0x4000, 0x4200], codeBits: 16),
  ]

  @Test func recordsRoundTripWithEveryOptionalField() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("t.h5")
    try TensorsFile.write(Self.records, to: path, config: #"{"command": "quantize"}"#)
    let back = try TensorsFile.read(path)
    #expect(back == Self.records.sorted { $0.name < $1.name })
    #expect(try H5File.open(path).dataset("/tensors/w0/codes").info().elementType == .uint8)
    #expect(try H5File.open(path).dataset("/tensors/half/codes").info().elementType == .uint16)
  }

  @Test func mismatchedLengthsAreRefusedAndNothingIsWritten() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("t.h5")
    var bad = Self.records[0]
    bad.codes = [1, 2]
    let error = #expect(throws: StoreError.self) { try TensorsFile.write([bad], to: path) }
    #expect(error?.description.contains("codes has 2 elements, the shape [2, 4] needs 8") == true)
    #expect(!FileManager.default.fileExists(atPath: path))
  }

  @Test func h5pyReadsTheDocumentedLayout() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("t.h5")
    try TensorsFile.write(Self.records, to: path)
    let script = """
      import sys, json, h5py
      f = h5py.File(sys.argv[1], "r")
      g = f["tensors/x_nvfp4"]
      print(json.dumps({"schema": f.attrs["schema"], "format": g.attrs["format"], "seed": int(g.attrs["seed"]),
          "shape": [int(x) for x in g.attrs["shape"]], "values": g["values"].shape, "codes": str(g["codes"].dtype),
          "bits": int(g["codes"].attrs["bits"]), "scales": [float(x) for x in g["scales"][...]],
          "scale_codes": [int(x) for x in g["scale_codes"][...]], "block_size": int(g.attrs["block_size"]),
          "scale_format": g.attrs["scale_format"], "tensor_scale": float(g.attrs["tensor_scale"]),
          "w0": [float(x) for x in f["tensors/w0/values"][...].ravel()]}))
      """
    let out = try jsonObject(try python(script, [path]))
    #expect(out["schema"] as? String == "fpsim/tensors")
    #expect(out["format"] as? String == "float4_e2m1fn")
    #expect(out["seed"] as? Int == 7)
    #expect(out["shape"] as? [Int] == [32])
    #expect(out["values"] as? [Int] == [32])
    #expect(out["codes"] as? String == "uint8")
    #expect(out["bits"] as? Int == 4)
    #expect(out["scales"] as? [Double] == [0.5, 2])
    #expect(out["scale_codes"] as? [Int] == [0x30, 0x40])
    #expect(out["block_size"] as? Int == 16)
    #expect(out["scale_format"] as? String == "float8_e4m3fn")
    #expect(out["tensor_scale"] as? Double == 0.25)
    #expect(out["w0"] as? [Double] == Self.records[0].values.map(Double.init))
  }
}
