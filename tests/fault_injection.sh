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
# The mid-write kills use strace's fault injection (SIGKILL at the N-th rename, after the temporary
# file is written, before it replaces the target); without a working strace that part is skipped
# (it says so). KEEP_GOING=1 reports every failed check, not only the first.
#   tests/fault_injection.sh BUILD_DIR/tools/lethe PART
set -euo pipefail
self=$(realpath "$0")
lethe=$(realpath "$1")
part=$2
name="fault_injection.sh $part"
source "$(dirname "$self")/cli_lib.sh"
l() { timeout 300 "$lethe" "$@"; }
temps_in() { find "$1" -name '.*.tmp-*'; }
no_temp() { [[ -z $(temps_in "$1") ]] || fail "${2:-}temporary files left: $(temps_in "$1" | tr '\n' ' ')"; }

# strace that can trace a child and inject a fault, or nothing.
strace_ok=0
if command -v strace > /dev/null && strace -f -qq -o /dev/null -e trace=rename -e inject=rename:error=EPERM true 2> /dev/null; then
  strace_ok=1
fi
# killed_at_rename N ERR CMD...: runs CMD (its stderr to ERR) and SIGKILLs it at the entry of its
# N-th rename(2), which is not run (error=): the temporary file of the N-th atomic write is whole on
# disk but has not replaced its target. (Not --seccomp-bpf: strace 6.1 then injects no signal.)
killed_at_rename() {
  local n=$1 err=$2 rc=0
  shift 2
  # In a subshell whose stderr is dropped: it, not this shell, reports the kill ("Killed").
  (strace -f -qq -o /dev/null -e trace=rename,renameat,renameat2 \
    -e inject=rename,renameat,renameat2:error=EIO:signal=KILL:when="$n" "$@" > /dev/null 2> "$err"; exit $?) 2> /dev/null \
    || rc=$?
  [[ $rc -eq 137 ]] || fail "$* was not killed at rename $n (exit code $rc: $(tail -1 "$err"))"
}

# started PATTERN ERR CMD...: starts CMD in the background, its stderr to ERR, and returns (its PID
# in $pid) once ERR holds PATTERN or CMD has ended.
started() {
  local pattern=$1 err=$2 t
  shift 2
  "$@" > /dev/null 2> "$err" &
  pid=$!
  for ((t = 0; t < 6000; ++t)); do
    grep -q -- "$pattern" "$err" && return 0
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
    echo "$name: SKIPPED: cannot mount tmpfs: ${reason//$'\n'/ } (and no user namespace: unshare -rm failed)"
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
    echo "(mid-write kills skipped: strace missing or not allowed to trace)"
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
    # relearning's record, 3: results.json (the phases' renames as tools/lethe/run.cpp orders them).
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
    echo "(mid-write kills skipped: strace missing or not allowed to trace)"
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

*)
  echo "usage: tests/fault_injection.sh LETHE disk-full|kill-train|kill-run|corrupt-study" >&2
  exit 2
  ;;
esac
((failures == 0)) || { echo "$name: $failures check(s) FAILED"; exit 1; }
echo "$name: all checks passed"
