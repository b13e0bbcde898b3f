import Foundation
import Testing

/// The Llama everywhere a model name is accepted: train, --resume after SIGKILL, sharpness
/// (keskar-logits on its last-position logits), grid and bench train (with its GEMM floor), through the
/// built binary.
@Suite(.serialized) struct LlamaCommandTests {
  static let common = ["--model", "llama-micro", "--recipe", "uniform:e4m3fn:stochastic", "--lr", "3e-3", "--seed", "2",
                       "--steps", "400", "--eval-every", "200", "--checkpoint-every", "100", "--data", dataDirectory]

  @Test func trainResumeAndSharpnessOnLlamaMicro() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let a = dir.appendingPathComponent("a.h5").path, b = dir.appendingPathComponent("b.h5").path
    let straight = try CLI.run(["train"] + Self.common + ["--out", a])
    #expect(straight.status == 0, "\(straight.stderr)")
    let (killed, seen) = try CLI.runAndKill(["train"] + Self.common + ["--out", b], when: CLI.passedStep(150))
    #expect(killed, "the run finished before it could be killed: \(seen)")
    let resumed = try CLI.run(["train", "--resume", b])
    #expect(resumed.status == 0, "\(resumed.stderr)")
    let same = try python("""
      import h5py
      ra, rb = h5py.File('\(a)', 'r')['runs/run'], h5py.File('\(b)', 'r')['runs/run']
      bad = []
      def visit(name, obj):
          if isinstance(obj, h5py.Dataset) and not name.endswith('step_seconds'):
              if obj[()].tobytes() != rb[name][()].tobytes(): bad.append(name)
      ra.visititems(visit)
      print(ra.attrs['model'], ra.attrs['parameter_count'], ra.attrs['status'], ra['metrics/train_loss'].shape[0],
            'metrics/saturated/model.layers.1.mlp.down_proj.fwd_x' in ra, bad)
      """)
    #expect(same.trimmingCharacters(in: .whitespacesAndNewlines) == "llama-micro 31648 completed 400 True []")

    let s = try CLI.run(["sharpness", a, "--metric", "keskar-logits", "--json"])
    #expect(s.status == 0, "\(s.stderr)")
    let results = try JSONSerialization.jsonObject(with: Data(s.stdout.utf8)) as? [[String: Any]] ?? []
    let value = results.first?["value"] as? Double ?? .nan
    #expect(results.count == 1 && value.isFinite && value > 0, "\(s.stdout)")
  }

  @Test func gridAndBenchTrainAcceptTheLlama() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let grid = dir.appendingPathComponent("g.h5").path
    let g = try CLI.run(["grid", "--model", "llama-micro", "--formats", "e8m7,e8m4", "--rounding", "rtz", "--lrs", "3e-3",
                         "--seeds", "0", "--steps", "30", "--data", dataDirectory, "--out", grid, "--jobs", "2"])
    #expect(g.status == 0, "\(g.stderr)")
    let loss = try python("""
      import h5py, numpy as np
      f = h5py.File('\(grid)', 'r')
      v = f['results/final_loss'][:]
      print(v.shape, bool(np.isfinite(v).all()), f['runs/e8m4_lr0.003_s0'].attrs['model'])
      """)
    #expect(loss.trimmingCharacters(in: .whitespacesAndNewlines) == "(2, 1, 1) True llama-micro")

    let bench = try CLI.run(["bench", "train", "--model", "llama-micro", "--recipe", "bf16", "--steps", "3", "--warmup", "1",
                             "--data", dataDirectory, "--gemm-floor", "--json"])
    #expect(bench.status == 0, "\(bench.stderr)")
    let j = try JSONSerialization.jsonObject(with: Data(bench.stdout.utf8)) as? [String: Any] ?? [:]
    #expect(j["model"] as? String == "llama-micro" && j["items_per_step"] as? Int == 256, "\(bench.stdout)")
    // 6 N C OC per linear layer: 44,630,016 operations (StepGEMMsTests), printed in GFLOP to 3 places.
    let floor = j["gemm_floor"] as? [String: Any] ?? [:]
    #expect(floor["gflop_per_step"] as? Double == 0.045 && (floor["ms_per_step"] as? Double ?? 0) > 0, "\(bench.stdout)")

    let bad = try CLI.run(["train", "--model", "llama-huge", "--steps", "1", "--data", dataDirectory, "--out", dir.appendingPathComponent("x.h5").path])
    #expect(bad.status == 2 && bad.stderr.contains("llama-tiny") && bad.stderr.split(separator: "\n").count == 1, "\(bad.stderr)")
  }
}
