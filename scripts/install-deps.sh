#!/usr/bin/env bash
# Installs what fpsim needs on a fresh Debian 12 machine (run as root): the system libraries it links
# (HDF5 with its high-level library, zstd, OpenBLAS), pkg-config (without it SwiftPM silently loses the
# HDF5 include path), h5dump, the Python readers the interoperability tests use, Debian's chromium
# (the report page is checked in a real headless browser) and matplotlib/scipy (experiments/plots and
# the statistics' oracle).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! dpkg -s pkg-config libhdf5-dev libzstd-dev libopenblas-dev hdf5-tools chromium >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends pkg-config libhdf5-dev libzstd-dev libopenblas-dev hdf5-tools chromium >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check h5py hdf5plugin xarray h5netcdf numpy ml_dtypes matplotlib scipy
# CPU PyTorch for the engine's reference test (the wheel in the folder PIP_FIND_LINKS names, not PyPI's CUDA build).
if ! python3 -c "import torch" >/dev/null 2>&1; then
  wheels="${PIP_FIND_LINKS:-/opt/wheels}"
  python3 -m pip install -q --disable-pip-version-check "$wheels"/torch-*.whl
fi
