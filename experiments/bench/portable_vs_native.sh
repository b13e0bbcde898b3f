#!/usr/bin/env bash
# The speed cost of a portable build (README "Portable builds"): the native and the portable binary run
# the same benchmarks in one session, interleaved (A B B A ...) so that a shared machine's noise hits both
# alike; prints each run and the medians. The second binary may be any other build (.build-haswell/...);
# it is labelled "portable".
#   swift build -c release && FPSIM_PORTABLE=1 swift build -c release --scratch-path .build-portable
#   bash experiments/bench/portable_vs_native.sh [NATIVE] [PORTABLE] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
native="${1:-.build/release/fpsim}" portable="${2:-.build-portable/release/fpsim}" rounds="${3:-5}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for r in $(seq "$rounds"); do
  order="native portable"; [ $((r % 2)) = 0 ] && order="portable native"
  for which in $order; do
    bin="$native"; [ "$which" = portable ] && bin="$portable"
    q="$("$bin" bench quantize --format e4m3fn --json)"
    t="$("$bin" bench train --model gpt-tiny --steps 10 --json)"
    python3 -c "
import json, sys
q, t = json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(sys.argv[1], q['elements_per_second'] / 1e9, q['copy_elements_per_second'] / 1e9, t['ms_per_step'], t['cpu_ms_per_step'], t['blas_kernel'].replace(' ', '_'))
" "$which" "$q" "$t" | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
med = {w: [st.median(float(r[i]) for r in rows if r[0] == w) for i in (1, 2, 3, 4)] for w in ("native", "portable")}
for w, (q, c, ms, cpu) in med.items():
    print(f"{w:9} quantize e4m3fn {q:.2f} G/s (copy {c:.2f} G/s), gpt-tiny train {ms:.1f} ms/step wall, {cpu:.1f} ms/step CPU")
n, p = med["native"], med["portable"]
print(f"portable/native: quantize {p[0] / n[0]:.2f}x the speed, train step {p[2] / n[2]:.2f}x the wall time, {p[3] / n[3]:.2f}x the CPU time")
PY
