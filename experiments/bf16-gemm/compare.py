#!/usr/bin/env python3
"""What `--gemm bf16` does to a study's numbers: each cell of results/fp4.h5 and results/fp8.h5 (run with
gemm = "bf16") against the same cell of the committed sgemm study, paired by seed.

    python3 experiments/bf16-gemm/compare.py [RESULTS]

RESULTS is the folder of the two exported grids (default: results/ beside this script). Prints a Markdown
table: per recipe, the mean final validation loss on sgemm and in the mode, their seed-paired difference
with its 95% Student-t interval, and how many of the runs have the very same validation curve bits.
"""
import sys
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import stats

here = Path(__file__).resolve().parent
results = Path(sys.argv[1]) if len(sys.argv) > 1 else here / "results"
pairs = [
    ("fp4.h5", here.parent / "fp4-design-space" / "results" / "placement.h5"),
    ("fp8.h5", here.parent / "fp8-and-back" / "results" / "mantissa.h5"),
]


def open_results(path):
    try:
        ds = xr.open_dataset(path, group="results", engine="h5netcdf")
    except (OSError, ValueError) as e:
        sys.exit(f"compare: error: cannot open /results of {path}: {e}")
    return ds.rename(format="recipe") if "format" in ds.dims else ds


print("| recipe | seeds | sgemm: final eval loss | bf16 GEMMs: final eval loss | bf16 - sgemm, 95% CI | verdict | identical curves |")
print("|---|---|---|---|---|---|---|")
for new_name, old_path in pairs:
    new, old = open_results(results / new_name), open_results(old_path)
    for recipe in new.recipe.values:
        a = new.sel(recipe=recipe, lr=new.lr.values[0])
        b = old.sel(recipe=recipe).sel(lr=a.lr.values, method="nearest")
        seeds = [int(s) for s in a.seed.values]
        fa = np.array([float(a.sel(seed=s).final_eval_loss) for s in seeds])
        fb = np.array([float(b.sel(seed=s).final_eval_loss) for s in seeds])
        same = sum(a.sel(seed=s).eval_loss.values.tobytes() == b.sel(seed=s).eval_loss.values.tobytes() for s in seeds)
        d = fa - fb
        d = d[np.isfinite(d)]
        m = float(d.mean())
        h = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
        verdict = "identical" if np.all(d == 0) else "within noise" if m - h <= 0 <= m + h else ("worse" if m - h > 0 else "better")
        print(f"| {recipe} | {len(seeds)} | {np.nanmean(fb):.4f} | {np.nanmean(fa):.4f} | {m:+.4f} [{m - h:+.4f}, {m + h:+.4f}] "
              f"| {verdict} | {same}/{len(seeds)} |")
