#!/usr/bin/env bash
# The bf16 GEMM mode's two kernels (VDPBF16PS and FMA) against fpsim's float32 kernel on gpt-tiny's
# products, one thread (bf16_kernels.c): times, packing apart, and the bits of the two bf16 kernels.
# Usage: experiments/bench/bf16_kernels.sh (needs clang, which the Swift toolchain brings). Exit status 2
# on a CPU without AVX512-BF16, 1 if the two kernels' bits differ.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
clang -O2 -I"$root/Sources/CSGEMM/include" -I"$root/Sources/CBF16GEMM/include" -o "$out/bf16_kernels" \
  "$here/bf16_kernels.c" "$root/Sources/CSGEMM/sgemm_kernel.c" "$root/Sources/CBF16GEMM/bf16_gemm.c"
"$out/bf16_kernels"
