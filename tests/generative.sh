#!/usr/bin/env bash
# The generators from the command line (issue 17): `lethe train --model cvae` trains, evaluates its
# test loss and resumes, `lethe eval` gives the same loss; `lethe sample` writes a PNG grid and the
# tensors, the same for the same seed; bad input is refused with a reason: a classifier
# checkpoint, a class out of range, --count 0, a generator checkpoint whose tensors are of another
# shape, a diverging run, a generator given to relearn without an evaluator, IEU on a generator
# without a cap, a scenario other than class:C, SCRUB; `lethe unlearn` runs a method on it (and
# retrains it), `lethe relearn --evaluator` measures the RCD of generators; `lethe eval
# --scenario class:0 --evaluator` gives its metrics (fidelity with intervals, Fréchet distances,
# losses) and refuses a missing or generator evaluator and a scenario other than class:C.
#   tests/generative.sh BUILD_DIR/tools/lethe
set -euo pipefail
lethe=$1
name=generative.sh
source "$(dirname "$0")/cli_lib.sh"
small_datasets 512 256

train=(train --model cvae --optimizer adamw --lr 1e-3 --weight-decay 0 --batch 64 --threads 2)
"$lethe" "${train[@]}" --epochs 2 --stop-after 1 --out "$work/g.safetensors" --json > "$work/t1.json" 2> "$work/err" ||
  fail "train --model cvae failed: $(cat "$work/err")"
"$lethe" train --resume "$work/g.safetensors" --json > "$work/t2.json" 2> "$work/err" ||
  fail "resuming the cvae failed: $(cat "$work/err")"
python3 - "$work/t1.json" "$work/t2.json" <<'PY' || fail "the cvae's training results are wrong"
import json, math, sys
one, two = (json.load(open(f)) for f in sys.argv[1:3])
for r in (one, two):
    assert r["model"] == "cvae" and r["accuracy"] is None and r["count"] == 256, r
    # −ELBO of a 28×28 image: below the 784·ln 2 of an all-zero model once trained a little.
    assert math.isfinite(r["mean_loss"]) and 0 < r["mean_loss"] < 784 * math.log(2), r
assert two["epochs_completed"] == 2 and two["mean_loss"] < one["mean_loss"], (one, two)
PY

"$lethe" sample --checkpoint "$work/g.safetensors" --class 3 --count 20 --columns 10 --seed 4 \
  --out "$work/a.png" --tensors "$work/a.safetensors" > /dev/null 2> "$work/err" || fail "sample failed: $(cat "$work/err")"
"$lethe" sample --checkpoint "$work/g.safetensors" --class 3 --count 20 --columns 10 --seed 4 \
  --out "$work/b.png" --tensors "$work/b.safetensors" > /dev/null || fail "sample failed again"
cmp -s "$work/a.png" "$work/b.png" && cmp -s "$work/a.safetensors" "$work/b.safetensors" ||
  fail "the same seed gave different samples"
"$lethe" sample --checkpoint "$work/g.safetensors" --class 3 --count 20 --seed 5 --out "$work/c.png" > /dev/null
cmp -s "$work/a.png" "$work/c.png" && fail "another seed gave the same samples"
python3 - "$work/a.png" "$work/a.safetensors" "$(dirname "$0")" <<'PY' || fail "the samples' files are wrong"
import struct, sys, zlib
png = open(sys.argv[1], "rb").read()
assert png[:8] == b"\x89PNG\r\n\x1a\n", png[:8]
width, height, depth, colour = struct.unpack(">IIBB", png[16:26])
# 10 columns and 2 rows of 28×28 tiles, 2 black pixels between and around them; 8-bit gray.
assert (width, height, depth, colour) == (10 * 30 + 2, 2 * 30 + 2, 8, 0), (width, height, depth, colour)
sys.path.insert(0, sys.argv[3])
import safetensors_py
tensors, metadata = safetensors_py.load(sys.argv[2])
tensors = dict(tensors)
images, labels = tensors["images"], tensors["labels"]
assert images.dtype == "F32" and list(images.shape) == [20, 1, 28, 28], (images.dtype, images.shape)
assert list(labels.values()) == [3] * 20
assert all(0 <= v <= 1 for v in images.values())
assert metadata["model"] == "cvae" and metadata["class"] == "3" and metadata["seed"] == "4", metadata
PY

"$lethe" train --model mlp --limit 256 --epochs 1 --no-test --out "$work/mlp.safetensors" > /dev/null 2>&1
refused "holds a mlp, a classifier: sampling needs a generator" sample --checkpoint "$work/mlp.safetensors" --class 1 --out "$work/x.png"
refused "--class 10 is not one of the 10 classes" sample --checkpoint "$work/g.safetensors" --class 10 --out "$work/x.png"
refused "--count: must be an integer in \[1, 100000\]" sample --checkpoint "$work/g.safetensors" --class 1 --count 0 --out "$work/x.png"
[[ ! -e $work/x.png ]] || fail "a refused sample wrote its picture"
# A cvae's spec over a ddpm-s's tensors: the names and shapes do not match.
"$lethe" train --model ddpm-s --limit 64 --batch 64 --epochs 1 --no-test --out "$work/d.safetensors" > /dev/null 2>&1
python3 - "$work/d.safetensors" "$work/wrong.safetensors" "$(dirname "$0")" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[3])
import safetensors_py
tensors, metadata = safetensors_py.load(sys.argv[1])
spec = json.loads(metadata["model"])
spec["name"] = "cvae"
metadata["model"] = json.dumps(spec)
safetensors_py.dump(sys.argv[2], tensors, metadata)
PY
refused "does not fit model cvae: load_state_dict: names do not match" sample --checkpoint "$work/wrong.safetensors" --class 1 --out "$work/x.png"
"$lethe" eval --checkpoint "$work/g.safetensors" --json > "$work/eval.json" || fail "eval of a cvae failed"
python3 - "$work/eval.json" "$work/t2.json" <<'PY' || fail "eval of a cvae does not give the test loss train gave"
import json, sys
e, t = (json.load(open(f)) for f in sys.argv[1:3])
assert e["accuracy"] is None and e["count"] == 256 and e["mean_loss"] == t["mean_loss"], (e, t)
PY
# Its metrics under class:0, judged by a classifier (here the small mlp).
"$lethe" eval --checkpoint "$work/g.safetensors" --scenario class:0 --evaluator "$work/mlp.safetensors" \
  --samples-per-class 60 --loss-images 100 --json > "$work/metrics.json" 2> "$work/err" ||
  fail "eval of a cvae with an evaluator failed: $(cat "$work/err")"
python3 - "$work/metrics.json" <<'PY' || fail "the generator's metrics are wrong"
import json, math, sys
m = json.load(open(sys.argv[1]))
assert m["scenario"] == "class:0" and m["forget_class"] == 0 and len(m["classes"]) == 10, m
for share, count in ((m["forget_fidelity"], 60), (m["retain_fidelity"], 540)):
    assert share["count"] == count and 0 <= share["lo"] <= share["value"] <= share["hi"] <= 1, share
    assert abs(share["value"] - share["hits"] / count) < 1e-12, share
assert m["classes"][0]["fidelity"] == m["forget_fidelity"], m["classes"][0]
for key in ("forget_frechet", "retain_frechet"):
    assert math.isfinite(m[key]) and m[key] > -1e-6, (key, m[key])
assert abs(m["membership_gap"] - (m["test_forget_class_loss"] - m["forget_loss"])) < 1e-9, m
PY
refused "its metrics need --evaluator" eval --checkpoint "$work/g.safetensors" --scenario class:0
refused "eval --evaluator: .*holds the generator" eval --checkpoint "$work/g.safetensors" --scenario class:0 --evaluator "$work/g.safetensors"
refused "a generator forgets classes: the scenario is class:C" eval --checkpoint "$work/g.safetensors" --scenario random:0.1 --evaluator "$work/mlp.safetensors"
refused "--evaluator judges a generator" eval --checkpoint "$work/mlp.safetensors" --scenario class:0 --evaluator "$work/mlp.safetensors"
# Unlearning a class: the methods take the generator's loss; IEU needs a cap in its units.
"$lethe" unlearn --from "$work/g.safetensors" --scenario class:0 --method ieu --cap 1000 --lr 1e-5 --steps 4 --batch 32 \
  --out "$work/u.safetensors" --json > "$work/u.json" 2> "$work/err" || fail "unlearn ieu of a cvae failed: $(cat "$work/err")"
python3 - "$work/u.json" <<'PY' || fail "unlearning a cvae reported the wrong things"
import json, sys
u = json.load(open(sys.argv[1]))
assert u["model"] == "cvae" and u["method"] == "ieu" and u["details"]["ascent_steps"] == 4, u
assert "metrics" not in u, "a classifier's metrics for a generator"
PY
refused "give --cap in its loss's units" unlearn --from "$work/g.safetensors" --scenario class:0 --method ieu --out "$work/u2.safetensors"
refused "a generator forgets classes \(class:C\)" unlearn --from "$work/g.safetensors" --scenario random:0.1 --method ft --out "$work/u2.safetensors"
refused "SCRUB distils a classifier's logits" unlearn --from "$work/g.safetensors" --scenario class:0 --method scrub --out "$work/u2.safetensors"
[[ ! -e $work/u2.safetensors ]] || fail "a refused unlearn wrote a checkpoint"
# RCD of generators: the unlearned, the original and the retrained cvae relearn class 0, judged by
# the classifier; the retrained one is the denominator.
"$lethe" unlearn --from "$work/g.safetensors" --scenario class:0 --method retrain --out "$work/r.safetensors" \
  --split-out "$work/split.json" > /dev/null 2> "$work/err" || fail "retraining a cvae failed: $(cat "$work/err")"
"$lethe" relearn --split "$work/split.json" --from "$work/u.safetensors" --original "$work/g.safetensors" \
  --retrained "$work/r.safetensors" --evaluator "$work/mlp.safetensors" --samples-per-class 40 --loss-images 64 \
  --steps 6 --cap-limit 12 --batch 32 --lr 1e-4 --eval-every 3 --json > "$work/relearn.json" 2> "$work/err" ||
  fail "relearning cvaes failed: $(cat "$work/err")"
python3 - "$work/relearn.json" <<'PY' || fail "the generators' relearning results are wrong"
import json, math, sys
r = json.load(open(sys.argv[1]))
assert r["relearn"]["retain_mix"] == 0 and r["relearn_data"]["retain_samples"] == 0, r["relearn_data"]
models = {m["role"]: m for m in r["models"]}
assert set(models) == {"original", "retrained", "unlearned"}, list(models)
for m in models.values():
    x = m["metrics"]
    assert 0 <= x["fa"] <= 1 and 0 <= x["ra"] <= 1 and x["ta"] is None and x["mia"] is None, x
    assert m["curve"] and all(0 <= p["forget_accuracy"] <= 1 and math.isfinite(p["forget_loss"]) for p in m["curve"]), m["curve"]
    assert "loss_steps" in m["rcd"] and "accuracy_steps" in m["rcd"] and "normalized" in m["rcd"], m["rcd"]
assert models["original"]["rcd"]["loss_steps"] == 0, models["original"]["rcd"]  # meets its own targets at once
assert models["retrained"]["rcd"]["cap"] == 12, models["retrained"]["rcd"]
PY
refused "relearning a generator needs --evaluator" relearn --split "$work/split.json" --from "$work/u.safetensors" --original "$work/g.safetensors"
refused "--evaluator is for generators" relearn --split "$work/split.json" --from "$work/mlp.safetensors" --evaluator "$work/mlp.safetensors"
refused "not finite" train --model cvae --optimizer sgd --lr 1e5 --limit 256 --epochs 1 --no-test --out "$work/nan.safetensors"
[[ ! -e $work/nan.safetensors ]] || fail "a diverged run wrote a checkpoint"
echo "$name: ok"
