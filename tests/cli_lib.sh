# Sourced by the CLI test scripts (cli.sh, hardening.sh, output_safety.sh, fault_injection.sh, ...)
# after they set `name` and `lethe`: skips (exit 77) without Fashion-MNIST, and gives them
# `skip_check`, `fail`, `refused`, `json_field`, `same_results`, `small_datasets`, the small run
# and a scratch folder `$work`, removed on exit.
# KEEP_GOING=1 makes `fail` report every failed check, not only the first (the script then
# checks $failures at its end).

# A check this machine cannot run: says why, and logs "NAME<TAB>why" to $LETHE_SKIP_LOG (set by
# ctest; tools/test lists the log after the suite), as lethe_tests' record_skip does.
skip_check() {
  echo "$name: SKIPPED: $*"
  if [[ -n ${LETHE_SKIP_LOG:-} ]]; then printf '%s\t%s\n' "$name" "$*" >> "$LETHE_SKIP_LOG"; fi
}
data=/usr/share/datasets/fashion-mnist
if [[ ! -f $data/t10k-labels-idx1-ubyte.gz ]]; then
  skip_check "no Fashion-MNIST in $data (tools/setup installs dataset-fashion-mnist)"
  exit 77
fi
failures=0
fail() {
  echo "$name: FAILED: $*" >&2
  [[ -n ${KEEP_GOING:-} ]] || exit 1
  failures=$((failures + 1))
}
small=(--model mlp --limit 1024 --batch 128 --threads 2)
# small_datasets TRAIN TEST: from here on, every lethe command given no --data reads the first
# TRAIN training and TEST test images of Fashion-MNIST (LETHE_DATASETS): a run loads them in a
# tenth of the whole set's time, most of a small command's time under the sanitizers. For the
# scripts whose checks do not need the whole set; $data is then that folder.
small_datasets() {
  python3 "$(dirname "${BASH_SOURCE[0]}")/fashion_subset.py" "$data" "$work/datasets/fashion-mnist" "$1" "$2"
  export LETHE_DATASETS=$work/datasets
  data=$LETHE_DATASETS/fashion-mnist
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# refused PATTERN lethe-args...: the command fails, and its error matches PATTERN (grep -E).
refused() {
  local pattern=$1 rc=0
  shift
  "$lethe" "$@" > "$work/out" 2> "$work/err" || rc=$?
  ((rc != 0)) || fail "lethe $* was accepted"
  grep -qE -- "$pattern" "$work/err" || fail "lethe $*: unclear error: $(cat "$work/err")"
}
# json_field FILE KEY: a top-level value of a JSON file, as Python prints it.
json_field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
# same_results A B: two studies' results.json are equal but for times (and when they were made).
same_results() {
  python3 - "$1/results.json" "$2/results.json" <<'PY'
import json, sys
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if "seconds" not in k and k not in ("created", "timings")}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
a, b = (strip(json.load(open(f))) for f in sys.argv[1:3])
assert a == b, [k for k in a if a[k] != b.get(k)]
PY
}
