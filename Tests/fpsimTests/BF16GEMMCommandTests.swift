import CCPUFeatures
import Foundation
import Testing

/// `--gemm bf16` through the built binary: recorded in the run file, resumed after SIGKILL with the same
/// bits, in a grid spec and in `bench train` (on a CPU with AVX512-BF16; skipped, and reported so,
/// elsewhere); refused with exit status 2 and no file on a CPU without it, and for a wrong value.
@Suite(.serialized)
struct BF16GEMMCommandTests {
  static let hasBF16 = fpsim_cpu_features() & (UInt64(1) << UInt64(FPSIM_CPU_AVX512BF16)) != 0

  static let common = ["--model", "gpt-micro", "--recipe", "bf16", "--lr", "3e-3", "--seed", "4", "--steps", "400",
                       "--eval-every", "200", "--checkpoint-every", "100", "--data", dataDirectory]

  @Test(.enabled(if: hasBF16, "this CPU lacks AVX512-BF16")) func trainRecordsTheModeAndResumesWithTheSameBits() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let a = dir.appendingPathComponent("a.h5").path, b = dir.appendingPathComponent("b.h5").path
    let s = dir.appendingPathComponent("s.h5").path
    for (args, out) in [(["--gemm", "bf16"], a), (["--gemm", "sgemm"], s)] {
      let r = try CLI.run(["train"] + Self.common + args + ["--out", out])
      #expect(r.status == 0, "\(r.stderr)")
      // gpt-micro has 9 linear layers (2 blocks of 4, and the head), each 3 GEMMs, all bf16 here.
      #expect(r.stdout.contains("27 GEMMs on the bf16 kernel") == (out == a), "\(r.stdout)")
    }
    let (killed, seen) = try CLI.runAndKill(["train"] + Self.common + ["--gemm", "bf16", "--out", b], when: CLI.passedStep(150))
    #expect(killed, "the run finished before it could be killed: \(seen)")
    let resumed = try CLI.run(["train", "--resume", b])
    #expect(resumed.status == 0, "\(resumed.stderr)")
    let out = try python("""
      import h5py, json
      fa, fb, fs = (h5py.File(p, 'r') for p in ('\(a)', '\(b)', '\(s)'))
      ra, rb, rs = fa['runs/run'], fb['runs/run'], fs['runs/run']
      bad = []
      def visit(name, obj):
          if isinstance(obj, h5py.Dataset) and not name.endswith('step_seconds'):
              if obj[()].tobytes() != rb[name][()].tobytes(): bad.append(name)
      ra.visititems(visit)
      same_as_sgemm = ra['checkpoints/step_400/param/transformer.wte.weight'][()].tobytes() == rs['checkpoints/step_400/param/transformer.wte.weight'][()].tobytes()
      print(ra.attrs['gemm'], rb.attrs['gemm'], rs.attrs['gemm'], ra.attrs['bf16_gemms'], 'bf16_gemms' in rs.attrs,
            json.loads(fa.attrs['config'])['training'].get('bf16GEMMs'), json.loads(fs.attrs['config'])['training'].get('bf16GEMMs'),
            bad, same_as_sgemm)
      """)
    #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == "bf16 bf16 sgemm 27 False True None [] False")
    // Sharpness under the run's recipe takes the run's mode too.
    let sh = try CLI.run(["sharpness", a, "--metric", "sam", "--under-recipe", "--json"])
    #expect(sh.status == 0, "\(sh.stderr)")
    let results = try JSONSerialization.jsonObject(with: Data(sh.stdout.utf8)) as? [[String: Any]] ?? []
    #expect(results.count == 1 && (results.first?["value"] as? Double ?? .nan).isFinite, "\(sh.stdout)")
  }

  @Test(.enabled(if: hasBF16, "this CPU lacks AVX512-BF16")) func gridSpecAndBenchTrainTakeTheMode() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let spec = dir.appendingPathComponent("g.toml")
    try """
      model = "gpt-micro"
      recipes = ["mxfp4", "fp32"]
      lrs = [3e-3]
      seeds = [0]
      steps = 20
      gemm = "bf16"
      data = "\(dataDirectory)"
      """.write(to: spec, atomically: true, encoding: .utf8)
    let grid = dir.appendingPathComponent("g.h5").path
    let g = try CLI.run(["grid", spec.path, "--out", grid, "--jobs", "2"])
    #expect(g.status == 0, "\(g.stderr)")
    let attrs = try python("""
      import h5py
      f = h5py.File('\(grid)', 'r')
      print(sorted((k, f['runs'][k].attrs['gemm']) for k in f['runs']))
      """)
    #expect(attrs.contains("'bf16'") && !attrs.contains("sgemm"), "\(attrs)")

    try String(try String(contentsOf: spec, encoding: .utf8).replacingOccurrences(of: "\"bf16\"", with: "\"bf8\""))
      .write(to: spec, atomically: true, encoding: .utf8)
    let bad = try CLI.run(["grid", spec.path, "--out", dir.appendingPathComponent("h.h5").path])
    #expect(bad.status == 2 && bad.stderr.contains("gemm must be \"sgemm\" or \"bf16\""), "\(bad.stderr)")

    let b = try CLI.run(["bench", "train", "--model", "gpt-micro", "--recipe", "mxfp4", "--baseline", "mxfp4", "--gemm", "bf16",
                         "--steps", "2", "--warmup", "1", "--gemm-floor", "--data", dataDirectory, "--json"])
    #expect(b.status == 0, "\(b.stderr)")
    let json = try JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as? [String: Any] ?? [:]
    #expect(json["gemm"] as? String == "bf16")
    #expect((json["baseline"] as? [String: Any])?["recipe"] as? String == "mxfp4 on sgemm", "\(b.stdout)")
    let floor = json["gemm_floor"] as? [String: Any] ?? [:]
    #expect((floor["bf16_ms_per_step"] as? Double ?? 0) > 0 && (floor["ms_per_step"] as? Double ?? 0) > 0, "\(b.stdout)")
  }

  /// A recipe whose operands never are all bfloat16 values says so, and records 0.
  @Test(.enabled(if: hasBF16, "this CPU lacks AVX512-BF16")) func aRecipeWithNoBFloat16GEMMSaysSo() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("t.h5").path
    let r = try CLI.run(["train", "--model", "gpt-micro", "--recipe", "fp4:scale=bf16,tensor-scale=on", "--steps", "2",
                         "--gemm", "bf16", "--data", dataDirectory, "--out", out])
    #expect(r.status == 0 && r.stdout.contains("no GEMM has two bfloat16 operands in this recipe"), "\(r.stdout)")
    let n = try python("import h5py; print(h5py.File('\(out)', 'r')['runs/run'].attrs['bf16_gemms'])")
    #expect(n.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
  }

  @Test(.enabled(if: !hasBF16, "this CPU has AVX512-BF16"))
  func aCPUWithoutAVX512BF16IsRefused() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("x.h5").path
    let r = try CLI.run(["train", "--model", "gpt-micro", "--recipe", "mxfp4", "--steps", "2", "--gemm", "bf16", "--out", out])
    #expect(r.status == 2 && r.stderr.contains("AVX512-BF16") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: out))
  }

  @Test func aWrongKernelIsRefused() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("x.h5").path
    let r = try CLI.run(["train", "--model", "gpt-micro", "--recipe", "mxfp4", "--steps", "2", "--gemm", "fp16", "--out", out])
    #expect(r.status == 2 && r.stderr.contains("--gemm") && !FileManager.default.fileExists(atPath: out), "\(r.stderr)")
  }
}
