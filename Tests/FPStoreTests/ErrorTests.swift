import Foundation
import Testing

@testable import FPStore

/// Bad input gives one clear line that names the file and the problem, never a crash, a stack
/// dump on stderr, or a partial result.
@Suite(.serialized)
struct ErrorTests {
  /// The error of `body`, checked to be a single line that names `path`.
  func oneLineError(naming path: String, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> StoreError? {
    do {
      try body()
      Issue.record("expected an error for \(path)", sourceLocation: sourceLocation)
      return nil
    } catch let error as StoreError {
      let text = error.description
      #expect(!text.contains("\n"), "not one line: \(text)", sourceLocation: sourceLocation)
      #expect(text.hasPrefix(path), "does not start with the file: \(text)", sourceLocation: sourceLocation)
      return error
    } catch {
      Issue.record("not a StoreError: \(error)", sourceLocation: sourceLocation)
      return nil
    }
  }

  func writeValidFile(_ path: String) throws {
    try Store.writeAtomically(to: path, schema: .run) { file in
      let g = try file.root.createGroup("runs/r1")
      try g.createDataset("loss", values: (0..<50_000).map { Float($0) })
      try g.setAttribute("status", "completed")
    }
  }

  @Test func missingFileIsNamed() {
    let dir = TemporaryDirectory()
    let path = dir.file("nope.h5")
    let error = oneLineError(naming: path) { _ = try H5File.open(path) }
    #expect(error?.kind == .noSuchFile)
    #expect(error?.description == "\(path): no such file")
    _ = oneLineError(naming: path) { _ = try Inspector.inspect(path) }
  }

  @Test func textFileIsNotHDF5() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("notes.h5")
    try "step,loss\n1,2.5\n".write(toFile: path, atomically: true, encoding: .utf8)
    let error = oneLineError(naming: path) { _ = try Inspector.inspect(path) }
    #expect(error?.kind == .notHDF5)
    #expect(error?.message.contains("not an HDF5 file") == true)
  }

  @Test func emptyFileAndDirectoryAreNotHDF5() throws {
    let dir = TemporaryDirectory()
    let empty = dir.file("empty.h5")
    _ = FileManager.default.createFile(atPath: empty, contents: Data())
    #expect(oneLineError(naming: empty) { _ = try H5File.open(empty) }?.message.contains("empty file") == true)
    #expect(oneLineError(naming: dir.path) { _ = try H5File.open(dir.path) }?.message.contains("directory") == true)
  }

  @Test(arguments: [0.9, 0.5, 0.05])
  func truncatedFileSaysTruncated(keeping fraction: Double) throws {
    let dir = TemporaryDirectory()
    let path = dir.file("cut.h5")
    try writeValidFile(path)
    let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    try handle.truncate(atOffset: UInt64(Double(size) * fraction))
    try handle.close()
    let error = oneLineError(naming: path) { _ = try Inspector.inspect(path) }
    #expect(error?.message.contains("truncated") == true, "\(String(describing: error))")
  }

  @Test func damagedSuperblockIsReportedWithHDF5sReason() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("damaged.h5")
    try writeValidFile(path)
    // Keep the 8-byte signature, overwrite the superblock's version fields and addresses.
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    try handle.seek(toOffset: 8)
    handle.write(Data(repeating: 0xEE, count: 64))
    try handle.close()
    let error = oneLineError(naming: path) { _ = try Inspector.inspect(path) }
    #expect(error?.kind == .hdf5)
    #expect(error?.message.hasPrefix("cannot open HDF5 file: ") == true, "\(String(describing: error))")
    #expect((error?.message.count ?? 0) > "cannot open HDF5 file: ".count + 10, "HDF5's reason is missing")
  }

  @Test func missingObjectsNameTheFileAndThePath() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("ok.h5")
    try writeValidFile(path)
    let file = try H5File.open(path)
    let missing = oneLineError(naming: path) { _ = try file.dataset("/runs/r2/loss") }
    #expect(missing?.kind == .missingObject)
    #expect(missing?.description == "\(path): /runs/r2/loss: no such dataset")
    let wrongKind = oneLineError(naming: path) { _ = try file.dataset("/runs/r1") }
    #expect(wrongKind?.kind == .typeMismatch)
    #expect(wrongKind?.description == "\(path): /runs/r1: is a group, not a dataset")
    let notStrings = oneLineError(naming: path) { _ = try file.dataset("/runs/r1/loss").readStrings() }
    #expect(notStrings?.kind == .typeMismatch)
  }

  @Test func operationsOnAClosedFileFailCleanly() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("closed.h5")
    try writeValidFile(path)
    let file = try H5File.open(path)
    let dataset = try file.dataset("/runs/r1/loss")
    try file.close()
    #expect(oneLineError(naming: path) { _ = try dataset.read(as: Float.self) }?.message == "the file is closed")
    try file.close()  // idempotent
  }

  @Test func childProcessesDoNotInheritTheFileLock() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("locked.h5")
    let file = try H5File.create(path)  // HDF5 holds an flock while the file is open
    // A child started with plain posix_spawn inherits every descriptor not marked close-on-exec
    // (Foundation's Process closes the ones it knows of, but not one opened by another thread
    // while it spawns).
    var pid: pid_t = 0
    var argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sleep"), strdup("30"), nil]
    defer { argv.forEach { free($0) } }
    #expect(posix_spawn(&pid, "/bin/sleep", nil, nil, &argv, nil) == 0)
    defer {
      kill(pid, SIGKILL)
      var status: Int32 = 0
      waitpid(pid, &status, 0)
    }
    try file.close()
    // Had the child inherited the descriptor, it would hold the lock and this would fail with
    // "unable to lock file" until the child exited.
    let again = try H5File.open(path, mode: .readWrite)
    try again.close()
  }

  @Test func creatingOverAnExistingFileIsRefusedUnlessAsked() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("exists.h5")
    try writeValidFile(path)
    #expect(oneLineError(naming: path) { _ = try H5File.create(path) }?.message.contains("already exists") == true)
    #expect(oneLineError(naming: path) { try Store.writeAtomically(to: path, schema: .run) { _ in } }?.kind == .invalidArgument)
    try H5File.create(path, overwrite: true).close()
    #expect(try FileHeader.read(from: H5File.open(path)) == nil)
  }
}
