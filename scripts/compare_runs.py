"""Compare two fpsim files object by object: every dataset's dtype, shape, chunking, filters and
bytes, and every attribute, except the timing ones (wall_seconds, step_seconds, created).

Usage: python3 scripts/compare_runs.py A.h5 B.h5   (prints "same N" or the differences; exit 1 on any)
"""
import sys

import h5py
import numpy as np

TIMING = {"wall_seconds", "created", "step_seconds"}


def describe(f):
    out = {}

    def visit(name, obj):
        if name.startswith(".incomplete"):
            return
        if isinstance(obj, h5py.Dataset):
            if name.split("/")[-1] in TIMING:
                out[name] = ("dataset", obj.dtype.str, obj.shape)
                return
            out[name] = ("dataset", obj.dtype.str, obj.shape, obj.maxshape, obj.chunks, obj.compression,
                         obj.compression_opts, obj.shuffle, obj[()].tobytes())
        else:
            out[name] = ("group",)
        for k, v in obj.attrs.items():
            if k not in TIMING:
                out[name + "@" + k] = np.asarray(v).tobytes() if not isinstance(v, str) else v

    f.visititems(visit)
    for k, v in f.attrs.items():
        if k not in TIMING:
            out["@" + k] = v if isinstance(v, str) else np.asarray(v).tobytes()
    return out


a, b = (describe(h5py.File(p, "r")) for p in sys.argv[1:3])
bad = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
print("same %d" % len(a) if not bad else "differ %d: %s" % (len(bad), bad[:20]))
sys.exit(1 if bad else 0)
