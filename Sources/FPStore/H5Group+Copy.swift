import CHDF5

extension H5Group {
  /// Copies the object `name` of `source` (a group or dataset, in this file or another) into this
  /// group as `destination`, with its data, attributes and everything below it (H5Ocopy): how a grid
  /// gathers the runs that its workers wrote into files of their own.
  public func copy(_ name: String, from source: H5Group, to destination: String) throws {
    let from = ObjectPath.join(source.path, name)
    let target = ObjectPath.join(path, destination)
    try HDF5Library.locked {
      try file.requireOpen(object: target)
      guard try source.containsLocked(from) else {
        throw StoreError(.missingObject, file: source.file.path, object: from, "cannot copy: no such object")
      }
      if try containsLocked(target) {
        throw error(.invalidArgument, "cannot copy: the destination exists", object: target)
      }
      try check(
        H5Ocopy(source.file.id, from, file.id, target, fpsim_H5P_DEFAULT(), fpsim_H5P_DEFAULT()),
        "cannot copy \(source.file.path):\(from)", object: target)
    }
  }
}
