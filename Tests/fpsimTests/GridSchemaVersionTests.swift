import Foundation
import Testing

/// Grid files of schema_version 1 (first `/results` dimension `format` in a grid of formats) stay
/// readable: the committed FP8 study export is one.
@Suite struct GridSchemaVersionTests {
  static let mantissa = URL(fileURLWithPath: dataDirectory).deletingLastPathComponent()
    .appendingPathComponent("experiments/fp8-and-back/results/mantissa.h5").path

  @Test func aVersionOneGridOfFormatsIsStillCompared() throws {
    let header = try python("""
      import h5py
      f = h5py.File('\(Self.mantissa)', 'r')
      print(f.attrs['schema_version'], 'format' in f['results'], 'label_kind' in f['results'].attrs)
      """)
    #expect(header.trimmingCharacters(in: .whitespacesAndNewlines) == "1 True False", "the fixture is a version 1 file")
    let r = try CLI.run(["compare", Self.mantissa, "--baseline", "e8m7"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.contains("e8m3") && r.stdout.contains("format"), "\(r.stdout)")
  }

  @Test func aVersionOneGridOfFormatsIsStillReported() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let page = dir.appendingPathComponent("r.html").path
    let r = try CLI.run(["report", Self.mantissa, "--out", page])
    #expect(r.status == 0, "\(r.stderr)")
    let html = try String(contentsOfFile: page, encoding: .utf8)
    #expect(html.contains("e8m1") && html.contains("<svg"))
  }
}
