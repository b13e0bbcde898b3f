import CHDF5

/// Short, numpy-flavoured names for any HDF5 datatype, for `inspect` and error messages.
enum TypeDescription {
  static func describe(_ type: hid_t) -> String {
    let size = H5Tget_size(type)
    let bigEndian = H5Tget_order(type) == H5T_ORDER_BE
    let suffix = bigEndian && size > 1 ? " (big-endian)" : ""
    switch H5Tget_class(type) {
    case H5T_INTEGER:
      let signed = H5Tget_sign(type) == H5T_SGN_2
      return "\(signed ? "int" : "uint")\(size * 8)" + suffix
    case H5T_FLOAT:
      if let element = ElementType(hdf5: type) { return element.rawValue }
      if size == 2 || size == 4 || size == 8 {
        var spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0
        _ = H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize)
        let standard = (size == 2 && esize == 5) || (size == 4 && esize == 8) || (size == 8 && esize == 11)
        if standard { return "float\(size * 8)" + suffix }
        return "float\(size * 8) (e\(esize)m\(msize))" + suffix
      }
      return "float\(size * 8)" + suffix
    case H5T_STRING:
      let cset = H5Tget_cset(type) == H5T_CSET_UTF8 ? "utf-8" : "ascii"
      if H5Tis_variable_str(type) > 0 { return "string (variable, \(cset))" }
      return "string[\(size)] (\(cset))"
    case H5T_BITFIELD: return "bitfield\(size * 8)"
    case H5T_OPAQUE: return "opaque[\(size)]"
    case H5T_COMPOUND:
      let n = H5Tget_nmembers(type)
      var fields: [String] = []
      for i in 0..<max(n, 0) {
        let member = H5Tget_member_type(type, UInt32(i))
        defer { H5Tclose(member) }
        var name = "?"
        if let raw = H5Tget_member_name(type, UInt32(i)) {
          name = String(cString: raw)
          H5free_memory(raw)
        }
        fields.append("\(name): \(describe(member))")
      }
      return "compound {\(fields.joined(separator: ", "))}"
    case H5T_REFERENCE: return "reference"
    case H5T_ENUM:
      let base = H5Tget_super(type)
      defer { H5Tclose(base) }
      let n = H5Tget_nmembers(type)
      var names: [String] = []
      for i in 0..<max(n, 0) {
        if let raw = H5Tget_member_name(type, UInt32(i)) {
          names.append(String(cString: raw))
          H5free_memory(raw)
        }
      }
      return "enum \(describe(base)) {\(names.joined(separator: ", "))}"
    case H5T_VLEN:
      let base = H5Tget_super(type)
      defer { H5Tclose(base) }
      return "vlen of \(describe(base))"
    case H5T_ARRAY:
      let base = H5Tget_super(type)
      defer { H5Tclose(base) }
      let rank = H5Tget_array_ndims(type)
      var dims = [hsize_t](repeating: 0, count: Int(max(rank, 0)))
      _ = H5Tget_array_dims2(type, &dims)
      return "array\(dims.map { Int($0) }) of \(describe(base))"
    case H5T_TIME: return "time"
    default: return "unknown type"
    }
  }
}
