import CHDF5

/// A group or dataset open in a file: what both share (a path, attributes, a lifetime).
///
/// Holds its file open (see ``H5File``). Subclasses: ``H5Group``, ``H5Dataset``.
public class H5Object: @unchecked Sendable {
  /// The file the object lives in.
  public let file: H5File
  /// The object's absolute path inside the file (`/runs/r1`), as it was opened.
  public let path: String
  let id: hid_t

  init(file: H5File, id: hid_t, path: String) {
    self.file = file
    self.id = id
    self.path = path
  }

  deinit {
    let id = self.id
    // After a strong file close the id is already gone: HDF5 ids are not reused, so the check is safe.
    HDF5Library.locked { if H5Iis_valid(id) > 0 { _ = H5Oclose(id) } }
  }

  /// The last component of ``path`` (`r1` for `/runs/r1`, `/` for the root).
  public var name: String { ObjectPath.lastComponent(path) }

  /// Throws a located ``StoreError`` of kind `.hdf5` when an HDF5 status is negative.
  /// Call with the lock held.
  @discardableResult
  func check<T: BinaryInteger>(_ status: T, _ what: @autoclosure () -> String, object: String? = nil)
    throws -> T
  {
    try h5check(status, what(), file: file.path, object: object ?? path)
  }

  func error(_ kind: StoreError.Kind, _ message: String, object: String? = nil) -> StoreError {
    StoreError(kind, file: file.path, object: object ?? path, message)
  }
}

/// Paths inside a file: absolute (`/a/b`) or relative to a group (`b/c`).
enum ObjectPath {
  static func join(_ base: String, _ name: String) -> String {
    if name.hasPrefix("/") { return normalize(name) }
    return normalize(base == "/" ? "/" + name : base + "/" + name)
  }

  static func normalize(_ path: String) -> String {
    let parts = path.split(separator: "/", omittingEmptySubsequences: true)
    return "/" + parts.joined(separator: "/")
  }

  static func components(_ path: String) -> [String] {
    path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
  }

  static func lastComponent(_ path: String) -> String {
    components(path).last ?? "/"
  }

  static func parent(_ path: String) -> String {
    let parts = components(path)
    return "/" + parts.dropLast().joined(separator: "/")
  }

  /// Names that HDF5 would misread (`.` and `..` are ordinary names in HDF5 but confuse every reader;
  /// an empty name or one with `/` is a path, not a name).
  static func validateName(_ name: String, file: String, in group: String) throws {
    if name.isEmpty || name.contains("/") || name == "." || name == ".." {
      throw StoreError(
        .invalidArgument, file: file, object: group,
        "invalid object name \"\(name)\" (a name is non-empty, without '/', and not '.' or '..')")
    }
  }
}
