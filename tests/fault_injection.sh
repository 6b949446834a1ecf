#!/usr/bin/env bash
# Fault injection into the `lethe` CLI on real Fashion-MNIST (small --limit runs): one part per
# ctest entry.
#   disk-full      every output on a full file system (a small tmpfs) fails with exit code 1 and a
#                  clear message, leaves no temporary file and the previous file intact: checkpoints,
#                  splits, train --log, eval --csv, relearn --curves and a study's files. Needs a
#                  tmpfs mount: as root, or in a user namespace (unshare -rm); exits 77 (skipped)
#                  where neither is allowed.
#   kill-train     SIGKILL of `lethe train` at random moments, and mid-write of each checkpoint,
#                  leaves no checkpoint or the previous whole one; `lethe train --resume` then
#                  finishes byte-identical to an uninterrupted run and no temporary file is left.
#   kill-run       SIGKILL of `lethe run` (a tiny study) mid-write at several phases and at random
#                  moments; each re-run resumes, and the study ends identical to an uninterrupted
#                  one with no temporary file left.
#   corrupt-study  a study's output that is corrupt or edited while its phase record is intact
#                  (NAME.done.json) re-runs that phase, and the study ends identical.
#   interrupt-run  Ctrl-C (SIGINT) of `lethe run` mid-write, right after a phase's record and in
#                  the middle of a phase, and SIGKILL right after a phase's record: each interrupted
#                  run exits with 130 (SIGINT) and says how to resume, each re-run resumes (the phases
#                  finished before are neither run nor written again), and the study ends identical
#                  to an uninterrupted one with no temporary file left.
# The mid-write kills and the signals at a chosen write use strace's fault injection (a signal at
# the N-th rename or fsync); without a working strace those checks are skipped (they say so).
# KEEP_GOING=1 reports every failed check, not only the first.
#   tests/fault_injection.sh BUILD_DIR/tools/lethe PART
set -euo pipefail
self=$(realpath "$0")
lethe=$(realpath "$1")
part=$2
name="fault_injection.sh $part"
source "$(dirname "$self")/cli_lib.sh"
small_datasets 4000 1000
l() { timeout 300 "$lethe" "$@"; }
temps_in() { find "$1" -name '.*.tmp-*'; }
no_temp() { [[ -z $(temps_in "$1") ]] || fail "${2:-}temporary files left: $(temps_in "$1" | tr '\n' ' ')"; }

# strace that can trace a child and inject a fault, or nothing.
strace_ok=0
if command -v strace > /dev/null && strace -f -qq -o /dev/null -e trace=rename -e inject=rename:error=EPERM true 2> /dev/null; then
  strace_ok=1
fi
# signalled_at SYSCALLS:WHEN RC ERR CMD...: runs CMD (its stderr to ERR) under strace's injection
# SYSCALLS:WHEN (-e inject=) and checks that it ended with exit code RC. A signal without error= is
# sent at the entry of the syscall, which runs: SIGINT's handler runs once it has, SIGKILL kills
# before it (so a kill right after the N-th write's rename goes at the fsync that follows it, the
# 2N-th: each atomic write fsyncs its file, renames it, fsyncs the folder). With error= the
# syscall is not run and the signal comes at its exit. (Not --seccomp-bpf: strace 6.1 then injects
# no signal.)
signalled_at() {
  local inject=$1 expected=$2 err=$3 rc=0
  shift 3
  # In a subshell whose stderr is dropped: it, not this shell, reports a kill ("Killed").
  (strace -f -qq -o /dev/null -e trace="${inject%%:*}" -e inject="$inject" "$@" > /dev/null 2> "$err"; exit $?) \
    2> /dev/null || rc=$?
  [[ $rc -eq $expected ]] || fail "$* did not end with exit code $expected at $inject (exit code $rc: $(tail -1 "$err"))"
}
renames=rename,renameat,renameat2
# killed_at_rename N ERR CMD...: SIGKILL at the entry of CMD's N-th rename(2), which is not run: the
# temporary file of the N-th atomic write is whole on disk but has not replaced its target.
killed_at_rename() { signalled_at "$renames:error=EIO:signal=KILL:when=$1" 137 "${@:2}"; }

# started PATTERN ERR CMD...: starts CMD in the background, its stderr to ERR, and returns (its PID
# in $pid) once ERR holds PATTERN or CMD has ended.
started() {
  local pattern=$1 err=$2 t
  shift 2
  "$@" > /dev/null 2> "$err" &
  pid=$!
  for ((t = 0; t < 6000; ++t)); do
    grep -qs -- "$pattern" "$err" && return 0  # -s: the file may not be made yet
    kill -0 "$pid" 2> /dev/null || return 0
    sleep 0.01
  done
}

cleanup() {  # cli_lib.sh's $work, and the tmpfs mounted in it
  [[ -n ${mnt:-} ]] && umount "$mnt" 2> /dev/null
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

# A tiny study: one scenario, one method, a few steps (seconds).
write_study() {
  cat > "$1" <<TOML
[study]
name = "tiny"
model = "mlp"
scenarios = ["random:0.1"]
methods = ["ft"]
[train]
limit = 1024
epochs = 2
[split]
split-limit = 1024
[unlearn]
steps = 4
batch = 64
[relearn]
steps = ${2:-10}
batch = 64
TOML
}
# same_study DIR REF: the models and splits byte for byte, relearn.json and results.csv but for
# wall times.
same_study() {
  local f
  for f in replicate-0/original.safetensors replicate-0/random-0.1/split.json replicate-0/random-0.1/retrain.safetensors \
    replicate-0/random-0.1/ft.safetensors; do
    cmp -s "$1/$f" "$2/$f" || { fail "$1/$f differs from the uninterrupted study's"; return 0; }
  done
  python3 - "$1" "$2" <<'PY' || fail "$1: relearn.json or results.csv differ from the uninterrupted study's"
import csv, json, sys
def timeless(x):
    if isinstance(x, dict): return {k: timeless(v) for k, v in x.items() if not k.endswith("seconds")}
    if isinstance(x, list): return [timeless(v) for v in x]
    return x
a, b = (json.load(open(d + "/replicate-0/random-0.1/relearn.json")) for d in sys.argv[1:])
assert timeless(a) == timeless(b)
ra, rb = ([timeless(r) for r in csv.DictReader(open(d + "/results.csv"))] for d in sys.argv[1:])
assert ra == rb and len(ra) == 3, (ra, rb)
PY
}

case $part in
disk-full)
  # A tmpfs to fill: as root directly, else (or where root may not mount) in a user namespace.
  probe=$work/probe
  mkdir -p "$probe"
  if ! reason=$(mount -t tmpfs -o size=1m tmpfs "$probe" 2>&1); then
    if [[ -z ${LETHE_FAULT_USERNS:-} ]] && unshare -rm true 2> /dev/null; then
      rm -rf "$work"
      trap - EXIT
      cd /
      LETHE_FAULT_USERNS=1 exec unshare -rm "$self" "$lethe" "$part"
    fi
    skip_check "cannot mount tmpfs: ${reason//$'\n'/ } (and no user namespace: unshare -rm failed)"
    exit 77
  fi
  umount "$probe"
  mnt=$work/mnt
  mkdir -p "$mnt" keep
  mount -t tmpfs -o size=16m tmpfs "$mnt"
  # pad FILE: appends one line (a JSON object for .log files) so that FILE ends 40 bytes short of a
  # 4 KiB page: on the full disk its last page takes 40 more bytes, so the next write is cut part-way.
  pad() {
    python3 - "$1" <<'PY'
import os, sys
path = sys.argv[1]
room = (4096 - (os.path.getsize(path) + 40) % 4096) % 4096
room += 4096 if room < 20 else 0
line = '{"pad":"%s"}' % ("x" * (room - 11)) if path.endswith(".log") else "pad," + "x" * (room - 5)
open(path, "a").write(line + "\n")
PY
  }
  echo "== the previous files: a checkpoint, a split, a log, CSVs, a study"
  l train "${small[@]}" --epochs 1 --out "$mnt/a.st" > /dev/null 2>&1
  l split --scenario random:0.1 --split-limit 1024 --out "$mnt/s.json" > /dev/null
  l train "${small[@]}" --epochs 1 --out x.st --log "$mnt/train.log" --log-every 1 > /dev/null 2>&1
  pad "$mnt/train.log"
  l eval --split "$mnt/s.json" --checkpoint "$mnt/a.st" --csv "$mnt/e.csv" > /dev/null
  pad "$mnt/e.csv"
  l relearn --split "$mnt/s.json" --original "$mnt/a.st" --steps 4 --batch 64 --curves "$mnt/c.csv" > /dev/null 2>&1
  pad "$mnt/c.csv"
  write_study study.toml
  l run study.toml --out "$mnt/study" > /dev/null 2>&1 || fail "the study did not run on the tmpfs"
  python3 -c "import json,sys; [json.loads(x) for x in open(sys.argv[1])]" "$mnt/train.log" || fail "the padded log is not JSON lines"
  cp -a "$mnt/." keep/
  dd if=/dev/zero of="$mnt/fill" bs=4096 2> /dev/null || true  # until the disk is full
  # full WHAT FILE CMD...: CMD exits with 1 and names FILE and the full disk; nothing is left behind.
  full() {
    local what=$1 file=$2 rc=0
    shift 2
    l "$@" > out.txt 2> err.txt || rc=$?
    [[ $rc -eq 1 ]] || fail "$what: exit code $rc on a full disk, not 1 ($(tail -2 err.txt))"
    grep -q "No space left on device" err.txt || fail "$what: no 'No space left on device': $(tail -2 err.txt)"
    grep -qF "$file" err.txt || fail "$what: the error does not name $file: $(tail -2 err.txt)"
    [[ -z ${VERBOSE:-} ]] || tail -1 err.txt
    no_temp "$mnt" "$what: "
  }
  echo "== each output on the full disk: exit code 1, a clear message, no temporary file, the old file intact"
  full "train --out" "$mnt/a.st" train "${small[@]}" --epochs 1 --seed 9 --out "$mnt/a.st"
  cmp -s "$mnt/a.st" keep/a.st || fail "the previous checkpoint was changed"
  full "split --out" "$mnt/s.json" split --scenario random:0.1 --split-seed 7 --split-limit 1024 --out "$mnt/s.json"
  cmp -s "$mnt/s.json" keep/s.json || fail "the previous split was changed"
  full "train --log" "$mnt/train.log" train "${small[@]}" --epochs 1 --out y.st --log "$mnt/train.log" --log-every 1
  cmp -s "$mnt/train.log" keep/train.log || fail "train --log left a part-written line: $(tail -c 100 "$mnt/train.log")"
  full "eval --csv" "$mnt/e.csv" eval --split "$mnt/s.json" --checkpoint "$mnt/a.st" --csv "$mnt/e.csv"
  cmp -s "$mnt/e.csv" keep/e.csv || fail "eval --csv left a part-written row: $(tail -c 100 "$mnt/e.csv")"
  full "unlearn --csv" "$mnt/e.csv" unlearn --method ft --split "$mnt/s.json" --from "$mnt/a.st" --out u.st \
    --steps 2 --csv "$mnt/e.csv"
  cmp -s "$mnt/e.csv" keep/e.csv || fail "unlearn --csv left a part-written row: $(tail -c 100 "$mnt/e.csv")"
  full "relearn --curves" "$mnt/c.csv" relearn --split "$mnt/s.json" --original "$mnt/a.st" --steps 4 --batch 64 \
    --curves "$mnt/c.csv"
  cmp -s "$mnt/c.csv" keep/c.csv || fail "relearn --curves left part-written rows: $(tail -c 100 "$mnt/c.csv")"
  write_study study.toml 12  # new relearning flags: that phase runs again and writes on the full disk
  full "lethe run" "$mnt/study" run study.toml --out "$mnt/study"
  diff -r "$mnt/study" keep/study > /dev/null || fail "the failed study run changed its files: $(diff -rq "$mnt/study" keep/study)"
  ;;

kill-train)
  train3=("${small[@]}" --epochs 3 --seed 2)
  echo "== the checkpoints an uninterrupted run writes after each epoch"
  # The random kills fall within 1.2 times the training time of this run (from its first line,
  # written once the data is loaded, to its end).
  started "lethe train:" whole.err "$lethe" train "${train3[@]}" --out whole.st
  start=$(date +%s.%N)
  wait "$pid" || fail "the uninterrupted run failed: $(tail -2 whole.err)"
  took=$(python3 -c "print($(date +%s.%N) - $start)")
  l train "${train3[@]}" --stop-after 1 --out e1.st > /dev/null 2>&1
  l train --resume e1.st --threads 2 --stop-after 1 --out e2.st > /dev/null 2>&1
  l train --resume e2.st --threads 2 --stop-after 1 --out e3.st > /dev/null 2>&1
  cmp -s e3.st whole.st || fail "epoch by epoch differs from the uninterrupted run"
  # after_kill: k.st is missing or one of the epochs' whole checkpoints; then the README's
  # `lethe train --resume k.st` (or a fresh start) finishes it as the uninterrupted run.
  after_kill() {
    if [[ -e k.st ]]; then
      cmp -s k.st e1.st || cmp -s k.st e2.st || cmp -s k.st e3.st || fail "$1: k.st is not a whole checkpoint of an epoch"
      l train --resume k.st --threads 2 > /dev/null 2> err.txt || fail "$1: --resume failed: $(tail -2 err.txt)"
    else
      l train "${train3[@]}" --out k.st > /dev/null 2>&1
    fi
    cmp -s k.st whole.st || fail "$1: the resumed run differs from the uninterrupted one"
    no_temp . "$1: "
  }
  seed=${LETHE_FAULT_SEED:-$RANDOM}
  RANDOM=$seed
  echo "== SIGKILL at random moments (seed $seed; LETHE_FAULT_SEED=$seed repeats them)"
  for i in 1 2 3 4 5; do
    rm -f k.st
    r=$((RANDOM % 1000))  # not inside $(...): a subshell's RANDOM does not advance this one's
    delay=$(python3 -c "print(round(1.2 * $took * $r / 1000, 3))")
    started "lethe train:" k.err "$lethe" train "${train3[@]}" --out k.st
    sleep "$delay"
    kill -KILL "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    echo "   killed ${delay} s into training: $( [[ -e k.st ]] && echo "k.st is $(for e in e1 e2 e3; do cmp -s k.st $e.st && echo $e; done)" || echo "no k.st")"
    after_kill "kill $delay s into training"
  done
  if ((strace_ok)); then
    echo "== SIGKILL mid-write of each epoch's checkpoint (strace: at its rename)"
    for n in 1 2 3; do
      rm -f k.st
      killed_at_rename "$n" err.txt "$lethe" train "${train3[@]}" --out k.st
      [[ -n $(temps_in .) ]] || fail "kill at rename $n: no temporary file: the fault did not land mid-write"
      after_kill "kill mid-write of epoch $n"
    done
  else
    skip_check "mid-write kills: strace missing or not allowed to trace"
  fi
  ;;

kill-run)
  # Each study is DIR/study, run from DIR: checkpoints record the path they were made from, so
  # studies in folders of the same relative name are byte-identical.
  write_study study.toml
  mkdir -p ref mid rnd
  echo "== the uninterrupted study"
  start=$(date +%s.%N)
  (cd ref && l run ../study.toml --out study > /dev/null 2>&1)
  took=$(python3 -c "print($(date +%s.%N) - $start)")  # a random kill falls within a quarter of this
  if ((strace_ok)); then
    echo "== SIGKILL mid-write at successive phases (strace: at the N-th rename of each run), each re-run resumes"
    # 3: the original's 2nd epoch, 4: the split, 3: the retrained model, 4: ft's record, 4: the
    # relearning's record, 3: results.json (the phases' renames as unlearn/study/study_runner.cpp orders them).
    cd mid
    i=0
    for n in 3 4 3 4 4 3; do
      i=$((i + 1))
      killed_at_rename "$n" "run$i.err" "$lethe" run ../study.toml --out study
      [[ -n $(temps_in study) ]] || fail "run $i (kill at rename $n): no temporary file: the fault did not land mid-write"
    done
    grep -q "resuming after epoch 1" run2.err || fail "the run after a kill mid-training did not resume the training"
    l run ../study.toml --out study > /dev/null 2> final.err || fail "the last re-run failed: $(tail -3 final.err)"
    cd ..
    same_study mid/study ref/study
    no_temp mid/study "after the re-runs: "
  else
    skip_check "mid-write kills: strace missing or not allowed to trace"
  fi
  seed=${LETHE_FAULT_SEED:-$RANDOM}
  RANDOM=$seed
  echo "== SIGKILL at random moments of phases 1, 3 and 5 (seed $seed; LETHE_FAULT_SEED=$seed repeats them)"
  cd rnd
  for p in 1 3 5; do
    started "== \[$p/" "run$p.err" "$lethe" run ../study.toml --out study  # until phase p begins
    r=$((RANDOM % 1000))
    delay=$(python3 -c "print(round($took / 4 * $r / 1000, 3))")
    sleep "$delay"
    kill -KILL "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    echo "   killed $delay s into phase $p"
  done
  l run ../study.toml --out study > /dev/null 2> final.err || fail "the re-run after random kills failed: $(tail -3 final.err)"
  cd ..
  same_study rnd/study ref/study
  no_temp rnd/study "after random kills: "
  ;;

corrupt-study)
  # As in kill-run, both studies are DIR/study, run from DIR.
  write_study study.toml
  mkdir -p ref
  echo "== the study"
  (cd ref && l run ../study.toml --out study > /dev/null 2>&1)
  cp -a ref cur
  cd cur
  d=study/replicate-0/random-0.1
  fresh() { rm -rf study && cp -a ../ref/study study; }  # each case starts from the finished study
  # rerun WHAT OUTPUT: the study re-runs OUTPUT's phase (and ends as the reference).
  rerun() {
    l run ../study.toml --out study > /dev/null 2> err.txt || { fail "$1: the re-run failed: $(tail -3 err.txt)"; return 0; }
    grep -q "done before: $2" err.txt && fail "$1: the phase of $2 was skipped"
    same_study study ../ref/study
  }
  echo "== a truncated relearn.json"
  fresh
  head -c 100 ../ref/$d/relearn.json > $d/relearn.json
  rerun "truncated relearn.json" $d/relearn.json
  echo "== one flipped byte in ft.safetensors' weights (the file still loads)"
  fresh
  python3 -c "import sys; f = open(sys.argv[1], 'r+b'); f.seek(600000); b = f.read(1); f.seek(600000); f.write(bytes([b[0] ^ 0xff]))" \
    $d/ft.safetensors
  l eval --checkpoint $d/ft.safetensors > /dev/null || fail "the flipped checkpoint should still load"
  rerun "flipped byte in ft.safetensors" $d/ft.safetensors
  echo "== split.json replaced by another valid split"
  fresh
  l split --scenario random:0.1 --split-seed 5 --split-limit 1024 --out $d/split.json > /dev/null
  rerun "edited split.json" $d/split.json
  echo "== original.safetensors replaced by another valid checkpoint"
  fresh
  l train "${small[@]}" --epochs 2 --seed 8 --out study/replicate-0/original.safetensors > /dev/null 2>&1
  rerun "replaced original.safetensors" study/replicate-0/original.safetensors
  cd ..
  ;;

interrupt-run)
  # One study interrupted again and again, each re-run going further; as in kill-run both studies
  # are DIR/study, run from DIR. lethe run's SIGINT handler prints a line and exits (_exit) with 130
  # at once: a write it cuts short leaves its temporary file, which the next write of that file
  # removes.
  write_study study.toml
  mkdir -p ref cut
  echo "== the uninterrupted study"
  (cd ref && l run ../study.toml --out study > /dev/null 2>&1)
  cd cut
  run=("$lethe" run ../study.toml --out study)
  d=study/replicate-0/random-0.1
  # finished_phases: each phase's record (NAME.done.json) and output with their inodes and mtimes,
  # which a phase run again or a file written again changes.
  finished_phases() {
    local r
    for r in $(find study -name '*.done.json' 2> /dev/null | sort); do stat -c '%n %i %.9Y' "$r" "${r%.done.json}"; done
  }
  # kept PHASES WHAT: the phases finished in PHASES (finished_phases before the last run) are all
  # still there, neither run nor written again.
  kept() {
    local changed
    changed=$(comm -23 <(sort "$1") <(finished_phases | sort))
    [[ -z $changed ]] || fail "$2 ran or wrote again what was finished: ${changed//$'\n'/ }"
  }
  # said_interrupted ERR WHAT: the interrupted run said how to resume.
  said_interrupted() {
    grep -q "lethe run: interrupted; every finished phase is kept, run the same command again to resume" "$1" \
      || fail "$2: no word of the interruption: $(tail -2 "$1")"
  }
  if ((strace_ok)); then
    # The renames of a run from scratch (unlearn/study/study_runner.cpp, study_phases.cpp): 1 the original's pending record,
    # 2 and 3 its epochs, 4 its record, 5 the split, 6 its record, 7 the retrained model, 8 its record...
    echo "== Ctrl-C mid-write of the original's 2nd epoch (strace: SIGINT at the 3rd rename, not run)"
    signalled_at "$renames:error=EIO:signal=INT:when=3" 130 run1.err "${run[@]}"
    said_interrupted run1.err "Ctrl-C mid-write"
    echo "   left behind: $(temps_in study | tr '\n' ' ')"
    echo "== the re-run resumes the training; Ctrl-C right after the split's record (its 5th rename)"
    signalled_at "$renames:signal=INT:when=5" 130 run2.err "${run[@]}"
    grep -q "resuming after epoch 1" run2.err || fail "the re-run did not resume the original's training"
    said_interrupted run2.err "Ctrl-C after the split's record"
    [[ -f $d/split.json.done.json ]] || fail "Ctrl-C right after the split's record lost that record"
    no_temp study "after the re-run: "
    echo "== the re-run goes on; SIGKILL right after the retrained model's record (at the fsync after its 2nd rename)"
    finished_phases > phases.txt
    signalled_at "fsync:signal=KILL:when=4" 137 run3.err "${run[@]}"
    kept phases.txt "the re-run after Ctrl-C"
    [[ -f $d/retrain.safetensors.done.json ]] || fail "SIGKILL right after the retrained model's record lost that record"
  else
    skip_check "Ctrl-C and SIGKILL at chosen writes: strace missing or not allowed to trace"
  fi
  # A quarter into the last phase's computation, as long as the uninterrupted study's took.
  delay=$(python3 -c "import json; t = json.load(open('../ref/study/results.json'))['timings'][-1]; print(round(t['seconds'] / 4, 3))")
  echo "== Ctrl-C in the middle of the last phase (measure and relearn), $delay s into it"
  finished_phases > phases.txt
  started "== \[5/" run4.err "${run[@]}"
  sleep "$delay"
  kill -INT "$pid" 2> /dev/null || true
  rc=0
  wait "$pid" || rc=$?
  [[ $rc -eq 130 ]] || fail "Ctrl-C mid-phase: exit code $rc, not 130"
  said_interrupted run4.err "Ctrl-C mid-phase"
  kept phases.txt "the run after the SIGKILL"
  echo "== the last re-run finishes the study"
  finished_phases > phases.txt
  [[ $(grep -c . phases.txt) -eq 8 ]] || fail "the interrupted runs did not keep their 4 finished phases: $(cat phases.txt)"
  l run ../study.toml --out study > /dev/null 2> final.err || fail "the last re-run failed: $(tail -3 final.err)"
  kept phases.txt "the last re-run"
  cd ..
  same_study cut/study ref/study
  no_temp cut/study "after the re-runs: "
  ;;

*)
  echo "usage: tests/fault_injection.sh LETHE disk-full|kill-train|kill-run|corrupt-study|interrupt-run" >&2
  exit 2
  ;;
esac
((failures == 0)) || { echo "$name: $failures check(s) FAILED"; exit 1; }
echo "$name: all checks passed"
