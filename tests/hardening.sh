#!/usr/bin/env bash
# Bad input never crashes `lethe` and is never silently accepted (issue 13): every failure is one
# line on stderr with exit code 1 (2 for a bad command line); numbers are range-checked before any
# cast; NaN/Inf weights, checkpoints made for other data and splits that do not hold what their
# scenario says are refused. Real Fashion-MNIST, tiny runs.
#   tests/hardening.sh BUILD_DIR/tools/lethe
set -euo pipefail
lethe=$1
name=hardening.sh
source "$(dirname "$0")/cli_lib.sh"
small_datasets 4000 1000

# expect CODE PATTERN lethe-args...: the command fails with exit code CODE (a regex), one line on stderr (at
# most 1000 bytes) that matches PATTERN.
expect() {
  local code=$1 pattern=$2 rc=0
  shift 2
  "$lethe" "$@" > "$work/out" 2> "$work/err" || rc=$?
  [[ $rc =~ ^($code)$ ]] || fail "lethe $* exited $rc, not $code: $(head -c 600 "$work/err")"
  [[ $(wc -l < "$work/err") -le 1 && $(wc -c < "$work/err") -le 1000 ]] ||
    fail "lethe $*: not one short line: $(head -c 600 "$work/err")"
  grep -qE -- "$pattern" "$work/err" || fail "lethe $*: unclear error: $(cat "$work/err")"
}

"$lethe" train "${small[@]}" --epochs 1 --seed 3 --out "$work/m.st" --json > /dev/null
"$lethe" split --scenario random:0.1 --split-limit 1024 --out "$work/r.split" --json > /dev/null

echo "== numbers: checked before any cast, the range in the message (exit 2)"
expect 2 'seed.*\[0, 18446744073709551615\]' train "${small[@]}" --seed -1
expect 2 'threads.*\[1, 1024\]' train "${small[@]}" --threads 0
expect 2 'threads.*\[1, 1024\]' train "${small[@]}" --threads 4294967297
expect 2 'alpha.*got .nan' unlearn --method ieu --from "$work/m.st" --split "$work/r.split" --out "$work/u.st" --alpha nan
expect 2 'cap.*got .nan' unlearn --method ieu --from "$work/m.st" --split "$work/r.split" --out "$work/u.st" --cap nan
expect 2 'batch.*\[1, ' relearn --from "$work/m.st" --split "$work/r.split" --batch 0
expect 2 'eval-every.*\[1, ' relearn --from "$work/m.st" --split "$work/r.split" --eval-every 0
expect 2 'forget-samples.*2147483648' relearn --from "$work/m.st" --split "$work/r.split" --forget-samples 1e30
expect 2 'epochs' train "${small[@]}" --epochs 1e3
printf '[study]\nthreads = 4294967297\n' > "$work/threads.toml"
expect '1|2' 'threads.*4294967297|4294967297.*threads' run "$work/threads.toml" --out "$work/threads-study"
[[ ! -e $work/threads-study ]] || fail "a refused study config created its output folder"

echo "== the error boundary: library and file-system errors are one line, exit 1"
touch "$work/a-file"
expect 1 'a-file' run --quick --out "$work/a-file/study"
expect 1 'a-file' run --quick --out "$work/a-file"

echo "== NaN/Inf weights: refused by every command, naming the tensor; eval --allow-nonfinite for forensics"
python3 - "$work/m.st" "$work/nan.st" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
name = next(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32" and not k.startswith("optimizer."))
begin = 8 + n + header[name]["data_offsets"][0]
out = bytearray(raw)
out[begin + 4:begin + 8] = struct.pack("<f", float("nan"))
open(sys.argv[2], "wb").write(out)
print(name, file=open(sys.argv[2] + ".name", "w"))
PY
tensor=$(cat "$work/nan.st.name")
expect 1 "$tensor.*nan" eval --checkpoint "$work/nan.st"
"$lethe" eval --checkpoint "$work/nan.st" --allow-nonfinite --json > /dev/null || fail "--allow-nonfinite refused the model"
expect 1 "$tensor" unlearn --method ft --from "$work/nan.st" --split "$work/r.split" --out "$work/u.st" --steps 2
[[ ! -e $work/u.st ]] || fail "unlearn wrote a checkpoint from NaN weights"
expect 1 "$tensor" relearn --from "$work/nan.st" --original "$work/m.st" --split "$work/r.split" --steps 2
expect 1 "$tensor" train --resume "$work/nan.st" --out "$work/resumed.st"

echo "== a checkpoint's metadata must fit the data and the model"
python3 - "$work/m.st" "$work/classes.st" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
model = json.loads(header["__metadata__"]["model"])
model["classes"] = 12
header["__metadata__"]["model"] = json.dumps(model)
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + raw[8 + n:])
PY
expect 1 'classes.*12|12 classes' eval --checkpoint "$work/classes.st"
expect 1 'classes.*12|12 classes' unlearn --method ft --from "$work/classes.st" --split "$work/r.split" --out "$work/u.st"

echo "== a split must hold what its scenario says (the digest recomputed, so only the meaning check can refuse)"
# split_py FILE SCENARIO FORGET-PY-EXPR [key=value ...]: a lethe split of the first 1024 samples
# with the given scenario and forget indices, and a valid digest (FNV-1a as Split::digest).
split_py() {
  python3 - "$@" <<'PY'
import gzip, json, random, struct, sys
path, scenario, forget_expr = sys.argv[1:4]
extra = dict(kv.split("=", 1) for kv in sys.argv[4:])
labels = gzip.open("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz").read()[8:8 + 1024]
n = 1024
forget = sorted(set(eval(forget_expr, {"labels": labels, "random": random.Random(1), "n": n})))
kind = scenario.split(":")[0]
target = int(scenario.split(":")[2]) if kind == "backdoor" and scenario.count(":") == 2 else 0
poisoned = [target] * len(forget) if kind == "backdoor" else [(labels[i] + 1) % 10 for i in forget] if kind == "mislabeled" else []
trigger = {"size": int(extra.get("trigger_size", 3)), "value": 255}
h = 0xcbf29ce484222325
def mix(v):
    global h
    for b in range(8):
        h ^= (v >> (8 * b)) & 0xff
        h = (h * 0x100000001b3) % 2**64
for c in scenario.encode(): mix(c)
mix(0); mix(n)
for i in forget: mix(i)
for l in poisoned: mix(l % 2**64)
if kind == "backdoor": mix(trigger["size"]); mix(trigger["value"])
j = {"format": "lethe-split", "version": 1, "scenario": scenario, "seed": 0, "train_size": n, "classes": 10,
     "digest": "%016x" % h, "forget": forget, "retain": [i for i in range(n) if i not in set(forget)]}
if kind == "backdoor": j["trigger"] = trigger
if poisoned: j["poisoned_labels"] = poisoned
json.dump(j, open(path, "w"))
PY
}
split_py "$work/good-class.split" class:3 '[i for i in range(n) if labels[i] == 3]'
"$lethe" eval --checkpoint "$work/m.st" --split "$work/good-class.split" --json > /dev/null ||
  fail "a well-formed class split (made by the test's generator) was refused: the generator is wrong"
split_py "$work/class.split" class:3 'random.sample(range(n), 100)'
expect 1 'class:3.*exactly' eval --checkpoint "$work/m.st" --split "$work/class.split"
split_py "$work/count.split" random:0.1 'random.sample(range(n), 300)'
expect 1 'random:0.1.*102' eval --checkpoint "$work/m.st" --split "$work/count.split"
split_py "$work/target.split" backdoor:0.1:12 'random.sample([i for i in range(n)], 102)'
expect 1 'target class 12|class 12' eval --checkpoint "$work/m.st" --split "$work/target.split"
split_py "$work/trigger.split" backdoor:0.1 'random.sample([i for i in range(n) if labels[i] != 0], 102)' trigger_size=100
expect 1 'trigger' eval --checkpoint "$work/m.st" --split "$work/trigger.split"

echo "== lethe split refuses to write a split with an empty side"
expect 1 'no retain sample' split --scenario class:0,1,2,3,4,5,6,7,8,9 --out "$work/all.split"
[[ ! -e $work/all.split ]] || fail "lethe split wrote a split with an empty retain set"

echo "hardening.sh: all passed"
