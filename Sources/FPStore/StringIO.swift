import CHDF5
import Foundation

/// Reading and writing strings, shared by attributes and string datasets.
///
/// fpsim writes variable-length UTF-8 strings (what h5py writes for `str`, and what netCDF-4 calls
/// `string`). It reads those and fixed-length strings (ASCII or UTF-8, NUL- or space-padded) that
/// other tools write. Call everything here with the HDF5 lock held.
enum StringIO {
  /// A new variable-length UTF-8 string type (close it).
  static func variableUTF8Type() -> hid_t {
    let type = H5Tcopy(fpsim_H5T_C_S1())
    _ = H5Tset_size(type, fpsim_H5T_VARIABLE())
    _ = H5Tset_cset(type, H5T_CSET_UTF8)
    return type
  }

  /// Calls `body` with a C array of NUL-terminated copies of `strings` (valid during the call).
  static func withCStrings<R>(_ strings: [String], _ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
    let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    defer { pointers.forEach { free($0) } }
    return try pointers.withUnsafeBytes { try body(EmptyBuffer.base($0)) }
  }

  /// Reads every string of a dataspace with `read(memoryType, buffer)` (an H5Aread or H5Dread).
  static func read(
    type: hid_t, space: hid_t, location: H5Object, _ read: (hid_t, UnsafeMutableRawPointer) -> herr_t
  ) throws -> [String] {
    let count = Int(H5Sget_simple_extent_npoints(space))
    guard count > 0 else { return [] }
    if H5Tis_variable_str(type) > 0 {
      let memType = H5Tcopy(fpsim_H5T_C_S1())
      defer { H5Tclose(memType) }
      _ = H5Tset_size(memType, fpsim_H5T_VARIABLE())
      _ = H5Tset_cset(memType, H5Tget_cset(type))
      var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
      let status = pointers.withUnsafeMutableBytes { read(memType, $0.baseAddress!) }
      try location.check(status, "cannot read strings")
      defer { pointers.forEach { if let p = $0 { H5free_memory(p) } } }
      return pointers.map { $0.map { String(cString: $0) } ?? "" }
    }
    let size = H5Tget_size(type)
    let memType = H5Tcopy(type)
    defer { H5Tclose(memType) }
    var bytes = [UInt8](repeating: 0, count: size * count)
    let status = bytes.withUnsafeMutableBytes { read(memType, $0.baseAddress!) }
    try location.check(status, "cannot read strings")
    let spacePadded = H5Tget_strpad(type) == H5T_STR_SPACEPAD
    return (0..<count).map { i in
      var slice = bytes[(i * size)..<((i + 1) * size)]
      if let nul = slice.firstIndex(of: 0) { slice = slice[..<nul] }
      if spacePadded { while slice.last == 0x20 { slice = slice.dropLast() } }
      return String(decoding: slice, as: UTF8.self)
    }
  }
}

/// HDF5 refuses a null buffer even when there are no elements to transfer (an empty array
/// attribute), and an empty Swift array may have no storage: this stands in for it.
enum EmptyBuffer {
  nonisolated(unsafe) private static let placeholder = UnsafeRawPointer(
    UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 16))

  static func base(_ buffer: UnsafeRawBufferPointer) -> UnsafeRawPointer { buffer.baseAddress ?? placeholder }
}
