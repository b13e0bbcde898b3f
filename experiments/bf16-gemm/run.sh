#!/usr/bin/env bash
# What the `--gemm bf16` mode does to a study's numbers (README "The bf16 GEMM mode"), in one command.
#
#   bash experiments/bf16-gemm/run.sh [all]     the two grids, their exports, effect.md, verify
#   bash experiments/bf16-gemm/run.sh compare   effect.md's table from the committed results only
#   bash experiments/bf16-gemm/run.sh verify    reruns one committed FP4-study cell on sgemm (mxfp4, seed 0)
#                                               and checks it bit for bit: the sgemm side of the comparison
#                                               is what this build computes
#   bash experiments/bf16-gemm/run.sh verify-mode  reruns this study's mxfp4 seed 0 in the mode and checks it
#                                               bit for bit against results/fp4.h5, on any CPU with
#                                               AVX512-BF16 (all 51 of its GEMMs run on fpsim's bfloat16
#                                               kernel, none on OpenBLAS, whose kernel varies by CPU)
#
# Environment: FPSIM (default this checkout's .build/release/fpsim), JOBS (default the cores), WORK (full
# grid files; default experiments/bf16-gemm/work, not committed). Every step resumes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
fpsim="${FPSIM:-$repo/.build/release/fpsim}"
jobs="${JOBS:-$(nproc)}"
work="${WORK:-$here/work}"
[ -x "$fpsim" ] || { echo "run.sh: error: no fpsim at $fpsim: build it (swift build -c release) or set FPSIM" >&2; exit 2; }

compare() { python3 "$here/compare.py" "$here/results"; }

grid() {
  echo "== grid $1 ($here/$1.toml)"
  "$fpsim" grid "$here/$1.toml" --out "$work/$1.h5" --jobs "$jobs" > "$work/$1.summary.txt"
  [ -f "$here/results/$1.h5" ] || "$fpsim" grid export "$work/$1.h5" --out "$here/results/$1.h5"
}

# Reruns mxfp4 seed 0 of fp4.toml, the spec edited further by the sed expressions in $1 (an array name),
# and checks it against the committed file $2 with verify_cell.py's options $3.
rerun_cell() {
  local -n edits=$1
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  sed -e 's/^recipes = .*/recipes = ["mxfp4"]/' -e 's/^seeds = .*/seeds = [0]/' -e 's/^name = .*/name = "cell"/' \
    "${edits[@]}" "$here/fp4.toml" > "$tmp/cell.toml"
  "$fpsim" grid "$tmp/cell.toml" --out "$tmp/cell.h5" --jobs 1 > /dev/null 2> "$tmp/grid.log" || { cat "$tmp/grid.log" >&2; exit 2; }
  python3 "$repo/experiments/verify_cell.py" $3 "$2" "$tmp/cell.h5" \
    recipe=mxfp4,lr=0.003,seed=0 loss eval_loss grad_norm final_eval_loss status diverged_step
}

# On sgemm (the spec without its gemm line), against the FP4 study's committed cell.
verify() {
  local sgemm=(-e '/^gemm = /d')
  rerun_cell sgemm "$repo/experiments/fp4-design-space/results/placement.h5" ""
}

# In the mode, against this study's committed cell, bit for bit whatever OpenBLAS's kernel.
verify_mode() {
  local none=()
  rerun_cell none "$here/results/fp4.h5" --bits
}

case "${1:-all}" in
  all)
    mkdir -p "$work" "$here/results"
    grid fp4
    grid fp8
    compare > "$here/effect.md"
    cat "$here/effect.md"
    verify
    ;;
  compare) compare ;;
  verify) verify ;;
  verify-mode) verify_mode ;;
  *) echo "run.sh: error: unknown step '$1': use all, compare, verify or verify-mode" >&2; exit 2 ;;
esac
