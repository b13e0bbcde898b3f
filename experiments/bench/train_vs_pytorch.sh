#!/usr/bin/env bash
# gpt-tiny training speed: fpsim fp32, PyTorch CPU float32 (the same model, pytorch_gpt_tiny.py) and
# fpsim uniform:e4m3fn, interleaved in one invocation (fp32, PyTorch, e4m3fn; repeated) so that the
# noise of a shared machine hits all three alike, each with the same thread count.
#
# Usage: experiments/bench/train_vs_pytorch.sh [--threads T] [--repeats R] [--steps N] [--warmup W]
#                                              [--scratch-path DIR] [--fpsim BINARY] [--attention sdpa|manual]
#
# Builds fpsim in release (an up-to-date build is a no-op) unless --fpsim names a binary. fpsim picks
# its OpenBLAS kernel itself (BLASKernel.swift); the kernel is in the table. Targets: fpsim fp32 at most
# 0.6x PyTorch's step at two threads and 0.8x at one; uniform:e4m3fn at most 1.05x fpsim fp32.
# Each row of the summary is the median over the repeats of each run's median step time (wall clock) and
# of its mean CPU time per step (all threads; with one thread, the wall time an idle machine would show:
# on a busy shared machine it is the steadier figure). The verdicts use wall time. The fp32 run also
# times its linear-layer GEMMs alone after each step (`--gemm-floor`): that time over PyTorch's step is
# the lowest fp32 / PyTorch ratio float32 sgemm allows, whatever the other kernels do.
set -euo pipefail
cd "$(dirname "$0")/../.."

threads=1 repeats=2 steps=20 warmup=3 scratch=.build fpsim="" attention=sdpa
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --scratch-path) scratch=$2; shift 2 ;;
    --fpsim) fpsim=$2; shift 2 ;;
    --attention) attention=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "train_vs_pytorch.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ -z "$fpsim" ]; then
  swift build -c release --scratch-path "$scratch" >&2
  fpsim="$scratch/release/fpsim"
fi
python3 -c 'import torch' 2>/dev/null || {
  echo 'PyTorch is missing: pip install "$PIP_FIND_LINKS"/torch-*.whl' >&2
  exit 3
}

results=$(mktemp)
trap 'rm -f "$results"' EXIT
common=(--steps "$steps" --warmup "$warmup" --threads "$threads")
for r in $(seq 1 "$repeats"); do
  echo "repeat $r/$repeats: fpsim fp32, PyTorch, fpsim uniform:e4m3fn" >&2
  echo "fpsim-fp32 $("$fpsim" bench train --model gpt-tiny --recipe fp32 --gemm-floor "${common[@]}" --json)" >>"$results"
  echo "pytorch $(python3 experiments/bench/pytorch_gpt_tiny.py --attention "$attention" "${common[@]}")" >>"$results"
  echo "fpsim-e4m3fn $("$fpsim" bench train --model gpt-tiny --recipe uniform:e4m3fn --baseline none "${common[@]}" --json)" >>"$results"
done

python3 - "$results" "$threads" "$steps" "$warmup" <<'EOF'
import json, statistics, sys
path, threads, steps, warmup = sys.argv[1:]
runs = {}
for line in open(path):
    name, blob = line.split(" ", 1)
    runs.setdefault(name, []).append(json.loads(blob))
labels = {"fpsim-fp32": "fpsim fp32", "pytorch": "PyTorch fp32", "fpsim-e4m3fn": "fpsim uniform:e4m3fn"}
print(f"gpt-tiny, {threads} thread(s), {steps} timed steps after {warmup} warm-up, median step time per run")
print(f"{'run':<22} {'ms/step (each repeat)':<24} {'ms/step':>8} {'tokens/s':>9} {'CPU ms/step':>11} {'peak RSS MiB':>12}  kernel")
med, cpu = {}, {}
for name in ["fpsim-fp32", "pytorch", "fpsim-e4m3fn"]:
    rs = runs[name]
    ms = statistics.median(r["ms_per_step"] for r in rs)
    med[name] = ms
    cpu[name] = statistics.median(r["cpu_ms_per_step"] for r in rs)
    each = " ".join(f"{r['ms_per_step']:.1f}" for r in rs)
    r0 = rs[0]
    kernel = r0["blas_kernel"] if "blas_kernel" in r0 else f"{r0['framework']}, {r0['attention']} attention"
    rss = max(r["peak_rss_bytes"] for r in rs) / 2**20
    print(f"{labels[name]:<22} {each:<24} {ms:8.1f} {2048 / ms * 1e3:9.0f} {cpu[name]:11.1f} {rss:12.0f}  {kernel}")
a, b = med["fpsim-fp32"] / med["pytorch"], med["fpsim-e4m3fn"] / med["fpsim-fp32"]
ca, cb = cpu["fpsim-fp32"] / cpu["pytorch"], cpu["fpsim-e4m3fn"] / cpu["fpsim-fp32"]
# The speed targets: fp32 at most 0.6x PyTorch's step at two threads and 0.8x at one; uniform:e4m3fn at
# most 1.05x fp32.
ta = 0.6 if int(threads) >= 2 else 0.8
print(f"fpsim fp32 / PyTorch     (wall ms/step ratio) {a:.2f}  (CPU ms/step ratio) {ca:.2f}  target <= {ta}: {'met' if a <= ta else 'NOT met'}")
print(f"uniform:e4m3fn / fp32    (wall ms/step ratio) {b:.2f}  (CPU ms/step ratio) {cb:.2f}  target <= 1.05: {'met' if b <= 1.05 else 'NOT met'}")
g = statistics.median(r["gemm_floor"]["ms_per_step"] for r in runs["fpsim-fp32"])
rate = statistics.median(r["gemm_floor"]["gflops"] for r in runs["fpsim-fp32"])
print(f"fpsim fp32's GEMMs alone {g:.1f} ms/step ({rate:.0f} GFLOP/s): {g / med['fpsim-fp32']:.2f} of its step, "
      f"{g / med['pytorch']:.2f} of PyTorch's (the lowest fp32 / PyTorch ratio with float32 sgemm)")
EOF
