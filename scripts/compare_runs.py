"""Compare two fpsim files object by object: every dataset's dtype, shape, chunking, filters and
bytes, and every attribute, except the timing ones (wall_seconds, step_seconds, created).

Usage: python3 scripts/compare_runs.py A.h5 B.h5 [A2.h5 B2.h5 ...]
Prints one line per pair, "same N" (N objects and attributes compared) or "differ K: [names]";
exit status 1 when any pair differs.
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


def compare(pa, pb):
    a, b = describe(h5py.File(pa, "r")), describe(h5py.File(pb, "r"))
    bad = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ("same %d" % len(a)) if not bad else ("differ %d: %s" % (len(bad), bad[:20]))


if __name__ == "__main__":
    lines = [compare(sys.argv[i], sys.argv[i + 1]) for i in range(1, len(sys.argv) - 1, 2)]
    print("\n".join(lines))
    sys.exit(1 if any(not l.startswith("same") for l in lines) else 0)
