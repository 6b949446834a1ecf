#!/usr/bin/env bash
# The data pool through the CLI (--subset, --validation, --pool-seed): `lethe train` trains in it
# and records it, `lethe split` draws in it, `lethe unlearn` refuses a split of another pool; bad
# pools are refused with their range; split (and train --no-test, unlearn --no-eval) never read the
# test files. Real Fashion-MNIST, tiny runs.
#   tests/data_pool.sh BUILD_DIR/tools/lethe
set -euo pipefail
lethe=$1
name=data_pool.sh
source "$(dirname "$0")/cli_lib.sh"

# metadata FILE KEY: the checkpoint's metadata value (empty when absent).
metadata() {
  python3 - "$1" "$2" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
print(json.loads(raw[8:8 + n]).get("__metadata__", {}).get(sys.argv[2], ""))
PY
}

tiny=(--model mlp --batch 128 --threads 2 --epochs 1)
pool=(--subset 2000 --validation 0.1 --pool-seed 3)
# Only the training set's files: a command that reads the test set fails here.
mkdir "$work/train-only"
ln -s "$data"/train-* "$work/train-only/"

echo "== train in the pool: 1800 samples (2000 less 200 held out), the pool recorded"
"$lethe" train "${tiny[@]}" "${pool[@]}" --out "$work/m.st" --json > "$work/train.json"
[[ $(json_field "$work/train.json" steps) == 15 ]] || fail "trained $(json_field "$work/train.json" steps) steps, not 15 (1800/128)"
[[ $(metadata "$work/m.st" pool) == subset=2000,validation=0.1,seed=3 ]] || fail "pool not recorded: $(metadata "$work/m.st" pool)"
"$lethe" train "${tiny[@]}" --limit 1024 --out "$work/plain.st" --json > /dev/null
[[ -z $(metadata "$work/plain.st" pool) ]] || fail "a run without a pool records one"

echo "== split in the pool, with no test files; unlearn the pool's model with it"
"$lethe" split --data "$work/train-only" --scenario random:0.1 "${pool[@]}" --out "$work/p.split" --json > "$work/split.json"
for kv in forget=180 retain=1620 validation=200; do
  [[ $(json_field "$work/split.json" "${kv%=*}") == "${kv#*=}" ]] || fail "split: ${kv%=*} is not ${kv#*=}"
done
"$lethe" unlearn --data "$work/train-only" --no-eval --method ft --steps 2 --from "$work/m.st" --split "$work/p.split" \
  --out "$work/u.st" --json > /dev/null
"$lethe" train "${tiny[@]}" --data "$work/train-only" --no-test --split "$work/p.split" --json > "$work/notest.json"
[[ $(json_field "$work/notest.json" accuracy) == None ]] || fail "train --no-test reports a test accuracy"

echo "== another pool, or none, is refused"
"$lethe" split --scenario random:0.1 --subset 2000 --validation 0.1 --pool-seed 4 --out "$work/q.split" --json > /dev/null
refused 'trained in the pool subset=2000,validation=0.1,seed=3.*drawn in the pool subset=2000,validation=0.1,seed=4' \
  unlearn --method ft --steps 2 --from "$work/m.st" --split "$work/q.split" --out "$work/v.st"
refused 'trained in the pool subset=2000,validation=0.1,seed=3.*drawn in the pool all' \
  unlearn --method ft --steps 2 --from "$work/m.st" --scenario random:0.1 --out "$work/v.st"
refused 'trained in the pool all' eval --checkpoint "$work/plain.st" --split "$work/p.split"
refused 'was drawn in the pool subset=2000.*not in subset=1000' \
  unlearn --method ft --from "$work/m.st" --split "$work/p.split" --subset 1000 --out "$work/v.st"
refused 'trained in the pool subset=2000,validation=0.1,seed=3; resume it with that pool' \
  train --resume "$work/m.st" --out "$work/r.st"

echo "== bad pools: the range in the message"
refused 'validation.*\[0, 0\.5\]' split --scenario random:0.1 --validation 0.7 --out "$work/x.split"
refused 'subset.*\[0, 2147483648\]' split --scenario random:0.1 --subset -1 --out "$work/x.split"
refused '--subset 60001: must be in \[0, 60000\]' split --scenario random:0.1 --subset 60001 --out "$work/x.split"
refused '--limit and a pool' train "${tiny[@]}" --limit 1024 --subset 2000
refused '--split-limit and a pool' split --scenario random:0.1 --split-limit 1000 --validation 0.1 --out "$work/x.split"

echo "== the trivial pool draws what lethe drew before pools (digest pinned)"
"$lethe" split --scenario mislabeled:0.1 --split-seed 2 --split-limit 2000 --out "$work/old.split" --json > "$work/old.json"
[[ $(json_field "$work/old.json" digest) == 5693aea616606564 ]] || fail "the trivial pool's split changed"
[[ $failures == 0 ]] || exit 1
echo "$name: ok"
