import Foundation
import Testing

/// `fpsim bench grid` through the built binary: a tiny grid (gpt-micro, 2 runs of a few steps, with
/// stochastic rounding so that determinism is not trivial) with 1 and 2 workers.
@Suite(.serialized) struct BenchGridCommandTests {
  static let tiny = ["bench", "grid", "--model", "gpt-micro", "--recipe", "uniform:e4m3fn:stochastic", "--runs", "2",
                     "--steps", "4", "--eval-every", "2", "--jobs", "1,2", "--data", dataDirectory]

  @Test func everyWorkerCountFinishesItsRunsWithIdenticalResultsAndLeavesNothing() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let r = try CLI.run(Self.tiny + ["--dir", dir.path, "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    #expect(json["model"] as? String == "gpt-micro" && json["runs"] as? Int == 2 && json["steps"] as? Int == 4)
    #expect(json["identical"] as? Bool == true)
    #expect((json["compared_arrays"] as? [String])?.contains("loss") == true)
    #expect((json["worker_peak_rss_bytes"] as? Int ?? 0) > 0)
    #expect((json["spec"] as? String)?.contains("seeds = \"0..1\"") == true)
    let ms = try #require(json["measurements"] as? [[String: Any]])
    #expect(ms.map { $0["jobs"] as? Int } == [1, 2])
    for m in ms {
      #expect(m["runs_finished"] as? Int == 2 && m["diverged"] as? Int == 0)
      #expect(m["identical_to_first"] as? Bool == true)
      for key in ["wall_seconds", "runs_per_hour", "speedup", "worker_cpu_seconds", "cpu_seconds_per_run"] {
        #expect((m[key] as? Double ?? 0) > 0, "\(key)")
      }
      #expect((m["load_average"] as? [Double])?.count == 2)
      #expect((m["other_cpu_seconds"] as? Double ?? -1) >= 0 && (m["grid_process_cpu_seconds"] as? Double ?? -1) >= 0)  // Linux has /proc/stat
    }
    #expect(ms[0]["speedup"] as? Double == 1 && ms.allSatisfy { $0["repeat"] as? Int == 1 })
    let summary = try #require(json["summary"] as? [[String: Any]])
    #expect(summary.map { $0["jobs"] as? Int } == [1, 2])
    #expect(summary.map { $0["wall_seconds"] as? Double } == ms.map { $0["wall_seconds"] as? Double })  // one repeat: its own
    // Progress per finished run on standard error, and no temporary folder left behind.
    #expect(r.stderr.contains("--jobs 2: runs 2/2"), "\(r.stderr)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
  }

  @Test func theTableSaysTheResultsAreIdentical() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let r = try CLI.run(Self.tiny + ["--dir", dir.path, "--jobs", "2"])
    #expect(r.status == 0, "\(r.stderr)")
    let lines = r.stdout.split(separator: "\n")
    #expect(lines.first?.hasPrefix("grid: 2 runs of gpt-micro (uniform:e4m3fn:stochastic") == true)
    #expect(lines.contains { $0.hasPrefix("   2       1     2         0") })
    #expect(r.stdout.contains("results bit-identical across jobs: yes"))
  }

  @Test(arguments: [
    (["--jobs", "1,0"], "--jobs"), (["--jobs", "one"], "--jobs"), (["--runs", "0"], "--runs"),
    (["--model", "gpt-huge"], "gpt-huge"), (["--recipe", "uniform:e9m9"], "e9m9"), (["--steps", "-3"], "--steps"), (["--repeats", "0"], "--repeats"), (["--dir", "/nonexistent/fpsim"], "--dir"),
  ])
  func badInputIsOneLineAndExitStatus2(extra: [String], named: String) throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let r = try CLI.run(Self.tiny + ["--dir", dir.path] + extra)
    #expect(r.status == 2)
    #expect(r.stdout.isEmpty)
    #expect(r.stderr.hasPrefix("fpsim: error: ") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    #expect(r.stderr.contains(named), "\(r.stderr)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
  }
}
