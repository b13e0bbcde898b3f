import CHDF5
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Atomic publication: a reader sees a whole file, or a whole unit inside a file, or nothing.
///
/// Two granularities (docs/files.md "Atomicity"):
/// - A new file is written as `<path>.tmp-<pid>`, closed, `fsync`ed, and published by one
///   `rename(2)` (then the directory is `fsync`ed). A killed writer leaves only the temporary,
///   which no reader opens and ``Store/removeStaleTemporaries(of:)`` deletes.
/// - A unit inside an existing file (a run, a grid cell) is written under the hidden group
///   `/.incomplete/<key>`, flushed, and published by one `H5Lmove` to its real name, then flushed
///   again. Readers ignore `/.incomplete`; a writer that reopens the file discards what is there
///   (``H5File/discardIncompleteUnits()``).
///
/// Why the unit's data is flushed before the move: HDF5 1.10 has no journal, so what survives a
/// killed process is what reached the file. Flushing first puts the whole unit on disk while it is
/// still unreachable under its real name; the second flush then writes only the two changed link
/// tables. A link that a reader can see therefore always leads to a complete unit.
extension Store {
  /// The hidden group where units are written before they are published.
  public static let incompleteGroup = "/.incomplete"

  /// Writes a new fpsim file atomically: `body` fills it (the header is already written), and the
  /// file appears at `path` only when `body` returned and the bytes are on disk. If `body` throws,
  /// the temporary is removed and `path` is untouched.
  ///
  /// - Parameter overwrite: replace an existing file at `path` (atomically: readers see the old or
  ///   the new one). Otherwise an existing file is an error, checked before any work.
  @discardableResult
  public static func writeAtomically<R>(
    to path: String, schema: Schema, config: String = "{}", overwrite: Bool = false,
    _ body: (H5File) throws -> R
  ) throws -> R {
    if !overwrite && FileManager.default.fileExists(atPath: path) {
      throw StoreError(.invalidArgument, file: path, "cannot write: the file already exists")
    }
    let temporary = temporaryPath(for: path)
    let file: H5File
    do {
      file = try create(temporary, schema: schema, config: config, overwrite: true)
    } catch let error as StoreError {
      throw StoreError(error.kind, file: path, object: error.object, error.message)
    }
    do {
      let result: R
      do {
        result = try body(file)
        try file.close()
      } catch let error as StoreError where error.file == temporary {
        // Name the file the user asked for, not the temporary (which is removed below).
        throw StoreError(error.kind, file: path, object: error.object, error.message + " (nothing was written)")
      }
      try FileSync.fsync(path: temporary)
      if !overwrite && FileManager.default.fileExists(atPath: path) {
        throw StoreError(.invalidArgument, file: path, "cannot publish: the file appeared while it was being written")
      }
      guard rename(temporary, path) == 0 else {
        throw StoreError(.io, file: path, "cannot publish \(temporary) by rename: \(FileSync.errnoText())")
      }
      try FileSync.fsyncDirectory(containing: path)
      return result
    } catch {
      try? file.close()
      unlink(temporary)
      throw error
    }
  }

  /// Creates a directory (its parent must exist) and puts the new entry on disk (`fsync` of the
  /// parent), so files published into it later cannot outlive it after a power loss. An existing
  /// directory is accepted as it is.
  public static func makeDirectory(_ path: String) throws {
    if mkdir(path, 0o755) != 0 && errno != EEXIST {
      throw StoreError(.io, file: path, "cannot create the folder: \(FileSync.errnoText())")
    }
    try FileSync.fsyncDirectory(containing: path)
  }

  /// Renames `from` to `to` (same file system) and puts the change on disk. Refuses to replace an
  /// existing `to` (renameat2 with RENAME_NOREPLACE is not in Glibc's Swift overlay, so this checks
  /// first: callers own the folder they rename in).
  public static func renameDurably(_ from: String, to: String) throws {
    if FileManager.default.fileExists(atPath: to) {
      throw StoreError(.invalidArgument, file: to, "cannot rename \(from) onto it: it exists")
    }
    guard rename(from, to) == 0 else {
      throw StoreError(.io, file: from, "cannot rename to \(to): \(FileSync.errnoText())")
    }
    try FileSync.fsyncDirectory(containing: to)
  }

  /// The temporary name of a file being written by this process.
  public static func temporaryPath(for path: String) -> String { "\(path).tmp-\(getpid())" }

  /// Deletes `<path>.tmp-<pid>` files left by writers that no longer run. Returns their paths.
  @discardableResult
  public static func removeStaleTemporaries(of path: String) throws -> [String] {
    let url = URL(fileURLWithPath: path)
    let directory = url.deletingLastPathComponent().path
    let prefix = url.lastPathComponent + ".tmp-"
    var removed: [String] = []
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where entry.hasPrefix(prefix) {
      guard let pid = Int32(entry.dropFirst(prefix.count)) else { continue }
      let alive = kill(pid, 0) == 0 || errno == EPERM
      if pid != getpid() && !alive {
        let full = (directory as NSString).appendingPathComponent(entry)
        if unlink(full) == 0 { removed.append(full) }
      }
    }
    return removed
  }

  /// Deletes every `<name>.tmp-<pid>` in `folder` whose writer no longer runs (what a killed
  /// ``writeAtomically(to:schema:config:overwrite:_:)`` leaves). Returns their paths.
  @discardableResult
  public static func removeStaleTemporaries(inFolder folder: String) -> [String] {
    var removed: [String] = []
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
      guard let r = entry.range(of: ".tmp-", options: .backwards), let pid = Int32(entry[r.upperBound...]) else { continue }
      let alive = kill(pid, 0) == 0 || errno == EPERM
      if pid != getpid() && !alive {
        let full = (folder as NSString).appendingPathComponent(entry)
        if unlink(full) == 0 { removed.append(full) }
      }
    }
    return removed
  }
}

extension H5Group {
  /// Writes a unit (a group) atomically under this group: `body` fills a fresh group, which
  /// appears as `<this group>/<name>` only once `body` has returned and everything is flushed.
  ///
  /// If `body` throws, the partial unit is deleted and the error rethrown; if the process dies,
  /// the partial unit stays under `/.incomplete`, invisible to readers, until a writer discards it.
  ///
  /// - Parameters:
  ///   - name: the unit's name in this group (one path component).
  ///   - replace: replace an existing unit of that name. The old unit is deleted just before the
  ///     new one is moved in (between the two flushes), so a crash at that instant can leave
  ///     neither: use it for units that can be recomputed.
  ///   - durable: also `fsync` at both flushes (survives power loss, not just a killed process).
  @discardableResult
  public func publishUnit<R>(
    _ name: String, replace: Bool = false, durable: Bool = false, _ body: (H5Group) throws -> R
  ) throws -> R {
    try ObjectPath.validateName(name, file: file.path, in: path)
    let target = ObjectPath.join(path, name)
    let key = String(target.dropFirst()).replacingOccurrences(of: "%", with: "%25")
      .replacingOccurrences(of: "/", with: "%2F")
    let staging = Store.incompleteGroup + "/" + key
    let root = try file.root
    if !replace, try root.contains(target) {
      throw StoreError(.invalidArgument, file: file.path, object: target, "cannot publish: a unit of that name exists")
    }
    let incomplete = try root.requireGroup(Store.incompleteGroup)
    if try incomplete.contains(key) { try incomplete.delete(key) }
    let unit = try incomplete.createGroup(key)
    let result: R
    do {
      result = try body(unit)
    } catch {
      try? incomplete.delete(key)
      throw error
    }
    try file.flush(durable: durable)
    try HDF5Library.locked {
      if replace, try root.contains(target) { try root.delete(target) }
      try root.move(staging, to: target)
    }
    try file.flush(durable: durable)
    return result
  }
}

extension H5File {
  /// The keys of units left under `/.incomplete` by writers that stopped before publishing.
  public func incompleteUnits() throws -> [String] {
    let root = try self.root
    guard try root.contains(Store.incompleteGroup) else { return [] }
    return try root.group(Store.incompleteGroup).children().map(\.name)
  }

  /// Deletes what interrupted writers left under `/.incomplete`; returns the keys removed.
  /// (HDF5 reuses the freed space for later writes in the same session, but does not shrink the
  /// file; `h5repack` does.)
  @discardableResult
  public func discardIncompleteUnits() throws -> [String] {
    let keys = try incompleteUnits()
    if try root.contains(Store.incompleteGroup) { try root.delete(Store.incompleteGroup) }
    return keys
  }
}
