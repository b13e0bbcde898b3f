#!/usr/bin/env bash
# The README's first command: installs what is needed, builds fpsim (release, tuned for this CPU) and
# runs the built-in default study: experiments/quickstart.toml, a small "To FP8 and Back" sweep
# (mantissa bits cut by truncation, 2 learning rates, 2 seeds) into results/quickstart.h5, which opens
# in xarray. Rerunning resumes; a finished study is not recomputed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release
fpsim=.build/release/fpsim
mkdir -p results

echo "== The formats of the study"
$fpsim formats e8m7 e8m6 e8m5 e8m4 e8m3 e8m2
echo
echo "== The sweep (progress on stderr; the summary at the end)"
$fpsim grid experiments/quickstart.toml --out results/quickstart.h5
echo
echo "== Open it in Python:"
echo "python3 -c \"import xarray as xr; print(xr.open_dataset('results/quickstart.h5', group='results', engine='h5netcdf'))\""
