#!/usr/bin/env bash
# `lethe dynamics` (the convex study) end to end on a small problem (the linear model on 7×7
# average-pooled Fashion-MNIST: 500 parameters, dense linear algebra in milliseconds): the
# reference points meet their tolerance, the run contracts no slower than the linear theory's
# factor and its rate agrees with the linearised recursion's, the noise spread and the minibatch
# run are measured against their predictions, relearning is reported along the run, the report
# has its three plots, float32 runs too, and bad input is refused with a reason: a non-convex
# model, a tolerance ≤ 0, a learning rate or decay that would diverge (detected from the factor, before
# any step).
#   tests/dynamics.sh BUILD_DIR/tools/lethe
set -euo pipefail
lethe=$1
name=dynamics.sh
source "$(dirname "$0")/cli_lib.sh"
small_datasets 3000 0

common=(--scenario class:0 --input-pool 4 --threads 2)
"$lethe" dynamics "${common[@]}" --steps 300 --lr 0.3 --alpha 0.05 --decay 0.05 --l2 0.02 --sigma 0.001 \
  --snapshots 2 --relearn-steps 100 --out "$work/dyn" > "$work/out" 2> "$work/err" ||
  fail "dynamics failed: $(cat "$work/err")"
grep -q "contraction factor q = " "$work/out" || fail "no contraction factor printed: $(cat "$work/out")"
python3 - "$work/dyn/dynamics.json" <<'PY' || fail "dynamics.json does not hold what the study claims"
import json, math, sys
r = json.load(open(sys.argv[1]))
p, ref, m, pred, h = r["problem"], r["reference_points"], r["measured"], r["predicted"], r["hessian"]
assert p["parameters"] == 10 * 50 and p["model"] == "linear" and p["dtype"] == "float64", p
for point in ("original", "retrained", "fixed_point"):
    assert ref[point]["gradient_norm"] <= 1e-8, (point, ref[point])
assert not ref["fixed_point_is_retrained"]  # α > 0: IEU settles elsewhere
# The L2 term is the retain Hessian's smallest eigenvalue (softmax's shift directions).
assert abs(h["retain_at_retrained"]["mu"] - 0.02) < 1e-12, h
q = pred["contraction_factor"]
assert 0 < q < 1, q
assert q == max(abs(1 - 0.3 * h["ieu_at_fixed_point"]["min"]), abs(1 - 0.3 * h["ieu_at_fixed_point"]["max"]))
# Full batch without noise converges no slower than the slowest direction allows, and at the
# rate of the linearised recursion from the same start.
rate, lin = m["rate_full_batch"], m["rate_linearised"]
assert m["fit_points"] >= 10, m
assert rate <= q + 1e-9, (rate, q)
assert abs(rate - lin) < 1e-3, (rate, lin)
assert m["linearisation_gap_fit_window"] < 0.05, m  # near θ_fp the loss is nearly quadratic
assert m["final_distance_to_fixed_point"] < 0.1 * m["start_distance_to_fixed_point"], m
# The noise spread around the noiseless run, against σ²Σ(1 − a²ᵗ)/(1 − a²): one run's 500
# coordinates estimate it to a few percent.
assert 0.8 < m["spread_ratio"] < 1.25, m["spread_ratio"]
assert m["minibatch"]["ratio"] > 0, m["minibatch"]
t = r["trajectory"]
assert len(t["step"]) == 301 and t["noisy_spread"][0] == 0 and t["predicted_spread"][0] == 0
points = r["relearning"]["points"]
assert [x["start"] for x in points] == ["ieu", "ieu", "ieu", "retrained"], points
assert [x["step"] for x in points[:3]] == [0, 150, 300]
assert points[0]["rcd"]["loss_steps"] == 0  # θ*_o is the original: nothing to relearn
assert points[-1]["distance_to_retrained"] == 0
PY
for plot in distance spread rcd-distance; do
  grep -q "data-plot=\"$plot\"" "$work/dyn/report.html" || fail "report.html has no $plot plot"
done

# float32 runs: the same reference points, the same constants, distances down to float32's floor.
"$lethe" dynamics "${common[@]}" --dtype float32 --steps 60 --lr 0.3 --batch 0 --snapshots 1 --relearn-steps 20 \
  --json > "$work/f32.json" 2> "$work/err" || fail "float32 dynamics failed: $(cat "$work/err")"
python3 - "$work/f32.json" <<'PY' || fail "the float32 run's record is wrong"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["problem"]["dtype"] == "float32" and r["measured"]["minibatch"] is None, r["problem"]
assert r["trajectory"]["clean_distance_to_fixed_point"][-1] < r["measured"]["start_distance_to_fixed_point"]
PY

# A cap that binds: the gate holds the ascent off for most steps, so the run does not go to the
# ungated fixed point the theory describes — and the record says the gate would be shut there.
"$lethe" dynamics "${common[@]}" --steps 100 --lr 0.3 --alpha 0.05 --decay 0.05 --l2 0.02 --cap 3 --batch 0 \
  --snapshots 1 --relearn-steps 20 --json > "$work/cap.json" 2> "$work/err" || fail "capped dynamics failed: $(cat "$work/err")"
python3 - "$work/cap.json" <<'PY' || fail "the capped run's record is wrong"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ieu"]["cap"] == 3 and r["reference_points"]["gate_open_at_fixed_point"] is False, r["reference_points"]
assert r["ieu"]["gate_open_steps"] < 100, r["ieu"]
assert r["measured"]["final_distance_to_fixed_point"] > 2 * r["measured"]["final_linearised_distance"], r["measured"]
PY

refused "needs the linear model.*cnn-s is not convex" dynamics "${common[@]}" --model cnn-s --steps 10
refused "--tolerance: must be a number in \(0," dynamics "${common[@]}" --tolerance 0 --steps 10
refused "--tolerance: must be a number in \(0," dynamics "${common[@]}" --tolerance -1e-9 --steps 10
refused "would diverge.*η < 2/L" dynamics "${common[@]}" --lr 10 --steps 10
refused "would diverge.*lower η or λ" dynamics "${common[@]}" --decay 100 --alpha 0 --lr 0.3 --steps 10
[[ ! -e $work/never ]] || fail "a refused run wrote output"
echo "$name: ok"
