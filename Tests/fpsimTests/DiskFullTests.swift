import Foundation
import Testing

/// A full disk (a 256 KiB tmpfs; mounting needs root, as in CI) for `quantize --in/--out` and
/// `train`: one line `fpsim: error: ...`, exit 2, no crash, nothing under the --out name, and a
/// retry after freeing space works. Where mounting is not permitted the tests say so and skip.
@Suite(.serialized) struct DiskFullTests {
  /// Mounts a tmpfs of `size` at a new folder; nil (with the reason printed) where not permitted.
  static func mountSmallDisk(size: String = "256k") throws -> URL? {
    let dir = try scratchDirectory()
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/mount")
    p.arguments = ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", dir.path]
    p.standardError = FileHandle.nullDevice
    p.standardOutput = FileHandle.nullDevice
    do { try p.run() } catch {
      print("DiskFullTests skipped: cannot run mount (\(error))")
      return nil
    }
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
      print("DiskFullTests skipped: mounting a tmpfs is not permitted here (mount exit \(p.terminationStatus); needs root)")
      try? FileManager.default.removeItem(at: dir)
      return nil
    }
    return dir
  }

  static func unmount(_ dir: URL) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/umount")
    p.arguments = [dir.path]
    try? p.run()
    p.waitUntilExit()
    try? FileManager.default.removeItem(at: dir)
  }

  /// Fills the disk, leaving about `free` bytes.
  static func fill(_ dir: URL, leaving free: Int) throws -> String {
    let filler = dir.appendingPathComponent("filler").path
    let attributes = try FileManager.default.attributesOfFileSystem(forPath: dir.path)
    let available = (attributes[.systemFreeSize] as? NSNumber)?.intValue ?? 0
    _ = FileManager.default.createFile(atPath: filler, contents: Data(count: max(0, available - free)))
    return filler
  }

  static func entries(_ dir: URL) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0 != "filler" }.sorted()
  }

  static func expectOneLineError(_ r: CLIResult, _ context: String) {
    #expect(r.status == 2, "\(context): exit \(r.status): \(r.stderr.prefix(500))")
    let lines = r.stderr.split(separator: "\n").filter { !$0.hasPrefix("step ") }
    #expect(lines.count == 1 && lines[0].hasPrefix("fpsim: error: "), "\(context): \(r.stderr.prefix(500))")
  }

  @Test func quantizeToAFullDiskFailsCleanlyAndARetryWorks() throws {
    guard let disk = try Self.mountSmallDisk() else { return }
    defer { Self.unmount(disk) }
    let scratch = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: scratch) }
    // 200k float32 values of noise (incompressible enough) on the normal disk.
    let input = scratch.appendingPathComponent("w.h5").path
    _ = try python("""
      import h5py, numpy as np
      with h5py.File('\(input)', 'w') as f: f['w'] = np.random.default_rng(1).standard_normal((400, 500)).astype('float32')
      """)
    let out = disk.appendingPathComponent("q.h5").path
    let args = ["quantize", "--format", "e4m3fn", "--in", input + ":/w", "--out", out + ":/w", "--compression", "none"]
    let r = try CLI.run(args)
    Self.expectOneLineError(r, "quantize to a full disk")
    #expect(Self.entries(disk).isEmpty, "left behind: \(Self.entries(disk))")
    // Free space (a bigger disk) and retry.
    Self.unmount(disk)
    guard let big = try Self.mountSmallDisk(size: "8m") else { return }
    defer { Self.unmount(big) }
    let retry = try CLI.run(["quantize", "--format", "e4m3fn", "--in", input + ":/w", "--out", big.appendingPathComponent("q.h5").path + ":/w"])
    #expect(retry.status == 0, "\(retry.stderr)")
  }

  @Test func trainingOntoAFullDiskFailsCleanlyAndResumesOnceThereIsSpace() throws {
    guard let disk = try Self.mountSmallDisk(size: "8m") else { return }
    defer { Self.unmount(disk) }
    let out = disk.appendingPathComponent("r.h5").path
    // About 150 KB a checkpoint unit; 12 of them, then the run file (about 1.8 MB).
    let run = ["train", "--model", "mlp", "--recipe", "uniform:e4m3fn:stochastic", "--steps", "60", "--checkpoint-every", "5",
               "--eval-every", "20", "--data", dataDirectory]
    let scratch = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let reference = scratch.appendingPathComponent("ref.h5").path
    #expect(try CLI.run(run + ["--out", reference]).status == 0)

    // Room for the first units only: the disk fills up while training.
    let filler = try Self.fill(disk, leaving: 600_000)
    let r = try CLI.run(run + ["--out", out])
    Self.expectOneLineError(r, "train onto a full disk")
    #expect(!FileManager.default.fileExists(atPath: out), "a file was left under the --out name")
    // Free the space; resume (or start again if not even the first unit fitted).
    try FileManager.default.removeItem(atPath: filler)
    let resumable = FileManager.default.fileExists(atPath: out + ".partial/unit_000000000.h5")
    let retry = try CLI.run(resumable ? ["train", "--resume", out] : run + ["--out", out])
    #expect(retry.status == 0, "\(retry.stderr)")
    #expect(try compareRuns([(reference, out)]) .allSatisfy { $0.hasPrefix("same") })
  }
}
