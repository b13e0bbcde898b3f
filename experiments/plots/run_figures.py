#!/usr/bin/env python3
"""The main figures of fpsim run files (several side by side), drawn with matplotlib via h5py.

    python3 experiments/plots/run_figures.py runs/nvfp4.h5 runs/mxfp4.h5 --out figs/

Writes run_loss.png (training loss and validation loss where evaluated), run_telemetry.png
(fraction of values saturated and flushed to zero, mean over the layers of each operand kind) and
run_histograms.png (value histograms of the last snapshot's tensors of the first run).
"""
import argparse
import os
from collections import defaultdict

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def the_run(f):
    """The run group of a run file (/runs/<id>)."""
    return f["runs"][next(iter(f["runs"]))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", default="figs")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    files = [h5py.File(p, "r") for p in args.runs]
    for f, p in zip(files, args.runs):
        assert f.attrs["schema"] == "fpsim/run", f"{p} is not an fpsim run file"

    fig, ax = plt.subplots(figsize=(8, 4))
    for f, p in zip(files, args.runs):
        m = the_run(f)["metrics"]
        step, ev = m["step"][()], m["eval_loss"][()]
        line, = ax.plot(step, m["train_loss"][()], lw=1, label=f"{os.path.basename(p)} train")
        ax.plot(step[np.isfinite(ev)], ev[np.isfinite(ev)], "--o", ms=3, color=line.get_color(), label="validation")
    ax.set_xlabel("step (optimizer updates)")
    ax.set_ylabel("loss (nats per item)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "run_loss.png"), dpi=110)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), squeeze=False)
    for ax, kind in zip(axes[0], ["saturated", "flushed"]):
        for f, p in zip(files, args.runs):
            m = the_run(f)["metrics"]
            if kind not in m:
                continue
            groups = defaultdict(list)
            for name, d in m[kind].items():
                groups[name.rsplit(".", 1)[-1]].append(d[()])
            for op, rows in sorted(groups.items()):
                ax.plot(m["step"][()], np.mean(rows, axis=0), lw=1, label=f"{os.path.basename(p)} {op}")
        ax.set_title(f"fraction {kind}")
        ax.set_xlabel("step (optimizer updates)")
        ax.set_ylabel(f"fraction {kind} (of values)")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "run_telemetry.png"), dpi=110)

    run = the_run(files[0])
    tensors = []
    if "snapshots" in run and len(run["snapshots"]):
        last = max(run["snapshots"], key=lambda s: int(s.split("_")[1]))
        run["snapshots"][last].visititems(lambda n, o: tensors.append((n, o[()])) if isinstance(o, h5py.Dataset) else None)
    tensors = tensors[:12]
    cols = 4
    fig, axes = plt.subplots(max(1, (len(tensors) + cols - 1) // cols), cols, figsize=(12, 2.4 * max(1, (len(tensors) + cols - 1) // cols)), squeeze=False)
    for ax, (name, x) in zip(axes.flat, tensors):
        ax.hist(x.ravel(), bins=40, color="#4e79a7")
        ax.set_title(name, fontsize=7)
        ax.set_xlabel("value", fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "run_histograms.png"), dpi=110)
    print(f"{args.out}: run_loss.png run_telemetry.png run_histograms.png")


if __name__ == "__main__":
    main()
