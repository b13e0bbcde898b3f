#!/usr/bin/env bash
# The cost of binade histograms, net of the comparison's own bias, with a 95% interval.
#
# Usage: experiments/bench/histogram_cost.sh [--threads T] [--repeats R] [--steps N] [--recipe R]
#                                           [--fpsim BINARY]
#
# Each repeat runs `fpsim bench train --histogram-cost` (the recipe with histograms against the same
# recipe without, steps alternating in one process) and then `--against-itself` (two identical trainers
# without histograms: an A/A run, whose ratio is the bias of the comparison itself). The cost is the
# difference of the two ratios within a repeat; printed per repeat, then their mean with a 95% Student t
# interval over the repeats, from wall time and from CPU time. Defaults: mxfp4, 1 thread, 8 repeats of
# 40 timed steps (about 7 minutes at one thread, 3 at two).
set -euo pipefail
cd "$(dirname "$0")/../.."

threads=1 repeats=8 steps=40 recipe=mxfp4 fpsim=""
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --recipe) recipe=$2; shift 2 ;;
    --fpsim) fpsim=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "histogram_cost.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$repeats" -lt 2 ]; then
  echo "histogram_cost.sh: --repeats must be at least 2 for an interval (got $repeats)" >&2
  exit 2
fi
if [ -z "$fpsim" ]; then
  swift build -c release >&2
  fpsim=.build/release/fpsim
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq 1 "$repeats"); do
  for mode in --histogram-cost --against-itself; do
    "$fpsim" bench train --model gpt-tiny --recipe "$recipe" --steps "$steps" --threads "$threads" "$mode" --json >> "$out"
  done
  echo "repeat $r of $repeats done" >&2
done

python3 - "$out" <<'EOF'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
cost, aa = runs[0::2], runs[1::2]
# Student t 0.975 quantiles for 1..30 degrees of freedom.
T = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
     2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
n = len(cost)
print(f"{cost[0]['recipe']}, gpt-tiny, {cost[0]['threads']} thread(s), {cost[0]['steps']} timed steps, BLAS {cost[0]['blas_kernel']}")
for key, name in [("ratio", "wall"), ("cpu_ratio", "CPU")]:
    c = [r["baseline"][key] for r in cost]
    a = [r["baseline"][key] for r in aa]
    d = [x - y for x, y in zip(c, a)]
    m = statistics.mean(d)
    h = T[min(n - 1, 30) - 1] * statistics.stdev(d) / n ** 0.5
    print(f"{name}: with histograms / without {', '.join(f'{x:.3f}' for x in c)}; "
          f"A/A {', '.join(f'{x:.3f}' for x in a)}")
    print(f"{name}: cost {100 * m:.2f}% of a step, 95% interval [{100 * (m - h):.2f}, {100 * (m + h):.2f}]% "
          f"over {n} repeats (median difference {100 * statistics.median(d):.2f}%)")
EOF
