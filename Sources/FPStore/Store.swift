import Foundation

/// fpsim-level file operations: create with a header, open with a schema check, and (in
/// `Atomic.swift`) atomic writes of whole files and of units inside files.
public enum Store {
  /// Creates an fpsim file in place (not atomic: use ``writeAtomically(to:schema:config:overwrite:_:)``
  /// for a file that must appear complete or not at all, and units for files that grow).
  public static func create(_ path: String, schema: Schema, config: String = "{}", overwrite: Bool = false) throws -> H5File {
    let file = try H5File.create(path, overwrite: overwrite)
    try FileHeader(schema: schema, config: config).write(to: file)
    return file
  }

  /// Opens an fpsim file and checks that this build can read it: it must have a header, a known
  /// schema (the expected one, when given) and a version no newer than this build reads.
  /// Every refusal is a one-line ``StoreError`` of kind `.schema` saying what to do.
  public static func open(_ path: String, expecting expected: Schema? = nil, mode: H5File.Mode = .readOnly) throws
    -> (file: H5File, header: FileHeader)
  {
    let file = try H5File.open(path, mode: mode)
    guard let header = try FileHeader.read(from: file) else {
      throw StoreError(
        .schema, file: path,
        "not an fpsim file (no \"schema\" root attribute); `fpsim inspect \(path)` shows what it holds")
    }
    if let problem = header.problem(expecting: expected) {
      throw StoreError(.schema, file: path, problem)
    }
    return (file, header)
  }
}
