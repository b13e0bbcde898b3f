#!/usr/bin/env bash
# The instruction rates behind the bf16 GEMM mode's speed on this CPU, and whether AMX's TDPBF16PS sums
# as the mode does (bf16_instructions.c). Usage: experiments/bench/bf16_instructions.sh (needs clang,
# which the Swift toolchain brings). Exit status 2 on a CPU without AVX512-BF16.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
clang -O2 -o "$out/bf16_instructions" "$here/bf16_instructions.c"
"$out/bf16_instructions"
