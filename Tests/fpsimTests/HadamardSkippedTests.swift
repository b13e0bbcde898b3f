import Foundation
import Testing

/// A run file names the GEMMs that ran without the Hadamard transform their recipe asked for (its size
/// does not divide their reduction length), from gpt-micro's shapes alone: the forward GEMMs sum over
/// 32 or 128 input features, the data gradients over 96, 32, 128, 32 output features and the head's
/// over its 76 symbols, the weight gradients over 8 x 32 = 256 tokens.
@Suite struct HadamardSkippedTests {
  @Test(arguments: [
    ("mxfp4:hadamard=dgrad:16", "lm_head.dgrad"),  // 76 % 16 = 12
    ("mxfp4:hadamard=dgrad:4", ""),  // 76 % 4 = 0: every transform runs
    ("mxfp4:hadamard=forward+wgrad:16", ""),
    ("mxfp4", "absent"),  // no transform asked for: no attribute
  ])
  func runFileNamesTheSkippedTransforms(recipe: String, expected: String) throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("r.h5").path
    let r = try CLI.run(["train", "--model", "gpt-micro", "--recipe", recipe, "--steps", "1", "--data", dataDirectory, "--out", out])
    #expect(r.status == 0, "\(r.stderr)")
    let got = try python("""
      import h5py
      a = h5py.File('\(out)', 'r')['runs/run'].attrs
      v = a.get('hadamard_skipped')
      print('absent' if v is None else '[' + (v.decode() if isinstance(v, bytes) else v) + ']')
      """).trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(got == (expected == "absent" ? "absent" : "[\(expected)]"), "\(recipe)")
  }
}
