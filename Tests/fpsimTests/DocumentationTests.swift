import FPFormats
import Foundation
import Testing

/// What README.md and docs/files.md state, checked against what fpsim does.
@Suite struct DocumentationTests {
  static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  static func text(_ relative: String) throws -> String {
    try String(contentsOf: repository.appendingPathComponent(relative), encoding: .utf8)
  }

  /// docs/files.md's recipe for values from `codes` and `scales` (its Python block, run as written)
  /// reproduces every stored value bit for bit, for each scale rule: NVFP4, MX (power-of-two scales)
  /// and the amax rule with and without a tensor scale.
  @Test(arguments: [["nvfp4"], ["mxfp4_e2m1"], ["e2m1/ue5m3/16"], ["e2m1/ue5m3/16", "--tensor-scale"]])
  func filesMdRebuildsBlockValuesFromCodesAndScales(format: [String]) throws {
    let docs = try Self.text("docs/files.md")
    let intro = try #require(docs.range(of: "In numpy, with `codes`"), "docs/files.md lost its reconstruction")
    let rest = docs[intro.upperBound...]
    let start = try #require(rest.range(of: "```python\n")), end = try #require(rest[start.upperBound...].range(of: "```"))
    let snippet = String(rest[start.upperBound..<end.lowerBound])
    #expect(snippet.contains("values = q * d"))

    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let input = dir.appendingPathComponent("w.h5").path, output = dir.appendingPathComponent("q.h5").path
    let snippetFile = dir.appendingPathComponent("snippet.py")
    try snippet.write(to: snippetFile, atomically: true, encoding: .utf8)
    // Rows of very different magnitudes, a row length (250) that leaves a short last block for
    // both block sizes, an all-zero block and a block of negative zeros.
    _ = try python("""
      import h5py, numpy as np
      rng = np.random.default_rng(0)
      x = (rng.standard_normal((64, 250)) * 10.0 ** rng.uniform(-3, 3, (64, 1))).astype(np.float32)
      x[5, :32] = 0; x[6, :32] = -0.0
      with h5py.File('\(input)', 'w') as f: f['x'] = x
      """)
    let r = try CLI.run(["quantize", "--format"] + format + ["--in", "\(input):/x", "--out", "\(output):/t"])
    #expect(r.status == 0, "\(r.stderr)")
    let check = try python("""
      import h5py, numpy as np
      f = h5py.File('\(output)', 'r')
      g = f['t']
      def decode(c):
          # float4_e2m1fn codes: sign bit 3, exponent bits 2..1 (bias 1), mantissa bit 0; no Inf or NaN.
          c = c.astype(np.int64)
          e, m = (c >> 1) & 3, c & 1
          mag = np.where(e == 0, m * 0.5, (1 + m / 2) * 2.0 ** (e - 1))
          return (np.where(c & 8, -1.0, 1.0) * mag).astype(np.float32)
      exec(open('\(snippetFile.path)').read())
      stored = g['values'][:]
      assert values.dtype == np.float32 and values.shape == stored.shape, (values.dtype, values.shape)
      differ = int(np.count_nonzero(values.view(np.uint32) != stored.view(np.uint32)))
      print(differ, stored.size, g.attrs['scale_rule'])
      """)
    let fields = check.split(separator: " ")
    #expect(fields.first == "0", "values rebuilt as docs/files.md says differ from the stored ones: \(check)")
    #expect(fields.count == 3 && fields[1] == "16000")
  }

  /// Every spelling the rounding parser accepts is in the README's rounding list, so none is an
  /// undocumented alias; and each parses to the mode the README gives it.
  @Test func everyRoundingSpellingIsDocumented() throws {
    let readme = try Self.text("README.md")
    let section = try #require(readme.range(of: "## Rounding and overflow"))
    let end = try #require(readme[section.upperBound...].range(of: "\n## "))
    let list = readme[section.upperBound..<end.lowerBound]
    for (spelling, mode) in RoundingMode.spellings {
      #expect(list.contains("`\(spelling)`"), "README's rounding list does not mention `\(spelling)`")
      #expect(try RoundingMode(parsing: spelling.uppercased()) == mode)
    }
    #expect(list.contains("`sr:R`"))
    #expect(try RoundingMode(parsing: "sr:8") == .stochastic(bits: 8))
    #expect(throws: FormatError.self) { try RoundingMode(parsing: "nearest-even") }
  }

  /// The project's documents stand alone: no references to files outside the repository.
  @Test func documentsReferToNothingOutsideTheRepository() throws {
    let fm = FileManager.default
    var files = ["README.md", "Package.swift"]
    for folder in ["docs", "experiments"] {
      let root = Self.repository.appendingPathComponent(folder)
      for case let url as URL in fm.enumerator(at: root, includingPropertiesForKeys: nil) ?? .init()
      where ["md", "toml", "json", "sh", "py"].contains(url.pathExtension) {
        files.append(folder + url.path.dropFirst(root.path.count))
      }
    }
    #expect(files.count > 8)
    for file in files {
      let text = try Self.text(file)
      for outside in ["../shared", "PLATFORM.md", "DESIGN.md", "STYLE.md", "/work/"] {
        #expect(!text.contains(outside), "\(file) refers to \(outside), outside the repository")
      }
    }
  }
}
