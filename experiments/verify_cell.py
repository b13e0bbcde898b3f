#!/usr/bin/env python3
"""Compares named arrays of two grid files at one cell, bit for bit: the `verify` step of the studies'
run.sh (a committed cell rerun from its spec must reproduce the committed results exactly).

    python3 experiments/verify_cell.py COMMITTED RERUN CELL NAME...

CELL is `recipe=LABEL,lr=LR,seed=SEED` (the coordinates of /results); NAME a /results array, compared at
that cell: same dtype, same shape, same bytes. A grid file of schema_version 1 whose first dimension is
`format` is read with it renamed to `recipe`, as schema_version 2 names it, so a committed version-1
file compares with a rerun by a newer fpsim.

Exit 0 and one line when every array is equal; 1 and one line naming the arrays that differ; 2 and one
`verify: error: ...` line for bad input (a missing file, array or cell).
"""
import sys

import xarray as xr


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


def main(argv):
    if len(argv) < 4:
        fail("usage: verify_cell.py COMMITTED RERUN recipe=LABEL,lr=LR,seed=SEED NAME...")
    committed, rerun = open_results(argv[0]), open_results(argv[1])
    cell, names = parse_cell(argv[2]), argv[3:]
    bad = []
    for n in names:
        for path, ds in ((argv[0], committed), (argv[1], rerun)):
            if n not in ds:
                fail(f"{path} has no /results/{n}")
        try:
            a, b = committed[n].sel(cell).values, rerun[n].sel(cell).values
        except (KeyError, ValueError) as e:
            fail(f"no cell {argv[2]} in /results/{n}: {e}")
        if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
            bad.append(n)
    where = ", ".join(f"{k} {v}" for k, v in cell.items())
    if bad:
        print(f"verify: DIFFERENT from the committed results at {where}: {', '.join(bad)}")
        return 1
    print(f"verify: {where} reproduces the committed results bit for bit ({', '.join(names)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
