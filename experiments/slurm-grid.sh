#!/usr/bin/env bash
# A Slurm array job: each task runs one shard of the grid into a shared run directory; a last step
# merges them into the grid file (the same file one machine would have written).
#   sbatch --array=0-15 experiments/slurm-grid.sh experiments/fp8-and-back.toml results/fp8-and-back.h5
#   then: fpsim grid merge experiments/fp8-and-back.toml --out results/fp8-and-back.h5
#SBATCH --cpus-per-task=2
#SBATCH --time=04:00:00
set -euo pipefail
spec="$1"; out="$2"
# fpsim reads SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT as its --shard I/N.
.build/release/fpsim grid "$spec" --out "$out" --jobs "${SLURM_CPUS_PER_TASK:-1}"
