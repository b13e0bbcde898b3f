// Counting the exponent fields of float32 bit patterns: the hot loop of fpsim's binade histograms
// (FPEngine's BinadeHistogram), which run at every training step for every rounded operand.
//
// Why C: the fast paths count a window of consecutive exponent values with byte counters, 64 values a
// step with AVX-512 or 32 with AVX2 (exponent_counts.c). Swift's SIMD types compiled parts of the AVX2
// path's work (mask selects, minima, widening sums) into per-lane scalar code; the best Swift version
// counted 4.5 G values/s on activation-like data where the C kernel counts 6-7.
#ifndef FPSIM_EXPONENT_COUNTS_H
#define FPSIM_EXPONENT_COUNTS_H

#include <stddef.h>
#include <stdint.h>

// Adds to t[e] (256 counters), for each e, how many of the n patterns have biased exponent field
// (bits 23...30) e. `path` asks for a loop: 0 the scalar tables, 1 the AVX2 window (count_window),
// 2 the AVX-512 one-hot window (count_onehot); a path the CPU lacks (checked at run time; this file is
// compiled without -target-cpu) falls back to the one below it. All give the same counts (tests compare
// each with the definition).
void fpsim_count_exponents(const uint32_t *bits, size_t n, uint32_t *t, int path);

// The path fpsim_count_exponents takes on this CPU when asked for `requested`.
int fpsim_exponent_count_path(int requested);

#endif
