import CHDF5
import Foundation
#if canImport(Glibc)
  import Glibc
#endif

/// An open HDF5 file.
///
/// Objects opened from a file (groups, datasets) keep it alive; it is closed when the last of them
/// and the file value itself are gone, or at once by ``close()``. Closing is "strong" (HDF5's
/// `H5F_CLOSE_STRONG`): every object still open in the file is closed with it, so after `close()`
/// the bytes on disk are final, which is what publishing a file by rename needs.
///
/// Thread safety: every HDF5 call in FPStore is serialized by one process-wide lock, so values may
/// be shared between threads, but HDF5 gives no parallelism: use one writer per file.
public final class H5File: @unchecked Sendable {
  public enum Mode: Sendable, Equatable {
    case readOnly
    case readWrite
  }

  /// The path as given by the caller (used in every error message).
  public let path: String
  public let mode: Mode
  let id: hid_t
  private var closed = false

  private init(path: String, mode: Mode, id: hid_t) {
    self.path = path
    self.mode = mode
    self.id = id
  }

  deinit {
    if !closed {
      let id = self.id
      HDF5Library.locked { _ = H5Fclose(id) }
    }
  }

  /// Creates a new, empty HDF5 file, open for reading and writing.
  ///
  /// - Parameter overwrite: replace an existing file (otherwise an existing file is an error).
  public static func create(_ path: String, overwrite: Bool = false) throws -> H5File {
    let id = try withLockRetry(path: path) { () -> Result<hid_t, StoreError> in
      let fapl = try fileAccessList(path: path)
      defer { H5Pclose(fapl) }
      let flags = overwrite ? fpsim_H5F_ACC_TRUNC() : fpsim_H5F_ACC_EXCL()
      let id = H5Fcreate(path, flags, fpsim_H5P_DEFAULT(), fapl)
      if id >= 0 { return .success(id) }
      let detail = HDF5Errors.message(default: "HDF5 could not create it")
      if !overwrite && FileManager.default.fileExists(atPath: path) {
        return .failure(StoreError(.invalidArgument, file: path, "cannot create: the file already exists"))
      }
      return .failure(StoreError(.hdf5, file: path, "cannot create HDF5 file: \(detail)"))
    }
    return H5File(path: path, mode: .readWrite, id: id)
  }

  /// Opens an existing HDF5 file (any HDF5 file, fpsim's or not; see ``Store/open(_:expecting:mode:)``
  /// for opening with a schema check).
  ///
  /// Errors say in one line what is wrong: no such file, not HDF5, truncated, locked by a writer.
  public static func open(_ path: String, mode: Mode = .readOnly) throws -> H5File {
    try checkLooksLikeHDF5(path)
    let id = try withLockRetry(path: path) { () -> Result<hid_t, StoreError> in
      let fapl = try fileAccessList(path: path)
      defer { H5Pclose(fapl) }
      let flags = mode == .readOnly ? fpsim_H5F_ACC_RDONLY() : fpsim_H5F_ACC_RDWR()
      let id = H5Fopen(path, flags, fapl)
      if id >= 0 { return .success(id) }
      var detail = HDF5Errors.message(default: "HDF5 could not open it")
      if detail.contains("truncated file") {
        detail += " (the file is shorter than HDF5 recorded: an interrupted write or copy)"
      } else if detail.contains("unable to lock file") {
        detail += " (another process has it open for writing; wait for it to finish)"
      }
      return .failure(StoreError(.hdf5, file: path, "cannot open HDF5 file: \(detail)"))
    }
    return H5File(path: path, mode: mode, id: id)
  }

  /// Runs an HDF5 open or create (under the HDF5 lock), retrying for up to `patience` seconds while
  /// it fails only because the file is locked, then marks the new descriptor close-on-exec.
  ///
  /// Why retry: HDF5 holds an `flock` on every file it has open, and `flock` belongs to the open
  /// file description, which a child process shares from the moment it is spawned until it execs
  /// or closes it. So a process started by any thread (a Python peer, a worker) briefly holds the
  /// locks of every file this process has open, even one marked close-on-exec, and a file closed
  /// and reopened in that window looks locked. Such holds last milliseconds; a real writer holds
  /// the lock for as long as it writes, and is still reported after `patience`.
  private static func withLockRetry(
    path: String, patience: Double = 2, _ attempt: () throws -> Result<hid_t, StoreError>
  ) throws -> hid_t {
    let start = Date()
    var pause = 0.002
    while true {
      let result = try HDF5Library.locked { () -> Result<hid_t, StoreError> in
        let result = try attempt()
        if case .success(let id) = result { closeOnExec(id) }
        return result
      }
      switch result {
      case .success(let id): return id
      case .failure(let error):
        guard error.message.contains("unable to lock file"), Date().timeIntervalSince(start) < patience else {
          throw error
        }
        Thread.sleep(forTimeInterval: pause)
        pause = min(pause * 2, 0.1)
      }
    }
  }

  /// The root group `/`.
  public var root: H5Group {
    get throws { try group("/") }
  }

  /// Whether ``close()`` has not been called.
  public var isOpen: Bool { HDF5Library.locked { !closed } }

  /// Opens the group at an absolute path (`/runs/r1`).
  public func group(_ path: String) throws -> H5Group {
    try H5Group.open(in: self, path: path)
  }

  /// Opens the dataset at an absolute path (`/runs/r1/metrics/loss`).
  public func dataset(_ path: String) throws -> H5Dataset {
    try root.dataset(path)
  }

  /// Whether a link exists at an absolute path (every component is checked in turn).
  public func contains(_ path: String) throws -> Bool {
    try root.contains(path)
  }

  /// Writes every buffered change to the file (HDF5's metadata cache and raw-data buffers), then,
  /// when `durable`, asks the operating system to put the file's bytes on disk (`fsync`).
  public func flush(durable: Bool = false) throws {
    try HDF5Library.locked {
      try requireOpen()
      try h5check(H5Fflush(id, H5F_SCOPE_GLOBAL), "cannot flush", file: path)
    }
    if durable { try FileSync.fsync(path: path) }
  }

  /// Closes the file and every object still open in it. Idempotent.
  public func close() throws {
    try HDF5Library.locked {
      guard !closed else { return }
      closed = true
      try h5check(H5Fclose(id), "cannot close", file: path)
    }
  }

  /// The file's size in bytes as HDF5 sees it.
  public func size() throws -> Int {
    try HDF5Library.locked {
      try requireOpen()
      var size: hsize_t = 0
      try h5check(H5Fget_filesize(id, &size), "cannot read file size", file: path)
      return Int(size)
    }
  }

  /// Call with the lock held.
  func requireOpen(object: String? = nil) throws {
    if closed { throw StoreError(.invalidArgument, file: path, object: object, "the file is closed") }
  }

  /// Marks the file's descriptor close-on-exec. HDF5 opens files without `O_CLOEXEC` and holds an
  /// `flock` on them; a child process started meanwhile (a Python peer, a worker) would inherit the
  /// descriptor and with it the lock, so the file would stay locked after we close it, until the
  /// child exits. (Files use the default sec2 driver, whose handle is a pointer to the descriptor.)
  private static func closeOnExec(_ id: hid_t) {
    var handle: UnsafeMutableRawPointer? = nil
    guard H5Fget_vfd_handle(id, fpsim_H5P_DEFAULT(), &handle) >= 0, let handle else {
      _ = HDF5Errors.takeStack()
      return
    }
    let fd = handle.load(as: Int32.self)
    let flags = fcntl(fd, F_GETFD)
    if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
  }

  /// File access properties: strong close (see the type's comment) and the file-format range
  /// HDF5 1.8 and later read (h5py, netCDF-4, MATLAB, HDFView all do).
  private static func fileAccessList(path: String) throws -> hid_t {
    let fapl = H5Pcreate(fpsim_H5P_FILE_ACCESS())
    try h5check(fapl, "cannot create file access properties", file: path)
    do {
      try h5check(H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG), "cannot set close degree", file: path)
      try h5check(
        H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_V18), "cannot set format bounds",
        file: path)
    } catch {
      H5Pclose(fapl)
      throw error
    }
    return fapl
  }

  /// The 8-byte signature HDF5 writes at the start of the superblock.
  static let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]

  /// Clear errors for the common bad inputs before HDF5 sees them: a missing path, a directory,
  /// an empty file, a file with no HDF5 signature at offset 0, 512, 1024, 2048, ... (HDF5 allows a
  /// user block before the superblock, so the signature may sit at any power of two from 512).
  static func checkLooksLikeHDF5(_ path: String) throws {
    var st = stat()
    if stat(path, &st) != 0 {
      let reason = errno == ENOENT ? "no such file" : String(cString: strerror(errno))
      throw StoreError(errno == ENOENT ? .noSuchFile : .io, file: path, reason)
    }
    if (st.st_mode & S_IFMT) == S_IFDIR {
      throw StoreError(.notHDF5, file: path, "is a directory, not an HDF5 file")
    }
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw StoreError(.io, file: path, "cannot read the file (permission denied?)")
    }
    defer { try? handle.close() }
    let size = UInt64(st.st_size)
    if size == 0 { throw StoreError(.notHDF5, file: path, "empty file (0 bytes), not an HDF5 file") }
    var offset: UInt64 = 0
    while offset + 8 <= size {
      try? handle.seek(toOffset: offset)
      if let bytes = try? handle.read(upToCount: 8), Array(bytes) == signature { return }
      offset = offset == 0 ? 512 : offset * 2
    }
    throw StoreError(
      .notHDF5, file: path,
      "not an HDF5 file (no HDF5 signature in its \(size) bytes; fpsim reads and writes HDF5 only)")
  }
}
