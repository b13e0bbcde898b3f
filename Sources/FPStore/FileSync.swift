import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Durability helpers around POSIX calls that Foundation does not expose.
enum FileSync {
  /// Puts a file's bytes on disk (`fsync` through a fresh descriptor flushes the whole inode).
  static func fsync(path: String) throws {
    let fd = Glibc.open(path, O_RDONLY)
    guard fd >= 0 else { throw StoreError(.io, file: path, "cannot open for fsync: \(errnoText())") }
    defer { Glibc.close(fd) }
    guard Glibc.fsync(fd) == 0 else { throw StoreError(.io, file: path, "fsync failed: \(errnoText())") }
  }

  /// Puts a directory entry change (a rename) on disk.
  static func fsyncDirectory(containing path: String) throws {
    let dir = (path as NSString).deletingLastPathComponent
    let fd = Glibc.open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY)
    guard fd >= 0 else { return }  // some file systems refuse: durability is best effort there
    defer { Glibc.close(fd) }
    _ = Glibc.fsync(fd)
  }

  static func errnoText() -> String { String(cString: strerror(errno)) }
}
