import CHDF5

/// How a chunked dataset's chunks are compressed: the HDF5 filter pipeline fpsim writes.
///
/// | case | filters, in pipeline order (HDF5 filter ids) | opens in |
/// |---|---|---|
/// | `none` | none | everything |
/// | `deflate(level, shuffle)` | shuffle (2, when `shuffle`), deflate (1, `cd_values = [level]`) | everything (h5py, h5dump, netCDF, MATLAB, HDFView) |
/// | `zstd(level, shuffle)` | shuffle (2, when `shuffle`), zstd (32015, `cd_values = [level]`) | h5py after `import hdf5plugin`; other tools with a zstd plugin on `HDF5_PLUGIN_PATH` |
///
/// Shuffle regroups the bytes of each element by significance (all first bytes, then all second
/// bytes, ...), which lets a byte-oriented compressor find the regularity in float exponents.
public enum Compression: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
  case none
  /// zlib, level 0...9.
  case deflate(level: Int = 4, shuffle: Bool = true)
  /// Zstandard, level 1...22, one zstd frame per chunk (hdf5plugin's format).
  case zstd(level: Int = 3, shuffle: Bool = true)

  /// deflate level 4 with shuffle: opens in every HDF5 tool, and level 4 is where zlib's ratio
  /// stops improving much for float data while speed keeps falling.
  public static let `default` = Compression.deflate(level: 4, shuffle: true)

  /// `none`, `deflate`, `deflate:6`, `zstd`, `zstd:9`; `-noshuffle` may follow (`zstd:3-noshuffle`).
  public init?(_ text: String) {
    var text = Substring(text.lowercased())
    var shuffle = true
    if text.hasSuffix("-noshuffle") {
      shuffle = false
      text = text.dropLast("-noshuffle".count)
    }
    let parts = text.split(separator: ":", maxSplits: 1)
    guard let kind = parts.first else { return nil }
    let level = parts.count == 2 ? Int(parts[1]) : nil
    if parts.count == 2 && level == nil { return nil }
    switch kind {
    case "none" where parts.count == 1: self = .none
    case "deflate", "gzip": self = .deflate(level: level ?? 4, shuffle: shuffle)
    case "zstd": self = .zstd(level: level ?? 3, shuffle: shuffle)
    default: return nil
    }
    if (try? validate()) == nil { return nil }
  }

  public var description: String {
    switch self {
    case .none: "none"
    case .deflate(let level, let shuffle): "deflate:\(level)" + (shuffle ? "" : "-noshuffle")
    case .zstd(let level, let shuffle): "zstd:\(level)" + (shuffle ? "" : "-noshuffle")
    }
  }

  /// The HDF5 filter ids of the pipeline, in order.
  public var filterIDs: [Int] {
    switch self {
    case .none: []
    case .deflate(_, let shuffle): (shuffle ? [FilterID.shuffle] : []) + [FilterID.deflate]
    case .zstd(_, let shuffle): (shuffle ? [FilterID.shuffle] : []) + [FilterID.zstd]
    }
  }

  func validate() throws {
    switch self {
    case .none: break
    case .deflate(let level, _) where !(0...9).contains(level):
      throw StoreError(.invalidArgument, file: "", "deflate level \(level) is outside 0...9")
    case .zstd(let level, _) where !(1...22).contains(level):
      throw StoreError(.invalidArgument, file: "", "zstd level \(level) is outside 1...22")
    default: break
    }
  }

  /// Adds the pipeline to a dataset creation property list. Call with the lock held.
  func apply(to dcpl: hid_t, file: String, object: String) throws {
    switch self {
    case .none: return
    case .deflate(let level, let shuffle):
      if shuffle { try h5check(H5Pset_shuffle(dcpl), "cannot add shuffle", file: file, object: object) }
      try h5check(H5Pset_deflate(dcpl, UInt32(level)), "cannot add deflate", file: file, object: object)
    case .zstd(let level, let shuffle):
      if shuffle { try h5check(H5Pset_shuffle(dcpl), "cannot add shuffle", file: file, object: object) }
      var values: [UInt32] = [UInt32(level)]
      try h5check(
        H5Pset_filter(dcpl, H5Z_filter_t(FilterID.zstd), fpsim_H5Z_FLAG_MANDATORY(), 1, &values),
        "cannot add zstd", file: file, object: object)
    }
  }

  /// The compression a filter pipeline amounts to, or nil when it is not one fpsim writes
  /// (e.g. blosc, szip, or fletcher32 added by another tool).
  init?(filters: [FilterInfo]) {
    let ids = filters.map(\.id)
    let shuffle = ids.first == FilterID.shuffle
    let rest = shuffle ? Array(filters.dropFirst()) : filters
    switch (rest.count, rest.first?.id) {
    case (0, _) where !shuffle: self = .none
    case (1, FilterID.deflate?): self = .deflate(level: Int(rest[0].parameters.first ?? 4), shuffle: shuffle)
    case (1, FilterID.zstd?): self = .zstd(level: Int(rest[0].parameters.first ?? 3), shuffle: shuffle)
    default: return nil
    }
  }
}

/// HDF5 filter ids (registered with The HDF Group).
public enum FilterID {
  public static let deflate = 1
  public static let shuffle = 2
  public static let fletcher32 = 3
  public static let szip = 4
  public static let lzf = 32000
  public static let blosc = 32001
  public static let zstd = 32015
}

/// One filter of a dataset's pipeline as stored in the file.
public struct FilterInfo: Sendable, Equatable, Codable {
  /// The HDF5 filter id (see ``FilterID``).
  public let id: Int
  /// The name stored with the filter (may be empty).
  public let name: String
  /// The filter's client data values (`cd_values`): deflate and zstd store the level.
  public let parameters: [UInt32]
}
