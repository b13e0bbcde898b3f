#!/usr/bin/env python3
"""Compares named arrays of two grid files at one cell, bit for bit: the `verify` step of the studies'
run.sh (a committed cell rerun from its spec must reproduce the committed results exactly).

    python3 experiments/verify_cell.py [--bits] COMMITTED RERUN CELL NAME...

CELL is `recipe=LABEL,lr=LR,seed=SEED` (the coordinates of /results); NAME a /results array, compared at
that cell: same dtype, same shape, same bytes. A grid file of schema_version 1 whose first dimension is
`format` is read with it renamed to `recipe`, as schema_version 2 names it, so a committed version-1
file compares with a rerun by a newer fpsim.

Exit 0 and one line when every array is equal; 1 and one line naming the arrays that differ; 2 and one
`verify: error: ...` line for bad input (a missing file, array or cell).

Bit for bit needs the same BLAS kernel: OpenBLAS picks one per CPU (each run records it in its
`blas_kernel` attribute), and two kernels sum a GEMM's float32 products in different orders. When the
committed cell and the rerun name different kernels, the rerun is a perturbed copy of the committed run
and is checked as one: its status must be the same and its final_eval_loss within the 95% bound of a
difference between two seeds of the committed value: t(0.975, n - 1) * s * sqrt 2, s the standard
deviation of final_eval_loss over the committed cell's n seeds (same label and learning rate).
The line then says so, with both kernels and the numbers; exit 0 within, 1 outside. `--bits` compares
bits whatever the kernels: for runs that use no OpenBLAS product (the bf16 GEMM mode's cells whose
every linear-layer GEMM moved to fpsim's bfloat16 kernel: gpt-tiny's 51 of 51 under mxfp4 or bf16).
"""
import sys

import h5py
import numpy as np
import xarray as xr
from scipy import stats


def fail(message):
    print(f"verify: error: {message}", file=sys.stderr)
    sys.exit(2)


def open_results(path):
    try:
        ds = xr.open_dataset(path, group="results", engine="h5netcdf")
    except (OSError, ValueError) as e:
        fail(f"cannot open /results of {path}: {e}")
    return ds.rename(format="recipe") if "format" in ds.dims else ds


def parse_cell(text):
    """`recipe=e8m3,lr=0.03,seed=0` -> {"recipe": "e8m3", "lr": 0.03, "seed": 0}."""
    cell = {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        if not eq or not key:
            fail(f"cell '{text}' is not KEY=VALUE,...: write it as recipe=LABEL,lr=LR,seed=SEED")
        for kind in (int, float):
            try:
                value = kind(value)
                break
            except ValueError:
                pass
        cell[key] = value
    return cell


def blas_kernel(path, cell):
    """The OpenBLAS kernel name (`Cooperlake`, `Zen`, ...) the cell's run recorded, or None."""
    label = cell.get("recipe")
    with h5py.File(path, "r") as f:
        for name, run in f.get("runs", {}).items():
            a = run.attrs
            if (name.startswith(f"{label}_lr") and a.get("grid_seed") == cell.get("seed")
                    and a.get("grid_lr") == cell.get("lr") and "blas_kernel" in a):
                k = a["blas_kernel"]
                return (k.decode() if isinstance(k, bytes) else str(k)).split(" (")[0]
    return None


def select(ds, path, name, cell, text):
    if name not in ds:
        fail(f"{path} has no /results/{name}")
    try:
        return ds[name].sel(cell).values
    except (KeyError, ValueError) as e:
        fail(f"no cell {text} in /results/{name}: {e}")


def within_seed_noise(committed, rerun, paths, cell, text):
    """Status equal and final_eval_loss within the 95% bound of a seed-to-seed difference: (ok, description).
    `paths` (committed, rerun) name the files in error messages."""
    status = [select(ds, p, "status", cell, text) for p, ds in zip(paths, (committed, rerun))]
    loss = [float(select(ds, p, "final_eval_loss", cell, text)) for p, ds in zip(paths, (committed, rerun))]
    others = {k: v for k, v in cell.items() if k != "seed"}
    seeds = committed["final_eval_loss"].sel(others).values.astype(float)
    seeds = seeds[np.isfinite(seeds)]
    if seeds.size < 2:
        fail(f"fewer than two finite final_eval_loss seeds at {text}: no seed noise to compare with")
    bound = float(stats.t.ppf(0.975, seeds.size - 1) * seeds.std(ddof=1) * np.sqrt(2))
    d = loss[1] - loss[0]
    same_status = status[0].tobytes() == status[1].tobytes()
    ok = same_status and abs(d) <= bound
    what = (f"final_eval_loss {loss[1]:.6f} against {loss[0]:.6f} committed ({d:+.6f}; the 95% bound of a "
            f"difference between two of its {seeds.size} seeds is {bound:.6f}), "
            f"status {'the same' if same_status else 'DIFFERENT'}")
    return ok, what


def main(argv):
    bits = argv[:1] == ["--bits"]
    argv = argv[1:] if bits else argv
    if len(argv) < 4:
        fail("usage: verify_cell.py [--bits] COMMITTED RERUN recipe=LABEL,lr=LR,seed=SEED NAME...")
    committed, rerun = open_results(argv[0]), open_results(argv[1])
    cell, names = parse_cell(argv[2]), argv[3:]
    where = ", ".join(f"{k} {v}" for k, v in cell.items())
    kernels = blas_kernel(argv[0], cell), blas_kernel(argv[1], cell)
    if not bits and None not in kernels and kernels[0] != kernels[1]:
        ok, what = within_seed_noise(committed, rerun, argv[:2], cell, argv[2])
        print(f"verify: {where} was committed with OpenBLAS's {kernels[0]} kernel and rerun with {kernels[1]}, "
              f"which sums float32 products in another order, so bits cannot match; "
              f"{'reproduces within seed noise' if ok else 'does NOT reproduce'}: {what}")
        return 0 if ok else 1
    bad = []
    for n in names:
        a, b = select(committed, argv[0], n, cell, argv[2]), select(rerun, argv[1], n, cell, argv[2])
        if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
            bad.append(n)
    if bad:
        print(f"verify: DIFFERENT from the committed results at {where}: {', '.join(bad)}")
        return 1
    print(f"verify: {where} reproduces the committed results bit for bit ({', '.join(names)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
