#!/usr/bin/env bash
# Runs a grid study on a Slurm cluster: an array job whose task I runs shard I/N of the grid into a shared
# run directory (`fpsim grid SPEC --shard I/N --runs-dir DIR --jobs C`), and a merge job that waits for
# all of them (--dependency=afterok) and assembles the grid file (`fpsim grid merge`).
#
#   experiments/slurm/submit.sh SPEC OUT [--tasks N] [--cpus C] [--partition P] [--time T] [--mem M]
#                               [--runs-dir DIR] [--keep-runs] [--fpsim PATH] [--name NAME] [-- EXTRA SBATCH ARGS]
#
#   SPEC        the grid spec (TOML or JSON), as for `fpsim grid`
#   OUT         the grid file the merge writes
#   --tasks N   array tasks, i.e. shards (default 4); runs are dealt round-robin (run i goes to shard i mod N)
#   --cpus C    CPUs per task (default 2), given to the grid as --jobs C (one single-threaded worker per CPU)
#   --partition, --time, --mem   passed to sbatch for both jobs (default: the cluster's)
#   --runs-dir  where the run files and their logs go (default OUT without .h5, plus .runs); the merge
#               removes them once they are in the grid file, unless --keep-runs
#   --fpsim     the fpsim binary (default this checkout's .build/release/fpsim); every node must be able to
#               run it: build it portable for a mixed cluster (README "Clusters (Slurm)")
#   --name      the jobs' name (default fpsim-<OUT's base name>); a second submission of a study while
#               jobs of that name are queued or running is refused
#   -- ...      any further sbatch arguments (--account=..., --qos=...), given to both jobs
#
# Every path must be on a file system that all nodes share; they are made absolute here. Relative paths in
# the spec are taken from the spec's folder; without `data`, fpsim finds the data that ships with it.
# Resume: run the same command again. Finished run files are kept, unfinished runs continue from their
# last checkpoint, and the merge runs again.
set -euo pipefail

die() { echo "submit.sh: error: $*" >&2; exit 2; }
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

invocation="$(printf '%q ' "$0" "$@")"
[ $# -ge 2 ] || die "give SPEC and OUT: experiments/slurm/submit.sh SPEC OUT [--tasks N] [--cpus C] [--partition P] [--time T]"
spec="$1" out="$2"; shift 2
tasks=4 cpus=2 partition="" time="" mem="" runs="" keep="" fpsim="$repo/.build/release/fpsim" name=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tasks) tasks="${2:?--tasks needs a number}"; shift 2 ;;
    --cpus) cpus="${2:?--cpus needs a number}"; shift 2 ;;
    --partition) partition="${2:?--partition needs a name}"; shift 2 ;;
    --time) time="${2:?--time needs a limit, as 04:00:00}"; shift 2 ;;
    --mem) mem="${2:?--mem needs a size, as 8G}"; shift 2 ;;
    --runs-dir) runs="${2:?--runs-dir needs a directory}"; shift 2 ;;
    --keep-runs) keep=--keep-runs; shift ;;
    --fpsim) fpsim="${2:?--fpsim needs a path}"; shift 2 ;;
    --name) name="${2:?--name needs a name}"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown option '$1' (options: --tasks --cpus --partition --time --mem --runs-dir --keep-runs --fpsim --name, then -- and sbatch arguments)" ;;
  esac
done
[[ "$tasks" =~ ^[1-9][0-9]*$ ]] || die "--tasks '$tasks': give a positive whole number"
[[ "$cpus" =~ ^[1-9][0-9]*$ ]] || die "--cpus '$cpus': give a positive whole number"
command -v sbatch >/dev/null || die "sbatch not found: run this on a Slurm login node (or see experiments/slurm/selftest.sh)"

abs() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
[ -f "$spec" ] || die "spec '$spec' not found"
[ -x "$fpsim" ] || die "no fpsim binary at '$fpsim': build it (swift build -c release, or FPSIM_PORTABLE=1 for a mixed cluster) or give --fpsim"
spec="$(abs "$spec")" out="$(abs "$out")" fpsim="$(abs "$fpsim")"
[ -n "$runs" ] || runs="${out%.h5}.runs"
runs="$(abs "$runs")"
logs="${out%.h5}.slurm-logs"
[ -n "$name" ] || name="fpsim-$(basename "${out%.h5}")"
mkdir -p "$(dirname "$out")" "$runs" "$logs"

# Two live submissions of one study would run the same shard twice, writing the same run files.
live="$(squeue -h --me -n "$name" -o %i 2>/dev/null | tr '\n' ' ' || true)"
[ -z "${live// /}" ] || die "jobs named $name are still queued or running ($live): let them finish, or scancel them, before resubmitting"

common=(--job-name="$name" --chdir="$PWD")
[ -n "$partition" ] && common+=(--partition="$partition")
[ -n "$time" ] && common+=(--time="$time")
[ -n "$mem" ] && common+=(--mem="$mem")
common+=("${extra[@]}")

array_job="$(sbatch --parsable "${common[@]}" --array="0-$((tasks - 1))" --ntasks=1 --cpus-per-task="$cpus" \
  --output="$logs/task-%A_%a.log" "$here/task.sbatch" "$fpsim" "$spec" "$out" "$runs" "$tasks")"
array_job="${array_job%%;*}"  # --parsable prints "id" or "id;cluster"
merge_job="$(sbatch --parsable "${common[@]}" --ntasks=1 --cpus-per-task=1 \
  --dependency="afterok:$array_job" --kill-on-invalid-dep=yes \
  --output="$logs/merge-%j.log" "$here/merge.sbatch" "$fpsim" "$spec" "$out" "$runs" $keep)"
merge_job="${merge_job%%;*}"

cat <<EOF
submitted $name: array job $array_job ($tasks tasks of $cpus CPUs), merge job $merge_job (after every task succeeds)
  spec      $spec
  grid file $out
  run files $runs
  logs      $logs
watch:
  squeue -j $array_job,$merge_job     (queued and running; both gone when done)
  tail -f $logs/task-${array_job}_*.log     (each task: runs done/total, ETA)
  ls $runs/*.h5 | wc -l     (run files so far, finished or in flight)
  cat $logs/merge-$merge_job.log     (the summary table, once merged)
resume after a failed, cancelled or timed-out task (finished runs are kept, unfinished ones continue):
  ${invocation% }
array_job=$array_job
merge_job=$merge_job
EOF
