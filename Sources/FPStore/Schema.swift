import Foundation

/// The kind and layout version of an fpsim file, stored in its root attributes `schema` and
/// `schema_version` (docs/files.md describes each layout).
///
/// A version number rises when a reader of the old version would misread the new layout (a
/// dataset renamed, a unit changed); adding a dataset or attribute that old readers may ignore
/// does not raise it.
public struct Schema: Sendable, Hashable, Codable, CustomStringConvertible {
  public let name: String
  public let version: Int

  public init(_ name: String, version: Int) {
    self.name = name
    self.version = version
  }

  /// One training run (`/runs/<id>/...`).
  public static let run = Schema("fpsim/run", version: 1)
  /// A sweep: runs plus `/results`, labelled arrays over recipe, lr, seed, step. Version 2 names the
  /// first dimension `recipe` for every grid; version 1 named it `format` in grids of formats.
  public static let grid = Schema("fpsim/grid", version: 2)
  /// Model and optimizer state to resume or analyse (sharpness).
  public static let checkpoint = Schema("fpsim/checkpoint", version: 1)
  /// Quantized tensors: values, storage codes and scales of tensors run through a format.
  public static let tensors = Schema("fpsim/tensors", version: 1)

  /// Every schema this build reads and writes, each at the newest version it knows.
  public static let known: [Schema] = [.run, .grid, .checkpoint, .tensors]

  public static func known(named name: String) -> Schema? { known.first { $0.name == name } }

  public var description: String { "\(name) v\(version)" }
}

/// The root attributes every fpsim file carries.
public struct FileHeader: Sendable, Equatable, Codable {
  /// `schema`: `fpsim/run`, `fpsim/grid`, `fpsim/checkpoint` or `fpsim/tensors`.
  public var schema: String
  /// `schema_version`: the layout version (int64).
  public var schemaVersion: Int
  /// `fpsim_version`: the fpsim that wrote the file.
  public var fpsimVersion: String
  /// `created`: ISO 8601 UTC time the file was created (`2026-05-09T07:35:25Z`).
  public var created: String
  /// `config`: the resolved configuration that produced the file, as JSON text (`{}` when none).
  public var config: String

  enum CodingKeys: String, CodingKey {
    case schema
    case schemaVersion = "schema_version"
    case fpsimVersion = "fpsim_version"
    case created, config
  }

  /// A header for a new file of `schema` written now by this fpsim.
  public init(schema: Schema, config: String = "{}", created: Date = Date()) {
    self.schema = schema.name
    self.schemaVersion = schema.version
    self.fpsimVersion = FPStore.fpsimVersion
    self.created = FileHeader.iso8601(created)
    self.config = config
  }

  public init(schema: String, schemaVersion: Int, fpsimVersion: String, created: String, config: String) {
    self.schema = schema
    self.schemaVersion = schemaVersion
    self.fpsimVersion = fpsimVersion
    self.created = created
    self.config = config
  }

  /// `yyyy-MM-ddTHH:mm:ssZ` in UTC.
  static func iso8601(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    formatter.timeZone = TimeZone(identifier: "UTC")
    return formatter.string(from: date)
  }

  /// Writes the five root attributes.
  public func write(to file: H5File) throws {
    let root = try file.root
    try root.setAttribute("schema", schema)
    try root.setAttribute("schema_version", schemaVersion)
    try root.setAttribute("fpsim_version", fpsimVersion)
    try root.setAttribute("created", created)
    try root.setAttribute("config", config)
  }

  /// The header of an open file; nil when the file has no `schema` root attribute (a file written
  /// by another tool). A `schema` attribute with missing or mistyped companions is an error.
  public static func read(from file: H5File) throws -> FileHeader? {
    let root = try file.root
    guard let schemaValue = try root.attribute("schema") else { return nil }
    func bad(_ message: String) -> StoreError { StoreError(.schema, file: file.path, "malformed fpsim header: \(message)") }
    guard let schema = schemaValue.stringValue else { throw bad("root attribute schema is \(schemaValue), not a string") }
    guard let versionValue = try root.attribute("schema_version") else {
      throw bad("root attribute schema_version is missing")
    }
    guard let version = versionValue.intValue else {
      throw bad("root attribute schema_version is \(versionValue), not an integer")
    }
    let fpsim = try root.attribute("fpsim_version")?.stringValue ?? "unknown"
    let created = try root.attribute("created")?.stringValue ?? "unknown"
    let config = try root.attribute("config")?.stringValue ?? "{}"
    return FileHeader(schema: schema, schemaVersion: version, fpsimVersion: fpsim, created: created, config: config)
  }

  /// Why this build cannot read a file with this header as `expected` (nil when it can), phrased
  /// as what to do.
  public func problem(expecting expected: Schema? = nil) -> String? {
    guard let known = Schema.known(named: schema) else {
      let names = Schema.known.map(\.name).joined(separator: ", ")
      return "unknown schema \"\(schema)\" (fpsim \(FPStore.fpsimVersion) reads \(names)); "
        + "it was written by fpsim \(fpsimVersion): upgrade fpsim to read it"
    }
    if schemaVersion > known.version {
      return "\(schema) schema_version \(schemaVersion) is newer than this fpsim (\(FPStore.fpsimVersion)) reads "
        + "(up to \(known.version)); it was written by fpsim \(fpsimVersion): upgrade fpsim to read schema_version \(schemaVersion)"
    }
    if schemaVersion < 1 {
      return "invalid schema_version \(schemaVersion) for \(schema) (versions start at 1): the file is damaged or not fpsim's"
    }
    if let expected, expected.name != schema {
      return "is an \(schema) file, not \(expected.name)"
    }
    return nil
  }
}
