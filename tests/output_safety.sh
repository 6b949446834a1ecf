#!/usr/bin/env bash
# Output safety of the `lethe` CLI (engine/file.h, README "Errors"), on real Fashion-MNIST (small
# --limit runs): an output that is a device or a FIFO is refused and left as it was; an output
# that names an input (however spelled) is refused before anything is written; a failed command
# leaves no output of its own (no split file, no checkpoint); temporary files of killed writers
# are cleaned up; `train --resume X` without --out writes back to X.
#   tests/output_safety.sh BUILD_DIR/tools/lethe
set -euo pipefail
lethe=$(realpath "$1")
name=output_safety.sh
source "$(dirname "$0")/cli_lib.sh"
small_datasets 4000 1000
cd "$work"
# Every command has a time limit: writing to a FIFO without a reader would block forever.
l() { timeout 120 "$lethe" "$@"; }
# refused WHAT PATTERN CMD...: CMD exits with 1 and says PATTERN (grep -E) on stderr.
refused() {
  local what=$1 pattern=$2 rc=0
  shift 2
  l "$@" > out.txt 2> err.txt || rc=$?
  [[ $rc -eq 1 ]] || { fail "$what: exit code $rc, not 1 ($(tail -3 err.txt))"; return 0; }
  grep -qE -- "$pattern" err.txt || fail "$what: unclear error: $(cat err.txt)"
}
# unchanged FILE...: each FILE is byte-identical to its copy in keep/ (made by keep FILE...).
keep() { mkdir -p keep; for f in "$@"; do cp -a "$f" keep/; done; }
unchanged() { for f in "$@"; do cmp -s "$f" "keep/$(basename "$f")" || fail "$f was changed"; done; }
no_temp() { ! compgen -G "$1/.*.tmp-*" > /dev/null || fail "temporary files left: $(ls -a "$1" | grep tmp-)"; }

echo "== setup: a checkpoint, a split, a retrained model"
l train "${small[@]}" --epochs 1 --seed 3 --out a.st --json > /dev/null
l split --scenario random:0.1 --split-limit 1024 --out s.json > /dev/null
l unlearn --method retrain --split s.json --from a.st --out rt.st --no-eval > /dev/null 2>&1

echo "== an output that is a FIFO or a device is refused, and left a FIFO or a device"
mkfifo fifo
refused "train --out FIFO" "fifo: exists and is a FIFO, not a regular file" train "${small[@]}" --epochs 1 --out fifo
grep -q "epoch 1/1" err.txt && fail "train --out FIFO trained before refusing the output"
refused "split --out FIFO" "exists and is a FIFO" split --scenario class:0 --out fifo
refused "unlearn --out FIFO" "exists and is a FIFO" unlearn --method ft --split s.json --from a.st --out fifo --steps 2
refused "unlearn --split-out FIFO" "exists and is a FIFO" unlearn --method ft --scenario class:1 --split-limit 1024 \
  --from a.st --out u.st --split-out fifo --steps 2
refused "train --log FIFO" "exists and is a FIFO" train "${small[@]}" --epochs 1 --out b.st --log fifo
refused "eval --csv FIFO" "exists and is a FIFO" eval --split s.json --checkpoint a.st --csv fifo
refused "relearn --curves FIFO" "exists and is a FIFO" relearn --split s.json --original a.st --steps 2 --curves fifo
[[ -p fifo ]] || fail "the FIFO was replaced"
[[ ! -e u.st && ! -e b.st ]] || fail "a refused command wrote another output"
if mknod full c 1 7 2> /dev/null; then  # a /dev/full of our own: the real one is never touched
  refused "train --out DEVICE" "full: exists and is a character device" train "${small[@]}" --epochs 1 --out full
  refused "unlearn --csv DEVICE" "exists and is a character device" unlearn --method ft --split s.json --from a.st \
    --out u.st --steps 2 --csv full
  [[ -c full ]] || fail "the device node was replaced by $(stat -c %F full)"
  [[ ! -e u.st ]] || fail "unlearn wrote its checkpoint before refusing --csv DEVICE"
else
  echo "(no character-device check: mknod needs root)"
fi
l train "${small[@]}" --epochs 1 --out c.st --log /dev/stdout --log-every 0 2> /dev/null | cat > log.txt \
  || fail "--log /dev/stdout (this process's own output, a pipe) refused"
grep -q '"event":"epoch"' log.txt || fail "--log /dev/stdout wrote no epoch line"

echo "== an output that names an input is refused before anything is written"
keep a.st s.json rt.st
refused "unlearn --split-out = --from" "--split-out \./a\.st is the same file as --from a\.st" \
  unlearn --method ft --scenario random:0.1 --split-limit 1024 --from a.st --out u.st --split-out ./a.st --steps 2
refused "unlearn --out = --from" "--out .*is the same file as --from" \
  unlearn --method ft --split s.json --from a.st --out "$work/a.st" --steps 2
mkdir -p sub
refused "unlearn --csv = --retrained" "--csv sub/\.\./rt\.st is the same file as --retrained" \
  unlearn --method ft --split s.json --from a.st --out u.st --retrained rt.st --csv sub/../rt.st --steps 2
refused "unlearn --trajectory = --split" "--trajectory s\.json is the same file as --split" \
  unlearn --method ft --split s.json --from a.st --out u.st --trajectory s.json --steps 2
refused "unlearn --csv = --out" "--out and --csv name the same file" \
  unlearn --method ft --split s.json --from a.st --out u.st --csv u.st --steps 2
ln -s a.st alias.st
refused "train --log = --resume (a link)" "--log alias\.st is the same file as --resume a\.st" \
  train --resume a.st --out b.st --log alias.st
refused "eval --csv = --checkpoint" "--csv a\.st is the same file as --checkpoint" \
  eval --split s.json --checkpoint a.st --csv a.st
refused "relearn --curves = --from" "--curves rt\.st is the same file as --from" \
  relearn --split s.json --original a.st --from rt.st --steps 2 --curves rt.st
refused "relearn --trajectory = --original" "--trajectory a\.st is the same file as --original" \
  relearn --split s.json --original a.st --steps 2 --trajectory a.st
refused "split --out = --split" "--out s\.json is the same file as --split" split --split s.json --out s.json
echo '{}' > results.json
refused "report --out = RESULTS" "--out results\.json is the same file as RESULTS" report results.json --out results.json
unchanged a.st s.json rt.st
[[ ! -e u.st && ! -e b.st && ! -e u.st.split.json ]] || fail "a refused command wrote an output: $(ls)"
no_temp .

echo "== a failed command leaves no output of its own"
refused "unlearn --scenario, missing --from" "missing\.st" \
  unlearn --method ft --scenario random:0.1 --split-limit 1024 --from missing.st --out u.st --steps 2
[[ ! -e u.st.split.json ]] || fail "a failed unlearn --scenario left its split file"
head -c 500 rt.st > broken.st
refused "unlearn --scenario, corrupt --retrained" "broken\.st" \
  unlearn --method ft --scenario random:0.1 --split-limit 1024 --from a.st --retrained broken.st --out u.st --steps 2
[[ ! -e u.st && ! -e u.st.split.json ]] || fail "a failed unlearn --scenario left outputs: $(ls)"
refused "unlearn --csv DIR" "sub: exists and is a directory" \
  unlearn --method ft --split s.json --from a.st --out u.st --steps 2 --csv sub
[[ ! -e u.st ]] || fail "unlearn --csv DIR wrote the checkpoint before failing"
refused "eval --csv in a missing folder" "nowhere.* cannot be used" eval --split s.json --checkpoint a.st --csv nowhere/e.csv
no_temp .

echo "== a write removes the temporary files that killed writers of the same target left"
sleep 0 & dead=$!
wait $dead
touch ".c.st.tmp-$dead-0" ".c.st.tmp-$$-0" ".other.st.tmp-$dead-0"
l train "${small[@]}" --epochs 1 --out c.st > /dev/null 2>&1
[[ ! -e .c.st.tmp-$dead-0 ]] || fail "the temporary file of a dead writer (PID $dead) was not removed"
[[ -e .c.st.tmp-$$-0 && -e .other.st.tmp-$dead-0 ]] || fail "a live writer's or another target's temporary file was removed"
rm -f ".c.st.tmp-$$-0" ".other.st.tmp-$dead-0"

echo "== train --resume X without --out writes back to X, bit for bit as an uninterrupted run"
l train "${small[@]}" --epochs 2 --seed 4 --out whole.st > /dev/null 2>&1
l train "${small[@]}" --epochs 2 --seed 4 --stop-after 1 --out r.st > /dev/null 2>&1
l train --resume r.st --threads 2 > out.txt 2> /dev/null
grep -q "checkpoint: r.st" out.txt || fail "train --resume did not say where it wrote: $(cat out.txt)"
cmp -s r.st whole.st || fail "train --resume r.st (no --out) did not write the finished run back to r.st"
no_temp .
((failures == 0)) || { echo "output_safety.sh: $failures check(s) FAILED"; exit 1; }
echo "output_safety.sh: all checks passed"
