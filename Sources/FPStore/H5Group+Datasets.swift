import CHDF5

extension H5Group {
  /// Creates an empty dataset.
  ///
  /// - Parameters:
  ///   - shape: the initial extent, first axis first; `[]` is a scalar.
  ///   - growable: the first axis is unlimited, so ``H5Dataset/append(_:)`` can extend it.
  ///   - chunk: the chunk shape; nil picks about 1 MiB per chunk along the first axis.
  ///   - compression: the filter pipeline (deflate + shuffle by default). A dataset is stored
  ///     contiguously (unchunked) only when it is fixed-size, uncompressed and given no chunk.
  @discardableResult
  public func createDataset(
    _ name: String, type: ElementType, shape: [Int], growable: Bool = false, chunk: [Int]? = nil,
    compression: Compression = .default
  ) throws -> H5Dataset {
    try HDF5Library.locked {
      try H5Dataset.create(
        in: self, name: name, type: type.fileType, shape: shape, growable: growable, chunk: chunk,
        compression: compression, elementSize: type.size)
    }
  }

  /// Creates a dataset holding `values` with their Swift element type (`shape` defaults to `[count]`).
  /// Pass `type` to store in another type than `T` (e.g. `Float` values into a `.float16` dataset).
  @discardableResult
  public func createDataset<T: StoreElement>(
    _ name: String, values: [T], shape: [Int]? = nil, type: ElementType? = nil, growable: Bool = false,
    chunk: [Int]? = nil, compression: Compression = .default
  ) throws -> H5Dataset {
    let shape = shape ?? [values.count]
    return try HDF5Library.locked {
      guard shape.reduce(1, *) == values.count else {
        throw error(.invalidArgument, "cannot create dataset: \(values.count) values do not fill shape \(shape)",
                    object: ObjectPath.join(path, name))
      }
      let dataset = try createDataset(
        name, type: type ?? T.elementType, shape: shape, growable: growable, chunk: chunk, compression: compression)
      try dataset.write(values)
      return dataset
    }
  }

  /// Creates a 1-D dataset of variable-length UTF-8 strings (h5py reads `str` objects; xarray
  /// shows them as string labels when the dataset is a dimension scale). Uncompressed, contiguous.
  @discardableResult
  public func createDataset(_ name: String, strings: [String]) throws -> H5Dataset {
    let target = ObjectPath.join(path, name)
    return try HDF5Library.locked {
      try file.requireOpen(object: target)
      if try containsLocked(target) {
        throw error(.invalidArgument, "cannot create dataset: an object of that name exists", object: target)
      }
      let type = StringIO.variableUTF8Type()
      defer { H5Tclose(type) }
      var dims = [hsize_t(strings.count)]
      let space = H5Screate_simple(1, &dims, nil)
      try check(space, "cannot create dataspace", object: target)
      defer { H5Sclose(space) }
      let lcpl = H5Pcreate(fpsim_H5P_LINK_CREATE())
      defer { H5Pclose(lcpl) }
      _ = H5Pset_create_intermediate_group(lcpl, 1)
      let did = H5Dcreate2(file.id, target, type, space, lcpl, fpsim_H5P_DEFAULT(), fpsim_H5P_DEFAULT())
      try check(did, "cannot create dataset", object: target)
      let dataset = H5Dataset(file: file, id: did, path: target)
      if !strings.isEmpty {
        try StringIO.withCStrings(strings) { buffer in
          _ = try check(
            H5Dwrite(did, type, fpsim_H5S_ALL(), fpsim_H5S_ALL(), fpsim_H5P_DEFAULT(), buffer),
            "cannot write strings", object: target)
        }
      }
      return dataset
    }
  }
}
