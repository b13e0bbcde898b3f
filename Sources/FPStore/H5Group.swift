import CHDF5

/// A group: a directory of named links to groups and datasets.
///
/// Names passed to a group's methods are relative to it (`metrics/loss`) or absolute (`/runs`).
public final class H5Group: H5Object, @unchecked Sendable {
  /// What a link in a group points to.
  public enum ChildKind: String, Sendable, Codable {
    case group, dataset
    /// A committed (named) datatype.
    case datatype
    /// A soft or external link whose target does not resolve, or another kind of object.
    case other
  }

  public struct Child: Sendable, Equatable {
    public let name: String
    public let kind: ChildKind
  }

  static func open(in file: H5File, path: String) throws -> H5Group {
    let path = ObjectPath.normalize(path)
    return try HDF5Library.locked {
      try file.requireOpen(object: path)
      let root = H5Gopen2(file.id, "/", fpsim_H5P_DEFAULT())
      try h5check(root, "cannot open the root group", file: file.path, object: "/")
      let rootGroup = H5Group(file: file, id: root, path: "/")
      return path == "/" ? rootGroup : try rootGroup.group(path)
    }
  }

  /// Opens a sub-group. Missing → `.missingObject`; a dataset there → `.typeMismatch`.
  public func group(_ name: String) throws -> H5Group {
    let target = ObjectPath.join(path, name)
    return try HDF5Library.locked {
      try requireKind(target, .group)
      let gid = H5Gopen2(file.id, target, fpsim_H5P_DEFAULT())
      try check(gid, "cannot open group", object: target)
      return H5Group(file: file, id: gid, path: target)
    }
  }

  /// Creates a sub-group (and any missing groups on the way, for a path like `runs/r1`).
  /// An existing group of that name is an error; see ``requireGroup(_:)`` to open or create.
  @discardableResult
  public func createGroup(_ name: String) throws -> H5Group {
    let target = ObjectPath.join(path, name)
    return try HDF5Library.locked {
      try file.requireOpen(object: target)
      for component in ObjectPath.components(name) {
        try ObjectPath.validateName(component, file: file.path, in: path)
      }
      if try containsLocked(target) {
        throw error(.invalidArgument, "cannot create group: an object of that name exists", object: target)
      }
      let lcpl = H5Pcreate(fpsim_H5P_LINK_CREATE())
      defer { H5Pclose(lcpl) }
      _ = H5Pset_create_intermediate_group(lcpl, 1)
      let gid = H5Gcreate2(file.id, target, lcpl, fpsim_H5P_DEFAULT(), fpsim_H5P_DEFAULT())
      try check(gid, "cannot create group", object: target)
      return H5Group(file: file, id: gid, path: target)
    }
  }

  /// Opens the sub-group, creating it (and its parents) when missing.
  @discardableResult
  public func requireGroup(_ name: String) throws -> H5Group {
    let target = ObjectPath.join(path, name)
    return try HDF5Library.locked {
      try containsLocked(target) ? group(name) : createGroup(name)
    }
  }

  /// Opens a dataset. Missing → `.missingObject`; a group there → `.typeMismatch`.
  public func dataset(_ name: String) throws -> H5Dataset {
    let target = ObjectPath.join(path, name)
    return try HDF5Library.locked {
      try requireKind(target, .dataset)
      let did = H5Dopen2(file.id, target, fpsim_H5P_DEFAULT())
      try check(did, "cannot open dataset", object: target)
      return H5Dataset(file: file, id: did, path: target)
    }
  }

  /// Whether a link exists at the (relative or absolute) path; each component is checked in turn,
  /// so a missing parent is `false`, not an error.
  public func contains(_ name: String) throws -> Bool {
    let target = ObjectPath.join(path, name)
    return try HDF5Library.locked { try containsLocked(target) }
  }

  /// The links in this group, sorted by name (HDF5's name index).
  public func children() throws -> [Child] {
    try HDF5Library.locked {
      try file.requireOpen(object: path)
      var info = H5G_info_t()
      try check(H5Gget_info(id, &info), "cannot list group")
      var result: [Child] = []
      result.reserveCapacity(Int(info.nlinks))
      for index in 0..<info.nlinks {
        let size = H5Lget_name_by_idx(
          id, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, fpsim_H5P_DEFAULT())
        try check(size, "cannot read link name")
        var buffer = [CChar](repeating: 0, count: Int(size) + 1)
        try check(
          H5Lget_name_by_idx(
            id, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, buffer.count, fpsim_H5P_DEFAULT()),
          "cannot read link name")
        let name = String(decoding: buffer.prefix(Int(size)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        result.append(Child(name: name, kind: kindLocked(ObjectPath.join(path, name))))
      }
      return result
    }
  }

  /// Removes a link (and with it the object, when it was the object's only link).
  /// HDF5 does not shrink the file: the space is reused by later writes to the same file only.
  public func delete(_ name: String) throws {
    let target = ObjectPath.join(path, name)
    return try HDF5Library.locked {
      guard try containsLocked(target) else {
        throw error(.missingObject, "cannot delete: no such object", object: target)
      }
      try check(H5Ldelete(file.id, target, fpsim_H5P_DEFAULT()), "cannot delete", object: target)
    }
  }

  /// Renames a link within the file in one HDF5 operation (the object itself is not copied).
  /// The destination's parent group must exist and the destination must not.
  public func move(_ name: String, to destination: String) throws {
    let source = ObjectPath.join(path, name)
    let target = ObjectPath.join(path, destination)
    try HDF5Library.locked {
      guard try containsLocked(source) else {
        throw error(.missingObject, "cannot move: no such object", object: source)
      }
      if try containsLocked(target) {
        throw error(.invalidArgument, "cannot move \(source): the destination exists", object: target)
      }
      try check(
        H5Lmove(file.id, source, file.id, target, fpsim_H5P_DEFAULT(), fpsim_H5P_DEFAULT()),
        "cannot move \(source) to \(target)", object: source)
    }
  }

  // MARK: Lock-held helpers

  func containsLocked(_ target: String) throws -> Bool {
    try file.requireOpen(object: target)
    var prefix = ""
    for component in ObjectPath.components(target) {
      prefix += "/" + component
      let exists = H5Lexists(file.id, prefix, fpsim_H5P_DEFAULT())
      if exists < 0 { _ = HDF5Errors.takeStack(); return false }
      if exists == 0 { return false }
    }
    return true
  }

  /// The kind of object a link resolves to (`.other` for a dangling soft or external link).
  func kindLocked(_ target: String) -> ChildKind {
    let oid = H5Oopen(file.id, target, fpsim_H5P_DEFAULT())
    if oid < 0 { _ = HDF5Errors.takeStack(); return .other }
    defer { H5Oclose(oid) }
    switch H5Iget_type(oid) {
    case H5I_GROUP: return .group
    case H5I_DATASET: return .dataset
    case H5I_DATATYPE: return .datatype
    default: return .other
    }
  }

  func requireKind(_ target: String, _ kind: ChildKind) throws {
    guard try containsLocked(target) else {
      throw error(.missingObject, "no such \(kind.rawValue)", object: target)
    }
    let actual = kindLocked(target)
    if actual != kind {
      throw error(.typeMismatch, "is a \(actual.rawValue), not a \(kind.rawValue)", object: target)
    }
  }
}
