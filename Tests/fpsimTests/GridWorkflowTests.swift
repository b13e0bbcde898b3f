import Foundation
import Testing

/// The grid as a researcher uses it: from their own folder, with a notebook holding the file open,
/// rerunning finished work, and specs that are wrong.
@Suite(.serialized) struct GridWorkflowTests {
  /// Runs fpsim with `cwd` as the working folder and no FPSIM_DATA.
  static func run(_ arguments: [String], in cwd: URL) throws -> CLIResult {
    var environment = ProcessInfo.processInfo.environment
    environment["FPSIM_DATA"] = nil
    return try CLI.run(arguments, environment: environment, in: cwd)
  }

  static func sha(_ path: String) throws -> String {
    try python("import hashlib; print(hashlib.sha256(open('\(path)', 'rb').read()).hexdigest())")
  }

  @Test func trainAndGridWorkFromAnyFolderWithoutData() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let t = try Self.run(["train", "--model", "linreg", "--steps", "5", "--out", "a/b/c.h5"], in: dir)
    #expect(t.status == 0, "\(t.stderr)")
    #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("a/b/c.h5").path), "missing folders are created")
    let kernel = try python("import h5py; print(h5py.File('\(dir.path)/a/b/c.h5', 'r')['runs/run'].attrs['blas_kernel'])")
    #expect(!kernel.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)

    // A spec in its own folder naming a recipe file beside it, run from elsewhere.
    let study = dir.appendingPathComponent("study")
    try FileManager.default.createDirectory(at: study.appendingPathComponent("recipes"), withIntermediateDirectories: true)
    try "base = \"uniform:e8m5:rtz\"\n".write(to: study.appendingPathComponent("recipes/cut.toml"), atomically: true, encoding: .utf8)
    try """
      model = "linreg"
      recipes = ["fp32", "recipes/cut.toml"]
      lrs = [0.05]
      seeds = [0]
      steps = 5
      """.write(to: study.appendingPathComponent("spec.toml"), atomically: true, encoding: .utf8)
    let g = try Self.run(["grid", "study/spec.toml", "--out", "out/g.h5", "--jobs", "1"], in: dir)
    #expect(g.status == 0, "\(g.stderr)")
    #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/g.runs").path), "collected run files are removed")

    // The grid file and its spec moved and renamed: it is still the same study, and a rerun writes nothing.
    try FileManager.default.moveItem(at: study, to: dir.appendingPathComponent("moved"))
    try FileManager.default.moveItem(at: dir.appendingPathComponent("out/g.h5"), to: dir.appendingPathComponent("renamed.h5"))
    let before = try Self.sha(dir.appendingPathComponent("renamed.h5").path)
    let again = try Self.run(["grid", "moved/spec.toml", "--out", "renamed.h5"], in: dir)
    #expect(again.status == 0, "\(again.stderr)")
    #expect(try Self.sha(dir.appendingPathComponent("renamed.h5").path) == before)
  }

  /// A learning rate too small to move the weights leaves linreg at its chance level (the target's
  /// variance, 1): never learned, never stable, and the summary says which rule.
  @Test func aRunAtChanceIsNeverCalledLearnedOrStable() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let r = try Self.run(
      ["grid", "--model", "linreg", "--formats", "e8m7", "--lrs", "1e-7,0.05", "--seeds", "0,1", "--steps", "20",
       "--out", "g.h5", "--json"], in: dir)
    #expect(r.status == 0, "\(r.stderr)")
    let check = try python("""
      import xarray as xr, json
      ds = xr.open_dataset('\(dir.path)/g.h5', group='results', engine='h5netcdf')
      meanings = ds['status'].attrs['flag_meanings'].split()
      names = [[meanings[int(v)] for v in row] for row in ds['status'].sel(recipe='e8m7').values]
      print(names, round(float(ds.attrs['chance_loss']), 6))
      """)
    #expect(check.hasPrefix("[['at_chance', 'at_chance'], ['learned', 'learned']] 1.0"), "\(check)")
    let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
    let rows = object?["summary"] as? [[String: Any]]
    #expect(object?["paired_differences"] is [Any], "\(r.stdout)")
    #expect(rows?.first?["stable_lrs"] as? [Double] == [0.05], "\(r.stdout)")
    #expect((rows?.first?["status_fractions"] as? [String: Double])?["at_chance"] == 0.5)
  }

  /// A classifier's validation accuracy reaches the run files and /results: near chance (1 in 10) for
  /// a learning rate that cannot move the weights, high for one that trains.
  @Test func aClassifiersAccuracyIsInTheResults() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let r = try Self.run(
      ["grid", "--model", "mlp", "--formats", "e8m7", "--lrs", "1e-9,0.05", "--seeds", "0,1", "--steps", "150",
       "--eval-every", "50", "--out", "g.h5", "--jobs", "2"], in: dir)
    #expect(r.status == 0, "\(r.stderr)")
    let check = try python("""
      import xarray as xr, h5py, numpy as np
      ds = xr.open_dataset('\(dir.path)/g.h5', group='results', engine='h5netcdf')
      a, final = ds['eval_accuracy'].sel(recipe='e8m7'), ds['final_eval_accuracy'].sel(recipe='e8m7')
      assert a.dims == ('lr', 'seed', 'eval_step') and list(ds.eval_step.values) == [50, 100, 150]
      assert np.array_equal(a.isel(eval_step=-1).values, final.values)
      f = h5py.File('\(dir.path)/g.h5', 'r')
      assert f['runs/e8m7_lr0.05_s1'].attrs['final_eval_accuracy'] == np.float64(np.float32(final.sel(lr=0.05, seed=1)))
      print(float(final.sel(lr=1e-9).max()), float(final.sel(lr=0.05).min()), ds['final_eval_accuracy'].attrs['units'])
      """).split(separator: " ", maxSplits: 2)
    #expect(check.count == 3, "\(check)")
    #expect((Double(check[0]) ?? 1) < 0.3, "untrained: \(check)")
    #expect((Double(check[1]) ?? 0) > 0.9, "trained: \(check)")
    #expect(check.last?.contains("fraction") == true)
  }

  /// scripts/install.sh puts fpsim and its data under a prefix; the installed copy finds its data.
  @Test func anInstalledFpsimFindsItsData() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let script = URL(fileURLWithPath: dataDirectory).deletingLastPathComponent().appendingPathComponent("scripts/install.sh").path
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/bash")
    p.arguments = [script, dir.appendingPathComponent("prefix").path]
    p.environment = ProcessInfo.processInfo.environment.merging(["FPSIM_BIN": CLI.executable.path]) { _, b in b }
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    #expect(p.terminationStatus == 0)
    let work = dir.appendingPathComponent("work")
    try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    let t = Process()
    t.executableURL = dir.appendingPathComponent("prefix/bin/fpsim")
    t.arguments = ["train", "--model", "mlp", "--steps", "3", "--out", "r.h5"]
    t.currentDirectoryURL = work
    var environment = ProcessInfo.processInfo.environment
    environment["FPSIM_DATA"] = nil
    t.environment = environment
    t.standardOutput = FileHandle.nullDevice
    t.standardError = FileHandle.nullDevice
    try t.run()
    t.waitUntilExit()
    #expect(t.terminationStatus == 0)
    let stored = try python("import h5py, json; print(json.loads(h5py.File('\(work.path)/r.h5', 'r').attrs['config'])['dataDirectory'])")
    #expect(stored.trimmingCharacters(in: .whitespacesAndNewlines) == dir.appendingPathComponent("prefix/share/fpsim/data").standardizedFileURL.path)
  }

  @Test func aMissingDataFolderIsOneLineNamingTheFix() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let r = try Self.run(["train", "--model", "linreg", "--steps", "5", "--data", "nowhere", "--out", "x.h5"], in: dir)
    #expect(r.status == 2)
    #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    #expect(r.stderr.contains("diabetes") && r.stderr.contains("--data"), "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.h5").path))
  }

  @Test(arguments: [
    ("optimizer = \"adamz\"\n", "adamz"),
    ("[divergence]\nmargin = -1\n", "margin"),
    ("min_lr = 0.5\n", "min learning rate"),
    ("baseline = \"e9m1\"\n", "baseline"),
    ("data = \"no-such-folder\"\n", "--data"),
  ])
  func aBadSpecLeavesNothingBehind(extra: String, message: String) throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let spec = dir.appendingPathComponent("s.toml")
    try ("model = \"linreg\"\nformats = [\"e8m7\"]\nlrs = [0.1]\nseeds = [0]\nsteps = 5\n" + extra)
      .write(to: spec, atomically: true, encoding: .utf8)
    let r = try Self.run(["grid", "s.toml", "--out", "g.h5"], in: dir)
    #expect(r.status == 2)
    #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    #expect(r.stderr.contains(message), "\(r.stderr)")
    let left = try FileManager.default.contentsOfDirectory(atPath: dir.path)
    #expect(left == ["s.toml"], "left behind: \(left)")
  }

  @Test func hugeGridsAndSeedRangesAreRefusedBeforeAnything() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let big = try Self.run(
      ["grid", "--model", "linreg", "--formats", "e8m7..e8m1", "--lrs", "0.1", "--seeds", "0..1999", "--steps", "5", "--out", "g.h5"], in: dir)
    #expect(big.status == 2)
    #expect(big.stderr.contains("14000 runs") && big.stderr.contains("--yes"), "\(big.stderr)")
    try "model = \"linreg\"\nformats = [\"e8m7\"]\nlrs = [0.1]\nseeds = \"0..9223372036854775807\"\nsteps = 5\n"
      .write(to: dir.appendingPathComponent("s.toml"), atomically: true, encoding: .utf8)
    let huge = try Self.run(["grid", "s.toml", "--out", "g.h5"], in: dir)
    #expect(huge.status == 2)
    #expect(huge.stderr.contains("seeds"), "\(huge.stderr)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["s.toml"])
  }

  @Test func recipesWithCommasAreSeparatedBySemicolonsOrRepeated() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let common = ["--model", "linreg", "--lrs", "0.05", "--seeds", "0", "--steps", "5", "--jobs", "1"]
    let a = try Self.run(["grid", "--recipes", "fp32;fp4:scale=ue5m3,block=16"] + common + ["--out", "a.h5"], in: dir)
    #expect(a.status == 0, "\(a.stderr)")
    let b = try Self.run(["grid", "--recipes", "fp32", "--recipes", "fp4:scale=ue5m3,block=16"] + common + ["--out", "b.h5"], in: dir)
    #expect(b.status == 0, "\(b.stderr)")
    let labels = try python("""
      import xarray as xr
      for p in ['a.h5', 'b.h5']:
          print([str(x) for x in xr.open_dataset('\(dir.path)/' + p, group='results', engine='h5netcdf')['recipe'].values])
      """)
    #expect(labels == "['fp32', 'fp4:scale=ue5m3,block=16']\n['fp32', 'fp4:scale=ue5m3,block=16']\n")
    let f = try Self.run(["grid", "--formats", "mxfp4_e2m1"] + common + ["--out", "c.h5"], in: dir)
    #expect(f.status == 2)
    #expect(f.stderr.contains("--recipes"), "\(f.stderr)")
  }

  /// A finished grid with published sharpness, rerun with and without an h5py reader holding it open:
  /// the file is unchanged byte for byte; inspect works alongside the reader.
  @Test func rerunningAFinishedGridChangesNothingEvenWithAReaderOpen() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let args = ["grid", "--model", "linreg", "--formats", "e8m7,e8m3", "--rounding", "rtz", "--lrs", "0.05", "--seeds", "0..1",
                "--steps", "20", "--checkpoint-every", "10", "--out", "g.h5", "--jobs", "2"]
    #expect(try Self.run(args, in: dir).status == 0)
    let s = try Self.run(["sharpness", "g.h5", "--metric", "sam"], in: dir)
    #expect(s.status == 0, "\(s.stderr)")
    let path = dir.appendingPathComponent("g.h5").path
    let published = try python("import h5py; print(sorted(k for k in h5py.File('\(path)', 'r')['results'] if 'sharp' in k))")
    #expect(published.contains("sam"), "\(published)")
    let before = try Self.sha(path)
    #expect(try Self.run(args, in: dir).status == 0)
    #expect(try Self.sha(path) == before)

    let reader = try HeldOpen(path)
    defer { reader.close() }
    let again = try Self.run(args, in: dir)
    #expect(again.status == 0, "\(again.stderr)")
    let inspect = try Self.run(["inspect", "g.h5"], in: dir)
    #expect(inspect.status == 0, "\(inspect.stderr)")
    reader.close()
    #expect(try Self.sha(path) == before)
  }

  /// Rebuilding /results (here forced by marking it incomplete) keeps what `fpsim sharpness` published.
  @Test func rebuildingResultsKeepsPublishedSharpness() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let args = ["grid", "--model", "linreg", "--formats", "e8m7", "--lrs", "0.05", "--seeds", "0..1", "--steps", "20",
                "--checkpoint-every", "10", "--out", "g.h5", "--jobs", "1"]
    #expect(try Self.run(args, in: dir).status == 0)
    #expect(try Self.run(["sharpness", "g.h5", "--metric", "sam", "--steps", "all"], in: dir).status == 0)
    let read = "import h5py, numpy as np; g = h5py.File('\(dir.path)/g.h5', 'r')['results']; print(g['sharpness_sam'].shape, np.nansum(g['sharpness_sam'][()]).tobytes().hex())"
    let before = try python(read)
    _ = try python("import h5py; f = h5py.File('\(dir.path)/g.h5', 'a'); f['results'].attrs['runs_collected'] = 0; f.close()")
    let r = try Self.run(args, in: dir)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(before.hasPrefix("(1, 1, 2, 2)"), "\(before)")
    #expect(try python(read) == before)
  }

  /// Adding to a grid that a notebook holds open says so plainly.
  @Test func aWriteBlockedByAReaderSaysWhatToDo() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let base = ["grid", "--model", "linreg", "--formats", "e8m7", "--lrs", "0.05", "--steps", "5", "--out", "g.h5"]
    #expect(try Self.run(base + ["--seeds", "0"], in: dir).status == 0)
    // The same study with one more seed is another spec; make it the same spec with a missing run instead:
    // remove a run's results so that the rerun must write.
    _ = try python("import h5py; f = h5py.File('\(dir.path)/g.h5', 'a'); del f['results']; f.close()")
    let reader = try HeldOpen(dir.appendingPathComponent("g.h5").path)
    defer { reader.close() }
    let r = try Self.run(base + ["--seeds", "0"], in: dir)
    #expect(r.status == 2)
    #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    #expect(r.stderr.contains("open in another program") && r.stderr.contains("close"), "\(r.stderr)")
  }

  /// Run files written for other settings are refused by the grid and by merge, naming the setting.
  @Test func runFilesOfAnotherSpecAreRefused() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let common = ["--model", "linreg", "--formats", "e8m7", "--lrs", "0.05", "--seeds", "0", "--runs-dir", "shared"]
    #expect(try Self.run(["grid"] + common + ["--steps", "8", "--shard", "0/1", "--out", "a.h5"], in: dir).status == 0)
    let merge = try Self.run(["grid", "merge"] + common + ["--steps", "5", "--out", "b.h5"], in: dir)
    #expect(merge.status == 2)
    #expect(merge.stderr.contains("training.steps: 8 in the run file, 5 in the spec"), "\(merge.stderr)")
    #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("b.h5").path))
    let grid = try Self.run(["grid"] + common + ["--steps", "5", "--out", "b.h5"], in: dir)
    #expect(grid.status == 2)
    #expect(grid.stderr.contains("training.steps"), "\(grid.stderr)")
  }

  /// SIGTERM stops a grid like Ctrl-C: its workers stop too, and a rerun finishes it.
  @Test func sigtermStopsTheWorkersAndTheGridResumes() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let args = ["grid", "--model", "gpt-micro", "--formats", "e8m7", "--lrs", "0.003", "--seeds", "0..1", "--steps", "3000",
                "--checkpoint-every", "500", "--eval-every", "1000", "--out", "g.h5", "--jobs", "2"]
    let p = Process()
    p.executableURL = CLI.executable
    p.arguments = args
    p.currentDirectoryURL = dir
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    // Wait until both workers report steps, then SIGTERM the grid.
    var seen = ""
    while p.isRunning {
      let chunk = err.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      seen += String(decoding: chunk, as: UTF8.self)
      if seen.range(of: #"\(2 running\), steps [1-9]"#, options: .regularExpression) != nil { break }
    }
    kill(p.processIdentifier, SIGTERM)
    p.waitUntilExit()
    #expect(p.terminationStatus == 130, "\(seen)")
    let workers = try python("import subprocess; print(subprocess.run(['pgrep', '-f', '[w]orker --out \(dir.path)'], capture_output=True).stdout.decode().strip())")
    #expect(workers.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "workers left running: \(workers)")
    let r = try Self.run(args, in: dir)
    #expect(r.status == 0, "\(r.stderr)")
  }
}

/// A Python process holding an HDF5 file open read-only with h5py, as a notebook does.
final class HeldOpen {
  let process = Process()
  let input = Pipe()
  init(_ path: String) throws {
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", "import h5py, sys; f = h5py.File(sys.argv[1], 'r'); print('open', flush=True); sys.stdin.read()", path]
    let out = Pipe()
    process.standardOutput = out
    process.standardInput = input
    try process.run()
    // Wait for its word that the file is open.
    var text = ""
    while !text.contains("open") {
      let chunk = out.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      text += String(decoding: chunk, as: UTF8.self)
    }
  }
  func close() {
    guard process.isRunning else { return }
    try? input.fileHandleForWriting.close()
    process.waitUntilExit()
  }
}
