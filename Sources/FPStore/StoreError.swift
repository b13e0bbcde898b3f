import CHDF5
import Foundation

/// A failure of the store, described in one line that names the file, the object and the problem.
///
/// HDF5 failures carry HDF5's own explanation (read from its error stack), because "unable to open
/// file" alone does not tell a user that the file is truncated or locked by another process.
public struct StoreError: Error, CustomStringConvertible, Sendable, Equatable {
  public enum Kind: String, Sendable, Equatable {
    /// The path does not exist.
    case noSuchFile
    /// The file exists but is not HDF5 (no HDF5 signature).
    case notHDF5
    /// HDF5 refused an operation; the message is HDF5's.
    case hdf5
    /// A group, dataset or attribute that was asked for does not exist.
    case missingObject
    /// An object exists but is of another kind, type or shape than the caller asked for.
    case typeMismatch
    /// The file is HDF5 but not an fpsim file this version can read (schema, version).
    case schema
    /// The caller passed something inconsistent (shape and count disagree, bad name, ...).
    case invalidArgument
    /// An operating-system call failed (rename, fsync, ...).
    case io
  }

  public let kind: Kind
  /// The file's path as the caller gave it.
  public let file: String
  /// The object's path inside the file (`/runs/r1/loss`), or nil for the file itself.
  public let object: String?
  /// What went wrong, one line.
  public let message: String

  public init(_ kind: Kind, file: String, object: String? = nil, _ message: String) {
    self.kind = kind
    self.file = file
    self.object = object
    self.message = StoreError.oneLine(message)
  }

  public var description: String {
    if let object, object != "/" { return "\(file): \(object): \(message)" }
    return "\(file): \(message)"
  }

  static func oneLine(_ text: String) -> String {
    text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
      .filter { !$0.isEmpty }.joined(separator: " ")
  }
}

/// Reading HDF5's error stack. Call only with the HDF5 lock held, right after the failing call.
enum HDF5Errors {
  /// The descriptions on the current error stack, outermost (the API call) first, then cleared.
  static func takeStack() -> [String] {
    final class Box { var lines: [String] = [] }
    let box = Box()
    withExtendedLifetime(box) {
      let raw = Unmanaged.passUnretained(box).toOpaque()
      _ = H5Ewalk2(fpsim_H5E_DEFAULT(), H5E_WALK_DOWNWARD, { _, err, data in
        guard let err, let data else { return 0 }
        let box = Unmanaged<Box>.fromOpaque(data).takeUnretainedValue()
        if let desc = err.pointee.desc {
          let text = String(cString: desc)
          if !text.isEmpty { box.lines.append(text) }
        }
        return 0
      }, raw)
    }
    _ = H5Eclear2(fpsim_H5E_DEFAULT())
    return box.lines
  }

  /// HDF5's explanation of the last failure in one line: the outermost description (what the API
  /// call could not do) joined to the innermost (why), e.g.
  /// `unable to open file: truncated file: eof = 512, sblock->base_addr = 0, stored_eof = 2048`.
  static func message(default fallback: String) -> String {
    let lines = takeStack()
    guard let first = lines.first else { return fallback }
    // A failed system call: HDF5's line for it is a dump (time, file name, descriptor, buffer
    // address ...) around "error message = '<strerror text>'": keep what failed and that text
    // ("unable to lock file: resource temporarily unavailable"; callers look for such phrases).
    for line in lines.reversed() {
      if let r = line.range(of: "error message = '"), let end = line[r.upperBound...].firstIndex(of: "'") {
        let dump = [": time =", ", name =", ", errno =", ", error message ="].compactMap { line.range(of: $0)?.lowerBound }.min()
        let what = dump.map { String(line[..<$0]) } ?? ""
        let why = line[r.upperBound..<end].lowercased()
        return [first == what ? nil : first, what.isEmpty ? nil : what, why].compactMap { $0 }.joined(separator: ": ")
      }
    }
    guard let last = lines.last, last != first else { return first }
    return "\(first): \(last)"
  }
}

/// Throws a ``StoreError`` of kind `.hdf5` when an HDF5 status is negative.
@discardableResult
func h5check<T: BinaryInteger>(
  _ status: T, _ what: @autoclosure () -> String, file: String, object: String? = nil
) throws -> T {
  if status < 0 {
    let detail = HDF5Errors.message(default: "HDF5 call failed")
    throw StoreError(.hdf5, file: file, object: object, "\(what()): \(detail)")
  }
  return status
}
