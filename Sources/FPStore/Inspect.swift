import Foundation

/// A description of an HDF5 file's tree for `fpsim inspect`: groups, datasets (shape, type,
/// chunking, compression, dimension scales) and attributes, plus the fpsim header when there is one.
public struct InspectReport: Sendable, Codable, Equatable {
  public var file: String
  /// The fpsim header, nil for a file written by another tool.
  public var header: FileHeader?
  /// Why this fpsim could not read the file as data (unknown schema, newer version), if so.
  /// `inspect` still shows the tree.
  public var headerProblem: String?
  /// Keys of units under `/.incomplete` (left by writers that stopped before publishing).
  public var incompleteUnits: [String]
  /// For a grid file with results: `/results@summary_json` as JSON (one object per format or
  /// recipe), nil otherwise.
  public var summary: JSONValue?
  /// The tree's depth limit (nil: the whole tree); groups at the limit list no children.
  public var depth: Int?
  public var root: InspectNode

  enum CodingKeys: String, CodingKey {
    case file, header
    case headerProblem = "header_problem"
    case incompleteUnits = "incomplete_units"
    case summary, depth
    case root
  }
}

/// One object of the tree.
public struct InspectNode: Sendable, Codable, Equatable {
  public var name: String
  public var path: String
  /// `group`, `dataset`, `datatype` or `other` (a dangling link).
  public var kind: String
  public var attributes: [InspectAttribute]
  // Datasets only:
  public var dtype: String?
  public var shape: [Int]?
  /// nil entries are unlimited axes (JSON `null`).
  public var maxshape: [Int?]?
  public var chunks: [Int]?
  /// `none`, `deflate:4`, `zstd:3-noshuffle`, or `filters` when the pipeline is not one fpsim writes.
  public var compression: String?
  public var filters: [FilterInfo]?
  public var storageBytes: Int?
  /// Per axis, the names of attached dimension scales.
  public var dimensions: [[String]]?
  public var isDimensionScale: Bool?
  // Groups only:
  /// nil for a group below the depth limit, whose children are counted in `childCount` instead.
  public var children: [InspectNode]?
  public var childCount: Int?

  enum CodingKeys: String, CodingKey {
    case name, path, kind, attributes, dtype, shape, maxshape, chunks, compression, filters
    case storageBytes = "storage_bytes"
    case dimensions
    case isDimensionScale = "is_dimension_scale"
    case children
    case childCount = "child_count"
  }
}

public struct InspectAttribute: Sendable, Codable, Equatable {
  public var name: String
  public var value: AttributeValue
}

/// Attribute values in JSON: numbers, strings, arrays; `other` as `{"other": description}`;
/// non-finite doubles as the strings `"nan"`, `"inf"`, `"-inf"` (JSON has no such numbers).
extension AttributeValue: Codable {
  public func encode(to encoder: Encoder) throws {
    var container = encoder.singleValueContainer()
    func json(_ d: Double) -> JSONNumberOrString { d.isFinite ? .number(d) : .string(d.isNaN ? "nan" : (d > 0 ? "inf" : "-inf")) }
    switch self {
    case .int(let v): try container.encode(v)
    case .double(let v): try container.encode(json(v))
    case .string(let v): try container.encode(v)
    case .ints(let v): try container.encode(v)
    case .doubles(let v): try container.encode(v.map(json))
    case .strings(let v): try container.encode(v)
    case .other(let v): try container.encode(["other": v])
    }
  }

  public init(from decoder: Decoder) throws {
    let container = try decoder.singleValueContainer()
    if let v = try? container.decode(Int.self) { self = .int(v) }
    else if let v = try? container.decode(Double.self) { self = .double(v) }
    else if let v = try? container.decode(String.self) { self = .string(v) }
    else if let v = try? container.decode([Int].self) { self = .ints(v) }
    else if let v = try? container.decode([Double].self) { self = .doubles(v) }
    else if let v = try? container.decode([String].self) { self = .strings(v) }
    else if let v = try? container.decode([String: String].self), let d = v["other"] { self = .other(d) }
    else { throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an attribute value") }
  }
}

private enum JSONNumberOrString: Encodable {
  case number(Double), string(String)
  func encode(to encoder: Encoder) throws {
    var c = encoder.singleValueContainer()
    switch self {
    case .number(let d): try c.encode(d)
    case .string(let s): try c.encode(s)
    }
  }
}

public enum Inspector {
  /// Reads the tree of the file at `path`. Errors (missing file, not HDF5, truncated, damaged
  /// object) are one-line ``StoreError``s naming the file.
  ///
  /// The file is opened read-only, so a reader that holds it open (h5py, xarray) does not stop
  /// inspection.
  ///
  /// - Parameters:
  ///   - showHidden: include `/.incomplete` (units of interrupted writers) in the tree.
  ///   - depth: levels of the tree below the root to list (0: the root's attributes only); groups
  ///     at the limit show how many children they have. nil: everything.
  public static func inspect(_ path: String, showHidden: Bool = false, depth: Int? = nil) throws -> InspectReport {
    let file = try H5File.open(path, mode: .readOnly)
    defer { try? file.close() }
    var header: FileHeader? = nil
    var problem: String? = nil
    do {
      header = try FileHeader.read(from: file)
      problem = header?.problem()
    } catch let error as StoreError where error.kind == .schema {
      problem = error.message
    }
    let root = try node(try file.root, showHidden: showHidden, levels: depth)
    return InspectReport(
      file: path, header: header, headerProblem: problem, incompleteUnits: try file.incompleteUnits(),
      summary: header?.schema == Schema.grid.name ? try gridSummary(file) : nil, depth: depth, root: root)
  }

  /// `/results@summary_json` parsed, when the grid has results and the attribute is JSON.
  private static func gridSummary(_ file: H5File) throws -> JSONValue? {
    guard try file.root.contains("results"),
      let text = try file.group("/results").attribute("summary_json")?.stringValue
    else { return nil }
    return JSONValue(parsing: text)
  }

  /// `levels`: how many levels of children to list below this group (nil: all).
  private static func node(_ group: H5Group, showHidden: Bool, levels: Int?) throws -> InspectNode {
    var children: [InspectNode] = []
    let listed = try group.children().filter {
      showHidden || ObjectPath.join(group.path, $0.name) != Store.incompleteGroup
    }
    if let levels, levels <= 0 {
      return InspectNode(
        name: group.name, path: group.path, kind: "group", attributes: try attributes(group), children: nil,
        childCount: listed.count)
    }
    for child in listed {
      let childPath = ObjectPath.join(group.path, child.name)
      switch child.kind {
      case .group:
        children.append(try node(try group.group(child.name), showHidden: showHidden, levels: levels.map { $0 - 1 }))
      case .dataset: children.append(try node(try group.dataset(child.name)))
      case .datatype, .other:
        children.append(InspectNode(name: child.name, path: childPath, kind: child.kind.rawValue, attributes: []))
      }
    }
    return InspectNode(
      name: group.name, path: group.path, kind: "group", attributes: try attributes(group), children: children)
  }

  private static func node(_ dataset: H5Dataset) throws -> InspectNode {
    let info = try dataset.info()
    let scales = try dataset.dimensionScaleNames()
    let compression = info.chunk == nil && info.filters.isEmpty ? "none" : (info.compression?.description ?? "filters")
    return InspectNode(
      name: dataset.name, path: dataset.path, kind: "dataset", attributes: try attributes(dataset),
      dtype: info.typeDescription, shape: info.shape, maxshape: info.maxShape, chunks: info.chunk,
      compression: compression, filters: info.filters, storageBytes: info.storageBytes,
      dimensions: scales.allSatisfy(\.isEmpty) ? nil : scales, isDimensionScale: try dataset.isDimensionScale)
  }

  private static func attributes(_ object: H5Object) throws -> [InspectAttribute] {
    try object.attributes().map { InspectAttribute(name: $0.name, value: $0.value) }
  }
}

extension InspectReport {
  /// Pretty-printed JSON with sorted keys (stable for scripts and tests).
  public func json() throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(self), as: UTF8.self)
  }

  /// A header line, then the tree indented two spaces a level: groups end in `/`, attributes start
  /// with `@`, datasets show `dtype [shape]`, chunking, compression and dimension names; a group
  /// at the depth limit shows `(N children)`.
  public func text() -> String {
    var lines: [String] = [headerLine()]
    if !incompleteUnits.isEmpty {
      lines.append("note: \(incompleteUnits.count) incomplete unit(s) under /.incomplete (left by an interrupted writer; ignored)")
    }
    render(root, depth: 0, into: &lines)
    return lines.joined(separator: "\n")
  }

  func headerLine() -> String {
    guard let header else {
      if let headerProblem { return "\(file): HDF5 file with an unreadable fpsim header (\(headerProblem))" }
      return "\(file): HDF5 file without an fpsim schema"
    }
    var line = "\(file): \(header.schema) schema_version \(header.schemaVersion), fpsim \(header.fpsimVersion), created \(header.created)"
    if let headerProblem { line += " (cannot be read as data: \(headerProblem))" }
    return line
  }

  private func render(_ node: InspectNode, depth: Int, into lines: inout [String]) {
    let indent = String(repeating: "  ", count: depth)
    switch node.kind {
    case "group":
      var line = indent + (node.path == "/" ? "/" : node.name + "/")
      if node.children == nil, let n = node.childCount, n > 0 { line += "  (\(n) \(n == 1 ? "child" : "children"), below --depth)" }
      lines.append(line)
    case "dataset":
      var line = "\(indent)\(node.name)  \(node.dtype ?? "?") \(Self.shapeText(node.shape ?? []))"
      if let maxshape = node.maxshape, maxshape.contains(where: { $0 == nil }) || maxshape != (node.shape ?? []).map(Optional.some) {
        line += " max \(Self.shapeText(maxshape))"
      }
      if let chunks = node.chunks { line += "  chunks \(Self.shapeText(chunks))" }
      if let compression = node.compression, compression != "none" {
        line += "  " + (compression == "filters" ? "filters " + (node.filters ?? []).map { "\($0.id)" }.joined(separator: ",") : compression)
      }
      if let dims = node.dimensions { line += "  dims (" + dims.map { $0.first ?? "-" }.joined(separator: ", ") + ")" }
      if node.isDimensionScale == true { line += "  (dimension scale)" }
      lines.append(line)
    default:
      lines.append("\(indent)\(node.name)  (\(node.kind))")
    }
    for attribute in node.attributes where !Self.isScaleBookkeeping(attribute, of: node) {
      lines.append("\(indent)  @\(attribute.name) = \(Self.short(attribute.value))")
    }
    for child in node.children ?? [] { render(child, depth: depth + 1, into: &lines) }
  }

  /// The attributes H5DS maintains (references between data and scales, the scale's class and
  /// name) say no more than `dims (...)` and `(dimension scale)` do: the text leaves them out, the
  /// JSON keeps them.
  static func isScaleBookkeeping(_ attribute: InspectAttribute, of node: InspectNode) -> Bool {
    switch attribute.name {
    case "DIMENSION_LIST": return node.dimensions != nil
    case "REFERENCE_LIST": return node.isDimensionScale == true
    case "CLASS": return node.isDimensionScale == true && attribute.value == .string("DIMENSION_SCALE")
    case "NAME": return node.isDimensionScale == true && attribute.value == .string(node.name)
    default: return false
    }
  }

  static func shapeText(_ shape: [Int?]) -> String {
    "[" + shape.map { $0.map(String.init) ?? "unlimited" }.joined(separator: ", ") + "]"
  }

  static func shapeText(_ shape: [Int]) -> String { shapeText(shape.map(Optional.some)) }

  /// Values cut to about 60 characters; arrays show their first few elements and their length.
  static func short(_ value: AttributeValue) -> String {
    func quote(_ s: String) -> String {
      let escaped = s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        .replacingOccurrences(of: "\n", with: "\\n")
      if escaped.count <= 60 { return "\"\(escaped)\"" }
      return "\"\(escaped.prefix(57))...\" (\(s.count) chars)"
    }
    func list(_ items: [String]) -> String {
      if items.count <= 6 { return "[" + items.joined(separator: ", ") + "]" }
      return "[" + items.prefix(5).joined(separator: ", ") + ", ...] (\(items.count) values)"
    }
    switch value {
    case .int(let v): return "\(v)"
    case .double(let v): return "\(v)"
    case .string(let v): return quote(v)
    case .ints(let v): return list(v.map { "\($0)" })
    case .doubles(let v): return list(v.map { "\($0)" })
    case .strings(let v): return list(v.map(quote))
    case .other(let v): return "<\(v)>"
    }
  }
}
