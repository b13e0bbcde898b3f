// zstd for Swift: the frame-size sentinels are macros of unsigned long long casts, which Swift does
// not import; they are wrapped here.
#ifndef FPSIM_CZSTD_SHIM_H
#define FPSIM_CZSTD_SHIM_H

#include <zstd.h>

static inline unsigned long long fpsim_ZSTD_CONTENTSIZE_UNKNOWN(void) { return ZSTD_CONTENTSIZE_UNKNOWN; }
static inline unsigned long long fpsim_ZSTD_CONTENTSIZE_ERROR(void) { return ZSTD_CONTENTSIZE_ERROR; }

#endif
