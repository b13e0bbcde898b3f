#!/usr/bin/env bash
# The README's first command: installs what is needed, builds fpsim (release, tuned for this CPU) and
# runs the built-in default study. For now the study is the format side of "To FP8 and Back": the
# bit-reduction ladder e8m7 (bfloat16) ... e8m3, what rounding a few values to each does, and the
# quantization speed next to a plain copy and ml_dtypes. Later issues replace it with a training grid.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release
fpsim=.build/release/fpsim

echo "== The bit-reduction ladder of 'To FP8 and Back' (exponent kept at 8 bits, mantissa cut)"
$fpsim formats e8m7 e8m6 e8m5 e8m4 e8m3 e4m3fn e5m2
echo
echo "== Rounding 1/3, 2.7, 1000.5 and 1e-40 to each, by truncation (rtz) and to nearest (rne)"
for f in e8m7 e8m5 e8m3; do
  for r in rtz rne; do
    printf '%-5s %-4s ' "$f" "$r"
    echo "0.33333334 2.7 1000.5 1e-40" | $fpsim quantize --format "$f" --rounding "$r" | tr '\n' ' '
    echo
  done
done
echo
echo "== Speed: in-place quantization to float8_e4m3fn, next to a plain copy and ml_dtypes"
$fpsim bench quantize --format float8_e4m3fn --peer ml_dtypes
