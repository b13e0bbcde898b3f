// The square root of 16 floats at once, for the AdamW update (FPEngine's Optimizer).
//
// Swift's SIMD16<Float>.squareRoot() takes each lane's square root in turn, and Float.squareRoot()
// on Linux is C's sqrtf, which keeps errno: a compare and a branch to a libm call beside every
// scalar vsqrtss, so a loop that calls it never vectorizes. __builtin_elementwise_sqrt is LLVM's
// vector sqrt with no errno: one vsqrtps (two with AVX2), correctly rounded in every lane as IEEE
// 754 requires, so each lane has the bits of Float.squareRoot(). `static inline`: compiled into
// FPEngine with its target's features, and inlined.
#ifndef FPSIM_VECTOR_SQRT_H
#define FPSIM_VECTOR_SQRT_H

typedef float fpsim_sqrt_float32x16 __attribute__((ext_vector_type(16)));

static inline fpsim_sqrt_float32x16 fpsim_sqrt16(fpsim_sqrt_float32x16 x) { return __builtin_elementwise_sqrt(x); }

#endif
