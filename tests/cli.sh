#!/usr/bin/env bash
# End-to-end checks of the `lethe` CLI on real Fashion-MNIST (small --limit runs, seconds each):
# determinism of checkpoints, resume, eval, TOML configs, --json, clear errors on bad input, and the
# unlearning commands (split, unlearn, eval --split) on every scenario.
#   tests/cli.sh BUILD_DIR/tools/lethe
set -euo pipefail
lethe=$1
name=cli.sh
source "$(dirname "$0")/cli_lib.sh"
json_get() { python3 -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }
small=(--model mlp --limit 2048 --batch 128 --threads 2)  # its own: the checks below are sized for it

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
if "$lethe" train "${small[@]}" --epochs 1 --lr 1e6 --out "$work/keep.st" > /dev/null 2> "$work/err"; then fail "diverged run succeeded"; fi
grep -q "not finite\|is nan\|is inf" "$work/err" || fail "unclear divergence error: $(cat "$work/err")"
cmp "$work/a.st" "$work/keep.st" || fail "a diverged run overwrote the checkpoint"

echo "== unlearning: split, unlearn, eval agree; reproducible; poisoned scenarios need their training set"
"$lethe" split --scenario random:0.1 --split-limit 2048 --split-seed 1 --out "$work/r.split" --json > /dev/null
"$lethe" unlearn --method ieu --split "$work/r.split" --from "$work/a.st" --out "$work/u1.st" --steps 10 \
  --batch 64 --csv "$work/u.csv" --json > "$work/u.json"
"$lethe" unlearn --method ieu --split "$work/r.split" --from "$work/a.st" --out "$work/u2.st" --steps 10 \
  --batch 64 --json > /dev/null
cmp "$work/u1.st" "$work/u2.st" || fail "two identical unlearning runs wrote different checkpoints"
"$lethe" eval --split "$work/r.split" --checkpoint "$work/u1.st" --original "$work/a.st" --json > "$work/e.json"
python3 - "$work/u.json" "$work/e.json" "$work/u.csv" <<'PY' || fail "unlearn/eval metrics disagree or are missing"
import csv, json, sys
u, e = (json.load(open(p)) for p in sys.argv[1:3])
for key in ("forget_accuracy", "retain_accuracy", "test_accuracy", "mia_efficacy"):
    assert u["metrics"][key] == e["metrics"][key], key
    assert 0 <= u["metrics"][key] <= 1, (key, u["metrics"][key])
assert u["metrics"]["mia"]["entropy"]["threshold"]["feature"] == "entropy"
assert u["options"]["alpha"] == 0.5 and u["options"]["steps"] == 10, u["options"]
assert "model" in e["comparison"]["weight_distances"]["to_original"]
rows = list(csv.DictReader(open(sys.argv[3])))
assert len(rows) == 1 and rows[0]["method"] == "ieu" and rows[0]["scenario"] == "random:0.1", rows
PY
"$lethe" unlearn --method retrain --split "$work/r.split" --from "$work/a.st" --out "$work/rt.st" --json > /dev/null
"$lethe" eval --split "$work/r.split" --checkpoint "$work/u1.st" --retrained "$work/rt.st" --json \
  | python3 -c "import json,sys; g=json.load(sys.stdin)['comparison']['average_gap']; assert 0 <= g < 1, g" \
  || fail "no average gap"
echo "== unlearn --trajectory: per-step norms and distances, the same bytes twice, ending at the report's distance"
traj=(--method ft --split "$work/r.split" --from "$work/a.st" --steps 4 --batch 64 --retrained "$work/rt.st"
  --trajectory-every 3)
"$lethe" unlearn "${traj[@]}" --out "$work/tr1.st" --trajectory "$work/t1.csv" --json > "$work/tr.json"
"$lethe" unlearn "${traj[@]}" --out "$work/tr2.st" --trajectory "$work/t2.csv" --no-eval > /dev/null
cmp "$work/t1.csv" "$work/t2.csv" || fail "two identical unlearning runs logged different trajectories"
python3 - "$work/t1.csv" "$work/tr.json" <<'PY' || fail "trajectory CSV wrong"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert list(rows[0]) == "run,phase,step,layer,numel,norm,dist_start,dist_original,dist_retrained".split(","), rows[0]
assert sorted({int(r["step"]) for r in rows}) == [0, 3, 4], "every 3, and the last step"
model = [r for r in rows if r["layer"] == "model"]
assert len(rows) == 3 * 7 and len(model) == 3, len(rows)
assert float(model[0]["dist_original"]) == 0 and model[0]["dist_start"] == "0" and float(model[0]["dist_retrained"]) > 0
report = json.load(open(sys.argv[2]))["comparison"]["weight_distances"]
assert float(model[-1]["dist_original"]) == report["to_original"]["model"]["l2"], (model[-1], report["to_original"])
assert float(model[-1]["dist_retrained"]) == report["to_retrained"]["model"]["l2"]
PY
"$lethe" split --scenario mislabeled:0.1 --split-limit 2048 --out "$work/m.split" > /dev/null
"$lethe" train --model mlp --batch 128 --threads 2 --epochs 1 --split "$work/m.split" --out "$work/m.st" --json > /dev/null
"$lethe" unlearn --method ft --split "$work/m.split" --from "$work/m.st" --out "$work/mu.st" --steps 5 --json \
  | python3 -c "import json,sys; c=json.load(sys.stdin)['comparison']; assert 'test_accuracy_gain' in c, c" \
  || fail "mislabeled: no test-accuracy gain"
if "$lethe" unlearn --method ft --split "$work/m.split" --from "$work/a.st" --out "$work/x.st" > /dev/null 2> "$work/err"; then
  fail "unlearned a model that was not trained on the poisoned set"
fi
grep -q "not trained for a split" "$work/err" || fail "unclear poisoned-set error: $(cat "$work/err")"
"$lethe" split --scenario backdoor:0.05 --split-limit 2048 --out "$work/b.split" > /dev/null
"$lethe" train --model mlp --batch 128 --threads 2 --epochs 1 --split "$work/b.split" --out "$work/b.st" --json > /dev/null
"$lethe" unlearn --method ga --split "$work/b.split" --from "$work/b.st" --out "$work/bu.st" --steps 5 --json \
  | python3 -c "import json,sys; j=json.load(sys.stdin); assert 'attack_success_rate' in j['metrics'] and 'attack_success_rate_before' in j['comparison'], j" \
  || fail "backdoor: no attack success rate"
"$lethe" unlearn --method scrub --scenario class:0 --split-limit 2048 --from "$work/a.st" --out "$work/cu.st" --steps 6 \
  | grep -q "class TA" || fail "class-wise report has no forgotten-class accuracy"
[[ -f $work/cu.st.split.json ]] || fail "unlearn --scenario did not write its split next to the checkpoint"
head -c 300 "$work/r.split" > "$work/bad.split"
if "$lethe" unlearn --method ft --split "$work/bad.split" --from "$work/a.st" --out "$work/x.st" > /dev/null 2> "$work/err"; then
  fail "truncated split accepted"
fi
grep -q "bad.split" "$work/err" || fail "split error does not name the file: $(cat "$work/err")"
if "$lethe" unlearn --method ft --scenario random:0.1 --split "$work/r.split" --from "$work/a.st" --out "$work/x.st" \
  > /dev/null 2> "$work/err"; then fail "--scenario and --split together accepted"; fi
[[ ! -e $work/x.st ]] || fail "a failed unlearning run wrote a checkpoint"
echo "== relearn: RCD next to the retrained model's, targets from the original, batched == one by one"
rl=(--split "$work/r.split" --original "$work/a.st" --retrained "$work/rt.st" --from "$work/u1.st" --steps 40
  --batch 64 --threads 2)
"$lethe" relearn "${rl[@]}" --json --curves "$work/curves.csv" > "$work/rl1.json"
"$lethe" relearn "${rl[@]}" --json --mode batched > "$work/rl2.json"
"$lethe" relearn "${rl[@]}" --preset ain --json > "$work/rl3.json"
python3 - "$work/rl1.json" "$work/rl2.json" "$work/rl3.json" "$work/curves.csv" <<'PY' || fail "relearn output wrong"
import csv, json, sys
a, b, ain = (json.load(open(p)) for p in sys.argv[1:4])
assert [m["role"] for m in a["models"]] == ["original", "retrained", "unlearned"], a["models"]
original, retrained, unlearned = a["models"]
assert original["rcd"]["loss_steps"] == 0 and original["rcd"]["accuracy_steps"] == 0, original["rcd"]
assert retrained["rcd"]["loss_steps"] > 0 and unlearned["name"] == "u1"
assert a["targets"]["loss"] == original["metrics"]["forget_loss"], (a["targets"], original["metrics"])
for m, n in zip(a["models"], b["models"]):
    assert m["rcd"] == n["rcd"] and m["curve"] == n["curve"], m["name"]
if retrained["rcd"]["normalized"]["loss"] is not None:
    assert retrained["rcd"]["normalized"]["loss"] == 1
assert ain["relearn"]["optimizer"] == "adam" and ain["relearn"]["accuracy_ratio"] == 0.95 and ain["relearn"]["stop"] == "accuracy"
rows = list(csv.DictReader(open(sys.argv[4])))
assert len(rows) == sum(len(m["curve"]) for m in a["models"]) and rows[0]["scenario"] == "random:0.1", len(rows)
PY
if "$lethe" relearn --split "$work/r.split" --from "$work/u1.st" > /dev/null 2> "$work/err"; then
  fail "relearn without targets accepted"
fi
grep -q "targets come from the original" "$work/err" || fail "unclear relearn error: $(cat "$work/err")"

echo "== lethe run: a tiny study end to end; run again, it redoes nothing"
cat > "$work/study.toml" <<TOML
[study]
name = "tiny"
model = "mlp"
scenarios = ["random:0.1"]
methods = ["ft", "ieu"]
replicates = 2
[train]
limit = 2048
epochs = 1
[split]
split-limit = 2048
[unlearn]
steps = 8
batch = 64
[relearn]
steps = 20
batch = 64
TOML
"$lethe" run "$work/study.toml" --out "$work/study" > "$work/run1.out" 2> "$work/run1.err" || fail "lethe run: $(tail -5 "$work/run1.err")"
grep -q "report: $work/study/report.html" "$work/run1.out" || fail "lethe run did not say where the report is"
cp "$work/study/replicate-0/random-0.1/relearn.json" "$work/relearn-before.json"
"$lethe" run "$work/study.toml" --out "$work/study" > /dev/null 2> "$work/run2.err"
[[ $(grep -c "done before" "$work/run2.err") -eq 10 ]] || fail "a second run redid phases: $(cat "$work/run2.err")"
cmp "$work/study/replicate-0/random-0.1/relearn.json" "$work/relearn-before.json" || fail "the second run changed the results"
sed -i 's/^steps = 8$/steps = 6/' "$work/study.toml"  # new unlearning flags: the methods and the relearning re-run
"$lethe" run "$work/study.toml" --out "$work/study" > /dev/null 2> "$work/run3.err"
[[ $(grep -c "done before" "$work/run3.err") -eq 2 ]] || fail "changed unlearning flags did not re-run the methods"
! cmp -s "$work/study/replicate-0/random-0.1/relearn.json" "$work/relearn-before.json" || fail "the relearning was not redone"
python3 - "$work/study" <<'PY' || fail "study outputs wrong"
import csv, json, sys
d = sys.argv[1]
r = json.load(open(d + "/results.json"))
sc = r["scenarios"][0]
assert r["replicates"] == 2 and [x["replicate"] for x in sc["replicates"]] == [0, 1]
assert [x["seed"] for x in sc["replicates"]] == [0, 1]  # study_seed + r
assert sc["replicates"][0]["split_digest"] != sc["replicates"][1]["split_digest"]  # each its own split
models = sc["replicates"][0]["models"]
assert [m["name"] for m in models] == ["original", "retrained", "ft", "ieu"], [m["name"] for m in models]
assert sc["relearn"]["loss_target"] == models[0]["metrics"]["forget_loss"]
# Each replicate trains its own original: different weights, so different forget losses.
assert models[0]["metrics"]["forget_loss"] != sc["replicates"][1]["models"][0]["metrics"]["forget_loss"]
summary = {m["name"]: m for m in sc["summary"]["models"]}
fa = summary["ieu"]["figures"]["metrics.fa"]
values = [x["models"][3]["metrics"]["fa"] for x in sc["replicates"]]
assert fa["n"] == 2 and abs(fa["mean"] - sum(values) / 2) < 1e-12, (fa, values)
assert fa["ci_low"] <= fa["mean"] <= fa["ci_high"]
assert summary["retrained"]["rcd"]["loss"]["n"] == 2
assert len(list(csv.DictReader(open(d + "/results.csv")))) == 8
rows = list(csv.DictReader(open(d + "/summary.csv")))
assert any(x["model"] == "ieu" and x["figure"] == "metrics.fa" and float(x["mean"]) == fa["mean"] for x in rows)
assert any(x["figure"] == "rcd.loss" and x["median_bound"] in ("exact", "at_least") for x in rows)
curves = list(csv.DictReader(open(d + "/curves.csv")))
assert {x["replicate"] for x in curves} == {"0", "1"}
html = open(d + "/report.html").read()
assert html.count('<svg class="plot"') >= 4 and "ieu" in html
PY
echo "[study]" > "$work/bad.toml"; echo "[trian]" >> "$work/bad.toml"
if "$lethe" run "$work/bad.toml" --out "$work/bad" > /dev/null 2> "$work/err"; then fail "unknown study table accepted"; fi
grep -q "unknown table \[trian\]" "$work/err" || fail "unclear study config error: $(cat "$work/err")"
for bad in "replicates = 0|replicates = 0: must be in [1, 1000]" "split_seed = 1|split_seed is replaced by study_seed" \
           "confidence = 1.5|confidence = 1.5: must be in (0, 1)"; do
  printf '[study]\n%s\n' "${bad%%|*}" > "$work/bad.toml"
  if "$lethe" run "$work/bad.toml" --out "$work/bad" > /dev/null 2> "$work/err"; then fail "accepted: ${bad%%|*}"; fi
  grep -qF "${bad#*|}" "$work/err" || fail "unclear error for ${bad%%|*}: $(cat "$work/err")"
done
printf '[study]\n[train]\nseed = 3\n' > "$work/bad.toml"
if "$lethe" run "$work/bad.toml" --out "$work/bad" > /dev/null 2> "$work/err"; then fail "a [train] seed accepted in a study"; fi
grep -q "seeds come from \[study\] study_seed" "$work/err" || fail "unclear seed error: $(cat "$work/err")"
for sub in train eval split unlearn relearn; do
  "$lethe" "$sub" --help > "$work/help"  # not piped: grep -q would cut it short
  grep -q -- "--device" "$work/help" || fail "$sub --help"
done
echo "cli.sh: all checks passed"
