import Foundation
import Testing

@testable import FPStore

/// Files FPStore writes open in h5py, hdf5plugin, xarray and h5dump, and FPStore reads what h5py
/// writes. The Python side is an independent oracle: a different HDF5 (h5py bundles its own) and
/// numpy's conversions.
@Suite(.serialized)
struct InteropTests {
  /// One dataset per element type with recognisable values, a zstd dataset, and attributes of
  /// every kind, in an `fpsim/tensors` file.
  static func writeSample(_ path: String) throws {
    try Store.writeAtomically(to: path, schema: .tensors, config: #"{"format": "e4m3fn", "seed": 7}"#) { file in
      let g = try file.root.createGroup("tensors/w0")
      try g.createDataset("f32", values: (0..<12).map { Float($0) * 0.25 - 1 }, shape: [3, 4])
      try g.createDataset("f64", values: (0..<6).map { Double($0) / 3 }, shape: [2, 3])
      try g.createDataset("f16", values: [Float(0.5), -2, 65504, 1.0 / 1024], type: .float16)
      try g.createDataset("u8", values: (0..<256).map { UInt8($0) }, shape: [16, 16])
      try g.createDataset("u16", values: [UInt16(0), 1, 65535])
      try g.createDataset("i32", values: [Int32.min, -1, 0, Int32.max])
      try g.createDataset("i64", values: [Int64.min, 0, Int64.max])
      try g.createDataset("plain", values: [Float(1), 2, 3], compression: .none)
      try g.createDataset("deflate_noshuffle", values: [Float](repeating: 3, count: 1000), compression: .deflate(level: 6, shuffle: false))
      let z = try g.createDataset(
        "zstd", values: (0..<5000).map { Float(sin(Double($0) / 50)) }, shape: [50, 100], chunk: [10, 100],
        compression: .zstd(level: 7, shuffle: true))
      try z.setAttribute("note", "zstd, level 7, shuffle")
      try g.setAttribute("format", "float8_e4m3fn")
      try g.setAttribute("block", 32)
      try g.setAttribute("scale", 0.0078125)
      try g.setAttribute("shape", [3, 4])
      try g.setAttribute("amax", [448.0, 0.5])
      try g.setAttribute("labels", ["x", "ÿ"])
    }
  }

  @Test func h5pyReadsValuesAttributesAndFilterIDsOfWhatFPStoreWrites() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("sample.h5")
    try Self.writeSample(path)
    let script = """
      import sys, json, h5py, numpy as np
      f = h5py.File(sys.argv[1], "r")
      g = f["tensors/w0"]
      out = {"root": {k: (v.decode() if isinstance(v, bytes) else (int(v) if isinstance(v, np.integer) else v)) for k, v in f.attrs.items()}, "datasets": {}, "attrs": {}}
      for name in ["f32", "f64", "f16", "u8", "u16", "i32", "i64", "plain", "deflate_noshuffle"]:
          d = g[name]
          plist = d.id.get_create_plist()
          filters = [plist.get_filter(i) for i in range(plist.get_nfilters())]
          out["datasets"][name] = {"dtype": d.dtype.str, "shape": list(d.shape),
              "values": [str(x) if d.dtype.kind in "iu" else repr(float(x)) for x in d[...].ravel()],
              "filters": [int(fl[0]) for fl in filters], "params": [list(map(int, fl[2])) for fl in filters]}
      for k, v in g.attrs.items():
          if isinstance(v, np.ndarray): v = [x.decode() if isinstance(x, bytes) else (x.item() if hasattr(x, "item") else x) for x in v]
          elif isinstance(v, np.generic): v = v.item()
          out["attrs"][k] = [type(v).__name__, v]
      zplist = g["zstd"].id.get_create_plist()
      out["zstd_filters"] = [int(zplist.get_filter(i)[0]) for i in range(zplist.get_nfilters())]
      print(json.dumps(out))
      """
    let out = try jsonObject(try python(script, [path]))
    let root = try #require(out["root"] as? [String: Any])
    #expect(root["schema"] as? String == "fpsim/tensors")
    #expect(root["schema_version"] as? Int == 1)
    #expect(root["fpsim_version"] as? String == fpsimVersion)
    #expect(root["config"] as? String == #"{"format": "e4m3fn", "seed": 7}"#)
    #expect((root["created"] as? String)?.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"#, options: .regularExpression) != nil)

    let datasets = try #require(out["datasets"] as? [String: [String: Any]])
    let expected: [String: (dtype: String, shape: [Int], values: [String])] = [
      "f32": ("<f4", [3, 4], (0..<12).map { "\(Double($0) * 0.25 - 1)" }),
      "f64": ("<f8", [2, 3], (0..<6).map { "\(Double($0) / 3)" }),
      "f16": ("<f2", [4], ["0.5", "-2.0", "65504.0", "\(1.0 / 1024)"]),
      "u8": ("|u1", [16, 16], (0..<256).map { "\($0)" }),
      "u16": ("<u2", [3], ["0", "1", "65535"]),
      "i32": ("<i4", [4], ["\(Int32.min)", "-1", "0", "\(Int32.max)"]),
      "i64": ("<i8", [3], ["\(Int64.min)", "0", "\(Int64.max)"]),
      "plain": ("<f4", [3], ["1.0", "2.0", "3.0"]),
      "deflate_noshuffle": ("<f4", [1000], [String](repeating: "3.0", count: 1000)),
    ]
    for (name, want) in expected {
      let got = try #require(datasets[name], "h5py did not see \(name)")
      #expect(got["dtype"] as? String == want.dtype, "\(name)")
      #expect(got["shape"] as? [Int] == want.shape, "\(name)")
      let values = (got["values"] as? [Any])?.map { v in (v as? String) ?? "\((v as! NSNumber).doubleValue)" }
      #expect(values == want.values, "\(name)")
    }
    // The documented pipelines: deflate + shuffle by default, level in cd_values[0].
    #expect(datasets["f32"]?["filters"] as? [Int] == [FilterID.shuffle, FilterID.deflate])
    #expect((datasets["f32"]?["params"] as? [[Int]])?.last == [4])
    #expect(datasets["plain"]?["filters"] as? [Int] == [])
    #expect(datasets["deflate_noshuffle"]?["filters"] as? [Int] == [FilterID.deflate])
    #expect((datasets["deflate_noshuffle"]?["params"] as? [[Int]])?.last == [6])
    #expect(out["zstd_filters"] as? [Int] == [FilterID.shuffle, FilterID.zstd])

    let attrs = try #require(out["attrs"] as? [String: [Any]])
    #expect(attrs["format"]?.first as? String == "str")
    #expect(attrs["format"]?.last as? String == "float8_e4m3fn")
    #expect(attrs["block"]?.last as? Int == 32)
    #expect(attrs["scale"]?.last as? Double == 0.0078125)
    #expect(attrs["shape"]?.last as? [Int] == [3, 4])
    #expect(attrs["amax"]?.last as? [Double] == [448.0, 0.5])
    #expect(attrs["labels"]?.last as? [String] == ["x", "ÿ"])
  }

  @Test func h5pyReadsZstdDatasetsAfterImportingHdf5pluginAndNotBefore() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("sample.h5")
    try Self.writeSample(path)
    let script = """
      import sys, json, h5py, numpy as np
      result = {}
      with h5py.File(sys.argv[1], "r") as f:
          try:
              f["tensors/w0/zstd"][...]
              result["without_plugin"] = "read"
          except Exception as e:
              result["without_plugin"] = "failed"
      import hdf5plugin
      with h5py.File(sys.argv[1], "r") as f:
          d = f["tensors/w0/zstd"]
          result["bits"] = [int(x) for x in d[...].ravel().view(np.uint32)]
          result["shape"] = list(d.shape)
          result["chunks"] = list(d.chunks)
          result["opts"] = list(d.id.get_create_plist().get_filter(1)[2])
      print(json.dumps(result))
      """
    let out = try jsonObject(try python(script, [path]))
    #expect(out["without_plugin"] as? String == "failed", "zstd should need hdf5plugin (or HDF5_PLUGIN_PATH)")
    #expect(out["shape"] as? [Int] == [50, 100])
    #expect(out["chunks"] as? [Int] == [10, 100])
    #expect(out["opts"] as? [Int] == [7])
    // Compared as float32 bit patterns: exact, and independent of JSON's decimal round trip.
    let bits = try #require(out["bits"] as? [Int])
    let expected = (0..<5000).map { Int(Float(sin(Double($0) / 50)).bitPattern) }
    #expect(bits.count == expected.count)
    #expect(zip(bits, expected).filter { $0 != $1 }.count == 0, "values differ from those written")
  }

  @Test func xarrayOpensAGroupWithDimensionScalesAsLabelledCoordinates() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("grid.h5")
    let formats = ["e8m7", "e8m5", "e8m3"]
    let lrs = [1e-4, 3e-4, 1e-3, 3e-3]
    let seeds: [Int64] = [0, 1]
    let loss = (0..<24).map { Float($0) / 8 + 1 }
    try Store.writeAtomically(to: path, schema: .grid) { file in
      let results = try file.root.createGroup("results")
      let format = try results.createDimensionScale("format", labels: formats)
      let lr = try results.createDimensionScale("lr", values: lrs)
      let seed = try results.createDimensionScale("seed", values: seeds)
      let finalLoss = try results.createDataset("final_loss", values: loss, shape: [3, 4, 2])
      try finalLoss.attach(scales: [format, lr, seed])
      try finalLoss.setAttribute("units", "nats")
      #expect(try finalLoss.dimensionScaleNames() == [["format"], ["lr"], ["seed"]])
      #expect(try format.isDimensionScale)
      #expect(try !finalLoss.isDimensionScale)
    }
    let script = """
      import sys, json, xarray as xr
      ds = xr.open_dataset(sys.argv[1], group="results", engine="h5netcdf")
      v = ds["final_loss"]
      print(json.dumps({"dims": list(v.dims), "coords": sorted(ds.coords),
          "format": [str(x) for x in ds["format"].values], "lr": [float(x) for x in ds["lr"].values],
          "seed": [int(x) for x in ds["seed"].values], "values": [float(x) for x in v.values.ravel()],
          "units": v.attrs.get("units"),
          "picked": float(v.sel(format="e8m5", lr=1e-3, seed=1))}))
      """
    let out = try jsonObject(try python(script, [path]))
    #expect(out["dims"] as? [String] == ["format", "lr", "seed"])
    #expect(out["coords"] as? [String] == ["format", "lr", "seed"])
    #expect(out["format"] as? [String] == formats)
    #expect(out["lr"] as? [Double] == lrs)
    #expect(out["seed"] as? [Int] == [0, 1])
    #expect(out["values"] as? [Double] == loss.map(Double.init))
    #expect(out["units"] as? String == "nats")
    #expect(out["picked"] as? Double == Double(loss[1 * 8 + 2 * 2 + 1]))
  }

  @Test func h5dumpReadsTheHeaderAndShowsTheSchemaAttributes() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("sample.h5")
    try Self.writeSample(path)
    // -H: the header only (names, types, shapes); -p: storage layout and filters.
    let header = try runProcess("/usr/bin/env", ["h5dump", "-H", "-p", path])
    #expect(header.status == 0, "h5dump -H failed: \(header.stderr)")
    for needle in [
      #"ATTRIBUTE "schema""#, #"ATTRIBUTE "schema_version""#, #"ATTRIBUTE "fpsim_version""#,
      #"ATTRIBUTE "created""#, #"ATTRIBUTE "config""#, #"DATASET "f32""#, "SHUFFLE", "COMPRESSION DEFLATE { LEVEL 4 }",
      "USER_DEFINED_FILTER", "FILTER_ID 32015",
    ] {
      #expect(header.stdout.contains(needle), "h5dump -H -p output lacks \(needle)")
    }
    // -A: the header with attribute values.
    let attributes = try runProcess("/usr/bin/env", ["h5dump", "-A", path])
    #expect(attributes.status == 0, "h5dump -A failed: \(attributes.stderr)")
    for needle in [#"(0): "fpsim/tensors""#, "(0): 1", #"(0): "\#(fpsimVersion)""#, #"(0): "float8_e4m3fn""#] {
      #expect(attributes.stdout.contains(needle), "h5dump -A output lacks \(needle)")
    }
  }

  @Test func fpstoreReadsWhatH5pyWroteIncludingHdf5pluginZstd() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("fromh5py.h5")
    let script = """
      import sys, h5py, hdf5plugin, numpy as np
      with h5py.File(sys.argv[1], "w") as f:
          f.attrs["title"] = "written by h5py"
          f.attrs["fixed"] = np.bytes_(b"fixed-length")
          f.attrs["count"] = np.int16(-7)
          f.attrs["ratio"] = np.float32(0.25)
          f.attrs["flag"] = True
          f.attrs["sizes"] = np.array([1, 2, 3], dtype=np.uint32)
          f.attrs["names"] = ["a", "bc"]
          g = f.create_group("data")
          x = np.sin(np.arange(20000, dtype=np.float64) / 30).astype(np.float32).reshape(200, 100)
          g.create_dataset("zstd", data=x, chunks=(50, 100), **hdf5plugin.Zstd(clevel=5))
          g.create_dataset("gzip", data=x, chunks=(50, 100), compression="gzip", compression_opts=2, shuffle=True)
          g.create_dataset("half", data=np.array([0.1, -3.5, 1e-5, 60000], dtype=np.float16))
          g.create_dataset("int8", data=np.array([-128, 0, 127], dtype=np.int8))
          g.create_dataset("uint32", data=np.array([0, 4000000000], dtype=np.uint32))
          g.create_dataset("big_endian", data=np.array([1.5, -2.25], dtype=">f8"))
          g.create_dataset("words", data=np.array(["alpha", "beta"], dtype=h5py.string_dtype()))
          g.create_dataset("grow", data=np.arange(10, dtype=np.int64), maxshape=(None,), chunks=(4,))
      """
    _ = try python(script, [path])
    let file = try H5File.open(path)
    let root = try file.root
    #expect(try root.attribute("title") == .string("written by h5py"))
    #expect(try root.attribute("fixed") == .string("fixed-length"))
    #expect(try root.attribute("count") == .int(-7))
    #expect(try root.attribute("ratio") == .double(0.25))
    #expect(try root.attribute("sizes") == .ints([1, 2, 3]))
    #expect(try root.attribute("names") == .strings(["a", "bc"]))
    if case .other(let description) = try root.attribute("flag") {
      #expect(description.contains("enum"), "h5py stores bool as an enum: \(description)")
    } else {
      Issue.record("bool attribute should read as .other(enum ...)")
    }
    #expect(try FileHeader.read(from: file) == nil)

    let expected = (0..<20000).map { Float(sin(Double($0) / 30)) }
    let zstd = try file.dataset("/data/zstd")
    #expect(try zstd.info().compression == .zstd(level: 5, shuffle: false))
    #expect(try zstd.read(as: Float.self) == expected)
    #expect(try zstd.read(as: Float.self, rows: 120..<130) == Array(expected[12000..<13000]))
    let gzip = try file.dataset("/data/gzip")
    #expect(try gzip.info().compression == .deflate(level: 2, shuffle: true))
    #expect(try gzip.read(as: Double.self) == expected.map(Double.init))
    let half = try file.dataset("/data/half")
    #expect(try half.info().elementType == .float16)
    #expect(try half.read(as: Float.self) == [Float16(0.1), -3.5, Float16(1e-5), 60000].map(Float.init))
    #expect(try file.dataset("/data/int8").read(as: Int32.self) == [-128, 0, 127])
    #expect(try file.dataset("/data/int8").info().typeDescription == "int8")
    #expect(try file.dataset("/data/uint32").read(as: Int64.self) == [0, 4_000_000_000])
    #expect(try file.dataset("/data/big_endian").read(as: Double.self) == [1.5, -2.25])
    #expect(try file.dataset("/data/big_endian").info().typeDescription == "float64 (big-endian)")
    #expect(try file.dataset("/data/words").readStrings() == ["alpha", "beta"])
    let grow = try file.dataset("/data/grow")
    #expect(try grow.info().maxShape == [nil])
    #expect(try grow.read(as: Int64.self, rows: 3..<6) == [3, 4, 5])
  }
}
