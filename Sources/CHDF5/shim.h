// HDF5 for Swift: the library's type ids, property-list classes and flags are macros that call
// H5open() and read a mutable global, which Swift imports neither as a macro nor (in Swift 6 mode)
// as a global. Each is wrapped here in a static inline function.
#ifndef FPSIM_CHDF5_SHIM_H
#define FPSIM_CHDF5_SHIM_H

#include <hdf5.h>
#include <hdf5_hl.h>

// Defaults and sentinels.
static inline hid_t fpsim_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t fpsim_H5S_ALL(void) { return H5S_ALL; }
static inline hid_t fpsim_H5E_DEFAULT(void) { return H5E_DEFAULT; }
static inline hsize_t fpsim_H5S_UNLIMITED(void) { return H5S_UNLIMITED; }
static inline size_t fpsim_H5T_VARIABLE(void) { return H5T_VARIABLE; }

// File access flags.
static inline unsigned fpsim_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned fpsim_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline unsigned fpsim_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned fpsim_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }

// Property-list classes.
static inline hid_t fpsim_H5P_FILE_CREATE(void) { return H5P_FILE_CREATE; }
static inline hid_t fpsim_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t fpsim_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t fpsim_H5P_DATASET_ACCESS(void) { return H5P_DATASET_ACCESS; }
static inline hid_t fpsim_H5P_DATASET_XFER(void) { return H5P_DATASET_XFER; }
static inline hid_t fpsim_H5P_GROUP_CREATE(void) { return H5P_GROUP_CREATE; }
static inline hid_t fpsim_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t fpsim_H5P_ATTRIBUTE_CREATE(void) { return H5P_ATTRIBUTE_CREATE; }

// Memory (native) types.
static inline hid_t fpsim_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t fpsim_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t fpsim_H5T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t fpsim_H5T_NATIVE_UINT16(void) { return H5T_NATIVE_UINT16; }
static inline hid_t fpsim_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t fpsim_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }

// File (little-endian, standard) types.
static inline hid_t fpsim_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t fpsim_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t fpsim_H5T_STD_U8LE(void) { return H5T_STD_U8LE; }
static inline hid_t fpsim_H5T_STD_U16LE(void) { return H5T_STD_U16LE; }
static inline hid_t fpsim_H5T_STD_I32LE(void) { return H5T_STD_I32LE; }
static inline hid_t fpsim_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t fpsim_H5T_C_S1(void) { return H5T_C_S1; }

// Filter ids and flags.
static inline H5Z_filter_t fpsim_H5Z_FILTER_DEFLATE(void) { return H5Z_FILTER_DEFLATE; }
static inline H5Z_filter_t fpsim_H5Z_FILTER_SHUFFLE(void) { return H5Z_FILTER_SHUFFLE; }
static inline unsigned fpsim_H5Z_FLAG_REVERSE(void) { return H5Z_FLAG_REVERSE; }
static inline unsigned fpsim_H5Z_FLAG_MANDATORY(void) { return H5Z_FLAG_MANDATORY; }
static inline unsigned fpsim_H5Z_FLAG_OPTIONAL(void) { return H5Z_FLAG_OPTIONAL; }
static inline int fpsim_H5Z_CLASS_T_VERS(void) { return H5Z_CLASS_T_VERS; }

#endif
