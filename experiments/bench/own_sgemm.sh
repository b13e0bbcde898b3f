#!/usr/bin/env bash
# fpsim's own GEMM kernel against single-threaded OpenBLAS on gpt-tiny's products (own_sgemm.c): bits
# and times, warm and cold. Usage: experiments/bench/own_sgemm.sh (needs clang and libopenblas-dev, which
# scripts/install-deps.sh installs). OpenBLAS picks its kernel from the CPU; where it picks one without
# AVX-512 on an AVX-512 CPU (the Xeons of these machines, `Prescott`), training runs with
# OPENBLAS_CORETYPE=SkylakeX, and so must this script to time what training runs. Setting that
# variable also checks the SkylakeX blocking on the Zen 4 machines (Cooperlake).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
clang -O2 -I"$root/Sources/CSGEMM/include" -o "$out/own_sgemm" "$here/own_sgemm.c" \
  "$root/Sources/CSGEMM/sgemm_kernel.c" -lopenblas
OPENBLAS_NUM_THREADS=1 "$out/own_sgemm"
