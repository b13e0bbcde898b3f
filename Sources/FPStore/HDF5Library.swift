import CHDF5
import Foundation

/// The version of fpsim written into every file's `fpsim_version` root attribute.
public let fpsimVersion = "0.1.0"

/// Process-wide HDF5 state: one lock that serializes every HDF5 call, and the one-time setup.
///
/// HDF5's core library is built thread-safe here, but its high-level library (H5DS, H5LT) is not,
/// and an HDF5 error stack is only meaningful to the thread that produced it until it is read.
/// So every entry point of FPStore takes this lock for the whole of its HDF5 work, including the
/// walk of the error stack that turns a failure into a ``StoreError``. The lock is recursive
/// because closing an object (a `deinit`) can happen while a caller already holds it.
enum HDF5Library {
  private static let lock = NSRecursiveLock()

  /// One-time setup, run under the lock before the first HDF5 call of the process:
  /// silence HDF5's automatic printing of error stacks (errors become Swift errors instead) and
  /// register the zstd filter so files using filter 32015 can be written and read.
  private static let setUp: Bool = {
    _ = H5open()
    _ = H5Eset_auto2(fpsim_H5E_DEFAULT(), nil, nil)
    ZstdFilter.register()
    return true
  }()

  /// Runs `body` with the HDF5 lock held.
  static func locked<R>(_ body: () throws -> R) rethrows -> R {
    lock.lock()
    defer { lock.unlock() }
    _ = setUp
    return try body()
  }
}
