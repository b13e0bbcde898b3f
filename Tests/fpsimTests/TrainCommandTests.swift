import Foundation
import Testing

/// The repository's data folder, for runs started from the tests.
let dataDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
  .deletingLastPathComponent().appendingPathComponent("data").path

func scratchDirectory() throws -> URL {
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fpsim-train-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  return dir
}

@Suite(.serialized) struct TrainCommandTests {
  static let common = ["--model", "gpt-micro", "--recipe", "uniform:e4m3fn:stochastic", "--lr", "3e-3", "--seed", "5",
                       "--steps", "600", "--eval-every", "200", "--checkpoint-every", "100", "--data", dataDirectory]

  /// A run killed with SIGKILL mid-way and resumed from its last checkpoint ends with the same metrics
  /// and parameters, bit for bit, as a run never interrupted (stochastic rounding included).
  @Test func resumeAfterSIGKILLEqualsAnUninterruptedRun() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let a = dir.appendingPathComponent("a.h5").path, b = dir.appendingPathComponent("b.h5").path
    let straight = try CLI.run(["train"] + Self.common + ["--out", a])
    #expect(straight.status == 0, "\(straight.stderr)")

    // Start the same run and kill it once its progress passes step 250 (two checkpoints written).
    let (killed, seen) = try CLI.runAndKill(["train"] + Self.common + ["--out", b], when: CLI.passedStep(250))
    #expect(killed, "the run finished before it could be killed: \(seen)")
    // Nothing is published under the --out name until the run ends; its units are in b.partial/.
    #expect(!FileManager.default.fileExists(atPath: b))
    #expect(FileManager.default.fileExists(atPath: b + ".partial/unit_000000000.h5"))

    let resumed = try CLI.run(["train", "--resume", b])
    #expect(resumed.status == 0, "\(resumed.stderr)")
    #expect(resumed.stdout.contains("completed after 600 steps"))
    let same = try python("""
      import h5py, numpy as np
      fa, fb = h5py.File('\(a)', 'r'), h5py.File('\(b)', 'r')
      ra, rb = fa['runs/run'], fb['runs/run']
      bad = []
      def visit(name, obj):
          if isinstance(obj, h5py.Dataset) and not name.endswith('step_seconds'):
              x, y = obj[()], rb[name][()]
              if x.shape != y.shape or x.tobytes() != y.tobytes(): bad.append(name)
      ra.visititems(visit)
      for k in ['status', 'final_train_loss', 'final_eval_loss', 'parameter_count']:
          if ra.attrs[k] != rb.attrs[k] and not (k.startswith('final') and np.isnan(ra.attrs[k])): bad.append(k)
      print(len(list(ra['checkpoints'])), ra['metrics/train_loss'].shape[0], bad)
      """)
    #expect(same.trimmingCharacters(in: .whitespacesAndNewlines) == "6 600 []")
  }

  @Test func runFileDescribesItselfAndOpensInH5py() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let f32 = dir.appendingPathComponent("fp32.h5").path, e4 = dir.appendingPathComponent("e4m3.h5").path
    for (recipe, path) in [("fp32", f32), ("uniform:e4m3fn", e4)] {
      let r = try CLI.run(["train", "--model", "gpt-micro", "--recipe", recipe, "--steps", "40", "--eval-every", "20",
                           "--snapshot-every", "20", "--data", dataDirectory, "--out", path])
      #expect(r.status == 0, "\(r.stderr)")
    }
    let out = try python("""
      import h5py, json, numpy as np
      res = []
      for p in ['\(f32)', '\(e4)']:
          f = h5py.File(p, 'r')
          assert f.attrs['schema'] == 'fpsim/run'
          cfg = json.loads(f.attrs['config'])
          r = f['runs/run']
          loss = r['metrics/train_loss'][:]
          assert r.attrs['status'] == 'completed' and r.attrs['parameter_count'] > 0
          assert np.all(np.isfinite(loss)) and r['metrics/step'][-1] == 40
          assert sorted(r['snapshots']) == ['step_20', 'step_40'], list(r['snapshots'])
          res.append(float(loss[-1]))
          sat = r['metrics/saturated']
          res.append(len(sat))
      print(res[0] != res[2], res[1], res[3] > 0)
      """)
    #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == "True 0 True", "fp32 has no rounded operands; e4m3fn has, and a different loss")
  }

  @Test(arguments: [
    (["--model", "gpt-huge"], "gpt-huge"),
    (["--lr", "0"], "learning rate"),
    (["--out", "/proc/forbidden/run.h5"], "run.h5"),
    (["--recipe", "uniform:e9m3"], "e9m3"),
  ])
  func badTrainingInputGivesOneLineErrorAndExit2(arguments: [String], message: String) throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    var args = ["train", "--model", "gpt-micro", "--steps", "5", "--data", dataDirectory]
    args += arguments
    if !arguments.contains("--out") { args += ["--out", dir.appendingPathComponent("r.h5").path] }
    let r = try CLI.run(args)
    #expect(r.status == 2)
    #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    #expect(r.stderr.lowercased().contains(message.lowercased()), "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("r.h5").path))
  }

  @Test func resumingAFileThatIsNotAnUnfinishedRunIsRefused() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let text = dir.appendingPathComponent("x.h5").path
    try "text".write(toFile: text, atomically: true, encoding: .utf8)
    let r1 = try CLI.run(["train", "--resume", text])
    #expect(r1.status == 2 && r1.stderr.contains("not an HDF5 file"))
    let done = dir.appendingPathComponent("done.h5").path
    _ = try CLI.run(["train", "--model", "linreg", "--steps", "5", "--data", dataDirectory, "--out", done])
    let r2 = try CLI.run(["train", "--resume", done])
    #expect(r2.status == 2 && r2.stderr.contains("no unfinished run"), "\(r2.stderr)")
  }
}

@Suite struct BenchTrainCommandTests {
  static func json(_ arguments: [String]) throws -> [String: Any] {
    let r = try CLI.run(["bench", "train", "--model", "gpt-micro", "--steps", "3", "--warmup", "1", "--data", dataDirectory, "--json"] + arguments)
    #expect(r.status == 0, "\(r.stderr)")
    return try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
  }

  /// A recipe is timed next to fp32 in the same run, and the ratio is that of the two medians; fp32
  /// itself, or `--baseline none`, has no baseline.
  @Test func aRecipeIsTimedNextToItsBaselineInTheSameRun() throws {
    let r = try Self.json(["--recipe", "uniform:e4m3fn"])
    let ms = try #require(r["ms_per_step"] as? Double)
    let baseline = try #require(r["baseline"] as? [String: Any])
    let b = try #require(baseline["ms_per_step"] as? Double), ratio = try #require(baseline["ratio"] as? Double)
    #expect(baseline["recipe"] as? String == "fp32")
    #expect(ms > 0 && b > 0 && abs(ratio - ms / b) < 0.002 * max(1, ratio))
    #expect(try Self.json(["--recipe", "uniform:e4m3fn", "--baseline", "none"])["baseline"] == nil)
    #expect(try Self.json(["--recipe", "fp32"])["baseline"] == nil)
  }

  /// `--against-itself` times the recipe against a copy of itself (fp32 too), and `--histogram-cost`
  /// against itself without histograms; the two together are refused.
  @Test func theBaselineCanBeTheRecipeItself() throws {
    for (recipe, name) in [("fp32", "fp32"), ("uniform:e4m3fn", "uniform:float8_e4m3fn")] {
      let baseline = try #require(Self.json(["--recipe", recipe, "--against-itself"])["baseline"] as? [String: Any])
      #expect(baseline["recipe"] as? String == "\(name) again (A/A: the comparison's own bias)")
      #expect((baseline["ratio"] as? Double ?? 0) > 0)
    }
    let h = try #require(Self.json(["--recipe", "mxfp4", "--histogram-cost"])["baseline"] as? [String: Any])
    #expect(h["recipe"] as? String == "mxfp4 without binade histograms")
    let both = try CLI.run(["bench", "train", "--model", "gpt-micro", "--histogram-cost", "--against-itself", "--data", dataDirectory])
    #expect(both.status == 2 && both.stderr.contains("give one"), "\(both.stderr)")
  }
}
