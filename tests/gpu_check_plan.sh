#!/usr/bin/env bash
# Checks tools/gpu-check's plan without a GPU (--dry-run): it fits one device command, its steps run
# in the order of value (build, the op registry on CUDA, the other CUDA tests, the CUDA benchmarks,
# the small study on CUDA and the relearning benchmark, the other tests, the sanitizer last), its
# ctest regexes catch every test case that uses the GPU,
# and each sanitizer test case exists and launches nothing through cuDNN or cuBLAS (of the op
# registry, the subcases of conv2d, matmul and linear are left out).
#   tests/gpu_check_plan.sh [SOURCE_ROOT]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "gpu_check_plan: $*" >&2; return 1; }

# check_plan FILE: the dry run's plan in FILE is well formed, adds up, fits, and is in order.
check_plan() {
  local file=$1
  # Plan rows: "  N   NAME...   CAPs   CUMULATIVEs".
  awk '/^  [0-9]+ / { name = $2; for (i = 3; i <= NF - 2; i++) name = name " " $i;
                      sub(/s$/, "", $(NF - 1)); sub(/s$/, "", $NF); print $1 "|" name "|" $(NF - 1) "|" $NF }' \
    "$file" >"$tmp/rows"
  local n=0 sum=0 idx name cap cum names=()
  while IFS='|' read -r idx name cap cum; do
    n=$((n + 1))
    [[ $idx == "$n" ]] || fail "row $n is numbered $idx" || return 1
    [[ $cap =~ ^[0-9]+$ && $cum =~ ^[0-9]+$ ]] || fail "row $n ($name): cap '$cap', cumulative '$cum'" || return 1
    sum=$((sum + cap))
    [[ $cum == "$sum" ]] || fail "row $n ($name): cumulative ${cum}s, the caps so far add up to ${sum}s" || return 1
    names+=("$name")
  done <"$tmp/rows"
  ((n >= 8)) || fail "only $n plan rows parsed" || return 1

  local total deadline limit
  read -r total deadline limit < <(sed -nE 's/^total: ([0-9]+)s of caps; deadline ([0-9]+)s; command limit ([0-9]+)s$/\1 \2 \3/p' "$file")
  [[ -n ${limit:-} ]] || fail "no 'total: ...' line" || return 1
  ((total == sum)) || fail "total ${total}s, the rows add up to ${sum}s" || return 1
  ((total <= deadline)) || fail "caps ${total}s over the deadline ${deadline}s" || return 1
  ((deadline <= limit && limit <= 600)) || fail "deadline ${deadline}s, command limit ${limit}s (a device command runs 600s at most)" || return 1

  # Each step's kind, in plan order, squeezed: the required order of kinds.
  local kinds="" kind
  for name in "${names[@]}"; do
    case $name in
      preflight) kind=preflight ;; configure) kind=configure ;; build) kind=build ;;
      "registry cuda") kind=registry ;; "ctest cuda") kind=ctest-cuda ;;
      "study cuda" | "bench relearn cuda") kind=study ;; "bench "*cuda) kind=bench-cuda ;;
      "ctest rest") kind=ctest-rest ;; sanitizer) kind=sanitizer ;;
      *) fail "unknown step '$name'"; return 1 ;;
    esac
    [[ $kinds == *" $kind" ]] || kinds+=" $kind"
  done
  local want=" preflight configure build registry ctest-cuda bench-cuda study ctest-rest sanitizer"
  [[ $kinds == "$want" ]] || fail "steps in the order$kinds; want$want" || return 1
  [[ ${names[*]} == *"bench cuda"* ]] || fail "no kernel benchmark on CUDA" || return 1
  [[ ${names[*]} == *"bench relearn cuda"* ]] || fail "no relearning benchmark on CUDA" || return 1
}

# The checks must be able to fail: a plan out of order, one over its deadline, one that misadds.
good=$'  1   preflight   10s   10s\n  2   configure   10s   20s\n  3   build   100s   120s\n  4   registry cuda   10s   130s\n  5   ctest cuda   10s   140s\n  6   bench cuda   10s   150s\n  7   study cuda   10s   160s\n  8   bench relearn cuda   10s   170s\n  9   ctest rest   10s   180s\n  10  sanitizer   10s   190s\ntotal: 190s of caps; deadline 200s; command limit 600s'
printf '%s\n' "$good" >"$tmp/good"
check_plan "$tmp/good" || fail "the check refuses a good plan"
printf '%s\n' "$good" | sed 's/  10  sanitizer/  10  bench ieu cuda/' >"$tmp/bad"
if check_plan "$tmp/bad" 2>/dev/null; then fail "the check missed benchmarks after the CPU tests"; fi
printf '%s\n' "$good" | sed 's/  4   registry cuda/  4   ctest cuda/; s/  5   ctest cuda/  5   registry cuda/' >"$tmp/bad"
if check_plan "$tmp/bad" 2>/dev/null; then fail "the check missed the op registry after the other CUDA tests"; fi
printf '%s\n' "$good" | sed 's/deadline 200s/deadline 170s/' >"$tmp/bad"
if check_plan "$tmp/bad" 2>/dev/null; then fail "the check missed caps over the deadline"; fi
printf '%s\n' "$good" | sed 's/ 130s$/ 131s/' >"$tmp/bad"
if check_plan "$tmp/bad" 2>/dev/null; then fail "the check missed a wrong cumulative"; fi

# The real plan. Without OUT: the dry run must not touch a real run's $OUT (ctest runs this there).
env -u OUT "$root/tools/gpu-check" --dry-run >"$tmp/plan" 2>&1 || {
  cat "$tmp/plan" >&2
  fail "tools/gpu-check --dry-run failed"
}
check_plan "$tmp/plan" || { cat "$tmp/plan" >&2; exit 1; }

# The dry run fails when the caps outgrow the deadline.
mkdir -p "$tmp/copy/tools"
sed 's/^deadline_s=[0-9]*/deadline_s=100/' "$root/tools/gpu-check" >"$tmp/copy/tools/gpu-check"
chmod +x "$tmp/copy/tools/gpu-check"
if env -u OUT "$tmp/copy/tools/gpu-check" --dry-run >/dev/null 2>&1; then
  fail "--dry-run exits 0 with a 100 s deadline"
fi

# Every test case, and whether it uses the GPU (a parity check, a CUDA guard, a CUDA tensor).
for f in "$root"/tests/*.cpp; do
  awk '/^TEST_CASE\(/ { if (name != "") print hit "|" name; match($0, /"[^"]*"/); name = substr($0, RSTART + 1, RLENGTH - 2); hit = 0; next }
       name != "" && /check_parity|cuda_or_skip|cuda_available\(|Device::cuda\(0?\)|is_cuda\(/ { hit = 1 }
       END { if (name != "") print hit "|" name }' "$f"
done >"$tmp/cases"
(($(grep -c '^1|' "$tmp/cases") >= 20)) || fail "found only $(grep -c '^1|' "$tmp/cases") test cases that use the GPU"

regex=$(sed -nE "s/^ctest cuda: ctest -R '(.*)' -E .*/\1/p" "$tmp/plan")
[[ -n $regex ]] || fail "no ctest cuda -R regex in the plan"
registry=$(sed -nE "s/^registry cuda: ctest -R '(.*)'$/\1/p" "$tmp/plan")
[[ -n $registry ]] || fail "no registry cuda -R regex in the plan"
grep -qx '1|op registry: CPU/CUDA parity' "$tmp/cases" || fail "no test case 'op registry: CPU/CUDA parity' that uses the GPU"
grep -Eq -- "$registry" <<<"op registry: CPU/CUDA parity" || fail "registry cuda's regex misses the op registry's parity"
missed=$(grep '^1|' "$tmp/cases" | cut -d'|' -f2- | grep -Ev -- "$regex" | grep -Ev -- "$registry" || true)
[[ -z $missed ]] || fail "neither ctest regex catches these test cases that use the GPU:"$'\n'"$missed"

filter=$(sed -nE 's/^sanitizer test cases: (.*)/\1/p' "$tmp/plan")
[[ -n $filter ]] || fail "no sanitizer test cases in the plan"
IFS=, read -r -a patterns <<<"$filter"
while IFS='|' read -r _ name; do
  for p in "${patterns[@]}"; do
    # shellcheck disable=SC2053  # $p is a doctest wildcard, matched as a glob
    if [[ $name == $p ]]; then
      echo "$p" >>"$tmp/matched"
      case $name in
        *conv*|*matmul*|*linear*|*cuBLAS*|*cuDNN*|nn:*|stacked:*|relearn:*)
          fail "sanitizer case '$p' selects '$name', which runs cuDNN or cuBLAS" ;;
      esac
    fi
  done
done <"$tmp/cases"
for p in "${patterns[@]}"; do
  grep -qxF -- "$p" "$tmp/matched" 2>/dev/null || fail "sanitizer case '$p' matches no test case"
done
# The op registry's cases are subcases named "<op>/<variant>": those of the ops on cuDNN or cuBLAS
# stay out of the sanitizer.
excluded=$(sed -nE 's/^sanitizer subcases excluded: (.*)/\1/p' "$tmp/plan")
for p in "${patterns[@]}"; do
  # shellcheck disable=SC2053  # $p is a doctest wildcard, matched as a glob
  [[ "op registry: CPU/CUDA parity" == $p ]] || continue
  for op in conv2d matmul linear; do
    [[ ,$excluded, == *",$op/*,"* ]] || fail "the sanitizer runs the op registry's parity with $op's cases (excluded: '$excluded')"
  done
done

echo "gpu_check_plan: ok ($(wc -l <"$tmp/rows") steps, $(grep -c '^1|' "$tmp/cases") GPU test cases matched, ${#patterns[@]} sanitizer cases)"
