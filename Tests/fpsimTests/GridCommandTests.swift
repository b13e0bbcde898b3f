import Foundation
import Testing

/// The /results arrays of a grid file, as bytes per dataset (via h5py), for equality checks.
func resultsDigest(_ path: String) throws -> String {
  try python("""
    import h5py, hashlib
    f = h5py.File('\(path)', 'r')
    g = f['results']
    out = []
    for name in sorted(g):
        v = g[name][()]
        data = repr([x for x in v]).encode() if v.dtype.kind == 'O' else v.tobytes()
        out.append(name + ':' + hashlib.sha256(data).hexdigest()[:16])
    out.append('summary:' + hashlib.sha256(g.attrs['summary_json'].encode()).hexdigest()[:16])
    print(' '.join(out))
    """)
}

@Suite(.serialized) struct GridCommandTests {
  static func flags(_ out: String, model: String = "linreg", steps: Int = 40) -> [String] {
    ["grid", "--model", model, "--formats", "e8m7..e8m5", "--rounding", "rtz", "--lrs", "0.01,0.1", "--seeds", "0..1",
     "--steps", "\(steps)", "--eval-every", "10", "--data", dataDirectory, "--out", out]
  }

  @Test func resultsAreLabelledArraysThatMatchTheRunsAndOpenInXarray() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("g.h5").path
    let r = try CLI.run(Self.flags(out) + ["--jobs", "2"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.contains("e8m6"))
    let check = try python("""
      import h5py, numpy as np, xarray as xr
      ds = xr.open_dataset('\(out)', group='results', engine='h5netcdf')
      assert list(ds['recipe'].values) == ['e8m7', 'e8m6', 'e8m5'], ds['recipe'].values
      assert ds.attrs['label_kind'] == 'format' and h5py.File('\(out)', 'r').attrs['schema_version'] == 2
      assert list(ds['lr'].values) == [0.01, 0.1] and list(ds['seed'].values) == [0, 1]
      assert ds['loss'].dims == ('recipe', 'lr', 'seed', 'step') and ds.sizes['step'] == 40
      f = h5py.File('\(out)', 'r')
      bad = 0
      for fmt in ['e8m7', 'e8m6', 'e8m5']:
          for lr in [0.01, 0.1]:
              for seed in [0, 1]:
                  run = f['runs/%s_lr%s_s%d' % (fmt, lr, seed)]
                  cell = ds.sel(recipe=fmt, lr=lr, seed=seed)
                  bad += float(cell['final_loss']) != np.float32(run.attrs['final_train_loss'])
                  bad += not np.array_equal(cell['loss'].values, run['metrics/train_loss'][:])
                  bad += int(cell['diverged']) != (run.attrs['status'] == 'diverged')
      print(bad)
      """)
    #expect(check.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
  }

  @Test func oneJobTwoJobsAndShardsMergedGiveIdenticalResults() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let one = dir.appendingPathComponent("one.h5").path, two = dir.appendingPathComponent("two.h5").path
    let merged = dir.appendingPathComponent("merged.h5").path
    #expect(try CLI.run(Self.flags(one) + ["--jobs", "1"]).status == 0)
    #expect(try CLI.run(Self.flags(two) + ["--jobs", "2"]).status == 0)
    let shards = dir.appendingPathComponent("shared").path
    for i in 0..<2 {
      let r = try CLI.run(Self.flags(merged) + ["--shard", "\(i)/2", "--runs-dir", shards])
      #expect(r.status == 0, "\(r.stderr)")
    }
    #expect(!FileManager.default.fileExists(atPath: merged), "shards write run files only")
    let m = try CLI.run(["grid", "merge"] + Self.flags(merged).dropFirst() + ["--runs-dir", shards])
    #expect(m.status == 0, "\(m.stderr)")
    let a = try resultsDigest(one)
    #expect(a == (try resultsDigest(two)))
    #expect(a == (try resultsDigest(merged)))
  }

  /// SIGKILL the grid while runs are in flight, rerun: it finishes, keeps what was done, and ends with
  /// the results of a grid never killed.
  @Test func aKilledGridResumesToTheSameResults() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let straight = dir.appendingPathComponent("straight.h5").path, killed = dir.appendingPathComponent("killed.h5").path
    let args = { (out: String) in Self.flags(out, model: "gpt-micro", steps: 300) + ["--checkpoint-every", "100", "--jobs", "2"] }
    #expect(try CLI.run(args(straight)).status == 0)

    let (wasKilled, _) = try CLI.runAndKill(args(killed)) { $0.contains("runs 3/12") }
    #expect(wasKilled, "the grid finished before it could be killed")
    // runAndKill returned after the workers it had started ended too (they may outlive the grid).
    let resumed = try CLI.run(args(killed))
    #expect(resumed.status == 0, "\(resumed.stderr)")
    #expect(try resultsDigest(straight) == (try resultsDigest(killed)))
  }

  @Test(arguments: [
    ("model = \"linreg\"\nformats = [\"e8m7\", \"e9m9\"]\nlrs = [0.1]\nseeds = [0]\nsteps = 5\n", "e9m9"),
    ("model = \"linreg\"\nformats = [\"e8m7\"]\nlrs = [0.1]\nseeds = []\nsteps = 5\n", "seeds"),
    ("model = \"linreg\"\nformats = [\"e8m7\"]\nlrs = [0.1]\nlrs = [0.2]\nseeds = [0]\nsteps = 5\n", "duplicate key 'lrs'"),
    ("model = \"linreg\"\nformats = [\"e8m3..e8m7\"]\nlrs = [0.1]\nseeds = [0]\nsteps = 5\n", "wrong way"),
    ("model = \"linreg\"\nformats = [\"e8m7\"]\nlr = [0.1]\nseeds = [0]\nsteps = 5\n", "unknown key"),
  ])
  func badSpecsAreRefusedBeforeAnyRunStarts(spec: String, message: String) throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let file = dir.appendingPathComponent("spec.toml").path
    try spec.write(toFile: file, atomically: true, encoding: .utf8)
    let out = dir.appendingPathComponent("g.h5").path
    let r = try CLI.run(["grid", file, "--out", out])
    #expect(r.status == 2)
    #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    #expect(r.stderr.contains(message), "\(r.stderr)")
    #expect(r.stderr.contains("spec.toml"), "the error names the file")
    #expect(!FileManager.default.fileExists(atPath: out))
    #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("g.runs").path), "no run started")
  }
}

@Suite(.serialized) struct GridSharpnessTests {
  /// sharpness_every measures each run's checkpoints during the sweep; /results gathers them. On linreg
  /// the Hessian is constant, so every entry equals the closed-form top eigenvalue (8.0484 here, to 1e-3).
  @Test func gridSpecSchedulesSharpnessIntoTheResults() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let spec = dir.appendingPathComponent("s.toml").path
    try """
      model = "linreg"
      formats = ["e8m7", "e8m5"]
      lrs = [0.05]
      seeds = [0, 1]
      steps = 40
      checkpoint_every = 20
      sharpness_every = 20
      sharpness_metrics = ["hessian-top"]
      data = "\(dataDirectory)"
      """.write(toFile: spec, atomically: true, encoding: .utf8)
    let out = dir.appendingPathComponent("g.h5").path
    let r = try CLI.run(["grid", spec, "--out", out, "--jobs", "2"])
    #expect(r.status == 0, "\(r.stderr)")
    let check = try python("""
      import xarray as xr, numpy as np
      ds = xr.open_dataset('\(out)', group='results', engine='h5netcdf')
      v = ds['sharpness_hessian_top']
      print(v.dims, [int(s) for s in ds['sharpness_step'].values], bool(np.all(np.abs(v.values - 8.04842) < 8e-3)))
      """)
    #expect(check.trimmingCharacters(in: .whitespacesAndNewlines) == "('recipe', 'lr', 'seed', 'sharpness_step') [20, 40] True")
  }
}
