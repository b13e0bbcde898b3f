#!/usr/bin/env bash
# What a recipe costs over fp32, or what binade histograms cost on a recipe, net of the comparison's
# own bias, with a 95% interval. With --gemm bf16 the recipe runs in the `--gemm bf16` mode (the fp32
# baseline stays on sgemm), and a negative cost is a speed-up.
#
# Usage: experiments/bench/overhead.sh [--recipe R] [--histograms] [--model M] [--threads T]
#                                      [--repeats N] [--steps S] [--gemm sgemm|bf16] [--fpsim BINARY]
#
# Each repeat runs `fpsim bench train --recipe R` (R against fp32, steps alternating in one process),
# or with --histograms `--recipe R --histogram-cost` (R with binade histograms against R without), and
# then `--recipe R --against-itself` (two identical trainers: an A/A run, whose ratio is the bias of the
# comparison itself). The cost is the difference of the two ratios within a repeat; printed per repeat,
# then their mean with a 95% Student t interval over the repeats, from wall time and from CPU time.
# Defaults: mxfp4, gpt-tiny, 1 thread, 8 repeats of 40 timed steps (gpt-tiny mxfp4: about 5 minutes at
# one thread, 3 at two).
set -euo pipefail
cd "$(dirname "$0")/../.."

recipe=mxfp4 histograms="" model=gpt-tiny threads=1 repeats=8 steps=40 fpsim="" gemm=sgemm
while [ $# -gt 0 ]; do
  case "$1" in
    --recipe) recipe=$2; shift 2 ;;
    --histograms) histograms=--histogram-cost; shift ;;
    --model) model=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --gemm) gemm=$2; shift 2 ;;
    --fpsim) fpsim=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "overhead.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$recipe" = fp32 ] && [ -z "$histograms" ]; then
  echo "overhead.sh: fp32 against fp32 is the A/A run itself; name another recipe (e.g. --recipe mxfp4)" >&2
  exit 2
fi
if [ "$repeats" -lt 2 ]; then
  echo "overhead.sh: --repeats must be at least 2 for an interval (got $repeats)" >&2
  exit 2
fi
if [ -z "$fpsim" ]; then
  swift build -c release >&2
  fpsim=.build/release/fpsim
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
bench=("$fpsim" bench train --model "$model" --recipe "$recipe" --steps "$steps" --threads "$threads" --gemm "$gemm" --json)
for r in $(seq 1 "$repeats"); do
  "${bench[@]}" $histograms >> "$out"
  "${bench[@]}" --against-itself >> "$out"
  echo "repeat $r of $repeats done" >&2
done

label="cost over fp32:"
[ "$gemm" = bf16 ] && label="cost over fp32 (the recipe on bf16 GEMMs):"
[ -n "$histograms" ] && label="cost of histograms:"
python3 experiments/bench/paired_ratios.py "$out" "$label"
