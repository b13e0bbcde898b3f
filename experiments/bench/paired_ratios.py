"""Paired ratio differences with a 95% Student t interval, for the bench scripts.

Usage: python3 paired_ratios.py RUNS.jsonl LABEL

RUNS.jsonl holds `fpsim bench train --json` results in pairs: the comparison of interest, then its
A/A run (`--against-itself`). For wall time (`ratio`) and CPU time (`cpu_ratio`) of each pair's
same-run baseline comparison, prints the ratios, then the mean of (ratio - A/A ratio) over the pairs
with a 95% Student t interval: the comparison's effect net of its own bias.
"""
import json, statistics, sys

from scipy import stats

runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
label = sys.argv[2]
effect, aa = runs[0::2], runs[1::2]
n = min(len(effect), len(aa))
if n < 2:
    sys.exit("paired_ratios.py: need at least two pairs of runs")
first = effect[0]
print(f"{first['recipe']} against {first['baseline']['recipe']}, {first['model']}, {first['threads']} thread(s), "
      f"{first['steps']} timed steps, BLAS {first['blas_kernel']}")
for key, name in [("ratio", "wall"), ("cpu_ratio", "CPU")]:
    e = [r["baseline"][key] for r in effect[:n]]
    a = [r["baseline"][key] for r in aa[:n]]
    d = [x - y for x, y in zip(e, a)]
    m = statistics.mean(d)
    h = stats.t.ppf(0.975, n - 1) * statistics.stdev(d) / n ** 0.5
    print(f"{name}: ratios {', '.join(f'{x:.3f}' for x in e)}; A/A {', '.join(f'{x:.3f}' for x in a)}")
    print(f"{name}: {label} {100 * m:.2f}% of the baseline's step time, 95% interval [{100 * (m - h):.2f}, {100 * (m + h):.2f}]% "
          f"over {n} repeats (median difference {100 * statistics.median(d):.2f}%)")
