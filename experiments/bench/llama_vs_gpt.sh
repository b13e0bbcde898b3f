#!/usr/bin/env bash
# llama-tiny beside gpt-tiny: `fpsim bench train` of each, interleaved (gpt, llama; repeated) in one
# invocation so that the noise of a shared machine hits both alike, with the same recipe and threads.
#
# Usage: experiments/bench/llama_vs_gpt.sh [--threads T] [--repeats R] [--steps N] [--recipe R]
#                                          [--fpsim BINARY]
#
# For a recipe other than fp32 each bench run also times fp32 of the same model in the same process
# (bench train's same-run baseline), so the recipe's cost ratio is reported per model too. Prints, per
# model, the median over the repeats of each run's median step time (wall) and mean CPU time per step,
# then the per-parameter ratio (llama ms / llama parameters) / (gpt ms / gpt parameters), from wall
# and from CPU time.
set -euo pipefail
cd "$(dirname "$0")/../.."

threads=1 repeats=3 steps=20 recipe=fp32 fpsim=""
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --recipe) recipe=$2; shift 2 ;;
    --fpsim) fpsim=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "llama_vs_gpt.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$fpsim" ]; then
  swift build -c release >&2
  fpsim=.build/release/fpsim
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq 1 "$repeats"); do
  for model in gpt-tiny llama-tiny; do
    "$fpsim" bench train --model "$model" --recipe "$recipe" --steps "$steps" --threads "$threads" --json >> "$out"
  done
done

python3 - "$out" <<'EOF'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
params = {"gpt-tiny": 819456, "llama-tiny": 872576}
med = {}
for model in params:
    rs = [r for r in runs if r["model"] == model]
    ms = statistics.median(r["ms_per_step"] for r in rs)
    cpu = statistics.median(r["cpu_ms_per_step"] for r in rs)
    med[model] = (ms, cpu)
    each = ", ".join("%.1f" % r["ms_per_step"] for r in rs)
    line = (f"{model:10s} {rs[0]['recipe']}: {ms:.1f} ms/step (runs: {each}), "
            f"{cpu:.1f} ms CPU/step, {params[model]} parameters, {1e6 * ms / params[model]:.1f} ns/parameter/step")
    if rs[0].get("baseline"):
        line += f"; {rs[0]['recipe']} / fp32 same-run ratios: {', '.join(str(r['baseline']['ratio']) for r in rs)}"
    print(line)
scale = params["llama-tiny"] / params["gpt-tiny"]
print(f"per-parameter ratio llama / gpt: wall {med['llama-tiny'][0] / med['gpt-tiny'][0] / scale:.3f}, "
      f"CPU {med['llama-tiny'][1] / med['gpt-tiny'][1] / scale:.3f} (threads {runs[0]['threads']}, BLAS {runs[0]['blas_kernel']})")
EOF
