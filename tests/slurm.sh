#!/usr/bin/env bash
# `lethe run --slurm` on a real Slurm (issue 16): tools/slurm-local starts a one-node cluster from
# Debian's packages; a --quick study submitted through it runs every phase as a Slurm job (the
# cluster's job log says so), gives the in-process run's checkpoints and results, and a job killed
# mid-run (scancel) is run again, alone with what depends on it, by the same command. Then the
# refusals: sbatch not on PATH, a partition Slurm rejects (its message passed on), a config changed
# between the submission and a job's start. Skips, saying why, where Slurm cannot start.
#   tests/slurm.sh BUILD_DIR/tools/lethe
set -euo pipefail
lethe=$1
name=slurm.sh
source "$(dirname "$0")/cli_lib.sh"
small_datasets 4000 500
trap 'echo "$name: FAILED: line $LINENO: $BASH_COMMAND" >&2' ERR

cluster=$work/cluster
slurm_local=$(cd "$(dirname "$0")/.." && pwd)/tools/slurm-local
if ! "$slurm_local" start "$cluster" > "$work/cluster.out" 2>&1; then
  skip_check "a local Slurm did not start: $(tail -3 "$work/cluster.out" | tr '\n' ' ')"
  exit 77
fi
trap '"$slurm_local" stop "$cluster"; rm -rf "$work"' EXIT
export SLURM_CONF=$cluster/slurm.conf

cd "$work"  # the jobs run in the folder they were submitted from: paths relative to it
cat > s.toml <<TOML
[study]
name = "cluster"
model = "mlp"
scenarios = ["random:0.1"]
methods = ["ft", "ieu"]
threads = 1
[train]
batch = 128
[relearn]
batch = 64
[unlearn]
batch = 64
TOML
# phase_job ID: the id of the job of phase ID among those the last submission printed.
phase_job() { squeue -h -o '%i %j' | awk -v n="lethe:cluster-quick:$1" '$2 == n { print $1 }'; }

echo "== the in-process run, moved away"
"$lethe" run s.toml --out o --quick > /dev/null 2> whole.err || fail "lethe run --quick: $(tail -3 whole.err)"
mv o whole
phases=$("$lethe" run s.toml --out o --quick --plan | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["phases"]))')

echo "== --dry-run prints every job script and submits nothing"
"$lethe" run s.toml --out o --quick --slurm --dry-run > dry.txt
[[ $(grep -c '^#!/bin/bash' dry.txt) -eq $phases ]] || fail "--dry-run printed not $phases scripts: $(head -5 dry.txt)"
grep -q -- "--dependency=afterok:<r0/original>:<r0/random-0.1/split>" dry.txt || fail "--dry-run shows no dependencies"
[[ -z $(squeue -h) ]] || fail "--dry-run submitted: $(squeue -h)"

echo "== submitted, the original's job cancelled (scancel) while it runs, then the same command"
"$lethe" run s.toml --out o --quick --slurm --no-wait > jobs.txt 2> submit.err || fail "--no-wait: $(tail -3 submit.err)"
[[ $(wc -w < jobs.txt) -eq $phases ]] || fail "--no-wait printed not $phases job ids: $(cat jobs.txt)"
job=$(phase_job r0/original)
# The waits below are generous bounds (a loaded CI machine schedules and starts jobs slowly); each
# ends as soon as what it waits for happens.
for _ in $(seq 600); do
  pid=$(pgrep -f -- "--phase=r0/original" || true)
  [[ -n $pid ]] && break
  sleep 0.1
done
[[ -n $pid ]] || fail "the original's job never started: $(squeue -h)"
kill -STOP $pid  # held where it is, so that it cannot finish before scancel
# The split waits for nothing: let its job end before everything is cancelled. Cancelled between
# writing its output and ending, it would count as done but not as a completed job (seen once).
split_job=$(phase_job r0/random-0.1/split)
for _ in $(seq 600); do
  [[ -z $split_job || -z $(squeue -h -j "$split_job" 2> /dev/null) ]] && break
  sleep 0.1
done
[[ ! -e o/replicate-0/original.safetensors.done.json ]] || fail "the original was done before its job was cancelled"
scancel "$job"
scancel $(cat jobs.txt)  # the jobs that wait for it would wait for ever
for _ in $(seq 300); do [[ -z $(squeue -h) ]] && break; sleep 0.2; done
[[ -z $(squeue -h) ]] || fail "jobs still queued 60 s after scancel: $(squeue -h)"
grep -q "JobId=$job .*JobState=CANCELLED" "$cluster/jobcomp.txt" || fail "job $job was not cancelled: $(grep "JobId=$job " "$cluster/jobcomp.txt")"
split_done=$([[ -e o/replicate-0/random-0.1/split.json.done.json ]] && echo 1 || echo 0)
"$lethe" run s.toml --out o --quick --slurm --poll 1 > run.out 2> run.err || fail "--slurm: $(tail -3 run.err)"
grep -q "submitted $((phases - split_done)) of $phases phases" run.err ||
  fail "not only the phases left were submitted again: $(grep submitted run.err)"
(cd whole && find . -name '*.safetensors' | sort | xargs md5sum) > whole.sums
(cd o && md5sum -c --quiet ../whole.sums) || fail "a phase run as a Slurm job made another checkpoint"
same_results whole o || fail "results.json differs from the in-process run's beyond its timings"
# Every phase of the plan finished as a job of the cluster.
"$lethe" run s.toml --out o --quick --plan > plan.json
python3 - plan.json "$cluster/jobcomp.txt" <<'PY' || fail "a phase did not run as a Slurm job"
import json, re, sys
ids = [p["id"] for p in json.load(open(sys.argv[1]))["phases"]]
done = set(re.findall(r"Name=lethe:cluster-quick:(\S+) JobState=COMPLETED", open(sys.argv[2]).read()))
assert set(ids) <= done, sorted(set(ids) - done)
PY
"$lethe" run s.toml --out o --quick --slurm > again.out 2> again.err
grep -q "every phase of cluster-quick is done" again.out || fail "a finished study was submitted again: $(cat again.out again.err)"

echo "== refusals: sbatch not on PATH, a partition Slurm rejects, a config changed after the submission"
rm -rf o
rc=0
env PATH=/nonexistent "$lethe" run s.toml --out o --quick --slurm > nopath.out 2> nopath.err || rc=$?
((rc != 0)) && grep -q "sbatch is not on PATH" nopath.err || fail "sbatch not on PATH: exit $rc, $(cat nopath.err)"
refused "sbatch refused phase r0/original: sbatch: error: .*partition" run s.toml --out o --quick --slurm --partition nosuch
"$lethe" run s.toml --out o --quick --slurm --no-wait --sbatch-args=--hold > held.txt 2> held.err ||
  fail "--sbatch-args=--hold: $(tail -3 held.err)"
echo "lr = 0.5" >> s.toml  # the [unlearn] table's
job=$(phase_job r0/original)
scontrol release "$job"
for _ in $(seq 450); do [[ -z $(squeue -h -j "$job" 2> /dev/null) ]] && break; sleep 0.2; done
[[ -z $(squeue -h -j "$job" 2> /dev/null) ]] || fail "the released job $job did not end within 90 s: $(squeue -h)"
scancel $(cat held.txt)
grep -q "not the one this job was submitted with" o/logs/r0/original.log ||
  fail "a job ran a phase of a changed config: $(tail -3 o/logs/r0/original.log)"
[[ ! -e o/replicate-0/original.safetensors ]] || fail "the refused job trained the original"
echo "$name: ok"
