#!/usr/bin/env bash
# `lethe tune` end to end (issue 15), on a 3,000-image Fashion-MNIST folder and the mlp: the search
# never reads the test set (it runs with the test files absent; `lethe run` of the same study, the
# control, fails without them), every method gets the same trials, the chosen setting is the
# argmin of the criterion (with the RCD term as README defines it), a killed search resumes without
# repeating a finished trial, --jobs gives the same trials as one process, bad settings are refused
# by name, and a study with [tune] after the search reuses it and runs the methods at their chosen
# settings.
#   tests/tune.sh BUILD_DIR/tools/lethe
set -euo pipefail
lethe=$1
name=tune.sh
source "$(dirname "$0")/cli_lib.sh"
trap 'echo "$name: FAILED: line $LINENO: $BASH_COMMAND" >&2' ERR  # a step that stops the script says which

# One folder of 3,000 training and 500 test images; its test files are moved away while the search
# runs, and back for the study that uses the search.
data_dir=$work/data
python3 "$(dirname "$0")/fashion_subset.py" "$data" "$data_dir" 3000 500
mkdir "$work/hidden"
hide_test() { mv "$data_dir"/t10k-* "$work/hidden/"; }
show_test() { mv "$work/hidden"/t10k-* "$data_dir/"; }

# study FILE DATA [EXTRA]: the small study, with the lines EXTRA appended.
study() {
  cat > "$1" <<TOML
[study]
name = "tiny"
model = "mlp"
data = "$2"
scenarios = ["random:0.1", "class:1"]
methods = ["ft", "ga", "ieu", "ieu-no-ascent"]
[train]
epochs = 2
batch = 64
[unlearn]
steps = 8
batch = 64
[relearn]
steps = 10
batch = 64
[tune]
trials = 3
validation = 0.2
${3:-}
TOML
}
study "$work/tune.toml" "$data_dir"
hide_test

# criteria DIR: every trial's scenario, method, index, flags and criterion, one per line.
criteria() {
  python3 - "$1/tune/tune.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
for sc in t["scenarios"]:
    for m in sc["methods"]:
        for tr in m["trials"]:
            print(sc["scenario"], m["method"], tr["trial"], " ".join(tr["flags"]), repr(tr["criterion"]))
PY
}

echo "== --list: every method but retrain has a space"
"$lethe" tune --list > "$work/list.txt"
for m in ft ga neggrad+ rl l1-sparse salun scrub ieu; do
  grep -q -- "^$m\b\|^ *$m " "$work/list.txt" || fail "--list has no space for $m: $(head -5 "$work/list.txt")"
done

echo "== the search, with no test set on disk, killed (SIGKILL) mid-way and resumed"
trials=$work/a/replicate-0/random-0.1/trials
"$lethe" tune "$work/tune.toml" --out "$work/a" > /dev/null 2> "$work/k.err" &
pid=$!
for _ in $(seq 600); do
  [[ $(ls "$trials"/*.done.json 2> /dev/null | wc -l) -ge 2 ]] && break
  sleep 0.1
done
kill -9 "$pid" 2> /dev/null || true
wait "$pid" 2> /dev/null || true
kept=$(ls "$trials"/*.done.json 2> /dev/null | wc -l)
[[ $kept -ge 2 ]] || fail "no trial finished before the kill: $(tail -2 "$work/k.err")"
# Only trials with their record: one killed between writing its result and its record is run again.
(cd "$trials" && md5sum $(ls *.done.json | sed 's/\.done\.json$//') > "$work/k.sums")
"$lethe" tune "$work/tune.toml" --out "$work/a" > "$work/a.out" 2> "$work/a.err" ||
  fail "tune failed without the test set: $(tail -3 "$work/a.err")"
done_before=$(grep -oE "random:0.1: 9 trials \(3 methods × 3\), [0-9]+ done before" "$work/a.err" | grep -oE "[0-9]+ done" |
  cut -d' ' -f1 || true)
[[ ${done_before:-0} -ge $kept ]] || fail "$kept trials had finished before the kill, ${done_before:-none} were kept"
(cd "$trials" && md5sum -c --quiet "$work/k.sums") || fail "a trial finished before the kill was run again"
python3 - "$work/a/tune/tune.json" <<'PY' || fail "tune.json does not hold what the search should"
import json, math, sys
t = json.load(open(sys.argv[1]))
assert t["trials"] == 3 and t["pool"]["validation"] == 0.2, t["pool"]
assert [s["scenario"] for s in t["scenarios"]] == ["random:0.1", "class:1"]
for sc in t["scenarios"]:
    assert sc["validation"] == 600, sc["validation"]  # 20% of 3000, held out of training and of the split
    assert sc["forget"] + sc["retain"] == 2400, (sc["forget"], sc["retain"])
    # ieu-no-ascent is IEU's control: it runs at IEU's setting, never searched on its own
    assert [m["method"] for m in sc["methods"]] == ["ft", "ga", "ieu"], [m["method"] for m in sc["methods"]]
    for m in sc["methods"]:
        assert len(m["trials"]) == 3, m["method"]
        crit = [tr["criterion"] if tr["criterion"] is not None else math.inf for tr in m["trials"]]
        assert m["chosen"] == crit.index(min(crit)), (m["method"], m["chosen"], crit)
        for tr in m["trials"]:
            if tr["error"] is None:
                gap = sum(abs(tr[k] - sc["retrained"][k]) for k in ("fa", "ra", "va", "mia")) / 4
                assert abs(gap - tr["gap"]) < 1e-12 and tr["criterion"] == tr["gap"], (gap, tr)
PY
for f in trials.csv tuned-random-0.1.toml tuned-class-1.toml report.html; do
  [[ -s $work/a/tune/$f ]] || fail "tune wrote no $f"
done
criteria "$work/a" > "$work/a.criteria"

echo "== the control: the study itself needs the test set, so its absence above was noticed"
if "$lethe" run "$work/tune.toml" --out "$work/control" > /dev/null 2> "$work/control.err"; then
  fail "lethe run succeeded without a test set: the check above proves nothing"
fi
grep -q "t10k" "$work/control.err" || fail "the control failed for another reason: $(tail -2 "$work/control.err")"

echo "== a finished search runs nothing again; lost trials run again in --jobs 2 processes, with the same results"
"$lethe" tune "$work/tune.toml" --out "$work/a" > /dev/null 2> "$work/again.err"
grep -q "random:0.1: 9 trials (3 methods × 3), 9 done before, 0 to run" "$work/again.err" ||
  fail "the finished search ran again: $(grep trials "$work/again.err")"
rm "$work"/a/replicate-0/random-0.1/trials/{ft-2,ga-1,ieu-0}.json
"$lethe" tune "$work/tune.toml" --out "$work/a" --jobs 2 > /dev/null 2> "$work/lost.err" ||
  fail "--jobs 2 failed: $(tail -3 "$work/lost.err")"
grep -q "random:0.1: 9 trials (3 methods × 3), 6 done before, 3 to run in 2 processes" "$work/lost.err" ||
  fail "not exactly the lost trials ran: $(grep trials "$work/lost.err")"
[[ -s $work/a/replicate-0/random-0.1/trials/ga-1.json.log ]] || fail "no trial process log"
criteria "$work/a" | cmp -s - "$work/a.criteria" ||
  fail "the trials run again in processes gave other results: $(criteria "$work/a" | diff - "$work/a.criteria" | head -4)"

echo "== --rcd-weight: every trial relearns its model, the criterion adds the relearning shortfall"
"$lethe" tune "$work/tune.toml" --out "$work/rcd" --scenario random:0.1 --methods ft,ieu --trials 2 --rcd-weight 0.5 \
  > /dev/null 2> "$work/rcd.err" || fail "tune --rcd-weight failed: $(tail -3 "$work/rcd.err")"
python3 - "$work/rcd/tune/tune.json" <<'PY' || fail "the RCD term is not what README says"
import json, sys
t = json.load(open(sys.argv[1]))
assert t["rcd_weight"] == 0.5
sc, = t["scenarios"]
rt = sc["retrained"]["rcd"]
assert rt is not None and rt > 0, sc["retrained"]
for m in sc["methods"]:
    for tr in m["trials"]:
        assert tr["error"] is None and tr["rcd"] is not None, tr
        want = tr["gap"] + 0.5 * max(0.0, 1 - tr["rcd"] / rt)
        assert abs(tr["criterion"] - want) < 1e-12, (tr["criterion"], want)
PY

echo "== bad settings: refused by name, before anything runs"
# refused CODE PATTERN FILE-EXTRA|- lethe-args...
refused() {
  local code=$1 pattern=$2 rc=0
  shift 2
  "$lethe" "$@" > /dev/null 2> "$work/bad.err" || rc=$?
  [[ $rc -eq $code ]] || fail "lethe $*: exit $rc, not $code: $(head -c 400 "$work/bad.err")"
  grep -qE -- "$pattern" "$work/bad.err" || fail "lethe $*: unclear error: $(cat "$work/bad.err")"
  [[ ! -e $work/bad ]] || fail "lethe $*: wrote $work/bad before refusing"
}
refused 2 'trials.*\[1, 100000\]' tune "$work/tune.toml" --out "$work/bad" --trials 0
refused 2 'validation.*\(0, 0.5\]' tune "$work/tune.toml" --out "$work/bad" --validation 0.6
refused 2 'validation.*\(0, 0.5\]' tune "$work/tune.toml" --out "$work/bad" --validation 0
study "$work/bad1.toml" "$data_dir" $'[tune.space.ft]\n'
refused 1 'search space of ft is empty' tune "$work/bad1.toml" --out "$work/bad"
study "$work/bad2.toml" "$data_dir" $'[tune.space.ft]\nlr = [0.001, 0.1]\nsaliency = [0.1, 0.5]'
refused 1 'saliency' tune "$work/bad2.toml" --out "$work/bad"
study "$work/bad3.toml" "$data_dir" $'[tune.space.ft]\nlearning-rate = [0.001, 0.1]'
refused 1 'learning-rate' tune "$work/bad3.toml" --out "$work/bad"
study "$work/bad4.toml" "$data_dir" $'[tune.space.ft]\nlr = [0.1, 0.001]'
refused 1 'lr' tune "$work/bad4.toml" --out "$work/bad"
study "$work/bad5.toml" "$data_dir" $'[tune.space.ieu]\nalpha = [0.1, 2000]'
refused 1 'alpha' tune "$work/bad5.toml" --out "$work/bad"

echo "== --quick: the default study's small setting, end to end"
"$lethe" tune --quick --scenario random:0.1 --methods ft --trials 2 --out "$work/q" > /dev/null 2> "$work/q.err" ||
  fail "tune --quick failed: $(tail -3 "$work/q.err")"
python3 - "$work/q/tune/tune.json" <<'PY' || fail "tune --quick: not the quick setting"
import json, sys
t = json.load(open(sys.argv[1]))
assert t["study"] == "default-quick" and t["step_budget"] == 40 and t["pool"]["subset"] == 4000, t["pool"]
sc, = t["scenarios"]
assert sc["validation"] == 400 and sc["forget"] + sc["retain"] == 3600, sc
assert [len(m["trials"]) for m in sc["methods"]] == [2]
assert all(tr["values"]["steps"] <= 40 for m in sc["methods"] for tr in m["trials"])
PY

echo "== a study with [tune] after the search: the search reused, then every method at its chosen setting"
show_test
"$lethe" run "$work/tune.toml" --out "$work/a" > /dev/null 2> "$work/r.err" || fail "the tuned study failed: $(tail -3 "$work/r.err")"
grep -q "random:0.1: 9 trials (3 methods × 3), 9 done before, 0 to run" "$work/r.err" ||
  fail "the study did not reuse the search: $(grep trials "$work/r.err")"
python3 - "$work/a" <<'PY' || fail "the tuned study did not run the chosen settings"
import json, struct, sys
out = sys.argv[1]
results = json.load(open(f"{out}/results.json"))
tune = results["tune"]
for sc in tune["scenarios"]:
    folder = sc["scenario"].replace(":", "-").replace(",", "-")
    chosen = {m["method"]: m["trials"][m["chosen"]]["flags"] for m in sc["methods"]}
    chosen["ieu-no-ascent"] = chosen["ieu"]
    for method, flags in chosen.items():
        with open(f"{out}/replicate-0/{folder}/{method}.safetensors", "rb") as f:
            header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        options = json.loads(header["__metadata__"]["unlearn_options"])
        for flag in flags:
            key, value = flag[2:].split("=")
            assert abs(float(options[key]) - float(value)) <= 1e-12 * abs(float(value)), (method, key, options[key], value)
PY
grep -q "Tuning" "$work/a/report.html" || fail "the study report has no tuning section"
echo "tune.sh: passed"
