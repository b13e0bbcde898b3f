#ifndef FPSIM_CBLAS_SHIM_H
#define FPSIM_CBLAS_SHIM_H
// cblas.h lives in /usr/include/x86_64-linux-gnu/ (the multiarch directory, on clang's default search
// path), a symlink managed by update-alternatives to the selected BLAS's header.
#include <cblas.h>
#endif
