#!/usr/bin/env bash
# Installs fpsim for use from any folder: builds the release binary (unless it is built already) and
# copies it to PREFIX/bin/fpsim with its data sets in PREFIX/share/fpsim/data, where the installed
# binary finds them. PREFIX defaults to /usr/local. Run scripts/install-deps.sh first on a new machine.
# FPSIM_BIN=PATH installs that binary instead of building one (the tests use it).
#   bash scripts/install.sh            # /usr/local/bin/fpsim
#   bash scripts/install.sh ~/.local   # ~/.local/bin/fpsim (put ~/.local/bin on your PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="${1:-/usr/local}"
binary="${FPSIM_BIN:-}"
if [ -z "$binary" ]; then
  swift build -c release >&2
  binary="$(swift build -c release --show-bin-path)/fpsim"
fi
mkdir -p "$prefix/bin" "$prefix/share/fpsim/data"
install -m 0755 "$binary" "$prefix/bin/fpsim"
install -m 0644 data/shakespeare.txt data/digits.csv.gz data/diabetes_data_raw.csv.gz data/diabetes_target.csv.gz \
  data/README.md "$prefix/share/fpsim/data/"
echo "installed $prefix/bin/fpsim (data in $prefix/share/fpsim/data)"
