import Foundation
import Testing

@testable import FPStore

/// Readers see whole files and whole units or nothing: during writing, after a failed write, and
/// after the writer process is killed.
@Suite(.serialized)
struct AtomicTests {
  @Test func aNewFileAppearsOnlyWhenComplete() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("grid.h5")
    let temporary = Store.temporaryPath(for: path)
    let seen: Bool = try Store.writeAtomically(to: path, schema: .grid) { file in
      try file.root.createDataset("x", values: [Float](repeating: 1, count: 1000))
      #expect(file.path == temporary)
      return FileManager.default.fileExists(atPath: path)
    }
    #expect(seen == false, "the file was visible under its name before it was complete")
    #expect(FileManager.default.fileExists(atPath: path))
    #expect(!FileManager.default.fileExists(atPath: temporary))
    #expect(try Store.open(path, expecting: .grid).file.dataset("/x").read(as: Float.self).count == 1000)
  }

  @Test func aFailedFileWriteLeavesNothing() throws {
    struct Boom: Error {}
    let dir = TemporaryDirectory()
    let path = dir.file("grid.h5")
    #expect(throws: Boom.self) {
      try Store.writeAtomically(to: path, schema: .grid) { file in
        try file.root.createDataset("x", values: [Float(1)])
        throw Boom()
      }
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
  }

  @Test func overwritingReplacesTheWholeFile() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("t.h5")
    try Store.writeAtomically(to: path, schema: .tensors) { try $0.root.setAttribute("generation", 1) }
    try Store.writeAtomically(to: path, schema: .tensors, overwrite: true) { try $0.root.setAttribute("generation", 2) }
    #expect(try Store.open(path).file.root.attribute("generation") == .int(2))
  }

  @Test func staleTemporariesOfDeadWritersAreRemoved() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("t.h5")
    let dead = "\(path).tmp-999999999"  // no such pid
    let alive = "\(path).tmp-1"  // init is always running
    _ = FileManager.default.createFile(atPath: dead, contents: Data([1]))
    _ = FileManager.default.createFile(atPath: alive, contents: Data([1]))
    #expect(try Store.removeStaleTemporaries(of: path) == [dead])
    #expect(FileManager.default.fileExists(atPath: alive))
  }

  @Test func aUnitIsInvisibleUnderItsNameUntilPublished() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("runs.h5")
    let file = try Store.create(path, schema: .run)
    let runs = try file.root.createGroup("runs")
    try runs.publishUnit("r1") { unit in
      try unit.createDataset("loss", values: [Float(3), 2, 1])
      try unit.setAttribute("status", "completed")
      #expect(try !file.contains("/runs/r1"))
      #expect(try file.incompleteUnits() == ["runs%2Fr1"])
      #expect(unit.path == "/.incomplete/runs%2Fr1")
    }
    #expect(try file.incompleteUnits() == [])
    #expect(try file.dataset("/runs/r1/loss").read(as: Float.self) == [3, 2, 1])
    #expect(try file.group("/runs/r1").attribute("status") == .string("completed"))
    // Publishing again under the same name is refused unless replacing.
    #expect(throws: StoreError.self) { try runs.publishUnit("r1") { _ in } }
    try runs.publishUnit("r1", replace: true) { try $0.setAttribute("status", "diverged") }
    #expect(try file.group("/runs/r1").attribute("status") == .string("diverged"))
    #expect(try !file.contains("/runs/r1/loss"))
  }

  @Test func aFailedUnitLeavesNoTrace() throws {
    struct Boom: Error {}
    let dir = TemporaryDirectory()
    let file = try Store.create(dir.file("runs.h5"), schema: .run)
    let runs = try file.root.createGroup("runs")
    #expect(throws: Boom.self) {
      try runs.publishUnit("r1") { unit in
        try unit.createDataset("loss", values: [Float(1)])
        throw Boom()
      }
    }
    #expect(try runs.children().isEmpty)
    #expect(try file.incompleteUnits().isEmpty)
  }

  /// Starts `StoreCrashWriter`, reads its output until `until` appears, SIGKILLs it.
  func runWriterAndKill(_ writer: String, _ arguments: [String], until marker: String) throws -> [String] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: writer)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    var text = ""
    while !text.contains(marker + "\n") {
      let data = pipe.fileHandleForReading.availableData
      if data.isEmpty { break }  // the writer exited before the marker
      text += String(decoding: data, as: UTF8.self)
    }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    #expect(process.terminationReason == .uncaughtSignal, "writer ended by itself: \(text)")
    return text.split(separator: "\n").map(String.init)
  }

  /// The units a reader sees, each checked complete: all 65,536 values equal to their formula and
  /// the `complete` attribute written last.
  func checkedUnits(_ path: String) throws -> [String] {
    let (file, _) = try Store.open(path, expecting: .run)
    let runs = try file.group("/runs")
    var names: [String] = []
    for child in try runs.children() {
      let unit = try runs.group(child.name)
      let index = try #require(try unit.attribute("index")?.intValue)
      #expect(try unit.attribute("complete") == .int(1), "\(child.name) visible but incomplete")
      let values = try unit.dataset("values").read(as: Float.self)
      #expect(values.count == 65_536, "\(child.name)")
      #expect(values.enumerated().allSatisfy { $0.element == Float(index * 1_000_000 + $0.offset) }, "\(child.name) values")
      names.append(child.name)
    }
    return names
  }

  @Test(arguments: [false, true])
  func aKilledWriterLeavesOnlyCompleteUnitsAndResumes(flushPartial: Bool) throws {
    let writer = try #require(crashWriterExecutable(), "StoreCrashWriter is not next to the test bundle: build the package (swift build) first")
    let dir = TemporaryDirectory()
    let path = dir.file("runs.h5")
    let lines = try runWriterAndKill(
      writer, [path, "--units", "5", "--pause-in-unit", "2"] + (flushPartial ? ["--flush-partial"] : []), until: "paused 2")
    #expect(lines == ["published 0", "published 1", "paused 2"])

    #expect(try checkedUnits(path) == ["u000", "u001"])
    let file = try H5File.open(path)
    // With the partial unit flushed it is on disk under /.incomplete; without, it normally never
    // reached the file (HDF5 writes metadata at flushes, or earlier only if its cache overflows).
    let incomplete = try file.incompleteUnits()
    if flushPartial {
      #expect(incomplete == ["runs%2Fu002"])
    } else {
      #expect(Set(incomplete).isSubset(of: ["runs%2Fu002"]))
    }
    let report = try Inspector.inspect(path)
    #expect(!report.text().contains("u002"))
    #expect(report.incompleteUnits == incomplete)
    try file.close()

    // A new writer discards the leftovers and carries on where the killed one stopped.
    let resumed = try runProcess(writer, [path, "--units", "2"])
    #expect(resumed.status == 0, "\(resumed.stderr)")
    #expect(resumed.stdout.split(separator: "\n").filter { $0.hasPrefix("published") } == ["published 2", "published 3"])
    #expect(try checkedUnits(path) == ["u000", "u001", "u002", "u003"])
    #expect(try H5File.open(path).incompleteUnits() == [])
  }
}
