#!/usr/bin/env python3
"""The main figures of an fpsim grid file, drawn with matplotlib from the same HDF5 file that
`fpsim report` reads: xarray for the labelled /results arrays, h5py for the runs' metrics.

    python3 experiments/plots/grid_figures.py results/quickstart.h5 --out figs/

Writes loss.png (training loss, median over seeds with min-max band, one panel per learning rate),
stability.png (runs diverged per format|recipe x learning rate), final_eval.png (final validation
loss per label and learning rate, mean over finished seeds with a 95% t-interval) and, for recipe
grids or with --paired, paired.png (seed-paired difference to the baseline with its 95% interval).
"""
import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from scipy import stats


def mean_interval(values):
    """Mean and 95% Student-t interval (None when fewer than two values)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return np.nan, None
    if len(v) < 2:
        return v.mean(), None
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return v.mean(), (v.mean() - half, v.mean() + half)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("grid")
    ap.add_argument("--out", default="figs")
    ap.add_argument("--baseline", default=None, help="baseline label (default: the first)")
    ap.add_argument("--log-steps", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    ds = xr.open_dataset(args.grid, group="results", engine="h5netcdf")
    kind = "format" if "format" in ds.dims else "recipe"
    labels = [str(x) for x in ds[kind].values]
    lrs = ds["lr"].values
    baseline = args.baseline or labels[0]
    finished = (ds["diverged"] == 0) & np.isfinite(ds["final_eval_loss"])

    # Training loss: median over seeds, min-max band, one panel per learning rate.
    fig, axes = plt.subplots(1, len(lrs), figsize=(5.5 * len(lrs), 4), squeeze=False, sharey=True)
    for ax, lr in zip(axes[0], lrs):
        for label in labels:
            curve = ds["loss"].sel({kind: label, "lr": lr})
            steps = curve["step"].values
            line, = ax.plot(steps, curve.median("seed"), label=label, lw=1.3)
            ax.fill_between(steps, curve.min("seed"), curve.max("seed"), color=line.get_color(), alpha=0.15, lw=0)
        ax.set_title(f"lr {lr:g}")
        ax.set_xlabel("step (optimizer updates)")
        if args.log_steps:
            ax.set_xscale("log")
    axes[0][0].set_ylabel("training loss (nats per item)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "loss.png"), dpi=110)

    # Stability map: runs diverged of seeds.
    div = ds["diverged"].sum("seed").values
    fig, ax = plt.subplots(figsize=(1.2 * len(lrs) + 2.5, 0.45 * len(labels) + 1.5))
    ax.imshow(div / ds.sizes["seed"], cmap="Reds", vmin=0, vmax=1, aspect="auto")
    for i in range(len(labels)):
        for j in range(len(lrs)):
            ax.text(j, i, f"{int(div[i, j])}/{ds.sizes['seed']}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(lrs)), [f"{x:g}" for x in lrs])
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("peak learning rate")
    ax.set_title("runs diverged")
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "stability.png"), dpi=110)

    # Final validation loss: mean over finished seeds with a 95% t-interval.
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(labels))
    for k, lr in enumerate(lrs):
        means, lo, hi = [], [], []
        for label in labels:
            v = ds["final_eval_loss"].sel({kind: label, "lr": lr}).where(finished.sel({kind: label, "lr": lr})).values
            m, ci = mean_interval(v)
            means.append(m)
            lo.append(m - ci[0] if ci else 0)
            hi.append(ci[1] - m if ci else 0)
        ax.errorbar(x + 0.08 * (k - (len(lrs) - 1) / 2), means, yerr=[lo, hi], fmt="o-", capsize=3, label=f"lr {lr:g}")
    ax.set_xticks(x, labels, rotation=30)
    ax.set_ylabel("final validation loss (nats per item)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "final_eval.png"), dpi=110)

    # Seed-paired difference to the baseline, per label and learning rate.
    rows = []
    for label in labels:
        if label == baseline:
            continue
        for lr in lrs:
            a = ds["final_eval_loss"].sel({kind: label, "lr": lr})
            b = ds["final_eval_loss"].sel({kind: baseline, "lr": lr})
            ok = (finished.sel({kind: label, "lr": lr}) & finished.sel({kind: baseline, "lr": lr})).values
            m, ci = mean_interval((a.values - b.values)[ok])
            rows.append((f"{label} @ lr {lr:g}", m, ci))
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.5))
    y = np.arange(len(rows))
    ax.barh(y, [r[1] for r in rows], color="#4e79a7", alpha=0.8)
    for yi, (_, m, ci) in zip(y, rows):
        if ci:
            ax.plot(ci, [yi, yi], color="k", lw=1.4)
    ax.axvline(0, color="k", lw=1)
    ax.set_yticks(y, [r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel(f"final validation loss minus {baseline}'s, same seed (nats per item)")
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "paired.png"), dpi=110)
    print(f"{args.out}: loss.png stability.png final_eval.png paired.png")


if __name__ == "__main__":
    main()
