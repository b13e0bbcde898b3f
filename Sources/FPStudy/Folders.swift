import Foundation

/// Folders that output files need: created on demand, with a one-line error in place of Foundation's
/// (which names its error domain and codes).
public enum Folders {
  /// Creates the folder that will hold `file` (and its parents) unless it exists.
  public static func createParent(of file: String) throws {
    try create(URL(fileURLWithPath: file).deletingLastPathComponent().path, for: file)
  }

  public static func create(_ folder: String, for file: String) throws {
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) {
      guard isFolder.boolValue else { throw FolderError("cannot write \(file): \(folder) is a file, not a folder") }
      return
    }
    do {
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    } catch {
      let reason = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError).map { String(cString: strerror(Int32($0.code))) }
      throw FolderError("cannot create the folder \(folder) for \(file)\(reason.map { ": " + $0.lowercased() } ?? ""); choose another path")
    }
  }
}

public struct FolderError: Error, CustomStringConvertible {
  public let description: String
  init(_ text: String) { description = text }
}
