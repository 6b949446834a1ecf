#!/usr/bin/env bash
# End-to-end checks of the `lethe` CLI on real Fashion-MNIST (small --limit runs, seconds each):
# determinism of checkpoints, resume, eval, TOML configs, --json, and clear errors on bad input.
#   tests/cli.sh BUILD_DIR/tools/lethe
set -euo pipefail
lethe=$1
data=/usr/share/datasets/fashion-mnist
if [[ ! -f $data/t10k-labels-idx1-ubyte.gz ]]; then
  echo "cli.sh: skipped: no Fashion-MNIST in $data (tools/setup installs dataset-fashion-mnist)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "cli.sh: FAILED: $*" >&2; exit 1; }
json_get() { python3 -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }
small=(--model mlp --limit 2048 --batch 128 --threads 2)

echo "== two runs with the same seed write byte-identical checkpoints"
"$lethe" train "${small[@]}" --epochs 2 --seed 5 --out "$work/a.st" --json > "$work/a.json"
"$lethe" train "${small[@]}" --epochs 2 --seed 5 --out "$work/b.st" --json > /dev/null
cmp "$work/a.st" "$work/b.st" || fail "checkpoints of identical runs differ"
"$lethe" train "${small[@]}" --epochs 2 --seed 6 --out "$work/c.st" --json > /dev/null
! cmp -s "$work/a.st" "$work/c.st" || fail "another seed gave the same checkpoint"

echo "== 1 epoch + resume + 1 epoch == 2 epochs, bit for bit"
"$lethe" train "${small[@]}" --epochs 2 --seed 5 --stop-after 1 --out "$work/r.st" --json > /dev/null
"$lethe" train --resume "$work/r.st" --threads 2 --out "$work/r.st" --json > /dev/null
cmp "$work/a.st" "$work/r.st" || fail "resumed run differs from the uninterrupted one"
if "$lethe" train --resume "$work/r.st" --lr 0.1 --json > /dev/null 2> "$work/err"; then fail "--resume accepted --lr"; fi
grep -q "cannot change it" "$work/err" || fail "unclear --resume error: $(cat "$work/err")"

echo "== eval reproduces the accuracy train reported"
train_acc=$(json_get accuracy < "$work/a.json")
eval_acc=$("$lethe" eval --checkpoint "$work/a.st" --json | json_get accuracy)
[[ "$train_acc" == "$eval_acc" ]] || fail "eval accuracy $eval_acc != train's $train_acc"
python3 -c "a=float('$train_acc'); assert 0.6 < a <= 1, a" || fail "accuracy $train_acc out of range"
"$lethe" eval --checkpoint "$work/a.st" | grep -q "confusion matrix" || fail "eval text has no confusion matrix"

echo "== TOML config: keys are flag names, flags override the file"
cat > "$work/run.toml" <<TOML
model = "mlp"
limit = 1024
epochs = 1
lr = 0.02
weight-decay = 0.0
TOML
"$lethe" train --config "$work/run.toml" --lr 0.01 --seed 1 --out "$work/t.st" --json > /dev/null
python3 - "$work/t.st" <<'PY' || fail "config or override not applied"
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n, = struct.unpack("<Q", raw[:8])
recipe = json.loads(json.loads(raw[8:8 + n])["__metadata__"]["recipe"])
assert recipe["lr"] == 0.01 and recipe["limit"] == 1024 and recipe["weight-decay"] == 0.0, recipe
PY
echo "bogus-key = 3" >> "$work/run.toml"
if "$lethe" train --config "$work/run.toml" > /dev/null 2> "$work/err"; then fail "unknown config key accepted"; fi
grep -qi "bogus-key" "$work/err" || fail "unclear config error: $(cat "$work/err")"
printf 'model = "mlp\n' > "$work/broken.toml"
if "$lethe" train --config "$work/broken.toml" > /dev/null 2> "$work/err"; then fail "broken TOML accepted"; fi
grep -q "line 1" "$work/err" || fail "TOML error without position: $(cat "$work/err")"

echo "== bad input: clear errors, nothing lost"
head -c 1000 "$work/a.st" > "$work/truncated.st"
if "$lethe" eval --checkpoint "$work/truncated.st" > /dev/null 2> "$work/err"; then fail "truncated checkpoint accepted"; fi
grep -q "truncated.st" "$work/err" || fail "error does not name the file: $(cat "$work/err")"
if "$lethe" train "${small[@]}" --epochs 1 --data "$work/nowhere" > /dev/null 2> "$work/err"; then fail "missing data accepted"; fi
grep -q "nowhere" "$work/err" || fail "error does not name the data folder: $(cat "$work/err")"
cp "$work/a.st" "$work/keep.st"
if "$lethe" train "${small[@]}" --epochs 1 --lr 1e30 --out "$work/keep.st" > /dev/null 2> "$work/err"; then fail "diverged run succeeded"; fi
grep -q "not finite\|is nan\|is inf" "$work/err" || fail "unclear divergence error: $(cat "$work/err")"
cmp "$work/a.st" "$work/keep.st" || fail "a diverged run overwrote the checkpoint"
for sub in train eval; do "$lethe" "$sub" --help | grep -q -- "--device" || fail "$sub --help"; done
echo "cli.sh: all checks passed"
