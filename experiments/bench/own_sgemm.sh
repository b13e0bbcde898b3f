#!/usr/bin/env bash
# fpsim's own GEMM kernel against single-threaded OpenBLAS on gpt-tiny's products (own_sgemm.c): bits
# and times, warm and cold. Usage: experiments/bench/own_sgemm.sh (needs clang and libopenblas-dev, which
# scripts/install-deps.sh installs). OpenBLAS picks its kernel from the CPU as in a training run; set
# OPENBLAS_CORETYPE=SkylakeX to check that kernel's blocking instead.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
clang -O2 -I"$root/Sources/CSGEMM/include" -o "$out/own_sgemm" "$here/own_sgemm.c" \
  "$root/Sources/CSGEMM/sgemm_kernel.c" -lopenblas
OPENBLAS_NUM_THREADS=1 "$out/own_sgemm"
