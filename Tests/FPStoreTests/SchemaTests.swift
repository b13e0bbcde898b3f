import Foundation
import Testing

@testable import FPStore

/// Every fpsim file carries its schema header, and readers refuse what they cannot read with a
/// message that says what to do.
@Suite(.serialized)
struct SchemaTests {
  @Test(arguments: Schema.known)
  func newFilesCarryTheFiveRootAttributes(schema: Schema) throws {
    let dir = TemporaryDirectory()
    let path = dir.file("f.h5")
    try Store.create(path, schema: schema, config: #"{"lr": 0.001}"#).close()
    let (file, header) = try Store.open(path, expecting: schema)
    #expect(header.schema == schema.name)
    #expect(header.schemaVersion == schema.version && schema.version == (schema == .grid ? 2 : 1))
    #expect(header.fpsimVersion == fpsimVersion)
    #expect(header.config == #"{"lr": 0.001}"#)
    #expect(header.created.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"#, options: .regularExpression) != nil, "\(header.created)")
    let root = try file.root
    #expect(try root.attribute("schema") == .string(schema.name))
    #expect(try root.attribute("schema_version") == .int(schema.version))
    #expect(try Set(root.attributeNames()) == ["schema", "schema_version", "fpsim_version", "created", "config"])
  }

  /// A file whose header is edited to `schema`/`version` (what a future fpsim would write).
  func file(schema: String, version: AttributeValue, in dir: TemporaryDirectory) throws -> String {
    let path = dir.file("future.h5")
    let file = try Store.create(path, schema: .grid, overwrite: true)
    try file.root.setAttribute("schema", .string(schema))
    try file.root.setAttribute("schema_version", version)
    try file.root.setAttribute("fpsim_version", "9.0.0")
    try file.close()
    return path
  }

  @Test func aNewerSchemaVersionIsRefusedWithUpgradeAdvice() throws {
    let dir = TemporaryDirectory()
    let path = try file(schema: "fpsim/grid", version: .int(3), in: dir)
    let error = #expect(throws: StoreError.self) { _ = try Store.open(path, expecting: .grid) }
    #expect(error?.kind == .schema)
    #expect(error?.description.hasPrefix(path) == true)
    #expect(error?.message.contains("upgrade fpsim to read schema_version 3") == true, "\(String(describing: error))")
    #expect(error?.message.contains("written by fpsim 9.0.0") == true)
  }

  @Test func anUnknownSchemaIsRefusedNamingItAndTheKnownOnes() throws {
    let dir = TemporaryDirectory()
    let path = try file(schema: "fpsim/sweep3d", version: .int(1), in: dir)
    let error = #expect(throws: StoreError.self) { _ = try Store.open(path) }
    #expect(error?.message.contains("unknown schema \"fpsim/sweep3d\"") == true, "\(String(describing: error))")
    #expect(error?.message.contains("fpsim/run, fpsim/grid, fpsim/checkpoint, fpsim/tensors") == true)
    #expect(error?.message.contains("upgrade fpsim") == true)
  }

  @Test func aDifferentSchemaThanExpectedIsRefused() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("run.h5")
    try Store.create(path, schema: .run).close()
    let error = #expect(throws: StoreError.self) { _ = try Store.open(path, expecting: .checkpoint) }
    #expect(error?.message == "is an fpsim/run file, not fpsim/checkpoint")
  }

  @Test func aMistypedVersionIsAMalformedHeader() throws {
    let dir = TemporaryDirectory()
    let path = try file(schema: "fpsim/run", version: .string("1"), in: dir)
    let error = #expect(throws: StoreError.self) { _ = try Store.open(path) }
    #expect(error?.message.contains("malformed fpsim header") == true)
    // inspect still shows the file, with the problem in the report.
    let report = try Inspector.inspect(path)
    #expect(report.header == nil)
    #expect(report.headerProblem?.contains("schema_version") == true)
  }

  @Test func aForeignFileIsRefusedAsDataButOpensForInspect() throws {
    let dir = TemporaryDirectory()
    let path = dir.file("foreign.h5")
    let file = try H5File.create(path)
    try file.root.createDataset("x", values: [Float(1)])
    try file.close()
    let error = #expect(throws: StoreError.self) { _ = try Store.open(path) }
    #expect(error?.message.contains("not an fpsim file") == true)
    #expect(error?.message.contains("fpsim inspect") == true)
    let report = try Inspector.inspect(path)
    #expect(report.header == nil)
    #expect(report.text().hasPrefix("\(path): HDF5 file without an fpsim schema"))
  }

  @Test func newerVersionsStillInspectWithTheProblemStated() throws {
    let dir = TemporaryDirectory()
    let path = try file(schema: "fpsim/grid", version: .int(3), in: dir)
    let report = try Inspector.inspect(path)
    #expect(report.header?.schemaVersion == 3)
    #expect(report.text().split(separator: "\n")[0].contains("upgrade fpsim to read schema_version 3"))
  }
}
