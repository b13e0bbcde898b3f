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

extension H5Group {
  /// Copies the group `name` of `source` (in another file) into this group as `destination`, like
  /// ``copy(_:from:to:)``, and attaches its datasets' dimension scales again.
  ///
  /// Why: H5Ocopy into another file carries the `DIMENSION_LIST` and `REFERENCE_LIST` attributes
  /// (variable-length lists of object references) with the source file's addresses, which point
  /// nowhere in the copy (h5netcdf and xarray fail on them). They are removed and rebuilt here from
  /// the source's scale names; each scale must be a dataset of the same group, named as its `NAME`.
  public func copyKeepingScales(_ name: String, from source: H5Group, to destination: String) throws {
    try copy(name, from: source, to: destination)
    let from = try source.group(name), into = try group(destination)
    let datasets = try from.children().filter { $0.kind == .dataset }.map(\.name)
    for d in datasets {
      let copied = try into.dataset(d)
      for stale in ["DIMENSION_LIST", "REFERENCE_LIST"] where try copied.attribute(stale) != nil {
        try copied.deleteAttribute(stale)
      }
    }
    for d in datasets {
      for (axis, scales) in try from.dataset(d).dimensionScaleNames().enumerated() {
        for scale in scales {
          guard datasets.contains(scale) else {
            throw error(.invalidArgument, "cannot copy \(from.path): the scale '\(scale)' of \(d) is not in the group", object: into.path)
          }
          try into.dataset(d).attach(scale: try into.dataset(scale), toDimension: axis)
        }
      }
    }
  }
}
