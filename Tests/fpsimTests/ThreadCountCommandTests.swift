import Foundation
import Testing

/// Through the built binary, which picks its OpenBLAS kernel for this CPU as a user's run does (it may
/// re-execute itself for it, `BLASKernel`): gpt-tiny trained for two steps on one thread and on two
/// gives the same bits in every dataset. On two threads its products of 2048, 512, 384 and 128 rows
/// are cut into row panels on that kernel's row step (`GEMM.rowStep`), which the in-process GEMM
/// tests, running whatever kernel OpenBLAS detects for the test process, cannot reach.
@Suite struct ThreadCountCommandTests {
  @Test func gptTinyOnOneAndTwoThreadsGivesTheSameBits() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let one = dir.appendingPathComponent("one.h5").path, two = dir.appendingPathComponent("two.h5").path
    for (threads, out) in [(1, one), (2, two)] {
      let r = try CLI.run([
        "train", "--model", "gpt-tiny", "--recipe", "fp32", "--seed", "3", "--steps", "2", "--threads", "\(threads)",
        "--data", dataDirectory, "--out", out,
      ])
      #expect(r.status == 0, "\(r.stderr)")
    }
    let out = try python("""
      import h5py
      a, b = h5py.File('\(one)', 'r')['runs/run'], h5py.File('\(two)', 'r')['runs/run']
      names, bad = [], []
      def visit(name, obj):
          if isinstance(obj, h5py.Dataset) and not name.endswith('step_seconds'):
              names.append(name)
              if obj[()].tobytes() != b[name][()].tobytes(): bad.append(name)
      a.visititems(visit)
      print(len(names) > 50, bad)
      """)
    #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == "True []")
  }
}
