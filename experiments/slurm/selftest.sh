#!/usr/bin/env bash
# Tests experiments/slurm/ on a real Slurm: a one-node cluster on this machine, started here and stopped at
# the end. Run as root on Debian, after `swift build -c release`:
#
#   bash experiments/slurm/selftest.sh            (FPSIM_BIN=/path/to/fpsim to test another binary)
#
# 1. Installs slurm-wlm and munge from apt if missing.
# 2. Writes everything into a fresh temporary directory, touching nothing in /etc: a munge key and a munged
#    on its own socket, a slurm.conf (SLURM_CONF) for this machine's cores and memory with its own state and
#    spool directories and free ports, then starts munged, slurmctld and slurmd as root (no systemd needed)
#    and waits until sinfo shows the node idle. Plugins that need no cgroups (proctrack/linuxproc,
#    task/none), so that it also runs in a container.
# 3. Runs a small grid (8 gpt-micro runs of 300 steps) locally with `fpsim grid`, then through submit.sh
#    (3 array tasks on 2 CPUs, so one queues, and the merge job), and checks that every dataset under
#    /results of the merged grid file equals the local one bit for bit (h5py).
# 4. Submits again into a fresh directory, cancels one array task (scancel JOB_TASK) in the middle of a
#    run, past its checkpoint, checks that the merge job was cancelled and wrote nothing, resubmits the same
#    command, and checks that the result is again identical, that the run in flight resumed from its
#    checkpoint, and that the run files finished before the cancel were not recomputed (same bytes, same
#    modification time).
# Exits 0 when all holds, non-zero on any difference or timeout; stops the daemons it started in any case.
# KEEP=1 keeps the temporary directory (the logs) for a look.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
fpsim="${FPSIM_BIN:-$repo/.build/release/fpsim}"
started=$SECONDS
say() { echo "selftest: $*"; }
fail() { echo "selftest: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (it installs packages and starts the Slurm daemons)"
[ -x "$fpsim" ] || fail "no fpsim at $fpsim: swift build -c release first (or set FPSIM_BIN)"

# 1. Packages.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
python3 -c "import h5py" || fail "python3 with h5py is needed for the comparison (scripts/install-deps.sh)"

# 2. A one-node cluster in a temporary directory. Munge refuses a world-writable socket directory, and the
#    job processes must reach the socket: the directory is 0755.
T="$(mktemp -d /tmp/fpsim-slurm-selftest.XXXXXX)"
chmod 755 "$T"
mkdir -p "$T/munge" "$T/state" "$T/spool" "$T/log"
pids=()
cleanup() {
  local status=$?
  set +e
  if [ -n "${SLURM_CONF:-}" ] && [ -f "$T/slurmctld.pid" ]; then scancel --quiet --me 2>/dev/null; fi
  # Only the daemons started here, by their pid files; each is waited for.
  for f in "$T/slurmd.pid" "$T/slurmctld.pid" "$T/munge/munged.pid"; do
    [ -f "$f" ] || continue
    local p; p="$(cat "$f")"
    kill "$p" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  if [ "$status" != 0 ]; then
    echo "selftest: logs follow (KEEP=1 keeps $T)" >&2
    for f in "$T"/log/*.log "$T"/*/grid.slurm-logs/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 15 "$f" >&2; }; done
  fi
  if [ "${KEEP:-0}" = 1 ]; then echo "selftest: kept $T"; else rm -rf "$T"; fi
  exit "$status"
}
trap cleanup EXIT

dd if=/dev/urandom of="$T/munge/munge.key" bs=1024 count=1 status=none
chmod 600 "$T/munge/munge.key"
munged --force --socket="$T/munge/munge.socket" --key-file="$T/munge/munge.key" \
  --pid-file="$T/munge/munged.pid" --log-file="$T/log/munged.log" --seed-file="$T/munge/munged.seed"

host="$(hostname -s)"
# This machine as slurmd sees it (CPUs, sockets, cores, threads, memory), under our node name.
node="$(slurmd -C | head -n 1 | sed "s/^NodeName=[^ ]*/NodeName=$host NodeAddr=127.0.0.1/")"
cpus="$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$node")"
read -r ctld_port slurmd_port < <(python3 -c "
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(('127.0.0.1', 0))
print(*[s.getsockname()[1] for s in ss])")
export SLURM_CONF="$T/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=fpsimselftest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/munge.socket
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
# No cgroups (a container may not delegate them): processes tracked by parentage, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# Keep finished jobs' records for an hour, so that their states can be checked.
MinJobAge=3600
$node State=UNKNOWN
PartitionName=selftest Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld
slurmd
for _ in $(seq 300); do
  [ "$(sinfo -h -o %t 2>/dev/null)" = idle ] && break
  sleep 0.2
done
[ "$(sinfo -h -o %t)" = idle ] || fail "the node did not become idle: $(sinfo 2>&1)"
say "Slurm $(sinfo -V | cut -d' ' -f2) up: node $host, $cpus CPUs, ports $ctld_port/$slurmd_port, in $T"

# 3. The study, locally and on Slurm (the data: what ships with this checkout, which fpsim finds itself).
cd "$repo"
cat >"$T/spec.toml" <<'EOF'
name = "slurm-selftest"
model = "gpt-micro"
formats = ["e8m7", "e8m3"]
rounding = "rtz"
lrs = [3e-3, 3e-2]
seeds = "0..1"
steps = 300
eval_every = 100
checkpoint_every = 100
EOF
runs_total=8

say "local grid"
"$fpsim" grid "$T/spec.toml" --out "$T/local.h5" --runs-dir "$T/local.runs" --jobs 2 >"$T/log/local.txt" 2>&1 \
  || { cat "$T/log/local.txt"; fail "the local grid failed"; }

# Submits; sets array_job and merge_job from submit.sh's last lines.
submit() {
  local text
  text="$("$here/submit.sh" "$@")" || { echo "$text"; fail "submit.sh $* failed"; }
  echo "$text" | sed 's/^/    /'
  array_job="$(sed -n 's/^array_job=//p' <<<"$text")"
  merge_job="$(sed -n 's/^merge_job=//p' <<<"$text")"
  [ -n "$array_job" ] && [ -n "$merge_job" ] || fail "submit.sh printed no job ids"
}
# Waits until none of the given jobs is queued or running (at most 10 minutes).
wait_jobs() {
  for _ in $(seq 3000); do
    [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0
    sleep 0.2
  done
  squeue
  fail "jobs $1 still queued after 10 minutes"
}
state() { scontrol show job "$1" | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1; }
# Every dataset under /results of $2 equal to $1's, bit for bit (same names, types, shapes and bytes).
compare() {
  python3 - "$1" "$2" <<'EOF'
import sys, h5py
def datasets(path):
    out = {}
    def visit(name, o):
        if isinstance(o, h5py.Dataset):
            v = o[()]
            # Numbers by their bytes (NaN == NaN, -0 != +0); strings (object arrays) by value.
            if isinstance(v, (bytes, str)): key = v
            else: key = v.tolist() if v.dtype == object else v.tobytes()
            out[name] = (o.dtype, o.shape, key)
    with h5py.File(path, "r") as f:
        f["results"].visititems(visit)
    return out
a, b = datasets(sys.argv[1]), datasets(sys.argv[2])
if not a: sys.exit("no datasets under /results in " + sys.argv[1])
bad = [n for n in sorted(set(a) | set(b)) if a.get(n) != b.get(n)]
if bad: sys.exit("/results differ in: " + ", ".join(bad))
print(f"{len(a)} datasets under /results identical: " + ", ".join(sorted(a)))
EOF
}
# "path sha256 mtime_ns" of every run file that holds a finished run.
finished_runs() {
  python3 - "$1" <<'EOF'
import sys, os, glob, hashlib, h5py
for p in sorted(glob.glob(os.path.join(sys.argv[1], "*.h5"))):
    try:
        with h5py.File(p, "r") as f: done = "runs/run" in f
    except OSError:
        done = False  # a file cut off by the kill
    if done:
        print(p, hashlib.sha256(open(p, "rb").read()).hexdigest(), os.stat(p).st_mtime_ns)
EOF
}

say "submit: 3 tasks of 1 CPU on $cpus CPUs, and the merge"
submit "$T/spec.toml" "$T/a/grid.h5" --tasks 3 --cpus 1 --time 10:00
wait_jobs "$array_job,$merge_job"
[ "$(state "$merge_job")" = COMPLETED ] || fail "merge job $merge_job ended $(state "$merge_job")"
compare "$T/local.h5" "$T/a/grid.h5" || fail "the merged grid differs from the local one"

# 4. Cancel one task in the middle of its runs, then resubmit.
say "submit into a fresh directory: 2 tasks of 1 CPU; task 1 is cancelled in the middle of a run"
submit "$T/spec.toml" "$T/b/grid.h5" --tasks 2 --cpus 1 --time 10:00 --keep-runs
first_array=$array_job first_merge=$merge_job
log="$T/b/grid.slurm-logs/task-${array_job}_1.log"
for _ in $(seq 3000); do
  grep -q '^runs [1-3]/4' "$log" 2>/dev/null && break
  sleep 0.1
done
grep -q '^runs [1-3]/4' "$log" || fail "task ${array_job}_1 never reported a finished run with more to go"
# The run in flight in that task (its `fpsim worker`'s --out or --resume file): cancel it between
# steps 101 and 120, past its checkpoint at step 100, which the resubmission resumes from. scancel sends
# SIGTERM to every process of the task: the grid dies, the worker stops after its current step.
inflight=""
for _ in $(seq 600); do
  for p in $(scontrol listpids "$(squeue -h -j "${array_job}_1" -o %A)" 2>/dev/null | awk 'NR > 1 { print $1 }'); do
    args="$(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null || true)"
    grep -qxE 'worker|train' <<<"$args" && inflight="$(grep -A1 -xE -- '--out|--resume' <<<"$args" | tail -n 1)"
  done
  [ -n "$inflight" ] && break
  sleep 0.1
done
[ -n "$inflight" ] || fail "found no fpsim worker in task ${array_job}_1"
for _ in $(seq 3000); do
  grep -qE '^step 1(0[1-9]|1[0-9])/300' "${inflight%.h5}.log" 2>/dev/null && break
  sleep 0.1
done
grep -qE '^step 1(0[1-9]|1[0-9])/300' "${inflight%.h5}.log" || fail "$(basename "$inflight") never logged step 101 to 119"
scancel "${array_job}_1"
wait_jobs "$array_job,$merge_job"
[ "$(state "${array_job}_1")" = CANCELLED ] || fail "task ${array_job}_1 ended $(state "${array_job}_1"), not CANCELLED: it finished before the cancel"
[ "$(state "${array_job}_0")" = COMPLETED ] || fail "task ${array_job}_0 ended $(state "${array_job}_0")"
[ "$(state "$merge_job")" = CANCELLED ] || fail "merge job $merge_job ended $(state "$merge_job"), not CANCELLED (its dependency failed)"
[ ! -e "$T/b/grid.h5" ] || fail "the merge wrote $T/b/grid.h5 although a task was cancelled"
# The worker stopped cleanly (it takes SIGTERM like Ctrl-C), not killed mid-write.
cp "${inflight%.h5}.log" "$T/log/cancelled-run.log"
grep -q '^fpsim: interrupted; continue with' "$T/log/cancelled-run.log" \
  || fail "the worker of $(basename "$inflight") did not stop cleanly on scancel: $(tail -n 2 "$T/log/cancelled-run.log")"
before="$(finished_runs "$T/b/grid.runs")"
done_before="$(grep -c . <<<"$before" || true)"
[ "$done_before" -lt "$runs_total" ] || fail "all $runs_total runs finished before the cancel took effect"
say "cancelled with $done_before of $runs_total runs finished, $(basename "$inflight") at $(grep -E '^step' "${inflight%.h5}.log" | tail -n 1 | cut -d' ' -f2); resubmitting the same command"
submit "$T/spec.toml" "$T/b/grid.h5" --tasks 2 --cpus 1 --time 10:00 --keep-runs
wait_jobs "$array_job,$merge_job"
[ "$(state "$merge_job")" = COMPLETED ] || fail "merge job $merge_job ended $(state "$merge_job")"
compare "$T/local.h5" "$T/b/grid.h5" || fail "the resumed grid differs from the local one"
after="$(finished_runs "$T/b/grid.runs")"
[ "$(grep -c . <<<"$after")" = "$runs_total" ] || fail "not every run file is finished after the resubmission"
while read -r line; do
  grep -qxF "$line" <<<"$after" || fail "a run finished before the cancel was rewritten: ${line%% *}"
done <<<"$before"
resumed_at="$(grep -m 1 -E '^step' "${inflight%.h5}.log" | sed 's/^step \([0-9]*\).*/\1/')"
[ "${resumed_at:-0}" -gt 100 ] || fail "the run in flight started over (first step ${resumed_at:-none}) instead of resuming from its checkpoint at step 100"
say "the run in flight resumed from its checkpoint (first step logged: $resumed_at)"
say "the $done_before runs finished before the cancel were kept as they were (same bytes and mtime)"
say "passed in $((SECONDS - started)) s (array jobs $first_array and $array_job, merge jobs $first_merge and $merge_job)"
