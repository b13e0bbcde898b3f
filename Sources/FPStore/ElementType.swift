import CHDF5

/// The element types fpsim writes, named as numpy names them (what h5py shows as `dtype`).
///
/// On disk every type is little-endian standard (`<f4`, `<i8`, ...), whatever the machine, so files
/// move between machines unchanged. `float16` is IEEE binary16; it is read as `Float` (HDF5 converts
/// exactly, every binary16 value being a float32 value) or written from `Float` or `Double`
/// (rounded to nearest, ties to even, as numpy and ml_dtypes round).
public enum ElementType: String, Sendable, Codable, CaseIterable {
  case float16, float32, float64, uint8, uint16, int32, int64

  /// Bytes per element on disk.
  public var size: Int {
    switch self {
    case .uint8: 1
    case .float16, .uint16: 2
    case .float32, .int32: 4
    case .float64, .int64: 8
    }
  }

  /// The HDF5 file type (little-endian). Predefined ids: never closed.
  var fileType: hid_t {
    switch self {
    case .float16: HalfType.id
    case .float32: fpsim_H5T_IEEE_F32LE()
    case .float64: fpsim_H5T_IEEE_F64LE()
    case .uint8: fpsim_H5T_STD_U8LE()
    case .uint16: fpsim_H5T_STD_U16LE()
    case .int32: fpsim_H5T_STD_I32LE()
    case .int64: fpsim_H5T_STD_I64LE()
    }
  }

  /// The HDF5 memory type of the matching Swift type (x86-64 and arm64 are little-endian, so
  /// binary16 in memory is the same type as on disk).
  var memoryType: hid_t {
    switch self {
    case .float16: HalfType.id
    case .float32: fpsim_H5T_NATIVE_FLOAT()
    case .float64: fpsim_H5T_NATIVE_DOUBLE()
    case .uint8: fpsim_H5T_NATIVE_UINT8()
    case .uint16: fpsim_H5T_NATIVE_UINT16()
    case .int32: fpsim_H5T_NATIVE_INT32()
    case .int64: fpsim_H5T_NATIVE_INT64()
    }
  }

  /// The fpsim element type of an HDF5 type, when it is one of ours (exactly: same class, size,
  /// sign and byte order as we would write; a float16 must be IEEE binary16).
  init?(hdf5 type: hid_t) {
    let size = H5Tget_size(type)
    let order = H5Tget_order(type)
    guard order == H5T_ORDER_LE || size == 1 else { return nil }
    switch H5Tget_class(type) {
    case H5T_FLOAT:
      switch size {
      case 2:
        var spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0
        guard H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) >= 0,
          (spos, epos, esize, mpos, msize) == (15, 10, 5, 0, 10), H5Tget_ebias(type) == 15
        else { return nil }
        self = .float16
      case 4: self = .float32
      case 8: self = .float64
      default: return nil
      }
    case H5T_INTEGER:
      let signed = H5Tget_sign(type) == H5T_SGN_2
      switch (size, signed) {
      case (1, false): self = .uint8
      case (2, false): self = .uint16
      case (4, true): self = .int32
      case (8, true): self = .int64
      default: return nil
      }
    default: return nil
    }
  }
}

/// The IEEE binary16 HDF5 type, built once (HDF5 has no predefined half type): float32's layout
/// with a 5-bit exponent (bias 15) and a 10-bit mantissa. h5py reads it as `float16`.
private enum HalfType {
  static let id: hid_t = {
    let t = H5Tcopy(fpsim_H5T_IEEE_F32LE())
    _ = H5Tset_fields(t, 15, 10, 5, 0, 10)
    _ = H5Tset_precision(t, 16)
    _ = H5Tset_size(t, 2)
    _ = H5Tset_ebias(t, 15)
    return t
  }()
}

/// A Swift type whose values can be read from and written to datasets and attributes directly.
///
/// Reading converts: any stored numeric type can be read as any `StoreElement` (HDF5 converts, e.g.
/// a float16 dataset read as `Float`, an int8 one as `Int32`); values out of range saturate.
public protocol StoreElement: Sendable {
  static var elementType: ElementType { get }
  init()
}

extension Float: StoreElement { public static var elementType: ElementType { .float32 } }
extension Double: StoreElement { public static var elementType: ElementType { .float64 } }
extension UInt8: StoreElement { public static var elementType: ElementType { .uint8 } }
extension UInt16: StoreElement { public static var elementType: ElementType { .uint16 } }
extension Int32: StoreElement { public static var elementType: ElementType { .int32 } }
extension Int64: StoreElement { public static var elementType: ElementType { .int64 } }
#if !(os(macOS) && arch(x86_64))
extension Float16: StoreElement { public static var elementType: ElementType { .float16 } }
#endif
