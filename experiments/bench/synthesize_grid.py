#!/usr/bin/env python3
"""A large fpsim/grid file for timing `fpsim report`, made from one real run file without training
120 runs: the run is copied as every cell of a formats x lrs x seeds grid (its metrics, telemetry
and attributes, with seeded offsets added to the losses so the curves differ), and /results is built
as `fpsim grid` builds it (labelled arrays with dimension scales).

    python3 experiments/bench/synthesize_grid.py RUN.h5 OUT.h5 [--formats 6] [--lrs 4] [--seeds 5]

The numbers are synthetic; only the file's size and shape are what a grid of that size has.
"""
import argparse
import json
import sys

import h5py
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("out")
    ap.add_argument("--formats", type=int, default=6)
    ap.add_argument("--lrs", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=5)
    a = ap.parse_args()
    src = h5py.File(a.run, "r")
    assert src.attrs["schema"] == "fpsim/run", "give a run file (fpsim train --out RUN.h5)"
    run = src["runs"][next(iter(src["runs"]))]
    formats = [f"e8m{7 - i}" for i in range(a.formats)]
    lrs = [round(1e-3 * 3 ** i, 12) for i in range(a.lrs)]
    seeds = list(range(a.seeds))
    steps = run["metrics"]["step"][()]
    T = len(steps)
    rng = np.random.default_rng(0)
    F, L, S = len(formats), len(lrs), len(seeds)
    loss = np.zeros((F, L, S, T), np.float32)
    final = np.zeros((F, L, S), np.float32)
    final_eval = np.zeros((F, L, S), np.float32)
    with h5py.File(a.out, "w") as out:
        for k, v in src.attrs.items():
            out.attrs[k] = v
        out.attrs["schema"] = "fpsim/grid"
        out.attrs["config"] = json.dumps({"synthesized_from": a.run, "formats": formats, "lrs": lrs, "seeds": seeds})
        runs = out.create_group("runs")
        for f, fmt in enumerate(formats):
            for l, lr in enumerate(lrs):
                for s, seed in enumerate(seeds):
                    rid = f"{fmt}_lr{lr:g}_s{seed}"
                    src.copy(run, runs, name=rid)
                    g = runs[rid]
                    shift = 0.01 * f + 0.05 * abs(l - 1) + rng.normal(0, 0.01)
                    tl = g["metrics/train_loss"][()] + shift
                    el = g["metrics/eval_loss"][()] + shift
                    g["metrics/train_loss"][...] = tl
                    g["metrics/eval_loss"][...] = el
                    g.attrs["format"] = fmt
                    g.attrs["grid_lr"] = lr
                    g.attrs["grid_seed"] = seed
                    loss[f, l, s] = tl
                    final[f, l, s] = tl[-1]
                    final_eval[f, l, s] = el[np.isfinite(el)][-1]
        r = out.create_group("results")
        scales = {}
        for name, values in [("format", np.array(formats, dtype=h5py.string_dtype())), ("lr", np.array(lrs)),
                             ("seed", np.array(seeds, np.int64)), ("step", steps.astype(np.int64))]:
            scales[name] = r.create_dataset(name, data=values)
            scales[name].make_scale(name)

        def grid(name, data, dims=("format", "lr", "seed")):
            d = r.create_dataset(name, data=data)
            for i, dim in enumerate(dims):
                d.dims[i].attach_scale(scales[dim])

        grid("final_loss", final)
        grid("final_eval_loss", final_eval)
        grid("diverged", np.zeros((F, L, S), np.uint8))
        grid("diverged_step", -np.ones((F, L, S), np.int64))
        grid("spikes", np.zeros((F, L, S), np.int64))
        grid("failed_to_learn", np.zeros((F, L, S), np.uint8))
        grid("loss", loss, ("format", "lr", "seed", "step"))
    print(f"{a.out}: {F * L * S} runs of {T} steps")


if __name__ == "__main__":
    sys.exit(main())
