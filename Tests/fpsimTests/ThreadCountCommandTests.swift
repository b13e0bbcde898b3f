import Foundation
import Testing

/// Through the built binary, which picks its OpenBLAS kernel for this CPU as a user's run does (it may
/// re-execute itself for it, `BLASKernel`): gpt-tiny's bits do not depend on how its GEMMs are run.
/// The in-process GEMM tests run whatever kernel OpenBLAS detects for the test process, which may not
/// be the binary's.
@Suite struct ThreadCountCommandTests {
  /// One thread and two give the same bits in every dataset. On two threads the products of 2048,
  /// 512, 384 and 128 rows are cut into row panels on the kernel's row step (`GEMM.rowStep`).
  @Test func gptTinyOnOneAndTwoThreadsGivesTheSameBits() throws {
    try expectSameBits([("one", 1, nil), ("two", 2, nil)])
  }

  /// fpsim's own GEMM kernel (`CSGEMM`, taken where it reproduces the binary's OpenBLAS kernel) and
  /// OpenBLAS itself (`FPSIM_SGEMM=openblas`) give the same bits in every dataset, on two threads.
  @Test func gptTinyOnTheOwnKernelAndOnOpenBLASGivesTheSameBits() throws {
    try expectSameBits([("own", 2, nil), ("openblas", 2, "openblas")])
  }

  /// Trains gpt-tiny for two steps once per (name, threads, FPSIM_SGEMM) and compares every dataset
  /// but the step timings, bit for bit, between the two runs.
  func expectSameBits(_ runs: [(name: String, threads: Int, sgemm: String?)]) throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let paths = runs.map { dir.appendingPathComponent("\($0.name).h5").path }
    for (run, out) in zip(runs, paths) {
      var environment = ProcessInfo.processInfo.environment
      environment["FPSIM_SGEMM"] = run.sgemm
      let r = try CLI.run(
        [
          "train", "--model", "gpt-tiny", "--recipe", "fp32", "--seed", "3", "--steps", "2", "--threads",
          "\(run.threads)", "--data", dataDirectory, "--out", out,
        ], environment: environment)
      #expect(r.status == 0, "\(r.stderr)")
    }
    let out = try python("""
      import h5py
      a, b = h5py.File('\(paths[0])', 'r')['runs/run'], h5py.File('\(paths[1])', 'r')['runs/run']
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
