// zlib for Swift: the data sets ship gzip-compressed, and Foundation on Linux exposes no zlib.
// `inflateInit2` is a macro (it passes the library version and the stream's size), which Swift does
// not import; it is wrapped here.
#ifndef FPSIM_CZLIB_SHIM_H
#define FPSIM_CZLIB_SHIM_H

#include <zlib.h>

// windowBits 15 + 32: accept a zlib or a gzip header, detected automatically.
static inline int fpsim_inflateInitGzip(z_stream *stream) { return inflateInit2(stream, 15 + 32); }

#endif
