#!/usr/bin/env bash
# A study as a graph of phases (issue 16): `lethe run --plan` lists every phase with its command,
# inputs, outputs and the phases it needs (each output made by one phase, each input made by a
# phase it needs, listed before it); `--phase ID` runs one phase alone, refusing an unknown id, an
# input not yet made and an input made with other flags; every phase run one at a time, then
# report, gives the checkpoints and results of an in-process `lethe run`, bit for bit, and so does
# `--jobs 2`, also when stopped mid-way and run again; `lethe report --study` half-way reports the
# replicates done and lists the phases that are not.
#   tests/phases.sh BUILD_DIR/tools/lethe
set -euo pipefail
lethe=$1
name=phases.sh
source "$(dirname "$0")/cli_lib.sh"
small_datasets 3000 500
trap 'echo "$name: FAILED: line $LINENO: $BASH_COMMAND" >&2' ERR  # a step that stops the script says which

# study FILE [EXTRA]: the small study, with the lines EXTRA appended ([unlearn] is last).
study() {
  cat > "$1" <<TOML
[study]
name = "graph"
model = "mlp"
scenarios = ["random:0.1", "class:1"]
methods = ["ft", "ieu"]
replicates = 2
threads = 1
[train]
limit = 1024
epochs = 1
batch = 64
[split]
split-limit = 1024
[relearn]
steps = 10
batch = 64
[unlearn]
steps = 6
batch = 64
${2:-}
TOML
}
study "$work/s.toml"

# graph_ok PLAN OUT: PLAN (--plan's JSON) is the study's graph: every id once, r0/original first and
# report last, every output inside OUT made by one phase, every input made by a phase of the
# reader's `after`, listed before it; a command (train, split, unlearn) writes the phase's first
# output; report needs every relearn phase.
graph_ok() {
  python3 - "$1" "$2" <<'PY'
import json, sys
plan, out = json.load(open(sys.argv[1])), sys.argv[2]
phases = plan["phases"]
ids = [p["id"] for p in phases]
assert len(ids) == len(set(ids)), "an id twice"
assert ids[0] == "r0/original" and ids[-1] == "report", ids
producer = {}
for i, p in enumerate(phases):
    for f in p["outputs"]:
        assert f.startswith(out + "/"), f
        assert f not in producer, f"{f} made by {producer[f]} and {p['id']}"
        producer[f] = p["id"]
    for a in p["after"]:
        assert a in ids[:i], f"{p['id']} needs {a}, not listed before it"
    for f in p["inputs"]:
        assert producer.get(f) in p["after"], f"{p['id']} reads {f}, made by {producer.get(f)}, not a phase it needs"
    assert (p["command"] is None) == (p["kind"] in ("search", "relearn", "report")), p
    if p["command"]:
        assert p["command"][0] == p["kind"], p["command"]
        assert any(a == "--out=" + p["outputs"][0] for a in p["command"]), p["command"]
assert set(phases[-1]["after"]) == {p["id"] for p in phases if p["kind"] == "relearn"}
PY
}
# kinds PLAN: how many phases of each kind, "kind:count ..." sorted by kind.
kinds() {
  python3 -c 'import collections, json, sys
c = collections.Counter(p["kind"] for p in json.load(open(sys.argv[1]))["phases"])
print(" ".join(f"{k}:{c[k]}" for k in sorted(c)))' "$1"
}

echo "== --plan: every phase once, its inputs made by the phases it needs, listed before it"
# The default study (what tools/demo runs): 1 original, per scenario (2) its split, the retrained
# model and 9 methods, and the relearning; then the report.
"$lethe" run "$(dirname "$0")/../tools/studies/default.toml" --out "$work/d" --plan > "$work/dplan.json"
graph_ok "$work/dplan.json" "$work/d" || fail "the default study's plan is not its graph: see above"
[[ $(kinds "$work/dplan.json") == "relearn:2 report:1 split:2 train:1 unlearn:20" ]] ||
  fail "the default study's plan has other phases: $(kinds "$work/dplan.json")"
"$lethe" run "$work/s.toml" --out "$work/p" --plan > "$work/plan.json"
[[ ! -e $work/p ]] || fail "--plan made the output folder"
graph_ok "$work/plan.json" "$work/p" || fail "the plan is not the study's graph: see above"
# 2 replicates x (original + 2 scenarios x (split, retrain, ft, ieu, relearn)) + report
[[ $(kinds "$work/plan.json") == "relearn:4 report:1 split:4 train:2 unlearn:12" ]] ||
  fail "the plan has other phases: $(kinds "$work/plan.json")"
python3 - "$work/plan.json" <<'PY' || fail "the plan's edges are wrong: see above"
import json, sys
phases = {p["id"]: p for p in json.load(open(sys.argv[1]))["phases"]}
r1 = phases["r1/class-1/ieu"]
assert r1["after"] == ["r1/original", "r1/class-1/split"] and not r1["tuned"], r1
assert "--seed=1" in phases["r1/original"]["command"]
PY
"$lethe" run "$work/s.toml" --out "$work/p" --plan --format dot > "$work/plan.dot"
grep -q '^digraph study {' "$work/plan.dot" || fail "--format dot: $(head -2 "$work/plan.dot")"
edges=$(python3 -c 'import json, sys; print(sum(len(p["after"]) for p in json.load(open(sys.argv[1]))["phases"]))' "$work/plan.json")
[[ $(grep -c -- ' -> ' "$work/plan.dot") -eq $edges ]] || fail "--format dot has not the plan's $edges edges"
# With [tune], every method of every replicate waits for replicate 0's search of its scenario.
study "$work/t.toml" $'[tune]\ntrials = 2'
"$lethe" run "$work/t.toml" --out "$work/p" --plan > "$work/tplan.json"
graph_ok "$work/tplan.json" "$work/p" || fail "the tuned study's plan is not its graph: see above"
python3 - "$work/tplan.json" <<'PY' || fail "the plan of a tuned study is wrong"
import json, sys
phases = {p["id"]: p for p in json.load(open(sys.argv[1]))["phases"]}
assert [i for i in phases if i.endswith("/search")] == ["r0/random-0.1/search", "r0/class-1/search"]
assert phases["r0/class-1/search"]["after"] == ["r0/original", "r0/class-1/split", "r0/class-1/retrain"]
for r in (0, 1):
    m = phases[f"r{r}/class-1/ft"]
    assert m["tuned"] and "r0/class-1/search" in m["after"], m
    assert not phases[f"r{r}/class-1/retrain"]["tuned"]
PY

echo "== --phase refuses an unknown id and inputs that are not done"
refused "no such phase.*r0/original, \.\.\., report.*--plan" run "$work/s.toml" --out "$work/p" --phase r0/nothing
refused "phase r0/random-0.1/ft needs phase r0/original.*not done.*--phase r0/original" \
  run "$work/s.toml" --out "$work/p" --phase r0/random-0.1/ft
[[ ! -e $work/p/replicate-0/original.safetensors ]] || fail "a refused --phase trained the original"
refused "phase report needs phase r0/original" run "$work/s.toml" --out "$work/p" --phase report

# partial_report: `lethe report --study` on $work/p while replicate 1 is not run: results.json holds
# replicate 0 of each scenario, its pending_phases (and stdout) every phase of replicate 1, the page
# says so; nothing is run.
partial_report() {
  local before
  before=$(find "$work/p" -name '*.safetensors' | wc -l)
  "$lethe" report --study "$work/s.toml" --dir "$work/p" > "$work/partial.out" 2> "$work/partial.err" ||
    fail "report --study half-way: $(tail -3 "$work/partial.err")"
  [[ $(find "$work/p" -name '*.safetensors' | wc -l) -eq $before ]] || fail "report --study made a checkpoint"
  grep '^r1/' "$work/ids" > "$work/pending.expected"
  sed -n 's/^  //p' "$work/partial.out" | diff - "$work/pending.expected" > /dev/null ||
    fail "report --study did not list replicate 1's phases as not done: $(cat "$work/partial.out")"
  python3 - "$work/p/results.json" "$work/pending.expected" <<'PY' || fail "report --study's results.json: see above"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["pending_phases"] == open(sys.argv[2]).read().split(), r["pending_phases"]
assert [s["scenario"] for s in r["scenarios"]] == ["random:0.1", "class:1"], r["scenarios"]
for s in r["scenarios"]:
    assert [rep["replicate"] for rep in s["replicates"]] == [0], s["replicates"]
    assert s["summary"]["replicates"] == 1, s["summary"]
PY
  grep -q 'Not done: 11 phases' "$work/p/report.html" || fail "report.html does not list the phases not done"
}

echo "== every phase alone, in the plan's order, gives the in-process run's results"
# The whole run first, in the same folder (a checkpoint's metadata holds its inputs' paths), then
# moved away.
"$lethe" run "$work/s.toml" --out "$work/p" > /dev/null 2> "$work/whole.err" ||
  fail "lethe run: $(tail -3 "$work/whole.err")"
mv "$work/p" "$work/whole"
python3 -c 'import json, sys; print("\n".join(p["id"] for p in json.load(open(sys.argv[1]))["phases"]))' \
  "$work/plan.json" > "$work/ids"
while read -r id; do
  # Half-way (replicate 0 done), `lethe report --study` reports replicate 0 and lists the rest.
  [[ $id == r1/original ]] && partial_report
  "$lethe" run "$work/s.toml" --out "$work/p" --phase "$id" > "$work/phase.out" 2> "$work/phase.err" ||
    fail "--phase $id: $(tail -3 "$work/phase.err")"
done < "$work/ids"
(cd "$work/whole" && find . -name '*.safetensors' | sort | xargs md5sum) > "$work/whole.sums"
(cd "$work/p" && md5sum -c --quiet "$work/whole.sums") || fail "a phase run alone made another checkpoint"
[[ $(wc -l < "$work/whole.sums") -eq 14 ]] || fail "expected 14 checkpoints: $(cat "$work/whole.sums")"
same_results "$work/whole" "$work/p" || fail "results.json differs beyond its timings"
"$lethe" run "$work/s.toml" --out "$work/p" --phase r1/class-1/relearn > "$work/again.out" 2> "$work/again.err"
grep -q "done before" "$work/again.err" || fail "a finished phase ran again: $(tail -2 "$work/again.err")"
"$lethe" report --study "$work/s.toml" --dir "$work/p" > "$work/full.out" 2> "$work/full.err" ||
  fail "report --study when done: $(tail -3 "$work/full.err")"
grep -q "every phase of the study is done (23)" "$work/full.out" || fail "report --study when done: $(cat "$work/full.out")"
same_results "$work/whole" "$work/p" || fail "report --study of a finished study: results.json differs beyond its timings"
refused "give RESULTS .*or --study" report
refused "excludes" report "$work/p/results.json" --study "$work/s.toml"
refused "no study folder" report --study "$work/s.toml" --dir "$work/nothing"

echo "== --jobs 2: stopped (SIGTERM) mid-way, every child stops; run again, the sequential run's results"
mv "$work/p" "$work/phases"
"$lethe" run "$work/s.toml" --out "$work/p" --jobs 2 > /dev/null 2> "$work/jobs.err" &
pid=$!
for _ in $(seq 600); do
  [[ -e $work/p/replicate-0/original.safetensors.done.json ]] && break
  sleep 0.1
done
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[[ $rc -eq 130 ]] || fail "--jobs 2 stopped by SIGTERM: exit $rc, not 130: $(tail -3 "$work/jobs.err")"
# Each child got SIGTERM and exits at once, but tearing down a large process (under the
# sanitizers, on two busy cores) can take longer than a fixed pause: wait up to 10 s.
for _ in $(seq 100); do
  pgrep -f -- "--out=$work/p" > /dev/null || break
  sleep 0.1
done
pgrep -f -- "--out=$work/p" > /dev/null && fail "a phase's process outlived the stopped --jobs run: $(pgrep -af -- "--out=$work/p")"
"$lethe" run "$work/s.toml" --out "$work/p" --jobs 2 > "$work/jobs.out" 2> "$work/jobs.err" ||
  fail "--jobs 2: $(tail -3 "$work/jobs.err")"
grep -q "in up to 2 processes" "$work/jobs.err" || fail "--jobs 2 did not say how it runs: $(head -3 "$work/jobs.err")"
[[ -s $work/p/logs/r1/class-1/ieu.log ]] || fail "--jobs 2 kept no log of phase r1/class-1/ieu"
(cd "$work/p" && md5sum -c --quiet "$work/whole.sums") || fail "--jobs 2 made another checkpoint"
same_results "$work/whole" "$work/p" || fail "--jobs 2: results.json differs beyond its timings"
refused "phase.*excludes|excludes.*phase" run "$work/s.toml" --out "$work/p" --jobs 2 --phase report

echo "== an input made with other flags than the config now gives is refused, by phase"
study "$work/changed.toml" $'[unlearn.ft]\nlr = 0.123'
refused "phase r0/random-0.1/relearn needs phase r0/random-0.1/ft.*other flags.*--phase r0/random-0.1/ft" \
  run "$work/changed.toml" --out "$work/p" --phase r0/random-0.1/relearn
"$lethe" run "$work/changed.toml" --out "$work/p" --phase r0/random-0.1/ft > /dev/null 2> "$work/ft.err" ||
  fail "--phase r0/random-0.1/ft after the change: $(tail -3 "$work/ft.err")"
cmp -s "$work/p/replicate-0/random-0.1/ft.safetensors" "$work/whole/replicate-0/random-0.1/ft.safetensors" &&
  fail "the changed flags made the same checkpoint: the check above tests nothing"
echo "$name: ok"
