import CHDF5

/// Dimension scales (HDF5's H5DS convention): 1-D datasets that label an axis of other datasets.
///
/// This is how netCDF-4 stores coordinates, so a group whose datasets have their axes labelled by
/// scales opens in `xarray.open_dataset(path, group=..., engine="h5netcdf")` (and the netcdf4
/// engine) as a labelled data set: a scale named `lr` becomes the coordinate `lr`.
/// H5DS is part of HDF5's high-level library, which is why every call here holds the HDF5 lock.
extension H5Dataset {
  /// Marks this 1-D dataset as a dimension scale named `name` (by default the dataset's own name,
  /// which is what xarray uses as the dimension name).
  public func makeDimensionScale(name: String? = nil) throws {
    try HDF5Library.locked {
      try file.requireOpen(object: path)
      try check(H5DSset_scale(id, name ?? self.name), "cannot make a dimension scale")
    }
  }

  /// Whether this dataset is a dimension scale.
  public var isDimensionScale: Bool {
    get throws {
      try HDF5Library.locked {
        try file.requireOpen(object: path)
        return try check(H5DSis_scale(id), "cannot check for a dimension scale") > 0
      }
    }
  }

  /// Labels axis `dimension` of this dataset with `scale` (whose length should equal that axis).
  public func attach(scale: H5Dataset, toDimension dimension: Int) throws {
    try HDF5Library.locked {
      try file.requireOpen(object: path)
      let rank = try extentLocked().0.count
      guard (0..<rank).contains(dimension) else {
        throw error(.invalidArgument, "cannot attach scale \(scale.path) to axis \(dimension) of a rank-\(rank) dataset")
      }
      try check(H5DSattach_scale(id, scale.id, UInt32(dimension)), "cannot attach scale \(scale.path) to axis \(dimension)")
    }
  }

  /// Labels every axis in order: `scales[i]` labels axis i.
  public func attach(scales: [H5Dataset]) throws {
    for (axis, scale) in scales.enumerated() { try attach(scale: scale, toDimension: axis) }
  }

  /// Removes `scale` from axis `dimension` of this dataset, and this dataset from the scale's list of
  /// users. Detach before deleting a dataset that has scales: otherwise the scale keeps a reference to
  /// the deleted dataset, which readers that follow those references (h5netcdf) trip over.
  public func detach(scale: H5Dataset, fromDimension dimension: Int) throws {
    try HDF5Library.locked {
      try file.requireOpen(object: path)
      try check(H5DSdetach_scale(id, scale.id, UInt32(dimension)), "cannot detach scale \(scale.path) from axis \(dimension)")
    }
  }

  /// For each axis, the names of the scales attached to it (the scale's `NAME`, or its path when
  /// it has none).
  public func dimensionScaleNames() throws -> [[String]] {
    try HDF5Library.locked {
      try file.requireOpen(object: path)
      let rank = try extentLocked().0.count
      final class Names { var list: [String] = [] }
      var result: [[String]] = []
      for axis in 0..<rank {
        let count = H5DSget_num_scales(id, UInt32(axis))
        if count <= 0 { _ = HDF5Errors.takeStack(); result.append([]); continue }
        let names = Names()
        var index: Int32 = 0
        let status = withExtendedLifetime(names) {
          H5DSiterate_scales(id, UInt32(axis), &index, { _, _, scale, data in
            guard let data else { return 0 }
            let names = Unmanaged<Names>.fromOpaque(data).takeUnretainedValue()
            let size = H5DSget_scale_name(scale, nil, 0)
            if size > 0 {
              var buffer = [CChar](repeating: 0, count: Int(size) + 1)
              _ = H5DSget_scale_name(scale, &buffer, buffer.count)
              names.list.append(String(decoding: buffer.prefix(Int(size)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
            } else {
              _ = HDF5Errors.takeStack()
              let length = H5Iget_name(scale, nil, 0)
              var buffer = [CChar](repeating: 0, count: Int(max(length, 0)) + 1)
              _ = H5Iget_name(scale, &buffer, buffer.count)
              names.list.append(String(decoding: buffer.prefix(Int(max(length, 0))).map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            return 0
          }, Unmanaged.passUnretained(names).toOpaque())
        }
        if status < 0 { _ = HDF5Errors.takeStack() }
        result.append(names.list)
      }
      return result
    }
  }
}

extension H5Group {
  /// Creates a 1-D numeric dataset and marks it as a dimension scale named like the dataset
  /// (uncompressed: scales are small and every reader should see them).
  @discardableResult
  public func createDimensionScale<T: StoreElement>(_ name: String, values: [T]) throws -> H5Dataset {
    let scale = try createDataset(name, values: values, compression: .none)
    try scale.makeDimensionScale()
    return scale
  }

  /// Creates a 1-D string dataset and marks it as a dimension scale (e.g. format names).
  @discardableResult
  public func createDimensionScale(_ name: String, labels: [String]) throws -> H5Dataset {
    let scale = try createDataset(name, strings: labels)
    try scale.makeDimensionScale()
    return scale
  }
}
