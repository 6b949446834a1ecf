#!/usr/bin/env bash
# The study report as a browser shows it: `lethe report` on the fixture, then headless Chromium's
# DOM (a plot <svg> per scenario and kind, a curve per model, no "nan") and a screenshot to look
# at. Exits 77 (ctest: skipped) where Chromium is not installed; tools/setup installs it.
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
  n=$(grep -o -- "$3" "$out/dom.html" | wc -l)
  if [[ $n -ne $2 ]]; then
    echo "FAIL: $1: $n in the rendered DOM, expected $2"
    fail=1
  fi
}
# The fixture: 2 scenarios of 10 models; per scenario the loss, accuracy and distance plots (a
# curve per model) and the RCD bars (a bar per model).
expect "plots" 8 '<svg class="plot"'
expect "curves" 60 '<path class="curve"'
expect "RCD bars" 20 '<rect class="bar"'
expect "model rows" 20 '<tr class="model'
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
