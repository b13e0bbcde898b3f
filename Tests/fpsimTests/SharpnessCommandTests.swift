import Foundation
import Testing

@Suite(.serialized) struct SharpnessCommandTests {
  /// hessian-top on a linreg checkpoint against the largest eigenvalue of 2/n [X 1]^T [X 1], computed
  /// by numpy from the data files (features standardized with the population standard deviation):
  /// relative error at most 1e-3.
  @Test func hessianTopOnLinregEqualsTheClosedForm() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let run = dir.appendingPathComponent("lr.h5").path
    #expect(try CLI.run(["train", "--model", "linreg", "--steps", "60", "--lr", "0.05", "--checkpoint-every", "30",
                         "--data", dataDirectory, "--out", run]).status == 0)
    let r = try CLI.run(["sharpness", run, "--metric", "hessian-top", "--steps", "all", "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    let results = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]
    #expect(results.count == 2)
    let expected = Double(try python("""
      import numpy as np, gzip
      X = np.loadtxt(gzip.open('\(dataDirectory)/diabetes_data_raw.csv.gz'))
      X = (X - X.mean(0)) / X.std(0)
      A = np.hstack([X, np.ones((len(X), 1))])
      print(np.linalg.eigvalsh(2 / len(X) * A.T @ A).max())
      """).trimmingCharacters(in: .whitespacesAndNewlines))!
    for result in results {
      let v = result["value"] as! Double
      #expect(abs(v - expected) / expected < 1e-3, "\(v) vs \(expected)")
    }
  }

  /// Under a recipe with loss scaling, sharpness sees the gradients divided by the run's loss scale:
  /// a bfloat16 run with a static scale of 1024 (exact in bfloat16: it trains bit for bit as the
  /// unscaled run) has the same hessian-top under its recipe as the run without scaling.
  @Test func underTheRecipeTheLossScaleIsDividedOut() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    var values: [Double] = []
    for (name, recipe) in [("plain", "uniform:e8m7:rne"), ("scaled", "uniform:e8m7:rne:loss-scale=1024")] {
      let run = dir.appendingPathComponent(name + ".h5").path
      let t = try CLI.run(["train", "--model", "linreg", "--recipe", recipe, "--steps", "20", "--lr", "0.05",
                           "--checkpoint-every", "20", "--data", dataDirectory, "--out", run])
      #expect(t.status == 0, "\(t.stderr)")
      let r = try CLI.run(["sharpness", run, "--metric", "hessian-top", "--under-recipe", "--json"])
      #expect(r.status == 0, "\(r.stderr)")
      let results = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]]
      values.append(results?.first?["value"] as? Double ?? .nan)
    }
    #expect(values[0] == values[1] && values[0] > 0, "\(values)")
  }

  /// Same checkpoint and seed: identical values; computing again replaces the stored result.
  @Test func resultsAreReproducibleAndStoredOnce() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let run = dir.appendingPathComponent("g.h5").path
    #expect(try CLI.run(["train", "--model", "gpt-micro", "--steps", "40", "--checkpoint-every", "20",
                         "--data", dataDirectory, "--out", run]).status == 0)
    let a = try CLI.run(["sharpness", run, "--metric", "all", "--steps", "all", "--json"])
    let b = try CLI.run(["sharpness", run, "--metric", "all", "--steps", "all", "--json"])
    #expect(a.status == 0 && b.status == 0, "\(a.stderr)")
    #expect(a.stdout == b.stdout)
    let stored = try python("""
      import h5py
      g = h5py.File('\(run)', 'r')['runs/run/sharpness']
      k = g['keskar-logits/epsilon=0.001,ascent_steps=20']
      print(sorted(g), [list(g[m]) for m in sorted(g)], [int(s) for s in k['step'][:]], len(g['sam/rho=0.05/value']), k.attrs['epsilon'])
      """)
    #expect(
      stored.trimmingCharacters(in: .whitespacesAndNewlines)
        == "['hessian-top', 'keskar-logits', 'sam'] [['power_iterations=100,tolerance=0.0001'], ['epsilon=0.001,ascent_steps=20'], ['rho=0.05']] [20, 40] 2 0.001")
  }

  /// On a grid: a selection of runs, a table per format across seeds, results gathered in /results.
  @Test func gridSharpnessSelectsRunsAndSummarizesPerFormat() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let grid = dir.appendingPathComponent("g.h5").path
    let made = try CLI.run(["grid", "--model", "linreg", "--formats", "e8m7,e8m5", "--lrs", "0.05", "--seeds", "0..1",
                            "--steps", "20", "--checkpoint-every", "10", "--data", dataDirectory, "--out", grid])
    #expect(made.status == 0, "\(made.stderr)")
    let r = try CLI.run(["sharpness", grid, "--metric", "hessian-top", "--runs", "e8m5"])
    #expect(r.status == 0, "\(r.stderr)")
    let rows = r.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: " ", omittingEmptySubsequences: true) }
    #expect(rows.count == 1 && rows[0][0] == "e8m5" && rows[0][4] == "2", "one row: e8m5 over its 2 seeds: \(r.stdout)")
    let stored = try python("""
      import h5py, numpy as np
      v = h5py.File('\(grid)', 'r')['results/sharpness_hessian_top'][:]
      print(v.shape, int(np.isnan(v[0]).sum()), int(np.isnan(v[1]).sum()))
      """)
    #expect(stored.trimmingCharacters(in: .whitespacesAndNewlines) == "(2, 1, 2, 1) 2 0", "only e8m5 measured")
    // One checkpoint by its path: the same value as measuring that run's step 10.
    let one = try CLI.run(["sharpness", grid + ":/runs/e8m7_lr0.05_s1/checkpoints/step_10", "--metric", "hessian-top", "--json"])
    #expect(one.status == 0, "\(one.stderr)")
    let list = try JSONSerialization.jsonObject(with: Data(one.stdout.utf8)) as! [[String: Any]]
    #expect(list.count == 1 && list[0]["run"] as? String == "e8m7_lr0.05_s1" && list[0]["step"] as? Int == 10)
  }

  @Test func badSharpnessInputGivesOneLineErrorAndExit2() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let run = dir.appendingPathComponent("nock.h5").path
    #expect(try CLI.run(["train", "--model", "linreg", "--steps", "10", "--checkpoint-every", "0",
                         "--data", dataDirectory, "--out", run]).status == 0)
    for (args, message) in [
      (["sharpness", run, "--metric", "hessian-top"], "no checkpoints"),
      (["sharpness", run], "keskar-logits does not apply to linreg"),
      (["sharpness", run, "--metric", "curvature"], "unknown metric"),
      (["sharpness", run, "--epsilon", "-1"], "epsilon"),
    ] {
      let r = try CLI.run(args)
      #expect(r.status == 2)
      #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
      #expect(r.stderr.contains(message), "\(r.stderr)")
    }
  }
}
