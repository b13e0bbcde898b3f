import CHDF5

/// The value of an attribute: the kinds fpsim writes, and a description of any other kind.
///
/// On disk: `int` is a scalar int64, `double` a scalar float64, `string` a scalar variable-length
/// UTF-8 string, and the array cases are 1-D arrays of the same types. Reading is more lenient:
/// any integer type reads as `int`/`ints`, any float type as `double`/`doubles`, fixed-length
/// strings as `string`/`strings`.
public enum AttributeValue: Sendable, Equatable, CustomStringConvertible {
  case int(Int)
  case double(Double)
  case string(String)
  case ints([Int])
  case doubles([Double])
  case strings([String])
  /// An attribute of another type (compound, enum, reference, ...), described (`enum int8 {FALSE, TRUE}`).
  case other(String)

  public var intValue: Int? {
    if case .int(let v) = self { return v }
    return nil
  }

  /// The value as a Double (integers convert).
  public var doubleValue: Double? {
    switch self {
    case .double(let v): v
    case .int(let v): Double(v)
    default: nil
    }
  }

  public var stringValue: String? {
    if case .string(let v) = self { return v }
    return nil
  }

  public var intsValue: [Int]? {
    switch self {
    case .ints(let v): v
    case .int(let v): [v]
    default: nil
    }
  }

  public var doublesValue: [Double]? {
    switch self {
    case .doubles(let v): v
    case .double(let v): [v]
    case .ints(let v): v.map(Double.init)
    case .int(let v): [Double(v)]
    default: nil
    }
  }

  public var stringsValue: [String]? {
    switch self {
    case .strings(let v): v
    case .string(let v): [v]
    default: nil
    }
  }

  public var description: String {
    switch self {
    case .int(let v): "\(v)"
    case .double(let v): "\(v)"
    case .string(let v): "\"\(v)\""
    case .ints(let v): "\(v)"
    case .doubles(let v): "\(v)"
    case .strings(let v): "\(v)"
    case .other(let v): "<\(v)>"
    }
  }
}

extension H5Object {
  /// Sets (creating or replacing) an attribute.
  public func setAttribute(_ name: String, _ value: AttributeValue) throws {
    try HDF5Library.locked {
      try file.requireOpen(object: path)
      if file.mode == .readOnly { throw error(.invalidArgument, "cannot set attribute \(name): the file is open read-only") }
      if name.isEmpty { throw error(.invalidArgument, "an attribute name cannot be empty") }
      let exists = H5Aexists(id, name)
      try check(exists, "cannot check attribute \(name)")
      if exists > 0 { try check(H5Adelete(id, name), "cannot replace attribute \(name)") }

      func create(_ fileType: hid_t, count: Int?, write: (hid_t) -> herr_t) throws {
        var dims = [hsize_t(count ?? 0)]
        let space = count == nil ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dims, nil)
        try check(space, "cannot create dataspace for attribute \(name)")
        defer { H5Sclose(space) }
        let attr = H5Acreate2(id, name, fileType, space, fpsim_H5P_DEFAULT(), fpsim_H5P_DEFAULT())
        try check(attr, "cannot create attribute \(name)")
        defer { H5Aclose(attr) }
        try check(write(attr), "cannot write attribute \(name)")
      }
      func ints(_ v: [Int], scalar: Bool) throws {
        let values = v.map { Int64($0) }
        try create(fpsim_H5T_STD_I64LE(), count: scalar ? nil : values.count) { attr in
          values.withUnsafeBytes { H5Awrite(attr, fpsim_H5T_NATIVE_INT64(), EmptyBuffer.base($0)) }
        }
      }
      func doubles(_ v: [Double], scalar: Bool) throws {
        try create(fpsim_H5T_IEEE_F64LE(), count: scalar ? nil : v.count) { attr in
          v.withUnsafeBytes { H5Awrite(attr, fpsim_H5T_NATIVE_DOUBLE(), EmptyBuffer.base($0)) }
        }
      }
      func strings(_ v: [String], scalar: Bool) throws {
        let type = StringIO.variableUTF8Type()
        defer { H5Tclose(type) }
        try create(type, count: scalar ? nil : v.count) { attr in
          StringIO.withCStrings(v) { H5Awrite(attr, type, $0) }
        }
      }
      switch value {
      case .int(let v): try ints([v], scalar: true)
      case .double(let v): try doubles([v], scalar: true)
      case .string(let v): try strings([v], scalar: true)
      case .ints(let v): try ints(v, scalar: false)
      case .doubles(let v): try doubles(v, scalar: false)
      case .strings(let v): try strings(v, scalar: false)
      case .other(let v): throw error(.invalidArgument, "cannot write attribute \(name) of unsupported kind \(v)")
      }
    }
  }

  public func setAttribute(_ name: String, _ value: Int) throws { try setAttribute(name, .int(value)) }
  public func setAttribute(_ name: String, _ value: Double) throws { try setAttribute(name, .double(value)) }
  public func setAttribute(_ name: String, _ value: String) throws { try setAttribute(name, .string(value)) }
  public func setAttribute(_ name: String, _ value: [Int]) throws { try setAttribute(name, .ints(value)) }
  public func setAttribute(_ name: String, _ value: [Double]) throws { try setAttribute(name, .doubles(value)) }
  public func setAttribute(_ name: String, _ value: [String]) throws { try setAttribute(name, .strings(value)) }

  /// Whether the object has an attribute of that name.
  public func hasAttribute(_ name: String) throws -> Bool {
    try HDF5Library.locked {
      try file.requireOpen(object: path)
      return try check(H5Aexists(id, name), "cannot check attribute \(name)") > 0
    }
  }

  /// The attribute's value, or nil when there is none of that name.
  public func attribute(_ name: String) throws -> AttributeValue? {
    try HDF5Library.locked {
      guard try hasAttribute(name) else { return nil }
      return try readAttributeLocked(name)
    }
  }

  /// The attribute's value; a missing attribute is an error of kind `.missingObject`.
  public func requireAttribute(_ name: String) throws -> AttributeValue {
    guard let value = try attribute(name) else {
      throw HDF5Library.locked { error(.missingObject, "no attribute \"\(name)\"") }
    }
    return value
  }

  /// The attribute names, in HDF5's name order.
  public func attributeNames() throws -> [String] {
    try HDF5Library.locked {
      try file.requireOpen(object: path)
      final class Names { var list: [String] = [] }
      let names = Names()
      var index: hsize_t = 0
      let status = withExtendedLifetime(names) {
        H5Aiterate2(id, H5_INDEX_NAME, H5_ITER_INC, &index, { _, name, _, data in
          guard let name, let data else { return 0 }
          Unmanaged<Names>.fromOpaque(data).takeUnretainedValue().list.append(String(cString: name))
          return 0
        }, Unmanaged.passUnretained(names).toOpaque())
      }
      try check(status, "cannot list attributes")
      return names.list
    }
  }

  /// All attributes, in name order.
  public func attributes() throws -> [(name: String, value: AttributeValue)] {
    try HDF5Library.locked {
      try attributeNames().map { ($0, try readAttributeLocked($0)) }
    }
  }

  public func deleteAttribute(_ name: String) throws {
    try HDF5Library.locked {
      try file.requireOpen(object: path)
      try check(H5Adelete(id, name), "cannot delete attribute \(name)")
    }
  }

  private func readAttributeLocked(_ name: String) throws -> AttributeValue {
    let attr = H5Aopen(id, name, fpsim_H5P_DEFAULT())
    try check(attr, "cannot open attribute \(name)")
    defer { H5Aclose(attr) }
    let type = H5Aget_type(attr)
    try check(type, "cannot read type of attribute \(name)")
    defer { H5Tclose(type) }
    let space = H5Aget_space(attr)
    try check(space, "cannot read dataspace of attribute \(name)")
    defer { H5Sclose(space) }
    let spaceClass = H5Sget_simple_extent_type(space)
    if spaceClass == H5S_NULL { return .other("empty \(TypeDescription.describe(type))") }
    let scalar = spaceClass == H5S_SCALAR
    let count = Int(H5Sget_simple_extent_npoints(space))
    switch H5Tget_class(type) {
    case H5T_INTEGER:
      var values = [Int64](repeating: 0, count: count)
      if count > 0 {
        try check(values.withUnsafeMutableBytes { H5Aread(attr, fpsim_H5T_NATIVE_INT64(), $0.baseAddress!) },
                  "cannot read attribute \(name)")
      }
      return scalar ? .int(Int(values[0])) : .ints(values.map { Int($0) })
    case H5T_FLOAT:
      var values = [Double](repeating: 0, count: count)
      if count > 0 {
        try check(values.withUnsafeMutableBytes { H5Aread(attr, fpsim_H5T_NATIVE_DOUBLE(), $0.baseAddress!) },
                  "cannot read attribute \(name)")
      }
      return scalar ? .double(values[0]) : .doubles(values)
    case H5T_STRING:
      let values = try StringIO.read(type: type, space: space, location: self) { memType, buffer in
        H5Aread(attr, memType, buffer)
      }
      return scalar ? .string(values.first ?? "") : .strings(values)
    default:
      let shape = scalar ? "" : "[\(count)] "
      return .other(shape + TypeDescription.describe(type))
    }
  }
}
