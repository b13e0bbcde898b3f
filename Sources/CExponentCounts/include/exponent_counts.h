// Counting the exponent fields of float32 bit patterns: the hot loop of fpsim's binade histograms
// (FPEngine's BinadeHistogram), which run at every training step for every rounded operand.
//
// Why C: the fast path compares 32 exponents at a time against 12 consecutive exponent values with
// byte counters (exponent_counts.c). Swift's SIMD types compiled parts of the same work (mask selects,
// minima, widening sums) into per-lane scalar code; the best Swift version counted 4.5 G values/s on
// activation-like data where the C kernel counts 6-7.
#ifndef FPSIM_EXPONENT_COUNTS_H
#define FPSIM_EXPONENT_COUNTS_H

#include <stddef.h>
#include <stdint.h>

// Adds to t[e] (256 counters), for each e, how many of the n patterns have biased exponent field
// (bits 23...30) e. `vector` != 0 uses the AVX2 path when the CPU has AVX2 (checked at run time;
// this file is compiled without -target-cpu); 0 always takes the scalar tables. Both give the same
// counts (tests compare each with the definition).
void fpsim_count_exponents(const uint32_t *bits, size_t n, uint32_t *t, int vector);

#endif
