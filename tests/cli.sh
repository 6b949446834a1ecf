#!/usr/bin/env bash
# End-to-end checks of the `lethe` CLI on real Fashion-MNIST (small --limit runs, seconds each):
# determinism of checkpoints, resume, eval, TOML configs, --json, clear errors on bad input, and the
# unlearning commands (split, unlearn, eval --split, relearn, run) on every scenario. Values are
# checked against what the test computes itself: accuracies, TA gain, attack success and class TA
# from confusion matrices (on test images it triggers itself), what each method does to the
# weights from the checkpoints' bytes, the report's plots from results.json.
#   tests/cli.sh BUILD_DIR/tools/lethe
set -euo pipefail
lethe=$1
name=cli.sh
source "$(dirname "$0")/cli_lib.sh"
json_get() { python3 -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }
# data_folder DIR TRAIN TEST [white-square]: a small Fashion-MNIST folder (tests/fashion_subset.py).
data_folder() { python3 "$(dirname "$0")/fashion_subset.py" "$data" "$@"; }
small=(--model mlp --limit 2048 --batch 128 --threads 2)  # its own: the checks below are sized for it
small_datasets 6000 2000

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

echo "== eval reproduces the accuracy train reported; its confusion matrix holds the test labels, its accuracies come from it"
"$lethe" eval --checkpoint "$work/a.st" --json > "$work/ae.json"
"$lethe" eval --checkpoint "$work/a.st" > "$work/ae.txt"
train_acc=$(json_get accuracy < "$work/a.json")
eval_acc=$(json_get accuracy < "$work/ae.json")
[[ "$train_acc" == "$eval_acc" ]] || fail "eval accuracy $eval_acc != train's $train_acc"
gemm=$(json_get float32_gemm < "$work/a.json")
[[ "$gemm" =~ ^(lethe-avx512|lethe-avx2|openblas-.+)$ ]] || fail "train --json names no float32 GEMM: '$gemm'"
[[ $(LETHE_SGEMM=openblas "$lethe" train "${small[@]}" --epochs 1 --no-test --json | json_get float32_gemm) == openblas-* ]] ||
  fail "LETHE_SGEMM=openblas: train --json does not say OpenBLAS ran"
python3 -c "a=float('$train_acc'); assert 0.6 < a <= 1, a" || fail "accuracy $train_acc out of range"
python3 - "$data" "$work/ae.json" "$work/ae.txt" <<'PY' || fail "eval's confusion matrix or accuracies wrong"
import gzip, json, sys
labels = gzip.open(sys.argv[1] + "/t10k-labels-idx1-ubyte.gz").read()[8:]  # the IDX header is 8 bytes
e = json.load(open(sys.argv[2]))
c = e["confusion"]
assert e["count"] == len(labels) == sum(map(sum, c)), e["count"]
assert [sum(row) for row in c] == [labels.count(k) for k in range(10)], "a row is not its true class's images"
assert abs(e["accuracy"] - sum(c[k][k] for k in range(10)) / len(labels)) < 1e-12, e["accuracy"]
assert all(abs(a - c[k][k] / sum(c[k])) < 1e-12 for k, a in enumerate(e["class_accuracy"])), e["class_accuracy"]
# The text prints the same: accuracy, the per-class table and the matrix.
text = open(sys.argv[3]).read()
assert f"accuracy: {e['accuracy']:.4f}" in text
lines = text.split("per-class accuracy:\n")[1].splitlines()
assert [float(line.split()[-1]) for line in lines[:10]] == [round(a, 4) for a in e["class_accuracy"]], lines[:10]
lines = text.split("confusion matrix (rows: true class, columns: predicted):\n")[1].splitlines()
assert [int(v) for v in lines[0].split()] == list(range(10)), lines[0]
assert [[int(v) for v in line.split()] for line in lines[1:11]] == [[k] + row for k, row in enumerate(c)], lines
PY

echo "== linear in float64: a float64 checkpoint, and eval reproduces train's accuracy from it"
"$lethe" train --model linear --dtype float64 --limit 2048 --batch 128 --threads 2 --epochs 1 --lr 0.01 \
  --out "$work/lin.st" --json > "$work/lin.json"
"$lethe" eval --checkpoint "$work/lin.st" --threads 2 --json > "$work/line.json"
[[ "$(json_get accuracy < "$work/lin.json")" == "$(json_get accuracy < "$work/line.json")" ]] ||
  fail "eval of the float64 linear model differs from train's"
python3 - "$work/lin.st" "$work/lin.json" <<'PY' || fail "the linear float64 checkpoint is not what it should be"
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n, = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + n])
assert json.loads(header["__metadata__"]["model"])["dtype"] == "float64", header["__metadata__"]
assert header["fc.weight"]["dtype"] == "F64" and header["fc.weight"]["shape"] == [10, 784], header["fc.weight"]
assert sorted(k for k in header if not k.startswith(("__", "optimizer."))) == ["fc.bias", "fc.weight"], header.keys()
assert 0.6 < json.load(open(sys.argv[2]))["accuracy"] <= 1
PY

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
# Output JSON (schema version 2): snake-case keys, the options' too.
assert u["schema_version"] == e["schema_version"] == 2 and u["command"] == "unlearn", u["schema_version"]
assert not [k for k in u["options"] if "-" in k] and u["options"]["ieu_decay"] == 0.05, u["options"]
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
echo "== rl, neggrad+, l1-sparse, salun, 4 steps each: what each does to the weights (FT's 4 steps above: tr1.st)"
data_folder "$work/small" 2048 100  # the split's 2048 training images, 100 test images
four=(--split "$work/r.split" --from "$work/a.st" --steps 4 --batch 64 --data "$work/small" --json)
"$lethe" unlearn --method rl "${four[@]}" --out "$work/rl.st" > "$work/rl.json"
"$lethe" unlearn --method neggrad+ "${four[@]}" --neggrad-beta 1 --ascent-clip 0 --no-eval --out "$work/ng.st" > "$work/ng.json"
"$lethe" unlearn --method l1-sparse "${four[@]}" --l1 0.05 --no-eval --out "$work/l1.st" > "$work/l1.json"
"$lethe" unlearn --method salun "${four[@]}" --saliency 0.3 --no-eval --out "$work/sa.st" > "$work/sa.json"
python3 - "$work" <<'PY' || fail "rl, neggrad+, l1-sparse or salun did not do what it is defined to"
import array, json, math, statistics, struct, sys
def load(name): return json.load(open(f"{sys.argv[1]}/{name}.json"))
def weights(name):  # the model's float32 tensors of a safetensors checkpoint, flattened into one list
    raw = open(f"{sys.argv[1]}/{name}.st", "rb").read()
    n, = struct.unpack("<Q", raw[:8])
    values = array.array("f")
    for key, t in sorted(json.loads(raw[8:8 + n]).items()):
        if key != "__metadata__" and not key.startswith("optimizer."):  # the original's SGD state
            assert t["dtype"] == "F32", (key, t["dtype"])
            values.frombytes(raw[8 + n + t["data_offsets"][0]:8 + n + t["data_offsets"][1]])
    return values
original, ft = weights("a"), weights("tr1")
for method, name, echoed in (("rl", "rl", {}), ("neggrad+", "ng", {"neggrad_beta": 1, "ascent_clip": 0}),
                             ("l1-sparse", "l1", {"l1": 0.05}), ("salun", "sa", {"saliency": 0.3, "mask": "strict"})):
    r = load(name)
    assert r["method"] == method and r["options"]["steps"] == 4 and r["options"]["batch"] == 64, r
    assert all(r["options"][k] == v for k, v in echoed.items()), (method, r["options"])
# RL trains the forget set on wrong labels: its forget loss rises; the metrics are fractions; the
# weight distance it reports is the one between the checkpoints.
r = load("rl")
assert r["metrics"]["forget_loss"] > r["comparison"]["original"]["forget_loss"], r["metrics"]
assert all(0 <= r["metrics"][k] <= 1 for k in ("forget_accuracy", "retain_accuracy", "test_accuracy", "mia_efficacy"))
l2 = math.sqrt(sum((a - b) ** 2 for a, b in zip(weights("rl"), original)))
assert l2 > 0 and abs(r["comparison"]["weight_distances"]["to_original"]["model"]["l2"] - l2) < 1e-9 * l2, l2
# NegGrad+ at β = 1: 1·CE(retain) − 0·CE(forget) is FT's loss on FT's retain batches.
assert weights("ng") == ft, "neggrad+ at beta = 1 is not ft"
# l1-sparse is FT plus γ_t·sign(θ) in the gradient, γ_t = γ(1 − t/T): with SGD's momentum μ (the
# buffer b ← μb + g, θ ← θ − lr·b) step t's term moves θ by lr·γ_t·(1 + μ + … + μ^(T−1−t)) toward 0
# (for weights too large to cross it); CE's gradient barely differs between the two runs.
options = load("l1")["options"]
lr, mu, steps, gamma = options["lr"], options["momentum"], options["steps"], options["l1"]
shift = lr * sum(gamma * (1 - t / steps) * sum(mu ** k for k in range(steps - t)) for t in range(steps))
toward_zero = [(b - a) * math.copysign(1, w) for w, a, b in zip(original, weights("l1"), ft) if abs(w) > 4 * shift]
assert len(toward_zero) > 1000 and min(toward_zero) > 0, "a weight did not move toward 0"
assert abs(statistics.median(toward_zero) / shift - 1) < 0.01, (statistics.median(toward_zero), shift)
# SalUn (strict mask) changes only the saliency fraction of the weights and holds the rest.
changed = sum(a != b for a, b in zip(original, weights("sa")))
kept = load("sa")["details"]["weights_updated"]
assert kept == int(0.3 * len(original)) and 0.9 * kept <= changed <= kept, (changed, kept, len(original))
PY
"$lethe" split --scenario mislabeled:0.1 --split-limit 2048 --out "$work/m.split" > /dev/null
"$lethe" train --model mlp --batch 128 --threads 2 --epochs 1 --split "$work/m.split" --out "$work/m.st" --json > /dev/null
"$lethe" unlearn --method ft --split "$work/m.split" --from "$work/m.st" --out "$work/mu.st" --steps 5 --json > "$work/mu.json"
if "$lethe" unlearn --method ft --split "$work/m.split" --from "$work/a.st" --out "$work/x.st" > /dev/null 2> "$work/err"; then
  fail "unlearned a model that was not trained on the poisoned set"
fi
grep -q "not trained for a split" "$work/err" || fail "unclear poisoned-set error: $(cat "$work/err")"
"$lethe" split --scenario backdoor:0.05 --split-limit 2048 --out "$work/b.split" > /dev/null
"$lethe" train --model mlp --batch 128 --threads 2 --epochs 1 --split "$work/b.split" --out "$work/b.st" --json > /dev/null
"$lethe" unlearn --method ga --split "$work/b.split" --from "$work/b.st" --out "$work/bu.st" --steps 5 --json > "$work/bu.json"
"$lethe" unlearn --method scrub --scenario class:0 --split-limit 2048 --from "$work/a.st" --out "$work/cu.st" --steps 6 \
  --json > "$work/cu.json"
echo "== the scenarios' own metrics from confusion matrices: TA gain, attack success (on test images triggered here), class TA"
data_folder "$work/triggered" 0 2000 white-square
for m in m mu cu; do "$lethe" eval --checkpoint "$work/$m.st" --json > "$work/$m-eval.json"; done
for m in b bu; do "$lethe" eval --data "$work/triggered" --checkpoint "$work/$m.st" --json > "$work/$m-eval.json"; done
python3 - "$work" <<'PY' || fail "a scenario's metric disagrees with the one computed from the confusion matrix"
import json, sys
def load(name): return json.load(open(f"{sys.argv[1]}/{name}.json"))
def accuracy(c, classes):  # over the test images of these (true) classes
    return sum(c[k][k] for k in classes) / sum(sum(c[k]) for k in classes)
everything, not_0 = range(10), range(1, 10)
# mislabeled: the gain is the unlearned model's test accuracy minus the original's.
u, before, after = load("mu"), load("m-eval"), load("mu-eval")
assert abs(u["metrics"]["test_accuracy"] - accuracy(after["confusion"], everything)) < 1e-12, u["metrics"]
gain = accuracy(after["confusion"], everything) - accuracy(before["confusion"], everything)
assert abs(u["comparison"]["test_accuracy_gain"] - gain) < 1e-12, (u["comparison"]["test_accuracy_gain"], gain)
# backdoor (target class 0): the triggered images of the other classes classified as 0.
def attack_success(c): return sum(c[k][0] for k in not_0) / sum(sum(c[k]) for k in not_0)
u = load("bu")
assert abs(u["comparison"]["attack_success_rate_before"] - attack_success(load("b-eval")["confusion"])) < 1e-12, u
assert abs(u["metrics"]["attack_success_rate"] - attack_success(load("bu-eval")["confusion"])) < 1e-12, u["metrics"]
# class:0: class TA on the test images of class 0, TA on the others'.
u, c = load("cu"), load("cu-eval")["confusion"]
assert abs(u["metrics"]["forgotten_class_test_accuracy"] - accuracy(c, [0])) < 1e-12, u["metrics"]
assert abs(u["metrics"]["test_accuracy"] - accuracy(c, not_0)) < 1e-12, u["metrics"]
PY
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
# The batched run also freezes batch norm, which the mlp does not have: nothing may change.
rl=(--split "$work/r.split" --original "$work/a.st" --retrained "$work/rt.st" --from "$work/u1.st" --steps 40
  --batch 64 --threads 2)
"$lethe" relearn "${rl[@]}" --json --curves "$work/curves.csv" > "$work/rl1.json"
"$lethe" relearn "${rl[@]}" --json --mode batched --bn frozen > "$work/rl2.json"
"$lethe" relearn "${rl[@]}" --preset ain --json > "$work/rl3.json"
python3 - "$work/rl1.json" "$work/rl2.json" "$work/rl3.json" "$work/curves.csv" <<'PY' || fail "relearn output wrong"
import csv, json, sys
a, b, ain = (json.load(open(p)) for p in sys.argv[1:4])
assert [m["role"] for m in a["models"]] == ["original", "retrained", "unlearned"], a["models"]
original, retrained, unlearned = a["models"]
assert original["rcd"]["loss_steps"] == 0 and original["rcd"]["accuracy_steps"] == 0, original["rcd"]
assert retrained["rcd"]["loss_steps"] > 0 and unlearned["name"] == "u1"
assert a["targets"]["loss"] == original["metrics"]["forget_loss"], (a["targets"], original["metrics"])
assert a["relearn"]["bn"] == "train" and b["relearn"]["bn"] == "frozen", (a["relearn"], b["relearn"])
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
echo "== relearn --bn on a model with batch norm: frozen statistics change the steps, not the evaluation before them"
tiny=(--data "$work/small" --threads 2)
"$lethe" train --model resnet18c --width 0.0625 --limit 256 --batch 64 --epochs 1 "${tiny[@]}" --out "$work/res.st" \
  > /dev/null 2>&1
"$lethe" split --scenario random:0.1 --split-limit 256 "${tiny[@]}" --out "$work/s256.split" > /dev/null
for bn in train frozen; do
  "$lethe" relearn --split "$work/s256.split" --original "$work/res.st" --steps 2 --eval-every 1 --stop none \
    --batch 32 --bn $bn "${tiny[@]}" --json > "$work/bn-$bn.json"
done
python3 - "$work" <<'PY' || fail "relearn --bn frozen wrong"
import json, struct, sys
raw = open(sys.argv[1] + "/res.st", "rb").read()
n, = struct.unpack("<Q", raw[:8])
assert "bn1.running_var" in json.loads(raw[8:8 + n]), "no batch norm in resnet18c: this check tests nothing"
train, frozen = ([p["forget_loss"] for p in json.load(open(f"{sys.argv[1]}/bn-{bn}.json"))["models"][0]["curve"]]
                 for bn in ("train", "frozen"))
assert len(train) == len(frozen) == 3 and train[0] == frozen[0], (train, frozen)  # step 0: before any step
assert train[1] != frozen[1] and train[2] != frozen[2], (train, frozen)
PY

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
assert r["schema_version"] == 2, r.get("schema_version")
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
PY
python3 - "$work/study" <<'PY' || fail "the report's plots do not draw the study's values"
import json, math, re, sys, xml.etree.ElementTree as ET
d = sys.argv[1]
replicates = json.load(open(d + "/results.json"))["scenarios"][0]["replicates"]
def model(replicate, name): return next(m for m in replicates[int(replicate)]["models"] if m["name"] == name)
svg = "{http://www.w3.org/2000/svg}"
plots = {}
for text in re.findall(r'<svg class="plot".*?</svg>', open(d + "/report.html").read(), re.S):
    plot = ET.fromstring(text)  # each plot is well-formed XML
    plots[plot.get("data-plot")] = plot
assert list(plots) == ["gap", "paired-ieu", "rcd-loss", "rcd-accuracy", "loss", "accuracy", "distance"], list(plots)
def drawn(plot, tag, cls): return [e for e in plot.iter(svg + tag) if e.get("class") == cls]
def off_line(points):  # the largest distance of (u, v) points from their least-squares line, and its slope
    mu, mv = (sum(p[i] for p in points) / len(points) for i in (0, 1))
    slope = sum((u - mu) * (v - mv) for u, v in points) / sum((u - mu) ** 2 for u, _ in points)
    return max(abs(mv + slope * (u - mu) - v) for u, v in points), slope
# The curves: one line per model and replicate through its curve's points, at coordinates linear in
# the step and in the value (its log on a log scale). Coordinates have one decimal.
for kind, key in (("loss", "forget_loss"), ("accuracy", "forget_accuracy"), ("distance", "distance")):
    log = any("log scale" in (t.text or "") for t in drawn(plots[kind], "text", "label"))
    lines = drawn(plots[kind], "path", "curve")
    assert sorted((p.get("data-replicate"), p.get("data-model")) for p in lines) == \
        sorted((str(r), m) for r in (0, 1) for m in ("original", "retrained", "ft", "ieu")), kind
    xs, ys = [], []
    for line in lines:
        values = [(p["step"], p[key]) for p in model(line.get("data-replicate"), line.get("data-model"))["curve"]]
        points = [tuple(map(float, xy.split())) for xy in re.findall(r"[ML]([-\d.]+ [-\d.]+)", line.get("d"))]
        assert len(points) == len(values), (kind, line.get("data-model"), points, values)
        xs += [(step, x) for (step, _), (x, _) in zip(values, points)]
        ys += [(math.log(v) if log else v, y) for (_, v), (_, y) in zip(values, points)]
    (x_error, x_slope), (y_error, y_slope) = off_line(xs), off_line(ys)
    assert x_error < 0.15 and y_error < 0.15 and x_slope > 0 and y_slope < 0, (kind, x_error, y_error)
# The gap: a row per model but the retrained one, a dot per replicate at x linear in its gap, the
# mean between the two.
rows = [g for g in plots["gap"].iter(svg + "g") if g.get("class") == "interval-row"]
assert [g.get("data-model") for g in rows] == ["original", "ft", "ieu"], [g.get("data-model") for g in rows]
dots = []
for g in rows:
    x = [float(c.get("cx")) for c in drawn(g, "circle", "replicate-point")]
    mean, = [float(c.get("cx")) for c in drawn(g, "circle", "mean")]
    assert len(x) == 2 and abs(mean - (x[0] + x[1]) / 2) < 0.11, (g.get("data-model"), x, mean)
    dots += [(model(r, g.get("data-model"))["gap"], x[r]) for r in (0, 1)]
error, slope = off_line(dots)
assert error < 0.15 and slope > 0, dots
for kind in ("rcd-loss", "rcd-accuracy"):
    names = [g.get("data-model") for g in plots[kind].iter(svg + "g") if g.get("class") == "rcd-row"]
    assert names == ["original", "retrained", "ft", "ieu"], (kind, names)
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
((failures == 0)) || { echo "cli.sh: $failures check(s) FAILED"; exit 1; }
echo "cli.sh: all checks passed"
