#!/usr/bin/env bash
# The "To FP8 and Back Again" study at CPU scale, in one command (README.md beside this script).
#
#   bash experiments/fp8-and-back/run.sh [all]     the three grids, exported results, report, summary
#   bash experiments/fp8-and-back/run.sh summary   the README's tables, from the committed results only
#   bash experiments/fp8-and-back/run.sh figures   the README's figures (figures/*.png), likewise
#   bash experiments/fp8-and-back/run.sh verify    reruns one committed cell; exit 0 when bit for bit equal (or,
#                                                  with another BLAS kernel than the committed runs', within seed noise)
#
# Environment: FPSIM (the binary; default this checkout's .build/release/fpsim), JOBS (workers; default
# the cores), WORK (full grid files with checkpoints; default experiments/fp8-and-back/work, not committed),
# RESULTS (the exported grids that summary, figures and verify read; default experiments/fp8-and-back/results).
# Every step resumes: rerunning after a kill continues where it stopped, and finished grids are only read.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
fpsim="${FPSIM:-$repo/.build/release/fpsim}"
jobs="${JOBS:-$(nproc)}"
work="${WORK:-$here/work}"
results="${RESULTS:-$here/results}"
grids=(mantissa exponent rounding)
[ -x "$fpsim" ] || { echo "run.sh: error: no fpsim at $fpsim: build it (swift build -c release) or set FPSIM" >&2; exit 2; }

summary() { python3 "$here/summary.py" "$results"; }
figures() { python3 "$here/figures.py" "$results" "$here/figures"; }

all() {
  mkdir -p "$work" "$results"
  for g in "${grids[@]}"; do
    echo "== grid $g ($here/$g.toml)"
    "$fpsim" grid "$here/$g.toml" --out "$work/$g.h5" --jobs "$jobs" > "$work/$g.summary.txt"
    # The committed copy: /results and per-run series, no checkpoints (fpsim grid export).
    [ -f "$results/$g.h5" ] || "$fpsim" grid export "$work/$g.h5" --out "$results/$g.h5"
  done
  "$fpsim" report "$results/mantissa.h5" "$results/exponent.h5" "$results/rounding.h5" --out "$here/report.html"
  summary > "$here/summary.md"
  figures
  echo "report: $here/report.html; tables: $here/summary.md; figures: $here/figures/"
}

# One cell of mantissa.toml (e8m3, lr 0.03, seed 0: 250 steps, about a minute on one core), rerun from
# its spec with everything else unchanged; its training loss, validation loss, gradient norm, status and
# sharpness series must equal the committed ones bit for bit.
verify() {
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  sed -e 's/^formats = .*/formats = ["e8m3"]/' -e 's/^lrs = .*/lrs = [3e-2]/' -e 's/^seeds = .*/seeds = [0]/' \
    "$here/mantissa.toml" > "$tmp/cell.toml"
  # Progress lines go to a log, shown only when the rerun itself fails.
  "$fpsim" grid "$tmp/cell.toml" --out "$tmp/cell.h5" --jobs 1 > /dev/null 2> "$tmp/grid.log" || { cat "$tmp/grid.log" >&2; exit 2; }
  python3 "$repo/experiments/verify_cell.py" "$results/mantissa.h5" "$tmp/cell.h5" recipe=e8m3,lr=0.03,seed=0 \
    loss eval_loss grad_norm final_eval_loss status diverged_step sharpness_keskar_logits
}

main() {
  case "${1:-all}" in
    all) all ;;
    summary) summary ;;
    figures) figures ;;
    verify) verify ;;
    *) echo "run.sh: error: unknown step '$1': use all, summary, figures or verify" >&2; exit 2 ;;
  esac
}

# One line, so that bash has read all of it before it starts: editing this file while a study runs
# cannot change what the running copy does next.
main "$@"; exit $?
