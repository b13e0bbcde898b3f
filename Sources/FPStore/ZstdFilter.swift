import CHDF5
import CZstd
import Foundation

/// The zstd HDF5 filter (id 32015), registered in-process so no plugin directory is needed.
///
/// Format, as in The HDF Group's `hdf5_plugins` H5Zzstd and PyPI's `hdf5plugin` (so each reads the
/// other's files): each chunk is one complete zstd frame (with its content size in the header);
/// `cd_values[0]`, when present, is the compression level (default 3). Decoding sizes its output
/// from the frame header (`ZSTD_getFrameContentSize`), falling back to streaming when a frame does
/// not record its size.
///
/// HDF5's filter contract: the function receives `*buf` (a `malloc`ed buffer of `*buf_size` bytes
/// holding `nbytes` of input), replaces it with a `malloc`ed buffer holding the output, frees the
/// input, and returns the output length; 0 means failure (HDF5 then reports a filter error).
enum ZstdFilter {
  static let id: H5Z_filter_t = H5Z_filter_t(FilterID.zstd)
  static let defaultLevel: Int32 = 3

  /// The filter's name must outlive the registration: allocated once, never freed.
  nonisolated(unsafe) private static let name: UnsafeMutablePointer<CChar> = strdup("zstd (fpsim; hdf5plugin-compatible)")!

  /// Registers the filter with HDF5. Called once, by ``HDF5Library`` setup, under the HDF5 lock.
  static func register() {
    var filterClass = H5Z_class2_t(
      version: fpsim_H5Z_CLASS_T_VERS(), id: id, encoder_present: 1, decoder_present: 1,
      name: UnsafePointer(name), can_apply: nil, set_local: nil, filter: filter)
    if H5Zregister(&filterClass) < 0 { _ = HDF5Errors.takeStack() }
  }

  private static let filter: H5Z_func_t = { flags, cdCount, cdValues, nbytes, bufSize, buf in
    guard let buf, let bufSize, let input = buf.pointee else { return 0 }
    let output: UnsafeMutableRawPointer
    let outputBytes: Int
    if flags & fpsim_H5Z_FLAG_REVERSE() != 0 {
      guard let (decoded, count) = ZstdFilter.decompress(input, count: nbytes) else { return 0 }
      (output, outputBytes) = (decoded, count)
      bufSize.pointee = count
    } else {
      let level = cdCount > 0 && cdValues != nil ? Int32(bitPattern: cdValues![0]) : ZstdFilter.defaultLevel
      let capacity = ZSTD_compressBound(nbytes)
      guard let encoded = malloc(max(capacity, 1)) else { return 0 }
      let count = ZSTD_compress(encoded, capacity, input, nbytes, level)
      if ZSTD_isError(count) != 0 {
        free(encoded)
        return 0
      }
      (output, outputBytes) = (encoded, count)
      bufSize.pointee = capacity
    }
    free(input)
    buf.pointee = output
    return outputBytes
  }

  /// Decodes one frame (or a sequence of frames) into a new `malloc`ed buffer.
  static func decompress(_ input: UnsafeRawPointer, count: Int) -> (UnsafeMutableRawPointer, Int)? {
    let declared = ZSTD_getFrameContentSize(input, count)
    if declared == fpsim_ZSTD_CONTENTSIZE_ERROR() { return nil }
    if declared != fpsim_ZSTD_CONTENTSIZE_UNKNOWN() {
      let size = Int(declared)
      guard let output = malloc(max(size, 1)) else { return nil }
      let written = ZSTD_decompress(output, size, input, count)
      if ZSTD_isError(written) != 0 || written != size {
        free(output)
        return nil
      }
      return (output, size)
    }
    return streamingDecompress(input, count: count)
  }

  /// Decodes a frame that does not record its size, growing the output as needed.
  private static func streamingDecompress(_ input: UnsafeRawPointer, count: Int) -> (UnsafeMutableRawPointer, Int)? {
    guard let stream = ZSTD_createDStream() else { return nil }
    defer { ZSTD_freeDStream(stream) }
    var capacity = max(count * 4, Int(ZSTD_DStreamOutSize()))
    guard var output = malloc(capacity) else { return nil }
    var inBuffer = ZSTD_inBuffer(src: input, size: count, pos: 0)
    var produced = 0
    while true {
      var outBuffer = ZSTD_outBuffer(dst: output + produced, size: capacity - produced, pos: 0)
      let status = ZSTD_decompressStream(stream, &outBuffer, &inBuffer)
      if ZSTD_isError(status) != 0 {
        free(output)
        return nil
      }
      produced += outBuffer.pos
      if status == 0 && inBuffer.pos == inBuffer.size { return (output, produced) }
      if inBuffer.pos == inBuffer.size && outBuffer.pos < outBuffer.size {
        free(output)  // input ended inside a frame: truncated
        return nil
      }
      if produced == capacity {
        capacity *= 2
        guard let grown = realloc(output, capacity) else {
          free(output)
          return nil
        }
        output = grown
      }
    }
  }
}
