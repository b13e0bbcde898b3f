import Foundation

/// A data file that cannot be used; each description is one line naming the file and the fix.
public enum DataError: Error, CustomStringConvertible, Equatable {
  case missing(String)
  case unreadable(String, String)
  case malformed(String, String)

  public var description: String {
    switch self {
    case .missing(let p):
      return "data file not found: \(p) (the data sets live in the repository's data/ folder; pass its location)"
    case .unreadable(let p, let why): return "cannot read \(p): \(why)"
    case .malformed(let p, let why): return "malformed data in \(p): \(why)"
    }
  }
}
