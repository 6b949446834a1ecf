#!/usr/bin/env bash
# The study report as a browser shows it: `lethe report` on the fixture, then headless Chromium's
# DOM (every plot, a curve per model and replicate, the error bars, the summary's and replicates'
# rows, no "nan") and a screenshot to look at. Exits 77 (ctest: skipped) where Chromium is not
# installed; tools/setup installs it.
#   tests/report_browser.sh LETHE RESULTS.json OUT_DIR
set -euo pipefail
lethe=$1 results=$2 out=$3
chromium=/usr/bin/chromium
if [[ ! -x $chromium ]]; then
  echo "skipped: chromium not installed ($chromium; tools/setup installs it)"
  exit 77
fi

mkdir -p "$out"
html=$(realpath "$out")/report.html
"$lethe" report "$results" --out "$html"

# A fresh profile per run: no first-run state, no clash with a browser already open.
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
browse() {
  timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars \
    --user-data-dir="$profile" --window-size=1400,3000 "$@" "file://$html" 2>>"$out/chromium.log"
}
browse --dump-dom >"$out/dom.html"
browse --screenshot="$out/report.png" >/dev/null

fail=0
expect() {  # expect WHAT COUNT PATTERN: the rendered DOM holds COUNT matches of PATTERN
  local n
  n=$({ grep -o -- "$3" "$out/dom.html" || true; } | wc -l)  # none (grep fails) is a count too
  if [[ $n -ne $2 ]]; then
    echo "FAIL: $1: $n in the rendered DOM, expected $2"
    fail=1
  fi
}
# What the results file should show, counted from it: per scenario the gap plot, the plot of the
# gap against IEU's (when the study has IEU), the RCD median plots (RCD-cal's too when the study
# relearned with calibration) and the loss, accuracy and distance curves (a curve per model and
# replicate); an error bar per mean with an interval; a row per model in the summary and per model
# and replicate in the replicates' tables; a generator study's pictures, embedded.
read -r plots curves errorbars summary_rows model_rows pictures < <(python3 - "$results" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
plots = curves = errorbars = summary_rows = model_rows = pictures = 0
def has_interval(s):
    return isinstance(s, dict) and s.get("ci_low") is not None and s.get("ci_high") is not None
for sc in d["scenarios"]:
    models = sc["summary"]["models"]
    versus_ieu = [m for m in models if "gap" in (m.get("paired") or {}).get("ieu", {})]
    calibrated = any("calibrated_loss" in m["rcd"] for m in models)  # RCD-cal: with calibration only
    plots += 6 + (1 if versus_ieu else 0) + (1 if calibrated else 0)
    curves += 3 * sum(len(r["models"]) for r in sc["replicates"])
    errorbars += sum(1 for m in models if m["role"] != "retrained" and has_interval(m["figures"].get("gap")))
    errorbars += sum(1 for m in versus_ieu if has_interval(m["paired"]["ieu"]["gap"]["summary"]))
    summary_rows += len(models)
    model_rows += sum(len(r["models"]) for r in sc["replicates"])
    pictures += sum(len(r.get("samples") or {}) for r in sc["replicates"])  # a generator study's
print(plots, curves, errorbars, summary_rows, model_rows, pictures)
PY
)
expect "plots" "$plots" '<svg class="plot"'
expect "curves" "$curves" '<path class="curve"'
expect "error bars" "$errorbars" '<g class="errorbar"'
expect "summary rows" "$summary_rows" '<tr class="summary-model'
expect "replicate rows" "$model_rows" '<tr class="model'
expect "pictures" "$pictures" '<img class="samples" alt="[^"]*" src="data:image/png;base64,'
if grep -qiw -e nan -e inf "$out/dom.html"; then
  echo "FAIL: the rendered report shows a non-finite number:"
  grep -oiw -e '.\{40\}nan.\{20\}' -e '.\{40\}inf.\{20\}' "$out/dom.html" | head -5
  fail=1
fi
# A page that failed to render screenshots as a nearly empty (highly compressible) PNG.
size=$(stat -c %s "$out/report.png" 2>/dev/null || echo 0)
if [[ $size -lt 50000 ]]; then
  echo "FAIL: screenshot $out/report.png is $size bytes: the page did not render (see $out/chromium.log)"
  fail=1
fi
echo "report: $html"
echo "screenshot: $(realpath "$out/report.png")"
exit $fail
