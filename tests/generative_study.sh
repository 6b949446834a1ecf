#!/usr/bin/env bash
# The generative study end to end (issue 17): `lethe run tools/studies/generative.toml --quick`
# trains its evaluator (phase "evaluator", which every relearning phase waits for), the cvae, every
# method's model and relearns them; results.json holds every generator metric (fidelity with its
# interval, Fréchet distances, losses) and RCD per model, a picture of every model's samples beside
# it, and the report embeds them. A second run does nothing; a deleted picture re-runs only its
# scenario's relearning. Bad generator configs are refused with a reason. Then the report in
# headless Chromium (report_browser.sh; skipped without one).
#   tests/generative_study.sh BUILD_DIR/tools/lethe
set -euo pipefail
lethe=$1
name=generative_study.sh
source "$(dirname "$0")/cli_lib.sh"
small_datasets 4000 1000
config=$(dirname "$0")/../tools/studies/generative.toml
study=$work/study

"$lethe" run "$config" --quick --plan --out "$study" > "$work/plan.json" || fail "--plan failed"
python3 - "$work/plan.json" <<'PY' || fail "the generative study's plan is wrong"
import json, sys
phases = json.load(open(sys.argv[1]))["phases"]
evaluator = [p for p in phases if p["kind"] == "evaluator"]
assert len(evaluator) == 1 and evaluator[0]["id"] == "evaluator", evaluator
assert evaluator[0]["command"][:2] == ["train", "--model=cnn-s"], evaluator[0]["command"]
assert "--limit=4000" in evaluator[0]["command"], evaluator[0]["command"]  # --quick's
relearn = [p for p in phases if p["kind"] == "relearn"]
assert len(relearn) == 2 and all("evaluator" in p["after"] for p in relearn), relearn
assert all(evaluator[0]["outputs"][0] in p["inputs"] for p in relearn), relearn
PY

"$lethe" run "$config" --quick --out "$study" > "$work/run1.out" 2> "$work/run1.err" ||
  fail "lethe run generative.toml --quick: $(tail -5 "$work/run1.err")"
python3 - "$study" <<'PY' || fail "the generative study's results are wrong"
import json, math, os, struct, sys
study = sys.argv[1]
r = json.load(open(os.path.join(study, "results.json")))
assert r["study"] == "generative-quick", r["study"]
assert [s["scenario"] for s in r["scenarios"]] == ["class:0", "class:7"], r["scenarios"]
names = ["original", "retrained", "ft", "ga", "neggrad+", "rl", "l1-sparse", "salun", "ieu", "ieu-no-ascent"]
for s in r["scenarios"]:
    forgotten = int(s["scenario"].split(":")[1])
    assert s["relearn"]["data"] == "forget" and s["relearn"]["optimizer"] == "adam", s["relearn"]
    (rep,) = s["replicates"]
    models = rep["models"]
    assert [m["name"] for m in models] == names, [m["name"] for m in models]
    for m in models:
        g, x = m["generator_metrics"], m["metrics"]
        assert g["forget_class"] == forgotten, g["forget_class"]
        ff, rf = g["forget_fidelity"], g["retain_fidelity"]
        assert ff["count"] == 60 and rf["count"] == 9 * 60, (ff, rf)  # --quick: 60 samples a class
        assert ff["lo"] <= ff["value"] <= ff["hi"] and rf["lo"] <= rf["value"] <= rf["hi"], (ff, rf)
        assert x["fa"] == ff["value"] and x["ra"] == rf["value"] and x["ta"] is None and x["mia"] is None, x
        for k in ("forget_frechet", "retain_frechet", "forget_loss", "test_loss", "membership_gap"):
            assert math.isfinite(g[k]), (m["name"], k, g[k])
        assert m["generative"]["forget_frechet"] == g["forget_frechet"], m["generative"]
        assert len(g["classes"]) == 10, g["classes"]
        assert m["rcd"]["loss_steps"] is not None or m["rcd"]["loss_censored"], m["rcd"]
        if m["role"] != "retrained":  # the gap: of the two fidelities (TA and MIA do not apply)
            retrained = models[1]["metrics"]
            gap = (abs(x["fa"] - retrained["fa"]) + abs(x["ra"] - retrained["ra"])) / 2
            assert abs(m["gap"] - gap) < 1e-12, (m["gap"], gap)
    assert sorted(rep["samples"]) == sorted(names), rep["samples"]
    for name, path in rep["samples"].items():
        png = open(os.path.join(study, path), "rb").read()
        assert png[:8] == b"\x89PNG\r\n\x1a\n", path
        # 12 columns, 3 rows (the forgotten class, then the next two) of 28×28 tiles, 2-pixel gaps.
        assert struct.unpack(">II", png[16:24]) == (12 * 30 + 2, 3 * 30 + 2), (path, png[16:24])
timings = [t["phase"] for t in r["timings"]]
assert "train the evaluator" in timings, timings
html = open(os.path.join(study, "report.html")).read()
assert html.count('<img class="samples"') == 20 and html.count('src="data:image/png;base64,') == 20
assert html.count('<tr class="generator-model') == 20
PY

# Done: nothing runs again. A deleted picture re-runs its scenario's relearning only.
"$lethe" run "$config" --quick --out "$study" > /dev/null 2> "$work/run2.err" || fail "second run failed"
[[ $(grep -c "done before" "$work/run2.err") -ge 22 ]] || fail "the second run re-ran phases: $(cat "$work/run2.err")"
grep -q "relearning 10 models" "$work/run2.err" && fail "the second run relearned"
rm "$study/replicate-0/class-7/samples/ieu.png"
"$lethe" run "$config" --quick --out "$study" > /dev/null 2> "$work/run3.err" || fail "third run failed"
[[ $(grep -c "relearning 10 models" "$work/run3.err") -eq 1 ]] || fail "a deleted picture did not re-run its relearning alone"
[[ -f $study/replicate-0/class-7/samples/ieu.png ]] || fail "the deleted picture was not drawn again"

# Bad generator studies: refused, naming the key.
bad() {  # bad TOML-LINES EXPECTED: a cvae study with these [study] lines is refused with EXPECTED
  printf '[study]\nmodel = "cvae"\n%b\n' "$1" > "$work/bad.toml"
  if "$lethe" run "$work/bad.toml" --out "$work/bad" --plan > /dev/null 2> "$work/err"; then fail "accepted: $1"; fi
  grep -qF -- "$2" "$work/err" || fail "unclear error for $1: $(cat "$work/err")"
}
bad 'scenarios = ["random:0.1"]' 'a generator (cvae) forgets one class (class:C)'
bad 'scenarios = ["class:0,1"]\nmethods = ["ft"]' 'a generator (cvae) forgets one class (class:C)'
bad 'scenarios = ["class:0"]\nmethods = ["ft", "scrub"]' "scrub distils a classifier's logits"
bad 'scenarios = ["class:0"]\nmethods = ["ft"]\nsamples_per_class = 1' 'samples_per_class = 1: must be in [2, 1000000]'
# Without a methods list, a generator study runs every method with a generator form: all but SCRUB.
printf '[study]\nmodel = "cvae"\nscenarios = ["class:1"]\n' > "$work/plain.toml"
"$lethe" run "$work/plain.toml" --out "$work/plain" --plan > "$work/plain.json" || fail "a plain cvae study was refused"
python3 - "$work/plain.json" <<'PY' || fail "a plain cvae study's methods are wrong"
import json, sys
methods = {p["method"] for p in json.load(open(sys.argv[1]))["phases"] if p["kind"] == "unlearn"}
assert "scrub" not in methods and {"retrain", "ft", "ieu", "salun"} <= methods, methods
PY
printf '[study]\nevaluator = "judge.safetensors"\n' > "$work/bad.toml"
if "$lethe" run "$work/bad.toml" --out "$work/bad" --plan > /dev/null 2> "$work/err"; then fail "an evaluator for a classifier study accepted"; fi
grep -qF "[study] evaluator judges a generator's samples" "$work/err" || fail "unclear evaluator error: $(cat "$work/err")"

# The report as a browser shows it (skipped, visibly, without Chromium).
rc=0
"$(dirname "$0")/report_browser.sh" "$lethe" "$study/results.json" "$work/browser" || rc=$?
if ((rc == 77)); then
  skip_check "the generative report in a browser: chromium not installed"
elif ((rc != 0)); then
  fail "the generative report in Chromium"
fi
((failures == 0)) || { echo "$name: $failures check(s) FAILED"; exit 1; }
echo "$name: all checks passed"
