import Foundation
import Testing

/// How `fpsim sharpness` stores, adds and replaces its results (docs/files.md "Sharpness"), what
/// `--metric all` means per model, `/results` with the step dimension, `--jobs`, and measuring while
/// a notebook holds the file. Files are read back by h5py and xarray, never by fpsim itself.
@Suite(.serialized) struct SharpnessStorageTests {
  /// Every dataset under `group` of `file` as {path: hex of its bytes}: a bit-for-bit fingerprint.
  static func fingerprint(_ file: String, _ group: String) throws -> [String: String] {
    let text = try python("""
      import h5py, json
      out = {}
      g = h5py.File('\(file)', 'r')['\(group)']
      def add(n, o):
          if isinstance(o, h5py.Dataset):
              v = o[()]
              out[n] = repr(v.tolist()) if v.dtype.kind == 'O' else v.tobytes().hex()
      g.visititems(add)
      print(json.dumps(out))
      """)
    return try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: String]
  }

  static func train(_ model: String, _ path: String, steps: Int = 20, every: Int = 10) throws {
    let r = try CLI.run(["train", "--model", model, "--steps", "\(steps)", "--lr", "0.05", "--checkpoint-every", "\(every)",
                         "--data", dataDirectory, "--out", path])
    #expect(r.status == 0, "\(r.stderr)")
  }

  static func sharpness(_ args: [String]) throws -> CLIResult {
    let r = try CLI.run(["sharpness"] + args)
    #expect(r.status == 0, "\(args): \(r.stderr)")
    return r
  }

  /// Another step adds; another option adds a variant; the same metric, options and step again
  /// replaces exactly that value. The replaced value is first overwritten in the file by h5py with a
  /// sentinel, so the test sees it come back; a second sentinel at the other step, and the other
  /// variant, must survive bit for bit.
  @Test func anotherStepOrOptionAddsAndTheSameAgainReplacesOnlyThatValue() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let run = dir.appendingPathComponent("lr.h5").path
    try Self.train("linreg", run)
    let sam = "sam/rho=0.05/"
    _ = try Self.sharpness([run, "--metric", "sam", "--steps", "10"])
    let first = try Self.fingerprint(run, "runs/run/sharpness")
    #expect(Set(first.keys) == [sam + "step", sam + "value"])

    _ = try Self.sharpness([run, "--metric", "sam", "--steps", "20"])
    let second = try Self.fingerprint(run, "runs/run/sharpness")
    #expect(second[sam + "step"] == first[sam + "step"]! + hexBytes(Int64(20)), "steps 10, 20")
    #expect(second[sam + "value"]!.hasPrefix(first[sam + "value"]!), "step 10's value kept bit for bit")
    #expect(second[sam + "value"]!.count == 32)

    _ = try Self.sharpness([run, "--metric", "sam", "--rho", "0.1", "--steps", "20"])
    let third = try Self.fingerprint(run, "runs/run/sharpness")
    #expect(Set(third.keys) == Set(second.keys).union(["sam/rho=0.1/step", "sam/rho=0.1/value"]))
    for (k, v) in second { #expect(third[k] == v, "\(k) unchanged by another variant") }

    _ = try python("""
      import h5py
      with h5py.File('\(run)', 'r+') as f:
          f['runs/run/sharpness/\(sam)value'][:] = [111.0, 222.0]
      """)
    let tampered = try Self.fingerprint(run, "runs/run/sharpness")
    _ = try Self.sharpness([run, "--metric", "sam", "--steps", "10"])
    let after = try Self.fingerprint(run, "runs/run/sharpness")
    #expect(Set(after.keys) == Set(tampered.keys))
    for (k, v) in tampered where k != sam + "value" { #expect(after[k] == v, "\(k) unchanged") }
    #expect(after[sam + "value"] == first[sam + "value"]! + hexBytes(222.0), "step 10 measured again, step 20 left alone")
  }

  /// hessian-top stores, per step, the power iterations it ran and whether it converged; a limit too
  /// low to converge is recorded as such, as its own variant, and said on standard error.
  @Test func hessianTopRecordsIterationsAndConvergence() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let run = dir.appendingPathComponent("lr.h5").path
    try Self.train("linreg", run)
    let r = try Self.sharpness([run, "--metric", "hessian-top", "--steps", "all", "--json"])
    let results = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]
    #expect(results.count == 2)
    for x in results {
      #expect(x["converged"] as? Bool == true)
      #expect((2...100).contains(x["iterations"] as? Int ?? 0))
    }
    let capped = try Self.sharpness([run, "--metric", "hessian-top", "--steps", "20", "--iterations", "3", "--tolerance", "1e-12"])
    #expect(capped.stderr.contains("1 of 1 values stopped at --iterations 3"), "\(capped.stderr)")
    let stored = try python("""
      import h5py
      g = h5py.File('\(run)', 'r')['runs/run/sharpness/hessian-top']
      for v in sorted(g):
          print(v, g[v]['step'][:].tolist(), g[v]['iterations'][:].tolist(), g[v]['converged'][:].tolist(), g[v]['iterations'].dtype)
      """)
    let expected = """
      power_iterations=100,tolerance=0.0001 [10, 20] [\(results[0]["iterations"]!), \(results[1]["iterations"]!)] [1, 1] int64
      power_iterations=3,tolerance=1e-12 [20] [3] [0] int64
      """
    #expect(stored.trimmingCharacters(in: .whitespacesAndNewlines) == expected)
  }

  /// `--metric all` is every metric that applies: hessian-top and sam for mlp and linreg (keskar-logits
  /// needs a language model's logits; gpt-micro's three are in SharpnessCommandTests). Asking for
  /// keskar-logits on them is refused in one line before anything is measured or written.
  @Test func metricAllMeansTheMetricsThatApplyToTheModel() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    for model in ["mlp", "linreg"] {
      let run = dir.appendingPathComponent(model + ".h5").path
      try Self.train(model, run)
      let refused = try CLI.run(["sharpness", run, "--metric", "sam,keskar-logits"])
      #expect(refused.status == 2)
      #expect(refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
      #expect(refused.stderr.contains("keskar-logits does not apply to \(model)"), "\(refused.stderr)")
      let r = try Self.sharpness([run, "--metric", "all", "--json"])
      let metrics = (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]).map { $0["metric"] as! String }
      #expect(metrics == ["hessian-top", "sam"], "\(model)")
      let stored = try python("import h5py; print(sorted(h5py.File('\(run)', 'r')['runs/run/sharpness']))")
      #expect(stored.trimmingCharacters(in: .whitespacesAndNewlines) == "['hessian-top', 'sam']", "\(model): nothing from the refusal")
    }
  }

  /// `--steps all` on a grid reaches `/results` as [recipe, lr, seed, sharpness_step], read by xarray;
  /// measuring more runs or metrics later rebuilds the sharpness arrays from every run's series, and
  /// leaves every other array of `/results` bit for bit as it was. The recipe, lr and seed scales keep
  /// no reference to a deleted array.
  @Test func stepsAllReachResultsWithTheStepDimension() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let grid = dir.appendingPathComponent("g.h5").path
    let made = try CLI.run(["grid", "--model", "linreg", "--formats", "e8m7,e8m5", "--lrs", "0.05", "--seeds", "0..1",
                            "--steps", "20", "--checkpoint-every", "10", "--data", dataDirectory, "--out", grid])
    #expect(made.status == 0, "\(made.stderr)")
    let before = try Self.fingerprint(grid, "results")
    _ = try Self.sharpness([grid, "--metric", "hessian-top", "--steps", "all", "--jobs", "2"])
    let hessian = try Self.fingerprint(grid, "results")
    _ = try Self.sharpness([grid, "--metric", "sam", "--runs", "e8m5", "--steps", "20"])
    let after = try Self.fingerprint(grid, "results")
    for (k, v) in before { #expect(after[k] == v, "\(k) unchanged") }
    for (k, v) in hessian where k.hasPrefix("sharpness_hessian_top") { #expect(after[k] == v, "\(k) unchanged by sam") }
    let seen = try python("""
      import xarray as xr, h5py, numpy as np
      ds = xr.open_dataset('\(grid)', group='results', engine='h5netcdf')
      h, s = ds['sharpness_hessian_top'], ds['sharpness_sam']
      print(h.dims, ds['sharpness_step'].values.tolist(), int(h.isnull().sum()), h.attrs['variant'])
      print(s.dims, s.sel(recipe='e8m5', sharpness_step=20).notnull().all().item(), int(s.isnull().sum()))
      print(int((ds['sharpness_hessian_top_converged'] == 1).sum()), sorted(v for v in ds.data_vars if v.startswith('sharpness')))
      f = h5py.File('\(grid)', 'r')
      print(all(f[r[0]] is not None for name in ['recipe', 'lr', 'seed', 'sharpness_step'] for r in f['results'][name].attrs['REFERENCE_LIST']))
      """)
    let expected = """
      ('recipe', 'lr', 'seed', 'sharpness_step') [10, 20] 0 power_iterations=100,tolerance=0.0001
      ('recipe', 'lr', 'seed', 'sharpness_step') True 6
      8 ['sharpness_hessian_top', 'sharpness_hessian_top_converged', 'sharpness_hessian_top_iterations', 'sharpness_sam']
      True
      """
    #expect(seen.trimmingCharacters(in: .whitespacesAndNewlines) == expected)
  }

  /// The same measurements with --jobs 1 and --jobs 2 give identical results and identical stored
  /// bits: two gpt-micro runs in a grid (runs in parallel), and one run alone (its model's threads).
  @Test func jobsOneAndTwoGiveIdenticalResults() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let grid = dir.appendingPathComponent("g.h5").path
    let made = try CLI.run(["grid", "--model", "gpt-micro", "--formats", "e8m7,e8m3", "--lrs", "0.003", "--seeds", "0",
                            "--steps", "20", "--checkpoint-every", "10", "--data", dataDirectory, "--out", grid])
    #expect(made.status == 0, "\(made.stderr)")
    var outputs: [String] = [], stored: [[String: String]] = []
    for jobs in ["1", "2"] {
      let copy = dir.appendingPathComponent("g\(jobs).h5").path
      try FileManager.default.copyItem(atPath: grid, toPath: copy)
      let r = try Self.sharpness([copy, "--metric", "all", "--steps", "all", "--jobs", jobs, "--json"])
      outputs.append(r.stdout)
      var fingerprint = try Self.fingerprint(copy, "runs").filter { $0.key.contains("/sharpness/") }
      for (k, v) in try Self.fingerprint(copy, "results") where k.hasPrefix("sharpness") { fingerprint["results/" + k] = v }
      stored.append(fingerprint)
      let one = try Self.sharpness([copy, "--runs", "e8m3", "--metric", "all", "--jobs", jobs, "--json", "--no-write"])
      outputs.append(one.stdout)
    }
    let results = try JSONSerialization.jsonObject(with: Data(outputs[0].utf8)) as! [[String: Any]]
    #expect(results.count == 2 * 2 * 3, "2 runs, 2 steps, 3 metrics")
    #expect(outputs[0] == outputs[2])
    #expect(outputs[1] == outputs[3])
    #expect(stored[0].count == 2 * 8 + 6, "per run: step and value of 3 series, hessian-top's iterations and converged; /results: sharpness_step and 5 arrays")
    #expect(stored[0] == stored[1])
  }

  /// `--no-write` opens the file read-only, so it measures while a notebook's h5py holds the file open;
  /// recording then is refused in one line that says why and what to do.
  @Test func noWriteWorksWhileH5pyHoldsTheFile() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let run = dir.appendingPathComponent("lr.h5").path
    try Self.train("linreg", run)
    let holder = Process()
    holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    holder.arguments = ["python3", "-c", "import h5py,sys; f=h5py.File(sys.argv[1],'r'); print('open',flush=True); sys.stdin.read()", run]
    let input = Pipe(), output = Pipe()
    holder.standardInput = input
    holder.standardOutput = output
    try holder.run()
    defer {
      try? input.fileHandleForWriting.close()
      holder.waitUntilExit()
    }
    var line = Data()
    while !line.contains(UInt8(ascii: "\n")) {
      let chunk = output.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      line += chunk
    }
    #expect(String(decoding: line, as: UTF8.self) == "open\n")
    let r = try Self.sharpness([run, "--metric", "sam", "--json", "--no-write"])
    let results = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]
    #expect(results.count == 1 && results[0]["step"] as? Int == 20)
    let refused = try CLI.run(["sharpness", run, "--metric", "sam"])
    #expect(refused.status == 2)
    #expect(refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
    #expect(refused.stderr.contains("is open in another program") && refused.stderr.contains("--no-write"), "\(refused.stderr)")
    try input.fileHandleForWriting.close()
    holder.waitUntilExit()
    let stored = try python("import h5py; print('sharpness' in h5py.File('\(run)', 'r')['runs/run'])")
    #expect(stored.trimmingCharacters(in: .whitespacesAndNewlines) == "False", "nothing recorded")
  }

  /// A file from before variants (`sharpness/<metric>/{step,value}`, options as attributes) stays
  /// readable: measuring that metric again moves its series into the variant group its options name,
  /// keeping the old values bit for bit; a metric not measured again keeps the old layout.
  @Test func filesFromBeforeVariantsStayReadable() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let run = dir.appendingPathComponent("old.h5").path
    try Self.train("linreg", run)
    _ = try python("""
      import h5py, numpy as np
      with h5py.File('\(run)', 'r+') as f:
          g = f['runs/run'].create_group('sharpness')
          for name, value, attrs in [('sam', 0.125, dict(rho=0.05, batch=0)),
                                     ('hessian-top', 7.5, dict(power_iterations=100, tolerance=1e-4, difference_step=0.01, batch=0))]:
              m = g.create_group(name)
              m['step'] = np.array([10], dtype=np.int64)
              m['value'] = np.array([value])
              m.attrs['under_recipe'] = 'fp32'
              for k, v in attrs.items(): m.attrs[k] = v
      """)
    _ = try Self.sharpness([run, "--metric", "sam", "--steps", "20"])
    let stored = try python("""
      import h5py
      g = h5py.File('\(run)', 'r')['runs/run/sharpness']
      print(list(g['sam']), g['sam/rho=0.05/step'][:].tolist(), g['sam/rho=0.05/value'][0] == 0.125, list(g['hessian-top']))
      """)
    #expect(stored.trimmingCharacters(in: .whitespacesAndNewlines) == "['rho=0.05'] [10, 20] True ['step', 'value']")
  }
}

/// The little-endian bytes of a value as lowercase hex, as numpy's tobytes().hex() prints them.
func hexBytes<T>(_ value: T) -> String {
  withUnsafeBytes(of: value) { $0.map { String(format: "%02x", $0) }.joined() }
}
